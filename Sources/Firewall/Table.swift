import CNftnl

/// The address family of an nftables table (the family field of every nf_tables message).
public enum Family: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// Both IPv4 and IPv6 (NFPROTO_INET).
    case inet = 1
    case ip = 2
    case ip6 = 10
    /// Frames crossing a Linux bridge (NFPROTO_BRIDGE).
    case bridge = 7

    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .ip6: "ip6"
        case .bridge: "bridge"
        }
    }
}

/// An nftables table: berth only ever touches tables it owns.
public struct Table: Hashable, Sendable, CustomStringConvertible {
    public var family: Family
    public var name: String

    public init(_ family: Family, _ name: String) {
        self.family = family
        self.name = name
    }

    public var description: String { "\(family) \(name)" }
}

/// What a base chain does with a packet that no rule decided on.
public enum Policy: UInt32, Sendable, Hashable, CustomStringConvertible {
    case drop = 0  // NF_DROP
    case accept = 1  // NF_ACCEPT

    public var description: String { self == .accept ? "accept" : "drop" }
}

public enum ChainType: String, Sendable, Hashable {
    case filter, nat, route
}

/// The netfilter hooks of the ip, ip6 and inet families (NF_INET_*).
public enum Hook: UInt32, Sendable, Hashable, CustomStringConvertible {
    case prerouting = 0, input, forward, output, postrouting

    public var description: String {
        ["prerouting", "input", "forward", "output", "postrouting"][Int(rawValue)]
    }
}

/// A base chain's priority, with nft's named values.
public struct Priority: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(integerLiteral value: Int32) { rawValue = value }

    public static let raw: Priority = -300
    public static let mangle: Priority = -150
    public static let dstnat: Priority = -100
    public static let filter: Priority = 0
    public static let security: Priority = 50
    public static let srcnat: Priority = 100

    public var description: String { String(rawValue) }
}

/// What makes a chain a base chain: attached to a hook.
public struct BaseChain: Hashable, Sendable {
    public var type: ChainType
    public var hook: Hook
    public var priority: Priority
    public var policy: Policy

    public init(type: ChainType, hook: Hook, priority: Priority, policy: Policy = .accept) {
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
    }
}

/// A chain: a base chain when `base` is set, otherwise a regular chain reached by jump/goto.
public struct Chain: Hashable, Sendable {
    public var name: String
    public var base: BaseChain?

    public init(_ name: String, base: BaseChain? = nil) {
        self.name = name
        self.base = base
    }

    /// A base chain: `type nat hook prerouting priority dstnat; policy accept;`.
    public static func base(
        _ name: String, type: ChainType, hook: Hook, priority: Priority, policy: Policy = .accept
    ) -> Chain {
        Chain(name, base: BaseChain(type: type, hook: hook, priority: priority, policy: policy))
    }
}

/// A verdict: what an immediate or a verdict map decides.
public enum Verdict: Hashable, Sendable, CustomStringConvertible {
    case accept, drop, `continue`, `return`
    case jump(String)
    case goto(String)

    var code: Int32 {
        switch self {
        case .drop: 0  // NF_DROP
        case .accept: 1  // NF_ACCEPT
        case .continue: NFT_CONTINUE.rawValue
        case .return: NFT_RETURN.rawValue
        case .jump: NFT_JUMP.rawValue
        case .goto: NFT_GOTO.rawValue
        }
    }

    var chain: String? {
        switch self {
        case .jump(let c), .goto(let c): c
        default: nil
        }
    }

    init?(code: Int32, chain: String?) {
        switch code {
        case 0: self = .drop
        case 1: self = .accept
        case NFT_CONTINUE.rawValue: self = .continue
        case NFT_RETURN.rawValue: self = .return
        case NFT_JUMP.rawValue: self = .jump(chain ?? "")
        case NFT_GOTO.rawValue: self = .goto(chain ?? "")
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .accept: "accept"
        case .drop: "drop"
        case .continue: "continue"
        case .return: "return"
        case .jump(let c): "jump \(c)"
        case .goto(let c): "goto \(c)"
        }
    }
}

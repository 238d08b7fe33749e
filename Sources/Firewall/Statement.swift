public import Addressing
import CNftnl

/// Something a rule can load and match: `ip saddr`, `oifname`, `th dport`, `ct state`.
public struct Field: Hashable, Sendable, CustomStringConvertible {
    enum Source: Hashable, Sendable {
        case meta(MetaKey)
        case payload(PayloadBase, offset: UInt32)
        case ct(CtKey, CtDirection?)
        case fib(FibFlags, FibResult)
    }

    /// What must hold before the field can be loaded (nft's "dependencies").
    enum Requirement: Hashable, Sendable {
        /// `meta nfproto X`, needed in inet tables before reading IP headers.
        case networkFamily(NatFamily)
        /// `meta l4proto X`, needed before reading a specific transport header.
        case transportProtocol(UInt8)
    }

    /// nft's spelling ("ip saddr").
    public let name: String
    public let type: DataType
    let source: Source
    let requirement: Requirement?

    init(_ name: String, _ type: DataType, _ source: Source, requires requirement: Requirement? = nil) {
        self.name = name
        self.type = type
        self.source = source
        self.requirement = requirement
    }

    public var description: String { name }

    func load(into register: Register) -> Expression {
        switch source {
        case .meta(let key): .meta(key, into: register)
        case .payload(let base, let offset): .payload(base, offset: offset, length: UInt32(type.length), into: register)
        case .ct(let key, let direction): .ct(key, direction: direction, into: register)
        case .fib(let flags, let result): .fib(flags, result: result, into: register)
        }
    }

    public static let iifname = Field("iifname", .ifname, .meta(.iifname))
    /// The Ethernet source address (in bridge-family tables).
    public static let etherSaddr = Field("ether saddr", .etherAddress, .payload(.link, offset: 6))
    public static let oifname = Field("oifname", .ifname, .meta(.oifname))
    public static let iif = Field("iif", .ifindex, .meta(.iif))
    public static let oif = Field("oif", .ifindex, .meta(.oif))
    public static let nfproto = Field("meta nfproto", .nfproto, .meta(.nfproto))
    public static let l4proto = Field("meta l4proto", .inetProto, .meta(.l4proto))
    public static let mark = Field("meta mark", .mark, .meta(.mark))

    public static let ipSaddr = Field("ip saddr", .ipv4Address, .payload(.network, offset: 12), requires: .networkFamily(.ipv4))
    public static let ipDaddr = Field("ip daddr", .ipv4Address, .payload(.network, offset: 16), requires: .networkFamily(.ipv4))
    public static let ip6Saddr = Field("ip6 saddr", .ipv6Address, .payload(.network, offset: 8), requires: .networkFamily(.ipv6))
    public static let ip6Daddr = Field("ip6 daddr", .ipv6Address, .payload(.network, offset: 24), requires: .networkFamily(.ipv6))

    /// Ports of whatever transport header follows (meant to be paired with `meta l4proto`).
    public static let thSport = Field("th sport", .inetService, .payload(.transport, offset: 0))
    public static let thDport = Field("th dport", .inetService, .payload(.transport, offset: 2))
    public static let tcpSport = Field("tcp sport", .inetService, .payload(.transport, offset: 0), requires: .transportProtocol(6))
    public static let tcpDport = Field("tcp dport", .inetService, .payload(.transport, offset: 2), requires: .transportProtocol(6))
    public static let udpSport = Field("udp sport", .inetService, .payload(.transport, offset: 0), requires: .transportProtocol(17))
    public static let udpDport = Field("udp dport", .inetService, .payload(.transport, offset: 2), requires: .transportProtocol(17))

    public static let ctState = Field("ct state", .ctState, .ct(.state, nil))
    public static let ctStatus = Field("ct status", .ctStatus, .ct(.status, nil))
    public static let ctMark = Field("ct mark", .mark, .ct(.mark, nil))
    /// The conntrack entry's addresses; the kernel ends the rule for entries of the other family,
    /// so no `meta nfproto` check is needed (nft adds none).
    public static let ctOriginalIPSaddr = Field("ct original ip saddr", .ipv4Address, .ct(.sourceIPv4, .original))
    public static let ctOriginalIPDaddr = Field("ct original ip daddr", .ipv4Address, .ct(.destinationIPv4, .original))
    public static let ctOriginalIP6Saddr = Field("ct original ip6 saddr", .ipv6Address, .ct(.sourceIPv6, .original))
    public static let ctOriginalIP6Daddr = Field("ct original ip6 daddr", .ipv6Address, .ct(.destinationIPv6, .original))

    /// `fib daddr type`: the route type of the destination address (compare with `.local`).
    public static let fibDaddrType = Field("fib daddr type", .fibAddressType, .fib(.daddr, .addressType))
}

/// `ct state` bits.
public struct CtState: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let invalid = CtState(rawValue: 1)
    public static let established = CtState(rawValue: 1 << 1)
    public static let related = CtState(rawValue: 1 << 2)
    public static let new = CtState(rawValue: 1 << 3)
    public static let untracked = CtState(rawValue: 1 << 6)
}

/// `ct status` bits (IPS_*).
public struct CtStatus: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let expected = CtStatus(rawValue: 1 << 0)
    public static let seenReply = CtStatus(rawValue: 1 << 1)
    public static let assured = CtStatus(rawValue: 1 << 2)
    public static let confirmed = CtStatus(rawValue: 1 << 3)
    public static let snat = CtStatus(rawValue: 1 << 4)
    public static let dnat = CtStatus(rawValue: 1 << 5)
}

/// Where a nat statement translates to.
public enum NatTarget: Hashable, Sendable {
    /// A fixed address, and optionally a port.
    case address(Value, port: UInt16? = nil)
    /// The data of `map` looked up with the concatenated `key`: an address, or an address
    /// followed by a port when `withPort` (`ipv4_addr . inet_service`).
    case map(String, key: [Field], withPort: Bool)
}

/// One step of a rule at the level of nft syntax; registers are allocated when the rule is
/// compiled. Fields that read IP headers get their `meta nfproto` check in inet tables, as nft
/// adds them.
public enum Statement: Hashable, Sendable {
    /// `oifname != "berth0"`.
    case match(Field, CompareOp, Value)
    /// `ip saddr 127.0.0.0/8` (`.equal`) or `ip saddr != 10.0.0.0/8` (`.notEqual`).
    case matchPrefix(Field, CompareOp, IPNetwork)
    /// `ct state established,related`: true when any of the bits is set.
    case matchAnyBit(Field, UInt32)
    /// `ip saddr . oifname @own_v4` (or `!= @set` when inverted).
    case lookup([Field], set: String, invert: Bool)
    case verdict(Verdict)
    /// `iifname vmap @m`: the map's data is a verdict.
    case verdictMap([Field], map: String)
    case counter
    case masquerade
    case nat(NatType, NatFamily, NatTarget)
    /// `meta mark set 0x...`.
    case setMark(UInt32)
    case notrack
    /// Raw expressions, for what the statements above do not cover.
    case expressions([Expression])

    public static func match(_ field: Field, equal value: Value) -> Statement { .match(field, .equal, value) }
    public static func match(_ field: Field, notEqual value: Value) -> Statement { .match(field, .notEqual, value) }
    public static func match(_ field: Field, in network: IPNetwork) -> Statement { .matchPrefix(field, .equal, network) }
    public static func match(_ field: Field, notIn network: IPNetwork) -> Statement { .matchPrefix(field, .notEqual, network) }
    public static func lookup(_ field: Field, set: String) -> Statement { .lookup([field], set: set, invert: false) }
    public static func lookup(concat fields: [Field], set: String) -> Statement { .lookup(fields, set: set, invert: false) }
    public static func notInSet(_ fields: [Field], set: String) -> Statement { .lookup(fields, set: set, invert: true) }
    public static func ctState(_ states: CtState) -> Statement { .matchAnyBit(.ctState, states.rawValue) }
    public static func ctStatus(_ status: CtStatus) -> Statement { .matchAnyBit(.ctStatus, status.rawValue) }
    /// `fib daddr type local`.
    public static let fibDaddrLocal = Statement.match(.fibDaddrType, .equal, .integer(2))  // RTN_LOCAL
    public static func dnat(_ family: NatFamily, to target: NatTarget) -> Statement { .nat(.dnat, family, target) }
    public static func snat(_ family: NatFamily, to target: NatTarget) -> Statement { .nat(.snat, family, target) }
    public static let accept = Statement.verdict(.accept)
    public static let drop = Statement.verdict(.drop)
    public static let `return` = Statement.verdict(.return)
    public static func jump(_ chain: String) -> Statement { .verdict(.jump(chain)) }
    public static func goto(_ chain: String) -> Statement { .verdict(.goto(chain)) }
}

/// A rule: statements in order, and an optional comment (stored as the rule's userdata).
public struct Rule: Hashable, Sendable {
    public var chain: String
    public var statements: [Statement]
    public var comment: String?

    public init(in chain: String, _ statements: [Statement], comment: String? = nil) {
        self.chain = chain
        self.statements = statements
        self.comment = comment
    }

    public init(in chain: String, comment: String? = nil, _ statements: Statement...) {
        self.init(in: chain, statements, comment: comment)
    }

    /// The expressions the kernel runs for this rule in a table of `family`.
    public func expressions(family: Family) throws(FirewallError) -> [Expression] {
        var compiler = RuleCompiler(family: family, chain: chain)
        for statement in statements { try compiler.add(statement) }
        return compiler.output
    }
}

/// Turns statements into expressions: each statement starts allocating at register 0, as nft does.
private struct RuleCompiler {
    let family: Family
    let chain: String
    var output: [Expression] = []
    var satisfied: Set<Field.Requirement> = []

    init(family: Family, chain: String) {
        self.family = family
        self.chain = chain
    }

    mutating func add(_ statement: Statement) throws(FirewallError) {
        switch statement {
        case .match(let field, let op, let value):
            try require(field)
            output.append(field.load(into: .data(0)))
            output.append(.compare(.data(0), op, try value.encoded(as: field.type)))
        case .matchPrefix(let field, let op, let network):
            try require(field)
            let address = try Value(network.network.address).encoded(as: field.type)
            let prefix = network.prefixLength
            if prefix == 0 {
                break  // every address of the family: the family check alone
            } else if prefix % 8 == 0 {
                // As nft: compare only the bytes the prefix covers (and load only those from
                // a header).
                let bytes = prefix / 8
                if case .payload(let base, let offset) = field.source {
                    output.append(.payload(base, offset: offset, length: UInt32(bytes), into: .data(0)))
                } else {
                    output.append(field.load(into: .data(0)))
                }
                output.append(.compare(.data(0), op, Array(address.prefix(bytes))))
            } else {
                output.append(field.load(into: .data(0)))
                let mask = try Value(network.mask).encoded(as: field.type)
                output.append(.bitwise(.data(0), into: .data(0), mask: mask, xor: [UInt8](repeating: 0, count: mask.count)))
                output.append(.compare(.data(0), op, address))
            }
        case .matchAnyBit(let field, let bits):
            try require(field)
            let zero = [UInt8](repeating: 0, count: field.type.length)
            output.append(field.load(into: .data(0)))
            output.append(.bitwise(.data(0), into: .data(0), mask: try Value.integer(UInt64(bits)).encoded(as: field.type), xor: zero))
            output.append(.compare(.data(0), .notEqual, zero))
        case .lookup(let fields, let set, let invert):
            try loadConcatenation(fields)
            output.append(.lookup(set: set, from: .data(0), invert: invert))
        case .verdict(let verdict):
            output.append(.verdict(verdict))
        case .verdictMap(let fields, let map):
            try loadConcatenation(fields)
            output.append(.lookup(set: map, from: .data(0), into: .verdict))
        case .counter:
            output.append(.counter(Counter()))
        case .masquerade:
            output.append(.masquerade())
        case .nat(let type, let natFamily, let target):
            try requireFamily(natFamily)
            try addNat(type, natFamily, target)
        case .setMark(let mark):
            output.append(.immediate(try Value.integer(UInt64(mark)).encoded(as: .mark), into: .data(0)))
            output.append(.setMeta(.mark, from: .data(0)))
        case .notrack:
            output.append(.notrack)
        case .expressions(let expressions):
            output += expressions
        }
    }

    private mutating func addNat(_ type: NatType, _ natFamily: NatFamily, _ target: NatTarget) throws(FirewallError) {
        let addressType: DataType = natFamily == .ipv4 ? .ipv4Address : .ipv6Address
        switch target {
        case .address(let address, let port):
            // Like nft, each immediate gets its own 16-byte register.
            output.append(.immediate(try address.encoded(as: addressType), into: .data(0)))
            guard let port else {
                output.append(.nat(type, family: natFamily, address: .data(0), port: nil))
                return
            }
            output.append(.immediate(try Value.integer(UInt64(port)).encoded(as: .inetService), into: .data(4)))
            output.append(
                .nat(type, family: natFamily, address: .data(0), port: .data(4), flags: UInt32(NF_NAT_RANGE_PROTO_SPECIFIED)))
        case .map(let map, let key, let withPort):
            try loadConcatenation(key)
            output.append(.lookup(set: map, from: .data(0), into: .data(0)))
            output.append(.nat(type, family: natFamily, address: .data(0), port: withPort ? .data(addressType.words) : nil))
        }
    }

    /// Loads the fields into consecutive registers from 0 (with their checks first).
    private mutating func loadConcatenation(_ fields: [Field]) throws(FirewallError) {
        guard !fields.isEmpty else { throw .invalid("rule in chain \(chain): lookup without a key") }
        for field in fields { try require(field) }
        var next = 0
        for field in fields {
            output.append(field.load(into: .data(next)))
            next += field.type.words
        }
        guard next <= 16 else {
            throw .invalid("rule in chain \(chain): key \(fields.map(\.name).joined(separator: " . ")) is longer than 64 bytes")
        }
    }

    private mutating func require(_ field: Field) throws(FirewallError) {
        switch field.requirement {
        case nil: return
        case .networkFamily(let f): try requireFamily(f)
        case .transportProtocol(let proto):
            guard satisfied.insert(.transportProtocol(proto)).inserted else { return }
            output.append(.meta(.l4proto, into: .data(0)))
            output.append(.compare(.data(0), .equal, [proto]))
        }
    }

    private mutating func requireFamily(_ f: NatFamily) throws(FirewallError) {
        switch (family, f) {
        case (.inet, _):
            guard satisfied.insert(.networkFamily(f)).inserted else { return }
            output.append(.meta(.nfproto, into: .data(0)))
            output.append(.compare(.data(0), .equal, [UInt8(f.rawValue)]))
        case (.ip, .ipv4), (.ip6, .ipv6):
            return
        default:
            throw .invalid("rule in chain \(chain): \(f == .ipv4 ? "IPv4" : "IPv6") match in a \(family) table")
        }
    }
}

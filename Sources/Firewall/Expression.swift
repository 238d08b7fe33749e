import CNftnl

/// An nf_tables register: the verdict register or one of the sixteen 4-byte data registers.
/// Values longer than 4 bytes (addresses, names, concatenations) fill consecutive registers.
public enum Register: Hashable, Sendable, CustomStringConvertible {
    case verdict
    /// 0...15 (NFT_REG32_00 + n).
    case data(Int)

    /// The number on the wire. Like nft, registers at a 16-byte boundary use the old
    /// NFT_REG_1...4 names (the kernel treats both spellings alike).
    var netlinkValue: UInt32 {
        switch self {
        case .verdict: 0
        case .data(let n) where n % 4 == 0: 1 + UInt32(n / 4)
        case .data(let n): 8 + UInt32(n)
        }
    }

    init?(netlinkValue: UInt32) {
        switch netlinkValue {
        case 0: self = .verdict
        case 1...4: self = .data(Int(netlinkValue - 1) * 4)
        case 8...23: self = .data(Int(netlinkValue - 8))
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .verdict: "verdict"
        case .data(let n): "r\(n)"
        }
    }
}

/// `meta` keys (enum nft_meta_keys).
public struct MetaKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let length = MetaKey(rawValue: NFT_META_LEN.rawValue)
    public static let mark = MetaKey(rawValue: NFT_META_MARK.rawValue)
    public static let iif = MetaKey(rawValue: NFT_META_IIF.rawValue)
    public static let oif = MetaKey(rawValue: NFT_META_OIF.rawValue)
    public static let iifname = MetaKey(rawValue: NFT_META_IIFNAME.rawValue)
    public static let oifname = MetaKey(rawValue: NFT_META_OIFNAME.rawValue)
    public static let nfproto = MetaKey(rawValue: NFT_META_NFPROTO.rawValue)
    public static let l4proto = MetaKey(rawValue: NFT_META_L4PROTO.rawValue)
}

/// `ct` keys (enum nft_ct_keys).
public struct CtKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let state = CtKey(rawValue: NFT_CT_STATE.rawValue)
    public static let direction = CtKey(rawValue: NFT_CT_DIRECTION.rawValue)
    public static let status = CtKey(rawValue: NFT_CT_STATUS.rawValue)
    public static let mark = CtKey(rawValue: NFT_CT_MARK.rawValue)
    public static let sourceIPv4 = CtKey(rawValue: NFT_CT_SRC_IP.rawValue)
    public static let destinationIPv4 = CtKey(rawValue: NFT_CT_DST_IP.rawValue)
    public static let sourceIPv6 = CtKey(rawValue: NFT_CT_SRC_IP6.rawValue)
    public static let destinationIPv6 = CtKey(rawValue: NFT_CT_DST_IP6.rawValue)
    public static let protoSource = CtKey(rawValue: NFT_CT_PROTO_SRC.rawValue)
    public static let protoDestination = CtKey(rawValue: NFT_CT_PROTO_DST.rawValue)
}

public enum CtDirection: UInt8, Hashable, Sendable {
    case original = 0, reply = 1  // IP_CT_DIR_*
}

/// Which header a payload offset counts from (enum nft_payload_bases).
public enum PayloadBase: UInt32, Hashable, Sendable {
    case link = 0, network = 1, transport = 2
}

public enum CompareOp: UInt32, Hashable, Sendable, CustomStringConvertible {
    case equal = 0, notEqual, less, lessOrEqual, greater, greaterOrEqual  // enum nft_cmp_ops

    public var description: String { ["==", "!=", "<", "<=", ">", ">="][Int(rawValue)] }
}

public enum NatType: UInt32, Hashable, Sendable {
    case snat = 0, dnat = 1  // enum nft_nat_types
}

/// The address family a nat statement translates (in an inet table it must be said).
public enum NatFamily: UInt32, Hashable, Sendable {
    case ipv4 = 2, ipv6 = 10  // NFPROTO_IPV4, NFPROTO_IPV6
}

/// `fib` lookup inputs (NFTA_FIB_F_*).
public struct FibFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let saddr = FibFlags(rawValue: NFTA_FIB_F_SADDR.rawValue)
    public static let daddr = FibFlags(rawValue: NFTA_FIB_F_DADDR.rawValue)
    public static let mark = FibFlags(rawValue: NFTA_FIB_F_MARK.rawValue)
    public static let iif = FibFlags(rawValue: NFTA_FIB_F_IIF.rawValue)
    public static let oif = FibFlags(rawValue: NFTA_FIB_F_OIF.rawValue)
}

/// What a `fib` lookup returns (enum nft_fib_result).
public enum FibResult: UInt32, Hashable, Sendable {
    case oif = 1, oifname = 2, addressType = 3
}

/// Packet and byte counts of a counter expression (zero in rules being added).
public struct Counter: Hashable, Sendable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// One nf_tables expression, as the kernel runs it: registers explicit. Rules are usually
/// written with `Statement`s, which compile to these; listing returns these.
public enum Expression: Hashable, Sendable {
    case meta(MetaKey, into: Register)
    case setMeta(MetaKey, from: Register)
    case payload(PayloadBase, offset: UInt32, length: UInt32, into: Register)
    case compare(Register, CompareOp, [UInt8])
    /// `into = (source & mask) ^ xor`, over mask.count bytes.
    case bitwise(Register, into: Register, mask: [UInt8], xor: [UInt8])
    /// Membership test (or, with `into`, a map lookup) of the key in `from` and the registers after it.
    case lookup(set: String, from: Register, into: Register? = nil, invert: Bool = false)
    case verdict(Verdict)
    case immediate([UInt8], into: Register)
    case ct(CtKey, direction: CtDirection? = nil, into: Register)
    case nat(
        NatType, family: NatFamily, address: Register?, addressMax: Register? = nil, port: Register?,
        portMax: Register? = nil, flags: UInt32 = 0)
    case masquerade(flags: UInt32 = 0, port: Register? = nil, portMax: Register? = nil)
    case redirect(flags: UInt32 = 0, port: Register? = nil, portMax: Register? = nil)
    case counter(Counter)
    case fib(FibFlags, result: FibResult, into: Register)
    case notrack
    /// An expression this model does not decode (listing only).
    case other(String)

    /// The expression's name in the kernel ("lookup").
    public var name: String {
        switch self {
        case .meta, .setMeta: "meta"
        case .payload: "payload"
        case .compare: "cmp"
        case .bitwise: "bitwise"
        case .lookup: "lookup"
        case .verdict, .immediate: "immediate"
        case .ct: "ct"
        case .nat: "nat"
        case .masquerade: "masq"
        case .redirect: "redir"
        case .counter: "counter"
        case .fib: "fib"
        case .notrack: "notrack"
        case .other(let name): name
        }
    }
}

public import Addressing

/// The type of a value in a register, a set key or map data, as nft names and numbers it.
/// The number (`id`) is what nft stores as a set's key type so that `nft list` can print the
/// elements; the kernel only cares about lengths.
public struct DataType: Hashable, Sendable, CustomStringConvertible {
    public enum ByteOrder: UInt32, Sendable, Hashable {
        case host = 1, bigEndian = 2  // nft's BYTEORDER_HOST_ENDIAN, BYTEORDER_BIG_ENDIAN
    }
    enum Kind: Hashable, Sendable { case ipv4, ipv6, ether, string, integer }

    public let name: String
    public let id: UInt32
    /// Bytes the value occupies in a register (before padding to 4).
    public let length: Int
    public let byteOrder: ByteOrder
    let kind: Kind

    init(_ name: String, id: UInt32, length: Int, _ byteOrder: ByteOrder, _ kind: Kind) {
        self.name = name
        self.id = id
        self.length = length
        self.byteOrder = byteOrder
        self.kind = kind
    }

    public static let ipv4Address = DataType("ipv4_addr", id: 7, length: 4, .bigEndian, .ipv4)
    public static let ipv6Address = DataType("ipv6_addr", id: 8, length: 16, .bigEndian, .ipv6)
    public static let etherAddress = DataType("ether_addr", id: 9, length: 6, .bigEndian, .ether)
    public static let inetProto = DataType("inet_proto", id: 12, length: 1, .bigEndian, .integer)
    public static let inetService = DataType("inet_service", id: 13, length: 2, .bigEndian, .integer)
    public static let mark = DataType("mark", id: 19, length: 4, .host, .integer)
    public static let ifname = DataType("ifname", id: 41, length: 16, .host, .string)
    public static let nfproto = DataType("nf_proto", id: 2, length: 1, .host, .integer)
    public static let ctState = DataType("ct_state", id: 26, length: 4, .host, .integer)
    public static let ctStatus = DataType("ct_status", id: 28, length: 4, .host, .integer)
    public static let etherType = DataType("ether_type", id: 10, length: 2, .bigEndian, .integer)
    public static let ifindex = DataType("iface_index", id: 20, length: 4, .host, .integer)
    /// The result of `fib ... type` (an RTN_* route type).
    public static let fibAddressType = DataType("fib_addrtype", id: 4, length: 4, .host, .integer)

    /// An unnamed integer of `length` bytes (nft's "integer" type).
    public static func integer(length: Int, byteOrder: ByteOrder = .bigEndian) -> DataType {
        DataType("integer", id: 4, length: length, byteOrder, .integer)
    }

    static let known: [DataType] = [
        .ipv4Address, .ipv6Address, .etherAddress, .inetProto, .inetService, .mark, .ifname, .nfproto,
        .ctState, .ctStatus, .etherType, .ifindex,
    ]

    /// 4-byte registers the value occupies.
    var words: Int { (length + 3) / 4 }

    public var description: String { name }

    /// nft's number for a concatenation: the members' numbers, 6 bits each.
    static func concatenationID(_ types: [DataType]) -> UInt32 {
        types.reduce(0) { $0 << 6 | $1.id }
    }

    /// Splits a key type number and length back into members; unknown numbers become integers.
    static func members(id: UInt32, length: Int, fieldLengths: [Int] = []) -> [DataType] {
        if !fieldLengths.isEmpty {
            var ids: [UInt32] = []
            var rest = id
            for _ in fieldLengths {
                ids.insert(rest & 0x3f, at: 0)
                rest >>= 6
            }
            return zip(ids, fieldLengths).map { id, len in
                known.first { $0.id == id && $0.length == len } ?? .integer(length: len)
            }
        }
        if let single = known.first(where: { $0.id == id && $0.length == length }) {
            return [single]
        }
        var ids: [UInt32] = []
        var rest = id
        while rest != 0 {
            ids.insert(rest & 0x3f, at: 0)
            rest >>= 6
        }
        let types = ids.compactMap { id in known.first { $0.id == id } }
        if types.count == ids.count, types.reduce(0, { $0 + $1.words * 4 }) == length { return types }
        return [.integer(length: length)]
    }
}

/// A value to compare with or to store in a set: an address, an interface name, a number.
/// Numbers take the width and byte order of the type they are used with (a port is two bytes in
/// network order, a mark four bytes in host order).
public enum Value: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral
{
    case ipv4(IPv4Address)
    case ipv6(IPv6Address)
    case ether(MACAddress)
    /// An interface name.
    case string(String)
    case integer(UInt64)
    /// Raw bytes, exactly as long as the type.
    case bytes([UInt8])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: UInt64) { self = .integer(value) }
    public init(_ address: IPAddress) {
        switch address {
        case .v4(let a): self = .ipv4(a)
        case .v6(let a): self = .ipv6(a)
        }
    }

    public static let tcp = Value.integer(6)
    public static let udp = Value.integer(17)
    public static let sctp = Value.integer(132)
    /// `meta nfproto` values.
    public static let ipv4Family = Value.integer(2)
    public static let ipv6Family = Value.integer(10)

    public var description: String {
        switch self {
        case .ipv4(let a): a.description
        case .ipv6(let a): a.description
        case .ether(let m): m.description
        case .string(let s): "\"\(s)\""
        case .integer(let n): String(n)
        case .bytes(let b): "0x" + b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }

    /// The value's bytes as `type` stores them (not padded).
    func encoded(as type: DataType) throws(FirewallError) -> [UInt8] {
        func mismatch() -> FirewallError {
            .invalid("value \(self) is not a valid \(type.name)")
        }
        switch (self, type.kind) {
        case (.bytes(let b), _):
            guard b.count == type.length else { throw mismatch() }
            return b
        case (.ipv4(let a), .ipv4): return a.bytes
        case (.ipv6(let a), .ipv6): return a.bytes
        case (.ether(let m), .ether): return m.bytes
        case (.string(let s), .string):
            let utf8 = Array(s.utf8)
            guard utf8.count < type.length, !utf8.contains(0) else { throw mismatch() }
            return utf8 + [UInt8](repeating: 0, count: type.length - utf8.count)
        case (.integer(let n), .integer):
            guard type.length >= 8 || n >> (8 * UInt64(type.length)) == 0 else { throw mismatch() }
            let bigEndian = (0..<type.length).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64(type.length - 1 - $0))) }
            return type.byteOrder == .bigEndian ? bigEndian : bigEndian.reversed()
        default:
            throw mismatch()
        }
    }

    /// Reads a value of `type` from its (unpadded) bytes.
    static func decode(_ bytes: ArraySlice<UInt8>, as type: DataType) -> Value {
        let b = Array(bytes)
        switch type.kind {
        case .ipv4: if let a = IPv4Address(bytes: b) { return .ipv4(a) }
        case .ipv6: if let a = IPv6Address(bytes: b) { return .ipv6(a) }
        case .ether: if let m = MACAddress(bytes: b) { return .ether(m) }
        case .string: return .string(String(decoding: b.prefix(while: { $0 != 0 }), as: UTF8.self))
        case .integer:
            guard b.count <= 8 else { break }
            let ordered = type.byteOrder == .bigEndian ? b : b.reversed()
            return .integer(ordered.reduce(0) { $0 << 8 | UInt64($1) })
        }
        return .bytes(b)
    }
}

/// Keys and map data of one or more members. A single member keeps its own length; members of a
/// concatenation are each padded to a multiple of 4 bytes, as registers hold them.
enum Concatenation {
    static func encode(_ values: [Value], as types: [DataType]) throws(FirewallError) -> [UInt8] {
        guard values.count == types.count else {
            throw .invalid("expected \(types.count) values (\(describe(types))), got \(values.count)")
        }
        var out: [UInt8] = []
        for (value, type) in zip(values, types) {
            let bytes = try value.encoded(as: type)
            out += bytes
            if types.count > 1 { out += [UInt8](repeating: 0, count: type.words * 4 - bytes.count) }
        }
        return out
    }

    static func decode(_ bytes: [UInt8], as types: [DataType]) -> [Value] {
        var offset = 0
        var values: [Value] = []
        for type in types {
            let end = min(offset + type.length, bytes.count)
            values.append(Value.decode(bytes[min(offset, end)..<end], as: type))
            offset += type.words * 4
        }
        return values
    }

    static func length(_ types: [DataType]) -> Int {
        types.count == 1 ? types[0].length : types.reduce(0) { $0 + $1.words * 4 }
    }

    static func describe(_ types: [DataType]) -> String { types.map(\.name).joined(separator: " . ") }

    static func describe(_ values: [Value]) -> String { values.map(\.description).joined(separator: " . ") }

    /// As nft writes values of these types ("tcp . 8080").
    static func describe(_ values: [Value], as types: [DataType]) -> String {
        zip(values, types).map { value, type in
            if type == .inetProto, case .integer(let n) = value, let name = [6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"][n] {
                return name
            }
            return value.description
        }.joined(separator: " . ")
    }
}

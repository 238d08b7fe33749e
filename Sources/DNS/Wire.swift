/// DNS wire-format basics (RFC 1035): record types, the limits every name obeys, and a name
/// walker that follows compression pointers safely. Both the general message codec and the
/// server's allocation-free fast path read names through `walkName`.

/// A record type (an open set: unknown types pass through as numbers).
public struct RecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ value: UInt16) { rawValue = value }

    public static let a = RecordType(1)
    public static let ns = RecordType(2)
    public static let cname = RecordType(5)
    public static let soa = RecordType(6)
    public static let ptr = RecordType(12)
    public static let mx = RecordType(15)
    public static let txt = RecordType(16)
    public static let aaaa = RecordType(28)
    public static let srv = RecordType(33)
    public static let opt = RecordType(41)
    public static let any = RecordType(255)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        case .opt: "OPT"
        case .any: "ANY"
        default: "TYPE\(rawValue)"
        }
    }
}

/// Response codes.
public struct ResponseCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let noError = ResponseCode(rawValue: 0)
    public static let formatError = ResponseCode(rawValue: 1)
    public static let serverFailure = ResponseCode(rawValue: 2)
    public static let nameError = ResponseCode(rawValue: 3)  // NXDOMAIN
    public static let notImplemented = ResponseCode(rawValue: 4)
    public static let refused = ResponseCode(rawValue: 5)
}

public let dnsClassIN: UInt16 = 1

/// Why a message could not be read. Messages from the network are untrusted: every limit is
/// checked and reported here, never trapped on.
public struct DNSParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var offset: Int
    public init(_ reason: String, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }
    public var description: String { "\(reason) at byte \(offset)" }
}

public enum DNSLimits {
    public static let maxLabel = 63
    /// Wire length of a name, length octets and the root label included.
    public static let maxName = 255
    /// How many compression pointers one name may follow.
    public static let maxPointers = 64
    public static let headerSize = 12
    /// What a client without EDNS accepts over UDP.
    public static let classicUDPSize = 512
}

/// Walks the name starting at `start`, calling `label(offset, length)` for every label (the
/// offset of its first byte); returns the offset just after the name where it started (after
/// the first pointer, if any). Compression pointers must point strictly backwards, which makes
/// loops impossible; labels over 63 bytes, reserved label types, names over 255 bytes and
/// reading past the end are errors.
@inline(__always)
func walkName(
    _ bytes: UnsafeRawBufferPointer, at start: Int, _ label: (Int, Int) -> Void
) throws(DNSParseError) -> Int {
    var position = start
    var end = -1
    var nameLength = 1
    var jumps = 0
    var floor = start  // pointers must go below every position already read
    while true {
        guard position < bytes.count else { throw DNSParseError("name runs past the end", at: position) }
        let length = Int(bytes[position])
        switch length & 0xC0 {
        case 0:
            if length == 0 {
                return end >= 0 ? end : position + 1
            }
            guard position + 1 + length <= bytes.count else { throw DNSParseError("label runs past the end", at: position) }
            nameLength += length + 1
            guard nameLength <= DNSLimits.maxName else { throw DNSParseError("name longer than 255 bytes", at: position) }
            label(position + 1, length)
            position += 1 + length
        case 0xC0:
            guard position + 1 < bytes.count else { throw DNSParseError("compression pointer runs past the end", at: position) }
            let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
            guard target < floor else { throw DNSParseError("compression pointer does not point backwards", at: position) }
            jumps += 1
            guard jumps <= DNSLimits.maxPointers else { throw DNSParseError("too many compression pointers", at: position) }
            if end < 0 { end = position + 2 }
            floor = target
            position = target
        default:
            throw DNSParseError("reserved label type", at: position)
        }
    }
}

@inline(__always) func asciiLower(_ byte: UInt8) -> UInt8 {
    byte &- 0x41 < 26 ? byte | 0x20 : byte
}

@inline(__always) func readUInt16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
}

@inline(__always) func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

@inline(__always) func writeUInt16(_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt16) {
    bytes[offset] = UInt8(value >> 8)
    bytes[offset + 1] = UInt8(value & 0xFF)
}

@inline(__always) func writeUInt32(_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt32) {
    bytes[offset] = UInt8(value >> 24)
    bytes[offset + 1] = UInt8(value >> 16 & 0xFF)
    bytes[offset + 2] = UInt8(value >> 8 & 0xFF)
    bytes[offset + 3] = UInt8(value & 0xFF)
}

extension Array where Element == UInt8 {
    mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }

    mutating func appendUInt32(_ value: UInt32) {
        append(UInt8(value >> 24))
        append(UInt8(value >> 16 & 0xFF))
        append(UInt8(value >> 8 & 0xFF))
        append(UInt8(value & 0xFF))
    }
}

/// A domain name as labels of raw bytes. Comparisons ignore ASCII case, as DNS does.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    public private(set) var labels: [[UInt8]]

    public static let root = DNSName(uncheckedLabels: [])

    /// Labels must be 1...63 bytes and the whole name at most 255 bytes on the wire.
    public init?(labels: [[UInt8]]) {
        guard labels.allSatisfy({ !$0.isEmpty && $0.count <= DNSLimits.maxLabel }),
            labels.reduce(1, { $0 + $1.count + 1 }) <= DNSLimits.maxName
        else { return nil }
        self.labels = labels
    }

    /// "web1.dns.podman" or "web1.dns.podman."; "." and "" are the root.
    public init?(_ text: some StringProtocol) {
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty {
            self.init(labels: [])
            return
        }
        self.init(labels: trimmed.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) })
    }

    /// Reads a name from a message (compression allowed); returns it and the offset after it.
    static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(DNSParseError) -> (DNSName, Int) {
        var labels: [[UInt8]] = []
        let end = try walkName(bytes, at: offset) { start, length in
            labels.append(Array(bytes[start..<start + length]))
        }
        return (DNSName(uncheckedLabels: labels), end)
    }

    init(uncheckedLabels: [[UInt8]]) { labels = uncheckedLabels }

    /// The uncompressed wire form, lower-cased: the key names are looked up by.
    public var wireKey: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(labels.reduce(1) { $0 + $1.count + 1 })
        for label in labels {
            out.append(UInt8(label.count))
            for byte in label { out.append(asciiLower(byte)) }
        }
        out.append(0)
        return out
    }

    /// The uncompressed wire form as written.
    public var wire: [UInt8] {
        var out: [UInt8] = []
        for label in labels {
            out.append(UInt8(label.count))
            out += label
        }
        out.append(0)
        return out
    }

    public func appending(_ other: DNSName) -> DNSName? { DNSName(labels: labels + other.labels) }

    /// True when `self` is `domain` or a name under it.
    public func isSubdomain(of domain: DNSName) -> Bool {
        guard labels.count >= domain.labels.count else { return false }
        return DNSName(uncheckedLabels: Array(labels.suffix(domain.labels.count))) == domain
    }

    /// Dotted text with a trailing dot; bytes outside printable ASCII and dots inside labels
    /// are escaped as \DDD, as dig prints them.
    public var description: String {
        if labels.isEmpty { return "." }
        var text = ""
        for label in labels {
            for byte in label {
                if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "\\") || byte < 0x21 || byte > 0x7E {
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                } else {
                    text.unicodeScalars.append(Unicode.Scalar(byte))
                }
            }
            text += "."
        }
        return text
    }

    public static func == (a: DNSName, b: DNSName) -> Bool { a.wireKey == b.wireKey }
    public func hash(into hasher: inout Hasher) { hasher.combine(wireKey) }
}

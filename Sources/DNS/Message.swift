public import Addressing

/// A question: name, type, class.
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: RecordType
    public var rclass: UInt16

    public init(name: DNSName, type: RecordType, rclass: UInt16 = dnsClassIN) {
        self.name = name
        self.type = type
        self.rclass = rclass
    }
}

/// Record data: the types berth-dns reads or writes, and everything else as bytes.
public enum RecordData: Hashable, Sendable {
    case a(IPv4Address)
    case aaaa(IPv6Address)
    case ptr(DNSName)
    case cname(DNSName)
    case ns(DNSName)
    case soa(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
    case raw([UInt8])
}

/// A resource record. For OPT (EDNS0), `rclass` is the sender's UDP payload size and `ttl`
/// holds the extended rcode, version and flags (the DO bit is 0x8000).
public struct DNSRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: RecordType
    public var rclass: UInt16
    public var ttl: UInt32
    public var data: RecordData

    public init(name: DNSName, type: RecordType, rclass: UInt16 = dnsClassIN, ttl: UInt32, data: RecordData) {
        self.name = name
        self.type = type
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }

    /// An OPT pseudo-record advertising `udpSize`.
    public static func opt(udpSize: UInt16, dnssecOK: Bool = false) -> DNSRecord {
        DNSRecord(name: .root, type: .opt, rclass: udpSize, ttl: dnssecOK ? 0x8000 : 0, data: .raw([]))
    }
}

/// A whole DNS message, for everything but the server's fast path: tests, the forwarder's
/// checks, error replies, the fake upstream in the tests.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    /// The 16 flag bits of the header (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    public var flags: UInt16
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    public var additionals: [DNSRecord]

    public init(
        id: UInt16, flags: UInt16 = 0x0100, questions: [DNSQuestion] = [], answers: [DNSRecord] = [],
        authorities: [DNSRecord] = [], additionals: [DNSRecord] = []
    ) {
        self.id = id
        self.flags = flags
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }

    /// A query with recursion desired.
    public static func query(id: UInt16, name: DNSName, type: RecordType, edns: UInt16? = nil) -> DNSMessage {
        DNSMessage(
            id: id, flags: 0x0100, questions: [DNSQuestion(name: name, type: type)],
            additionals: edns.map { [.opt(udpSize: $0)] } ?? [])
    }

    public var isResponse: Bool {
        get { flags & 0x8000 != 0 }
        set { flags = newValue ? flags | 0x8000 : flags & ~0x8000 }
    }
    public var opcode: UInt8 { UInt8(flags >> 11 & 0xF) }
    public var isAuthoritative: Bool { flags & 0x0400 != 0 }
    public var isTruncated: Bool {
        get { flags & 0x0200 != 0 }
        set { flags = newValue ? flags | 0x0200 : flags & ~0x0200 }
    }
    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var recursionAvailable: Bool { flags & 0x0080 != 0 }
    public var rcode: ResponseCode {
        get { ResponseCode(rawValue: UInt8(flags & 0xF)) }
        set { flags = flags & ~0xF | UInt16(newValue.rawValue & 0xF) }
    }

    /// The OPT record, if the message has one.
    public var opt: DNSRecord? { additionals.first(where: { $0.type == .opt }) }

    // MARK: Parsing

    public init(parsing bytes: [UInt8]) throws(DNSParseError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(DNSParseError) -> DNSMessage in try DNSMessage(parsing: raw) }
        }
        self = try result.get()
    }

    /// Reads a message; any inconsistency (counts larger than the records present, bad names,
    /// record data that overruns its length) is an error.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(DNSParseError) {
        guard bytes.count >= DNSLimits.headerSize else { throw DNSParseError("shorter than a header", at: 0) }
        id = readUInt16(bytes, 0)
        flags = readUInt16(bytes, 2)
        let counts = (1...4).map { Int(readUInt16(bytes, 2 * $0 + 2)) }
        // Each question takes at least 5 bytes and each record 11: reject impossible counts
        // before allocating anything for them.
        guard 12 + counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 <= bytes.count else {
            throw DNSParseError("record counts exceed the message size", at: 4)
        }
        var offset = DNSLimits.headerSize
        questions = []
        for _ in 0..<counts[0] {
            let (name, end) = try DNSName.read(bytes, at: offset)
            guard end + 4 <= bytes.count else { throw DNSParseError("question runs past the end", at: end) }
            questions.append(DNSQuestion(name: name, type: RecordType(readUInt16(bytes, end)), rclass: readUInt16(bytes, end + 2)))
            offset = end + 4
        }
        answers = try Self.readRecords(bytes, count: counts[1], offset: &offset)
        authorities = try Self.readRecords(bytes, count: counts[2], offset: &offset)
        additionals = try Self.readRecords(bytes, count: counts[3], offset: &offset)
    }

    private static func readRecords(_ bytes: UnsafeRawBufferPointer, count: Int, offset: inout Int) throws(DNSParseError) -> [DNSRecord] {
        var records: [DNSRecord] = []
        for _ in 0..<count {
            let (name, end) = try DNSName.read(bytes, at: offset)
            guard end + 10 <= bytes.count else { throw DNSParseError("record header runs past the end", at: end) }
            let type = RecordType(readUInt16(bytes, end))
            let rclass = readUInt16(bytes, end + 2)
            let ttl = readUInt32(bytes, end + 4)
            let length = Int(readUInt16(bytes, end + 8))
            let start = end + 10
            guard start + length <= bytes.count else { throw DNSParseError("record data runs past the end", at: start) }
            let data = try readData(bytes, type: type, start: start, length: length)
            records.append(DNSRecord(name: name, type: type, rclass: rclass, ttl: ttl, data: data))
            offset = start + length
        }
        return records
    }

    private static func readData(_ bytes: UnsafeRawBufferPointer, type: RecordType, start: Int, length: Int) throws(DNSParseError) -> RecordData {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])
        func name(at offset: Int) throws(DNSParseError) -> (DNSName, Int) {
            // Names inside data may point anywhere earlier in the message, but must end inside the data.
            let (name, end) = try DNSName.read(bytes, at: offset)
            guard end <= start + length else { throw DNSParseError("name runs past its record", at: offset) }
            return (name, end)
        }
        switch type {
        case .a where length == 4: return .a(IPv4Address(bytes: slice)!)
        case .aaaa where length == 16: return .aaaa(IPv6Address(bytes: slice)!)
        case .a, .aaaa: throw DNSParseError("address record of \(length) bytes", at: start)
        case .ptr, .cname, .ns:
            let (target, end) = try name(at: start)
            guard end == start + length else { throw DNSParseError("bytes after the name in a \(type) record", at: end) }
            return type == .ptr ? .ptr(target) : type == .cname ? .cname(target) : .ns(target)
        case .soa:
            let (mname, afterM) = try name(at: start)
            let (rname, afterR) = try name(at: afterM)
            guard afterR + 20 == start + length else { throw DNSParseError("SOA record of the wrong size", at: start) }
            return .soa(
                mname: mname, rname: rname, serial: readUInt32(bytes, afterR), refresh: readUInt32(bytes, afterR + 4),
                retry: readUInt32(bytes, afterR + 8), expire: readUInt32(bytes, afterR + 12), minimum: readUInt32(bytes, afterR + 16))
        default:
            return .raw(Array(slice))
        }
    }

    // MARK: Encoding

    /// The message on the wire, names compressed (RFC 1035 4.1.4).
    public func encoded() -> [UInt8] {
        var writer = MessageWriter()
        writer.bytes.appendUInt16(id)
        writer.bytes.appendUInt16(flags)
        for count in [questions.count, answers.count, authorities.count, additionals.count] {
            writer.bytes.appendUInt16(UInt16(truncatingIfNeeded: count))
        }
        for question in questions {
            writer.write(question.name)
            writer.bytes.appendUInt16(question.type.rawValue)
            writer.bytes.appendUInt16(question.rclass)
        }
        for record in answers + authorities + additionals { writer.write(record) }
        return writer.bytes
    }
}

/// Writes names with compression: every suffix written once is reused by later names.
struct MessageWriter {
    var bytes: [UInt8] = []
    private var suffixes: [[UInt8]: Int] = [:]

    mutating func write(_ name: DNSName, compress: Bool = true) {
        let labels = name.labels
        for i in labels.indices {
            let suffix = DNSName(uncheckedLabels: Array(labels[i...])).wireKey
            if compress, let offset = suffixes[suffix] {
                bytes.appendUInt16(0xC000 | UInt16(offset))
                return
            }
            if bytes.count < 0x3FFF { suffixes[suffix] = bytes.count }
            bytes.append(UInt8(labels[i].count))
            bytes += labels[i]
        }
        bytes.append(0)
    }

    mutating func write(_ record: DNSRecord) {
        write(record.name)
        bytes.appendUInt16(record.type.rawValue)
        bytes.appendUInt16(record.rclass)
        bytes.appendUInt32(record.ttl)
        let lengthAt = bytes.count
        bytes.appendUInt16(0)
        switch record.data {
        case .a(let address): bytes += address.bytes
        case .aaaa(let address): bytes += address.bytes
        case .ptr(let name), .cname(let name), .ns(let name): write(name)
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            write(mname)
            write(rname)
            for value in [serial, refresh, retry, expire, minimum] { bytes.appendUInt32(value) }
        case .raw(let data): bytes += data
        }
        let length = bytes.count - lengthAt - 2
        bytes[lengthAt] = UInt8(length >> 8 & 0xFF)
        bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

extension DNSName {
    /// The reverse-lookup name of an address: 4.3.2.1.in-addr.arpa or the nibbles under ip6.arpa.
    public init(reverseOf address: IPAddress) {
        var labels: [[UInt8]] = []
        switch address {
        case .v4(let v4):
            for byte in v4.bytes.reversed() { labels.append(Array(String(byte).utf8)) }
            labels += [Array("in-addr".utf8), Array("arpa".utf8)]
        case .v6(let v6):
            let hex = Array("0123456789abcdef".utf8)
            for byte in v6.bytes.reversed() {
                labels.append([hex[Int(byte & 0xF)]])
                labels.append([hex[Int(byte >> 4)]])
            }
            labels += [Array("ip6".utf8), Array("arpa".utf8)]
        }
        self.init(uncheckedLabels: labels)
    }
}

import BerthSupport

/// Forwarded answers, kept for their TTL. A hit is served with the client's ID and every TTL
/// reduced by the time the answer has spent here.
public struct ResponseCache {
    public struct Key: Hashable, Sendable {
        var name: [UInt8]
        var type: UInt16
        var rclass: UInt16
        /// Which set of upstreams answered: networks with their own resolvers have their own.
        var upstreams: Int
        var edns: Bool
        var dnssecOK: Bool

        public init(name: [UInt8], type: UInt16, rclass: UInt16, upstreams: Int, edns: Bool, dnssecOK: Bool) {
            self.name = name
            self.type = type
            self.rclass = rclass
            self.upstreams = upstreams
            self.edns = edns
            self.dnssecOK = dnssecOK
        }
    }

    struct Entry {
        var response: [UInt8]
        /// Offsets of the TTL fields to age (OPT excluded).
        var ttlOffsets: [Int]
        var stored: UInt64
        var expires: UInt64
    }

    private var entries: [Key: Entry] = [:]
    public let capacity: Int
    /// Longest time anything is kept, whatever its TTL says.
    public static let maximumTTL: UInt32 = 86_400
    /// Negative answers without an SOA are kept this long.
    public static let negativeTTL: UInt32 = 30

    public init(capacity: Int = 10_000) { self.capacity = capacity }

    public var count: Int { entries.count }

    /// Stores a response (NOERROR or NXDOMAIN, not truncated); others are not cached.
    public mutating func store(_ response: [UInt8], for key: Key, now: UInt64? = nil) {
        let now = now ?? monotonicNanoseconds()
        guard capacity > 0, let message = try? DNSMessage(parsing: response), !message.isTruncated,
            message.rcode == .noError || message.rcode == .nameError
        else { return }
        var ttl = UInt32.max
        let negative = message.answers.isEmpty
        for record in message.answers + message.authorities + message.additionals where record.type != .opt {
            ttl = min(ttl, record.ttl)
        }
        if negative {
            // RFC 2308: the SOA's TTL, capped by its minimum field.
            if let soa = message.authorities.first(where: { $0.type == .soa }), case .soa(_, _, _, _, _, _, let minimum) = soa.data {
                ttl = min(soa.ttl, minimum)
            } else {
                ttl = Self.negativeTTL
            }
        }
        if ttl == UInt32.max || ttl == 0 { return }
        ttl = min(ttl, Self.maximumTTL)
        if entries.count >= capacity { evict(now: now) }
        entries[key] = Entry(
            response: response, ttlOffsets: Self.ttlOffsets(response), stored: now,
            expires: now + UInt64(ttl) * 1_000_000_000)
    }

    /// The cached response for `key`, with `id` and aged TTLs; nil when absent or expired.
    public mutating func lookup(_ key: Key, id: UInt16, now: UInt64? = nil) -> [UInt8]? {
        let now = now ?? monotonicNanoseconds()
        guard let entry = entries[key] else { return nil }
        guard entry.expires > now else {
            entries[key] = nil
            return nil
        }
        var response = entry.response
        response[0] = UInt8(id >> 8)
        response[1] = UInt8(id & 0xFF)
        let age = UInt32(min((now - entry.stored) / 1_000_000_000, UInt64(UInt32.max)))
        if age > 0 {
            response.withUnsafeMutableBytes { raw in
                let view = UnsafeRawBufferPointer(raw)
                for offset in entry.ttlOffsets {
                    let ttl = readUInt32(view, offset)
                    writeUInt32(raw, offset, ttl > age ? ttl - age : 0)
                }
            }
        }
        return response
    }

    public mutating func removeAll() { entries.removeAll() }

    private mutating func evict(now: UInt64) {
        entries = entries.filter { $0.value.expires > now }
        while entries.count >= capacity, let victim = entries.keys.first { entries[victim] = nil }
    }

    /// Where the TTLs are in a response (a valid one: it was parsed before).
    static func ttlOffsets(_ response: [UInt8]) -> [Int] {
        response.withUnsafeBytes { bytes -> [Int] in
            var offsets: [Int] = []
            var offset = DNSLimits.headerSize
            let questions = Int(readUInt16(bytes, 4))
            let records = Int(readUInt16(bytes, 6)) + Int(readUInt16(bytes, 8)) + Int(readUInt16(bytes, 10))
            for _ in 0..<questions {
                guard let end = try? walkName(bytes, at: offset, { _, _ in }) else { return offsets }
                offset = end + 4
            }
            for _ in 0..<records {
                guard let end = try? walkName(bytes, at: offset, { _, _ in }), end + 10 <= bytes.count else { return offsets }
                if readUInt16(bytes, end) != RecordType.opt.rawValue { offsets.append(end + 4) }
                offset = end + 10 + Int(readUInt16(bytes, end + 8))
            }
            return offsets
        }
    }
}

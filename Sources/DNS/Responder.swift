public import Addressing

/// What the fast path learned about a query it could not answer itself.
public struct ForwardRequest: Equatable, Sendable {
    /// The question's name, lower-cased wire form.
    public var key: [UInt8]
    public var type: UInt16
    public var rclass: UInt16
    /// Where the question ends: header and question are `query[0..<questionEnd]`.
    public var questionEnd: Int
    /// The client's EDNS payload size (nil: no EDNS).
    public var ednsSize: UInt16?
    public var dnssecOK: Bool
    public var upstreams: [IPAddress]?
}

/// What to do with one query.
public enum Disposition {
    /// Send the first `length` bytes of the output buffer.
    case reply(Int)
    /// Ask upstream.
    case forward(ForwardRequest)
    /// Say nothing (not a query at all, or too broken to answer).
    case drop
}

/// Answers queries from a Zone without allocating: parses the header and question in place,
/// looks the name up, and writes the response into a caller-provided buffer.
public struct Responder {
    /// The UDP payload size berth-dns advertises (the DNS flag day 2020 value).
    public static let advertisedUDPSize: UInt16 = 1232

    private let scratch: UnsafeMutableRawBufferPointer

    public init() {
        scratch = .allocate(byteCount: DNSLimits.maxName + 1, alignment: 8)
    }

    /// Releases the scratch buffer (the owner calls it once).
    public func deallocate() { scratch.deallocate() }

    /// Handles the query in `query`, arriving on `listener` from `client`; `stream` is true for
    /// TCP (no size limit but 64 KiB). The response goes to `out` (at least 512 bytes).
    public func respond(
        to query: UnsafeRawBufferPointer, from client: IPAddress, listener: IPAddress, zone: Zone, stream: Bool,
        into out: UnsafeMutableRawBufferPointer
    ) -> Disposition {
        guard query.count >= DNSLimits.headerSize else { return .drop }
        let flags = readUInt16(query, 2)
        guard flags & 0x8000 == 0 else { return .drop }  // a response: never answer those
        guard let policy = zone.listeners[listener] else { return .drop }
        let opcode = flags >> 11 & 0xF
        guard opcode == 0 else { return headerOnly(query, out, rcode: .notImplemented) }
        guard readUInt16(query, 4) == 1 else { return headerOnly(query, out, rcode: .formatError) }

        // The question, lower-cased into scratch.
        var keyLength = 0
        let scratch = self.scratch
        let nameEnd: Int
        do {
            nameEnd = try walkName(query, at: DNSLimits.headerSize) { start, length in
                scratch[keyLength] = UInt8(length)
                for i in 0..<length { scratch[keyLength + 1 + i] = asciiLower(query[start + i]) }
                keyLength += length + 1
            }
        } catch {
            return headerOnly(query, out, rcode: .formatError)
        }
        scratch[keyLength] = 0
        keyLength += 1
        guard nameEnd + 4 <= query.count else { return headerOnly(query, out, rcode: .formatError) }
        let questionEnd = nameEnd + 4
        let qtype = readUInt16(query, nameEnd)
        let qclass = readUInt16(query, nameEnd + 2)

        // EDNS: find OPT among the records after the question.
        var ednsSize: UInt16? = nil
        var dnssecOK = false
        var offset = questionEnd
        let records = Int(readUInt16(query, 6)) + Int(readUInt16(query, 8)) + Int(readUInt16(query, 10))
        guard records <= (query.count - questionEnd) / 11 else { return headerOnly(query, out, rcode: .formatError) }
        for _ in 0..<records {
            guard let end = try? walkName(query, at: offset, { _, _ in }), end + 10 <= query.count else {
                return headerOnly(query, out, rcode: .formatError)
            }
            let length = Int(readUInt16(query, end + 8))
            guard end + 10 + length <= query.count else { return headerOnly(query, out, rcode: .formatError) }
            if readUInt16(query, end) == RecordType.opt.rawValue {
                guard ednsSize == nil else { return headerOnly(query, out, rcode: .formatError) }
                ednsSize = max(readUInt16(query, end + 2), UInt16(DNSLimits.classicUDPSize))
                let ttl = readUInt32(query, end + 4)
                dnssecOK = ttl & 0x8000 != 0
                if ttl >> 16 & 0xFF != 0 {  // EDNS version we do not speak: BADVERS
                    return badVersion(query, out, questionEnd: questionEnd)
                }
            }
            offset = end + 10 + length
        }
        let limit = stream ? out.count : min(Int(ednsSize ?? UInt16(DNSLimits.classicUDPSize)), out.count)

        let key = UnsafeRawBufferPointer(rebasing: scratch[0..<keyLength])
        let view = zone.views[zone.clientViews[client] ?? policy.view]
        if qclass == dnsClassIN || qclass == 255 {
            if let entry = view.lookup(key) {
                return answer(
                    query, out, questionEnd: questionEnd, entry: entry, type: qtype, edns: ednsSize != nil,
                    dnssecOK: dnssecOK, limit: limit)
            }
            if isUnder(key, view.domains) {
                return answer(
                    query, out, questionEnd: questionEnd, entry: nil, type: qtype, edns: ednsSize != nil,
                    dnssecOK: dnssecOK, limit: limit)
            }
        }
        guard policy.forwards else { return headerOnly(query, out, rcode: .refused, questionEnd: questionEnd) }
        return .forward(
            ForwardRequest(
                key: Array(key), type: qtype, rclass: qclass, questionEnd: questionEnd, ednsSize: ednsSize,
                dnssecOK: dnssecOK, upstreams: zone.clientUpstreams[client] ?? policy.upstreams))
    }

    /// True when `key` is one of `domains` or under one (on a label boundary).
    private func isUnder(_ key: UnsafeRawBufferPointer, _ domains: [[UInt8]]) -> Bool {
        for domain in domains where domain.count <= key.count {
            // Walk label boundaries of key; compare the tail starting at each.
            var position = 0
            while position < key.count {
                let rest = key.count - position
                if rest == domain.count {
                    if domain.withUnsafeBytes({ memcmpEqual($0, UnsafeRawBufferPointer(rebasing: key[position...])) }) { return true }
                    break
                }
                if rest < domain.count { break }
                position += Int(key[position]) + 1
            }
        }
        return false
    }

    /// A local answer (entry nil: NXDOMAIN), authoritative.
    private func answer(
        _ query: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer, questionEnd: Int, entry: ZoneEntry?,
        type: UInt16, edns: Bool, dnssecOK: Bool, limit: Int
    ) -> Disposition {
        var rcode = ResponseCode.noError
        var total = questionEnd + (edns ? 11 : 0)
        var count: UInt16 = 0
        func take(_ bytes: [UInt8], _ n: UInt16) {
            guard n > 0 else { return }
            total += bytes.count
            count += n
        }
        if let entry {
            switch RecordType(type) {
            case .a: take(entry.a, entry.aCount)
            case .aaaa: take(entry.aaaa, entry.aaaaCount)
            case .ptr: take(entry.ptr, entry.ptrCount)
            case .any:
                take(entry.a, entry.aCount)
                take(entry.aaaa, entry.aaaaCount)
                take(entry.ptr, entry.ptrCount)
            default: break
            }
        } else {
            rcode = .nameError
        }
        let truncated = total > limit
        copyHeaderAndQuestion(query, out, questionEnd: questionEnd)
        var flags: UInt16 = 0x8000 | 0x0400 | 0x0080 | (readUInt16(query, 2) & 0x0110) | UInt16(rcode.rawValue)
        if truncated { flags |= 0x0200 }
        writeUInt16(out, 2, flags)
        writeUInt16(out, 4, 1)
        writeUInt16(out, 6, truncated ? 0 : count)
        writeUInt16(out, 8, 0)
        writeUInt16(out, 10, edns ? 1 : 0)
        var position = questionEnd
        if !truncated, let entry {
            func put(_ bytes: [UInt8]) {
                bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(rebasing: out[position..<position + raw.count]).copyMemory(from: raw)
                }
                position += bytes.count
            }
            switch RecordType(type) {
            case .a: put(entry.a)
            case .aaaa: put(entry.aaaa)
            case .ptr: put(entry.ptr)
            case .any:
                put(entry.a)
                put(entry.aaaa)
                put(entry.ptr)
            default: break
            }
        }
        if edns { position = writeOPT(out, at: position, dnssecOK: dnssecOK) }
        return .reply(position)
    }

    private func copyHeaderAndQuestion(_ query: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer, questionEnd: Int) {
        UnsafeMutableRawBufferPointer(rebasing: out[0..<questionEnd]).copyMemory(
            from: UnsafeRawBufferPointer(rebasing: query[0..<questionEnd]))
    }

    /// A response with only a header (and the question, when it could be read).
    private func headerOnly(
        _ query: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer, rcode: ResponseCode, questionEnd: Int? = nil
    ) -> Disposition {
        let end = questionEnd ?? DNSLimits.headerSize
        copyHeaderAndQuestion(query, out, questionEnd: end)
        writeUInt16(out, 2, 0x8000 | 0x0080 | (readUInt16(query, 2) & 0x7910) | UInt16(rcode.rawValue))
        writeUInt16(out, 4, questionEnd == nil ? 0 : 1)
        writeUInt16(out, 6, 0)
        writeUInt16(out, 8, 0)
        writeUInt16(out, 10, 0)
        return .reply(end)
    }

    /// BADVERS (extended rcode 16): rcode 0 in the header, 1 in the OPT's upper byte.
    private func badVersion(_ query: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer, questionEnd: Int) -> Disposition {
        _ = headerOnly(query, out, rcode: .noError, questionEnd: questionEnd)
        writeUInt16(out, 10, 1)
        let end = writeOPT(out, at: questionEnd, dnssecOK: false)
        out[questionEnd + 5] = 1
        return .reply(end)
    }

    private func writeOPT(_ out: UnsafeMutableRawBufferPointer, at position: Int, dnssecOK: Bool) -> Int {
        out[position] = 0
        writeUInt16(out, position + 1, RecordType.opt.rawValue)
        writeUInt16(out, position + 3, Self.advertisedUDPSize)
        writeUInt32(out, position + 5, dnssecOK ? 0x8000 : 0)
        writeUInt16(out, position + 9, 0)
        return position + 11
    }
}

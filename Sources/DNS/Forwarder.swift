import Addressing
import BerthSupport
import CBerth
import Glibc
import Reactor

/// Who asked a forwarded question and how to answer them.
struct ForwardClient {
    enum Kind {
        case datagram(fd: Int32, peer: SocketAddress)
        case stream(connection: Int)
    }
    var kind: Kind
    var id: UInt16
    /// The most the client accepts in one response (UDP: 512 or its EDNS size).
    var maxSize: Int
}

/// Sends questions the zone cannot answer to upstream resolvers, in order, over UDP (and TCP
/// when an answer comes back truncated), and answers every client: with the upstream's
/// answer, or with SERVFAIL once no upstream has answered within the deadline. Never silence.
final class Forwarder {
    struct Pending {
        var client: ForwardClient
        /// The query as sent upstream (our ID in it).
        var query: [UInt8]
        var request: ForwardRequest
        var upstreams: [SocketAddress]
        var index: Int
        var cacheKey: ResponseCache.Key
        var deadline: UInt64
        var timer: EventLoop.TimerID?
        var stream: UpstreamStream?
    }

    private let loop: EventLoop
    private let timeout: Duration
    private let deadline: Duration
    private var pending: [UInt16: Pending] = [:]
    private var sockets: [Int32: Int32] = [:]  // family → socket
    var cache: ResponseCache
    private var groups: [[SocketAddress]: Int] = [:]
    /// Delivers a response to a client.
    var deliver: (ForwardClient, [UInt8]) -> Void = { _, _ in }

    public private(set) var forwardedCount = 0
    public private(set) var failedCount = 0

    init(loop: EventLoop, timeout: Duration, deadline: Duration, cacheSize: Int) {
        self.loop = loop
        self.timeout = timeout
        self.deadline = deadline
        cache = ResponseCache(capacity: cacheSize)
    }

    deinit {
        for (_, fd) in sockets { close(fd) }
    }

    var pendingCount: Int { pending.count }

    func group(_ upstreams: [SocketAddress]) -> Int {
        if let existing = groups[upstreams] { return existing }
        groups[upstreams] = groups.count
        return groups.count - 1
    }

    /// Answers from the cache or sends the query upstream.
    func forward(_ query: UnsafeRawBufferPointer, request: ForwardRequest, client: ForwardClient, upstreams: [SocketAddress]) {
        let key = ResponseCache.Key(
            name: request.key, type: request.type, rclass: request.rclass, upstreams: group(upstreams),
            edns: request.ednsSize != nil, dnssecOK: request.dnssecOK)
        if let cached = cache.lookup(key, id: client.id) {
            deliver(client, fit(cached, client: client, questionEnd: request.questionEnd))
            return
        }
        guard !upstreams.isEmpty, let id = freeID() else {
            failedCount += 1
            deliver(client, Self.failure(query, questionEnd: request.questionEnd, rcode: .serverFailure))
            return
        }
        var bytes = Array(query)
        bytes[0] = UInt8(id >> 8)
        bytes[1] = UInt8(id & 0xFF)
        forwardedCount += 1
        pending[id] = Pending(
            client: client, query: bytes, request: request, upstreams: upstreams, index: 0, cacheKey: key,
            deadline: monotonicNanoseconds() + deadline.nanoseconds, timer: nil, stream: nil)
        attempt(id)
    }

    private func freeID() -> UInt16? {
        guard pending.count < 60_000 else { return nil }
        while true {
            let id = UInt16.random(in: 0...UInt16.max)
            if pending[id] == nil { return id }
        }
    }

    /// Sends to the current upstream, or fails the query when none is left or time is up.
    private func attempt(_ id: UInt16) {
        guard var entry = pending[id] else { return }
        let now = monotonicNanoseconds()
        guard entry.index < entry.upstreams.count, now < entry.deadline else {
            fail(id)
            return
        }
        let upstream = entry.upstreams[entry.index]
        if let fd = socket(for: upstream.family) {
            entry.query.withUnsafeBytes { raw in
                _ = upstream.withSockaddr { sendto(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, $1) }
            }
        }
        let wait = min(timeout.nanoseconds, entry.deadline - now)
        entry.timer = loop.schedule(after: .nanoseconds(Int64(wait))) { [weak self] in self?.timedOut(id, index: entry.index) }
        pending[id] = entry
    }

    private func timedOut(_ id: UInt16, index: Int) {
        guard var entry = pending[id], entry.index == index else { return }
        entry.stream?.close()
        entry.stream = nil
        entry.index += 1
        entry.timer = nil
        pending[id] = entry
        attempt(id)
    }

    private func fail(_ id: UInt16) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        if let timer = entry.timer { loop.cancel(timer) }
        entry.stream?.close()
        failedCount += 1
        var reply = Self.failure(entry.query, questionEnd: entry.request.questionEnd, rcode: .serverFailure)
        reply[0] = UInt8(entry.client.id >> 8)
        reply[1] = UInt8(entry.client.id & 0xFF)
        deliver(entry.client, reply)
    }

    /// A header-and-question response with `rcode`.
    static func failure(_ query: some Collection<UInt8>, questionEnd: Int, rcode: ResponseCode) -> [UInt8] {
        var reply = Array(query.prefix(questionEnd))
        let flags = UInt16(reply[2]) << 8 | UInt16(reply[3])
        let newFlags = 0x8000 | 0x0080 | (flags & 0x7910) | UInt16(rcode.rawValue)
        reply[2] = UInt8(newFlags >> 8)
        reply[3] = UInt8(newFlags & 0xFF)
        for i in 4..<12 { reply[i] = 0 }
        reply[5] = 1
        return reply
    }

    /// The response as the client may receive it: truncated (TC, question only) when too big.
    private func fit(_ response: [UInt8], client: ForwardClient, questionEnd: Int) -> [UInt8] {
        guard response.count > client.maxSize, response.count >= questionEnd else { return response }
        var reply = Array(response.prefix(questionEnd))
        reply[2] |= 0x02
        for i in 6..<12 { reply[i] = 0 }
        return reply
    }

    private func socket(for family: Int32) -> Int32? {
        if let fd = sockets[family] { return fd }
        guard let fd = try? Sockets.make(family: family, type: Int32(SOCK_DGRAM.rawValue)) else { return nil }
        do {
            try loop.register(fd, for: .readable) { [weak self] _ in self?.receive(fd) }
        } catch {
            close(fd)
            return nil
        }
        sockets[family] = fd
        return fd
    }

    private func receive(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65535)
        var storage = sockaddr_storage()
        for _ in 0..<64 {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &length) }
                }
            }
            if n < 0 { return }
            guard let from = withUnsafePointer(to: &storage, { SocketAddress($0) }) else { continue }
            handle(Array(buffer[0..<n]), from: from, stream: false)
        }
    }

    /// An upstream's answer: matched to its query by ID, sender and question.
    private func handle(_ response: [UInt8], from: SocketAddress, stream: Bool) {
        guard response.count >= DNSLimits.headerSize else { return }
        let id = UInt16(response[0]) << 8 | UInt16(response[1])
        guard var entry = pending[id], entry.upstreams.contains(from), response[2] & 0x80 != 0 else { return }
        guard Self.sameQuestion(response, entry.query, questionEnd: entry.request.questionEnd) else { return }
        let flags = UInt16(response[2]) << 8 | UInt16(response[3])
        let rcode = ResponseCode(rawValue: UInt8(flags & 0xF))
        if flags & 0x0200 != 0 && !stream {
            // Truncated: ask the same upstream over TCP.
            if let timer = entry.timer { loop.cancel(timer) }
            entry.stream?.close()
            entry.stream = UpstreamStream(loop: loop, upstream: from, query: entry.query) { [weak self] answer in
                guard let self else { return }
                if let answer { self.handle(answer, from: from, stream: true) } else { self.timedOut(id, index: entry.index) }
            }
            let index = entry.index
            let wait = min(timeout.nanoseconds, max(entry.deadline, monotonicNanoseconds() + 1) - monotonicNanoseconds())
            entry.timer = loop.schedule(after: .nanoseconds(Int64(wait))) { [weak self] in self?.timedOut(id, index: index) }
            pending[id] = entry
            return
        }
        if (rcode == .serverFailure || rcode == .refused || rcode == .notImplemented) && entry.index + 1 < entry.upstreams.count {
            // This upstream cannot help; the next one may.
            if let timer = entry.timer { loop.cancel(timer) }
            timedOut(id, index: entry.index)
            return
        }
        pending[id] = nil
        if let timer = entry.timer { loop.cancel(timer) }
        entry.stream?.close()
        var answer = response
        cache.store(answer, for: entry.cacheKey)
        answer[0] = UInt8(entry.client.id >> 8)
        answer[1] = UInt8(entry.client.id & 0xFF)
        deliver(entry.client, fit(answer, client: entry.client, questionEnd: entry.request.questionEnd))
    }

    static func sameQuestion(_ response: [UInt8], _ query: [UInt8], questionEnd: Int) -> Bool {
        guard response.count >= questionEnd, response[4] == 0, response[5] == 1 else { return false }
        for i in 12..<questionEnd where asciiLower(response[i]) != asciiLower(query[i]) { return false }
        return true
    }
}

/// One query to an upstream over TCP: connect, send with its length prefix, read one answer.
final class UpstreamStream {
    private let loop: EventLoop
    private var fd: Int32 = -1
    private var outbox: [UInt8]
    private var inbox: [UInt8] = []
    private var done: ((([UInt8])?) -> Void)?

    init(loop: EventLoop, upstream: SocketAddress, query: [UInt8], done: @escaping ([UInt8]?) -> Void) {
        self.loop = loop
        outbox = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
        self.done = done
        // Failures are reported from the loop, never from inside the caller's own call.
        let failLater = { _ = loop.schedule(after: .zero) { [weak self] in self?.finish(nil) } }
        guard let fd = try? Sockets.make(family: upstream.family, type: Int32(SOCK_STREAM.rawValue)) else {
            failLater()
            return
        }
        self.fd = fd
        let rc = upstream.withSockaddr { connect(fd, $0, $1) }
        guard rc == 0 || errno == EINPROGRESS else {
            failLater()
            return
        }
        do {
            try loop.register(fd, for: [.writable, .readable]) { [weak self] events in self?.ready(events) }
        } catch {
            failLater()
        }
    }

    private func ready(_ events: EventLoop.Events) {
        if events.contains(.error) {
            finish(nil)
            return
        }
        if !outbox.isEmpty && events.contains(.writable) {
            let n = outbox.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno != EAGAIN { finish(nil) }
                return
            }
            outbox.removeFirst(n)
            if outbox.isEmpty { try? loop.modify(fd, for: .readable) }
        }
        if events.contains(.readable) || events.contains(.hangup) {
            var buffer = [UInt8](repeating: 0, count: 16384)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 || (n < 0 && errno != EAGAIN) {
                finish(nil)
                return
            }
            if n > 0 { inbox += buffer[0..<n] }
            if inbox.count >= 2 {
                let length = Int(inbox[0]) << 8 | Int(inbox[1])
                if inbox.count >= 2 + length { finish(Array(inbox[2..<2 + length])) }
            }
        }
    }

    private func finish(_ answer: [UInt8]?) {
        let callback = done
        close()
        callback?(answer)
    }

    func close() {
        done = nil
        if fd >= 0 {
            loop.unregister(fd)
            Glibc.close(fd)
            fd = -1
        }
    }
}

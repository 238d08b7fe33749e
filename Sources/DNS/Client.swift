public import Addressing
import BerthSupport
import CBerth
import Glibc

/// A minimal stub resolver: one question to one server over UDP (or TCP), waiting at most
/// `timeout`. For dnsname's CHECK and for tests.
public enum DNSClient {
    public struct Timeout: Error, CustomStringConvertible {
        public var description: String { "no answer in time" }
    }

    /// Sends `query` and returns the first response whose ID matches.
    public static func exchange(
        _ query: DNSMessage, server: IPAddress, port: UInt16 = 53, source: IPAddress? = nil, timeout: Duration = .seconds(2),
        tcp: Bool = false
    ) throws -> DNSMessage {
        let bytes = query.encoded()
        let response = try exchange(bytes, server: server, port: port, source: source, timeout: timeout, tcp: tcp)
        return try DNSMessage(parsing: response)
    }

    /// Raw bytes in, raw bytes out (the response's ID must match the query's).
    public static func exchange(
        _ bytes: [UInt8], server: IPAddress, port: UInt16 = 53, source: IPAddress? = nil, timeout: Duration = .seconds(2),
        tcp: Bool = false
    ) throws -> [UInt8] {
        let address = SocketAddress(server, port: port)
        let fd = try Sockets.make(family: address.family, type: Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue))
        defer { close(fd) }
        let deadline = monotonicNanoseconds() + timeout.nanoseconds
        if let source {
            // Ask as that address (a container's, in tests).
            Sockets.setOption(fd, Int32(IPPROTO_IP), berth_ip_freebind(), 1)
            let rc = SocketAddress(source, port: 0).withSockaddr { bind(fd, $0, $1) }
            if rc != 0 { throw SystemError.current("bind", object: source.description) }
        }
        let rc = address.withSockaddr { connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS { throw SystemError.current("connect", object: address.description) }
        if tcp {
            try wait(fd, for: Int16(POLLOUT), until: deadline)
            let framed = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
            let sent = framed.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == framed.count else { throw SystemError.current("send", object: address.description) }
            var inbox: [UInt8] = []
            while true {
                if inbox.count >= 2 {
                    let length = Int(inbox[0]) << 8 | Int(inbox[1])
                    if inbox.count >= 2 + length { return Array(inbox[2..<2 + length]) }
                }
                try wait(fd, for: Int16(POLLIN), until: deadline)
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { throw SystemError("recv", object: address.description, errno: ECONNRESET) }
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw SystemError.current("recv", object: address.description)
                }
                inbox += chunk[0..<n]
            }
        }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        while true {
            try wait(fd, for: Int16(POLLIN), until: deadline)
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw SystemError.current("recv", object: address.description)
            }
            if n >= 2 && buffer[0] == bytes[0] && buffer[1] == bytes[1] { return Array(buffer[0..<n]) }
        }
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: UInt64) throws {
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { throw Timeout() }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&entry, 1, Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw SystemError.current("poll") }
        }
    }
}

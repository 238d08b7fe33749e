import BerthSupport
import CBerth
import Glibc

/// Socket calls the proxy makes, with errors worded the way docker-proxy (Go) words them, so
/// that dockerd's "Error starting userland proxy: ..." reads the same.
enum Sockets {
    /// A bound, listening (TCP) or bound (UDP) non-blocking socket for `mapping.host`. IPv6
    /// sockets are IPv6-only: `::` never takes IPv4 traffic, as with docker-proxy's "tcp6".
    /// `reusePort` lets each of several event loops bind its own socket (SO_REUSEPORT).
    static func listen(_ mapping: Mapping, reusePort: Bool = false) throws(ProxyError) -> Int32 {
        let host = mapping.host
        let network = "\(mapping.proto.rawValue)\(host.ip.isIPv4 ? "4" : "6")"
        func failure(_ step: String) -> ProxyError {
            ProxyError("listen \(network) \(host): \(step): \(goErrorText(errno))")
        }
        let type = mapping.proto == .tcp ? SOCK_STREAM : SOCK_DGRAM
        let fd = socket(host.family, Int32(type.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket") }
        var one: Int32 = 1
        if mapping.proto == .tcp {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if reusePort {
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if host.ip.isIPv6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = host.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = failure("bind")
            close(fd)
            throw error
        }
        if mapping.proto == .tcp && Glibc.listen(fd, 4096) != 0 {
            let error = failure("listen")
            close(fd)
            throw error
        }
        return fd
    }

    /// Checks that an inherited descriptor (-use-listen-fd) is a socket of the mapping's kind,
    /// makes it non-blocking, and listens on it if it is a TCP socket not yet listening.
    static func adopt(_ fd: Int32, for mapping: Mapping) throws(ProxyError) {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
            throw ProxyError("-use-listen-fd: fd \(fd) is not a socket: \(goErrorText(errno))")
        }
        let wanted = Int32((mapping.proto == .tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue)
        guard type == wanted else { throw ProxyError("-use-listen-fd: fd \(fd) is not a \(mapping.proto.rawValue) socket") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if mapping.proto == .tcp {
            var listening: Int32 = 0
            length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length)
            if listening == 0 && Glibc.listen(fd, 4096) != 0 {
                throw ProxyError("-use-listen-fd: listen on fd \(fd): \(goErrorText(errno))")
            }
        }
    }

    /// Starts a non-blocking connection (TCP) or connects a datagram socket (UDP) to `address`.
    /// Returns the socket; a TCP connect is usually still in progress.
    /// `synRetries` bounds how long a TCP connect may take (TCP_SYNCNT; see `synRetries(for:)`).
    static func connect(to address: SocketAddress, proto: TransportProtocol, synRetries: Int32 = 0) throws(SystemError) -> Int32 {
        let type = proto == .tcp ? SOCK_STREAM : SOCK_DGRAM
        let fd = socket(address.family, Int32(type.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current("socket") }
        var retries = synRetries
        if proto == .tcp && retries > 0 {
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_SYNCNT, &retries, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let error = SystemError.current("connect", object: "\(address)")
            close(fd)
            throw error
        }
        if proto == .tcp {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }

    /// SYN retransmissions that give up after about `timeout`: the kernel waits 1, 2, 4, ... s
    /// between them, so n retries give up after 2^(n+1) - 1 s (1 to 127 s). A timer of our own
    /// per connection would cost a heap entry for each of thousands of connections a second.
    static func synRetries(for timeout: Duration) -> Int32 {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        var n: Int32 = 1
        while n < 6 && Double((1 << (n + 1)) - 1) < seconds { n += 1 }
        return n
    }

    /// The pending error of a socket (SO_ERROR), 0 if none.
    static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    /// Closes with a reset (SO_LINGER 0) instead of an orderly FIN.
    static func closeWithReset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }
}

/// strerror text in lower case, as Go prints errno values ("address already in use").
func goErrorText(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    guard let first = text.first else { return text }
    return first.lowercased() + text.dropFirst()
}

/// Empty pipes for splice, shared by all connections: a direction holds one only while bytes
/// are in flight, so an idle connection costs its two sockets and nothing else.
final class PipePool {
    struct Pipe {
        let read: Int32
        let write: Int32
        func close() {
            Glibc.close(read)
            Glibc.close(write)
        }
    }

    /// Bytes one pipe holds (F_SETPIPE_SZ); the kernel may keep the default 64 KiB.
    static let capacity: Int32 = 1 << 18
    private var free: [Pipe] = []
    private let keep: Int

    init(keep: Int = 64) { self.keep = keep }

    deinit { free.forEach { $0.close() } }

    func take() throws(SystemError) -> Pipe {
        if let pipe = free.popLast() { return pipe }
        var fds: [Int32] = [0, 0]
        guard berth_pipe_nonblocking(&fds, PipePool.capacity) == 0 else { throw SystemError.current("pipe2") }
        return Pipe(read: fds[0], write: fds[1])
    }

    /// Returns an empty pipe for reuse (a pipe that may hold bytes must be closed instead).
    func give(_ pipe: Pipe) {
        if free.count < keep { free.append(pipe) } else { pipe.close() }
    }
}

/// Logs at most once per `interval`, counting what it held back.
struct RateLimitedLog {
    let interval: UInt64
    private var last: UInt64 = 0
    private var suppressed = 0

    init(every interval: Duration) { self.interval = interval.nanoseconds }

    mutating func callAsFunction(_ level: Log.Level, _ message: @autoclosure () -> String) {
        let now = monotonicNanoseconds()
        if last != 0 && now - last < interval {
            suppressed += 1
            return
        }
        last = now
        let note = suppressed > 0 ? " (\(suppressed) similar messages suppressed)" : ""
        suppressed = 0
        switch level {
        case .debug: Log.debug(message() + note)
        case .info: Log.info(message() + note)
        case .warning: Log.warning(message() + note)
        case .error: Log.error(message() + note)
        }
    }
}

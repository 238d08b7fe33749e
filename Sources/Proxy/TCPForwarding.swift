import BerthSupport
import CBerth
import Glibc
import Reactor

/// A TCP listener for one mapping: accepts clients and hands each to a `TCPConnection`.
final class TCPListener {
    let mapping: Mapping
    let fd: Int32
    private unowned let server: ProxyServer
    private(set) var paused = false

    init(mapping: Mapping, fd: Int32, server: ProxyServer) throws {
        self.mapping = mapping
        self.fd = fd
        self.server = server
        try server.loop.register(fd, for: .readable) { [unowned self] _ in self.acceptClients() }
    }

    /// Stops listening; connections already accepted go on.
    func close() {
        server.loop.unregister(fd)
        Glibc.close(fd)
    }

    /// Stops or resumes watching for new clients (they wait in the kernel's backlog meanwhile).
    func setPaused(_ pause: Bool) {
        guard pause != paused else { return }
        paused = pause
        try? server.loop.modify(fd, for: pause ? [] : .readable)
    }

    private func acceptClients() {
        // A bounded batch per wake-up keeps one busy port from starving the others.
        for _ in 0..<64 {
            guard server.admitConnection() else { return }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { berth_accept(fd, $0, &length) }
            }
            if client < 0 {
                switch errno {
                case EAGAIN: return
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: the client stays in the backlog. Pause
                    // instead of retrying at once, which is what spins other proxies at 100% CPU.
                    server.resourcesExhausted(errno, on: mapping)
                    return
                default:
                    server.logAcceptError(errno, on: mapping)
                    return
                }
            }
            let peer = withUnsafeBytes(of: &storage) { SocketAddress(storage: $0.baseAddress!) }
            TCPConnection.start(client: client, peer: peer, mapping: mapping, server: server)
        }
    }
}

/// One proxied TCP connection: two sockets and, per direction, a pipe that splice(2) moves the
/// bytes through without copying them into this process. A direction borrows a pipe from the
/// server's pool only while bytes are in flight. End of stream in one direction becomes
/// shutdown(SHUT_WR) on the other side (half-close); an error on either side resets both.
final class TCPConnection {
    private final class Direction {
        let from: Int32
        let to: Int32
        var pipe: PipePool.Pipe?
        /// Bytes in the pipe not yet written to `to`.
        var inFlight = 0
        /// `from` reached end of stream.
        var ended = false
        /// Ended and everything written: `to` has been shut down for writing.
        var done = false
        init(from: Int32, to: Int32) {
            self.from = from
            self.to = to
        }
    }

    private let client: Int32
    private let server: Int32
    private let peer: SocketAddress?
    private let mapping: Mapping
    private unowned let proxy: ProxyServer
    private let upstream: Direction  // client → container
    private let downstream: Direction  // container → client
    private var connected = false
    private var closed = false
    private var resumeScheduled = false

    /// Splices per direction and wake-up before yielding to other connections.
    private static let budget = 16

    static func start(client: Int32, peer: SocketAddress?, mapping: Mapping, server: ProxyServer) {
        let backend: Int32
        do throws(SystemError) {
            backend = try Sockets.connect(to: mapping.container, proto: .tcp, synRetries: server.synRetries)
        } catch {
            if [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno) {
                server.resourcesExhausted(error.errno, on: mapping)
            } else {
                server.backendFailed(error.errno, mapping: mapping, peer: peer)
            }
            Sockets.closeWithReset(client)
            return
        }
        let connection = TCPConnection(client: client, backend: backend, peer: peer, mapping: mapping, server: server)
        connection.waitForConnect()
    }

    private init(client: Int32, backend: Int32, peer: SocketAddress?, mapping: Mapping, server: ProxyServer) {
        self.client = client
        self.server = backend
        self.peer = peer
        self.mapping = mapping
        self.proxy = server
        upstream = Direction(from: client, to: backend)
        downstream = Direction(from: backend, to: client)
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        proxy.connectionOpened()
    }

    private func waitForConnect() {
        do {
            // Edge-triggered for the connection's whole life: registered once, never modified.
            // The loop's handlers hold the connection until close() unregisters them.
            try proxy.loop.register(server, for: [.readable, .writable, .peerClosed], edge: true) { events in
                self.serverEvent(events)
            }
        } catch {
            Log.error("register: \(error)")
            Sockets.closeWithReset(server)
            Sockets.closeWithReset(client)
            proxy.connectionClosed()
            closed = true
            return
        }
    }

    private func serverEvent(_ events: EventLoop.Events) {
        if !connected {
            if events.contains(.error) || events.contains(.hangup) {
                proxy.backendFailed(Sockets.pendingError(server), mapping: mapping, peer: peer)
                abort()
                return
            }
            guard events.contains(.writable) else { return }
            connected = true
            do {
                try proxy.loop.register(client, for: [.readable, .writable, .peerClosed], edge: true) { events in
                    self.clientEvent(events)
                }
            } catch {
                Log.error("register: \(error)")
                abort()
                return
            }
            // The client has usually sent its request by now; the container rarely speaks first.
            pump(upstream)
            if events.contains(.readable) { pump(downstream) }
            finishIfDone()
            return
        }
        if events.contains(.error) || events.contains(.hangup) { pumpBoth(); return }
        if events.contains(.readable) || events.contains(.peerClosed) { pump(downstream) }
        // Edge-triggered epoll reports EPOLLOUT with every wake-up; it matters only to a
        // direction whose pipe holds bytes the socket would not take.
        if !closed && events.contains(.writable) && upstream.inFlight > 0 { pump(upstream) }
        finishIfDone()
    }

    private func clientEvent(_ events: EventLoop.Events) {
        if events.contains(.error) || events.contains(.hangup) { pumpBoth(); return }
        if events.contains(.readable) || events.contains(.peerClosed) { pump(upstream) }
        if !closed && events.contains(.writable) && downstream.inFlight > 0 { pump(downstream) }
        finishIfDone()
    }

    private func pumpBoth() {
        pump(upstream)
        if !closed { pump(downstream) }
        finishIfDone()
    }

    private func finishIfDone() {
        if !closed && upstream.done && downstream.done { close(reset: false) }
    }

    /// Moves bytes from `d.from` to `d.to` until one side would block, the stream ends, or the
    /// budget is spent (then it resumes after other ready descriptors had their turn).
    private func pump(_ d: Direction) {
        guard !closed, !d.done else { return }
        for _ in 0..<TCPConnection.budget {
            if d.inFlight > 0, let pipe = d.pipe {
                let n = berth_splice(pipe.read, d.to, d.inFlight)
                if n < 0 {
                    if errno == EAGAIN { return }  // `to` is full: its EPOLLOUT edge resumes us
                    if errno == EINTR { continue }
                    abort(writing: d)
                    return
                }
                d.inFlight -= n
                if d.inFlight > 0 { continue }
            }
            if d.inFlight == 0, let pipe = d.pipe {
                proxy.pipes.give(pipe)
                d.pipe = nil
            }
            if d.ended {
                shutdown(d.to, Int32(SHUT_WR))
                d.done = true
                return
            }
            // Only an empty pipe is refilled, so a slow reader holds back a fast writer.
            let pipe: PipePool.Pipe
            do throws(SystemError) {
                if let held = d.pipe { pipe = held } else { pipe = try proxy.pipes.take() }
            } catch {
                // Out of descriptors: keep the connection and try again shortly.
                proxy.resourcesExhausted(error.errno, on: mapping)
                scheduleResume(after: .milliseconds(50))
                return
            }
            d.pipe = pipe
            let n = berth_splice(d.from, pipe.write, Int(PipePool.capacity))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    // Nothing to read: the next EPOLLIN edge resumes us. An idle direction
                    // holds no pipe.
                    proxy.pipes.give(pipe)
                    d.pipe = nil
                    return
                }
                abort(reading: d)
                return
            }
            if n == 0 { d.ended = true } else { d.inFlight = n }
        }
        scheduleResume()
    }

    private func scheduleResume(after delay: Duration = .zero) {
        guard !resumeScheduled else { return }
        resumeScheduled = true
        proxy.loop.schedule(after: delay) { [weak self] in
            guard let self else { return }
            self.resumeScheduled = false
            self.pumpBoth()
        }
    }

    /// Resets both sides (an error on one, or the container unreachable).
    private func abort() { close(reset: true) }

    private func abort(reading d: Direction) {
        let code = errno
        Log.debug("\(describe(d, reading: true)): \(errnoDescription(code)); resetting both sides")
        abort()
    }

    private func abort(writing d: Direction) {
        let code = errno
        Log.debug("\(describe(d, reading: false)): \(errnoDescription(code)); resetting both sides")
        abort()
    }

    private func describe(_ d: Direction, reading: Bool) -> String {
        let side = (d === upstream) == reading ? "client \(peer.map { "\($0)" } ?? "?")" : "container \(mapping.container)"
        return "\(mapping): \(reading ? "reading from" : "writing to") \(side)"
    }

    private func close(reset: Bool) {
        guard !closed else { return }
        closed = true
        // Closing removes the sockets from epoll; only the handlers need to go.
        proxy.loop.forget(server)
        if connected { proxy.loop.forget(client) }
        for d in [upstream, downstream] {
            guard let pipe = d.pipe else { continue }
            if d.inFlight == 0 { proxy.pipes.give(pipe) } else { pipe.close() }
        }
        upstream.pipe = nil
        downstream.pipe = nil
        if reset {
            Sockets.closeWithReset(client)
            Sockets.closeWithReset(server)
        } else {
            Glibc.close(client)
            Glibc.close(server)
        }
        proxy.connectionClosed()
    }
}

import BerthSupport
import Glibc
import Reactor
import Synchronization

/// berth-proxy's engine: listeners for every mapping, the connections and flows they open, the
/// limits, SIGHUP reload and SIGTERM/SIGINT drain, all on one event loop on one thread. With
/// --threads N, `ProxyGroup` runs N of them, each with its share of the limits.
final class ProxyServer {
    let options: ProxyOptions
    /// This server's place among the group's (0 logs the start-up summary and takes signals).
    let index: Int
    let reusePort: Bool
    let maxFlows: Int
    /// Commands from the thread that handles signals.
    let mailbox: Mailbox
    let loop: EventLoop
    let pipes = PipePool()
    /// One receive buffer for every UDP datagram (the loop is single-threaded).
    let datagramBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

    private(set) var maxConnections: Int
    /// TCP_SYNCNT for connections to containers (--connect-timeout).
    let synRetries: Int32
    private(set) var activeConnections = 0
    private(set) var activeFlows = 0
    private var tcpListeners: [Mapping: TCPListener] = [:]
    private var udpListeners: [Mapping: UDPListener] = [:]
    private var pausedAtLimit = false
    private var pausedExhausted = false
    private var draining = false
    private var sweepScheduled = false
    private var limitLog = RateLimitedLog(every: .seconds(10))
    private var flowLimitLog = RateLimitedLog(every: .seconds(10))
    private var exhaustedLog = RateLimitedLog(every: .seconds(5))
    private var backendLog = RateLimitedLog(every: .seconds(1))
    private var acceptLog = RateLimitedLog(every: .seconds(5))

    /// `descriptorLimit` is the RLIMIT_NOFILE in force (see `raiseDescriptorLimit`); server
    /// `index` of `count` gets 1/count of the connection and flow limits.
    init(options: ProxyOptions, descriptorLimit: Int, index: Int = 0, count: Int = 1) throws {
        self.options = options
        self.index = index
        reusePort = count > 1
        loop = try EventLoop()
        let total = options.maxConnections ?? ProxyServer.connectionsAllowed(by: descriptorLimit, options: options)
        maxConnections = max(1, total / count)
        maxFlows = max(1, options.maxUDPFlows / count)
        synRetries = options.connectTimeout.map { Sockets.synRetries(for: $0) } ?? 0
        mailbox = try Mailbox()
        try loop.register(mailbox.fd, for: .readable) { [unowned self] _ in
            for command in mailbox.take() {
                switch command {
                case .reload: reload()
                case .drain: drain()
                }
            }
        }
    }

    deinit { datagramBuffer.deallocate() }

    /// With no --max-connections: what the descriptor limit allows. A connection holds two
    /// sockets and, while bytes are in flight, up to two pipes (two descriptors each); a reserve
    /// covers listeners, the pipe pool and the UDP flows.
    static func connectionsAllowed(by limit: Int, options: ProxyOptions) -> Int {
        let hasUDP = options.mappings.contains { $0.proto == .udp } || options.mappingsFile != nil
        let reserve = 256 + (hasUDP ? options.maxUDPFlows : 0)
        return max(16, (limit - reserve) / 3)
    }

    /// The mappings wanted now: the command line's and the file's.
    func wantedMappings() throws(ProxyError) -> [Mapping] {
        var mappings = options.mappings
        if let file = options.mappingsFile {
            let text: String
            do {
                text = try Files.readText(file)
            } catch {
                throw ProxyError("--mappings \(file): \(error)")
            }
            mappings += try parseMappingsFile(text, name: file)
        }
        try checkNoDuplicateHosts(mappings)
        return Array(Set(mappings)).sorted { $0.description < $1.description }
    }

    /// Binds every mapping; on any failure closes what it bound and throws. `listenFD` is the
    /// inherited socket for the first mapping (-use-listen-fd).
    func start(listenFD: Int32? = nil) throws(ProxyError) {
        let mappings = try wantedMappings()
        do {
            for mapping in mappings {
                let fd: Int32
                if let listenFD, mapping == options.mappings.first {
                    try Sockets.adopt(listenFD, for: mapping)
                    fd = listenFD
                } else {
                    fd = try Sockets.listen(mapping, reusePort: reusePort)
                }
                try add(mapping, fd: fd)
            }
        } catch {
            tcpListeners.values.forEach { $0.close() }
            udpListeners.values.forEach { $0.close() }
            tcpListeners = [:]
            udpListeners = [:]
            throw error
        }
        if index == 0 {
            Log.info("serving \(mappings.count) mapping(s) on \(options.threads) thread(s); at most \(maxConnections * options.threads) TCP connections, \(maxFlows * options.threads) UDP flows")
        }
    }

    private func add(_ mapping: Mapping, fd: Int32) throws(ProxyError) {
        do {
            switch mapping.proto {
            case .tcp: tcpListeners[mapping] = try TCPListener(mapping: mapping, fd: fd, server: self)
            case .udp: udpListeners[mapping] = try UDPListener(mapping: mapping, fd: fd, server: self)
            }
        } catch {
            close(fd)
            throw ProxyError("\(mapping): \(error)")
        }
        if pausedAtLimit || pausedExhausted { tcpListeners[mapping]?.setPaused(true) }
        Log.debug("listening: \(mapping)")
    }

    /// Serves until a stop signal (SIGTERM/SIGINT) has drained the connections; SIGHUP reloads.
    func run() throws {
        try loop.run()
    }

    // MARK: Reload

    /// Re-reads the mappings: closes listeners no longer wanted (their established connections
    /// go on), binds new ones, leaves the rest untouched. A file that does not parse changes nothing.
    func reload() {
        guard !draining else { return }
        let wanted: Set<Mapping>
        do {
            wanted = Set(try wantedMappings())
        } catch {
            Log.error("reload: \(error); keeping the current mappings")
            return
        }
        var removed = 0, added = 0, failed = 0
        for (mapping, listener) in tcpListeners where !wanted.contains(mapping) {
            listener.close()
            tcpListeners[mapping] = nil
            removed += 1
        }
        for (mapping, listener) in udpListeners where !wanted.contains(mapping) {
            listener.close()
            udpListeners[mapping] = nil
            removed += 1
        }
        for mapping in wanted.sorted(by: { $0.description < $1.description })
        where tcpListeners[mapping] == nil && udpListeners[mapping] == nil {
            do {
                try add(mapping, fd: try Sockets.listen(mapping, reusePort: reusePort))
                added += 1
            } catch {
                Log.error("reload: \(error)")
                failed += 1
            }
        }
        if index == 0 { Log.info("reloaded: \(added) added, \(removed) removed, \(failed) failed, \(tcpListeners.count + udpListeners.count) serving") }
    }

    // MARK: Drain

    /// Stops accepting and receiving, lets open TCP connections finish for up to
    /// --drain-timeout, then stops the loop. A second signal stops at once.
    func drain() {
        if draining {
            Log.info("second stop signal: exiting now with \(activeConnections) connection(s) open")
            loop.stop()
            return
        }
        draining = true
        tcpListeners.values.forEach { $0.close() }
        udpListeners.values.forEach { $0.close() }
        tcpListeners = [:]
        udpListeners = [:]
        if activeConnections == 0 {
            loop.stop()
            return
        }
        Log.info("stopping: waiting up to \(options.drainTimeout) for \(activeConnections) open connection(s)")
        loop.schedule(after: options.drainTimeout) { [unowned self] in
            Log.warning("drain timeout: closing \(activeConnections) connection(s) still open")
            loop.stop()
        }
    }

    // MARK: Limits and accounting (called by listeners and connections)

    /// Whether a new connection may be accepted; at the limit, pauses accepting instead.
    func admitConnection() -> Bool {
        if activeConnections < maxConnections { return true }
        if !pausedAtLimit {
            pausedAtLimit = true
            let share = options.threads > 1 ? ", \(maxConnections) per thread" : ""
            limitLog(.warning, "connection limit reached: \(activeConnections) open (--max-connections \(maxConnections * options.threads)\(share)); new clients wait in the backlog until one closes")
            updatePause()
        }
        return false
    }

    func connectionOpened() { activeConnections += 1 }

    func connectionClosed() {
        activeConnections -= 1
        if pausedAtLimit && activeConnections < maxConnections {
            pausedAtLimit = false
            updatePause()
        }
        if draining && activeConnections == 0 { loop.stop() }
    }

    /// Out of descriptors or memory: pause accepting for a moment rather than retry in a loop.
    func resourcesExhausted(_ code: Int32, on mapping: Mapping) {
        exhaustedLog(.warning, "\(mapping): \(errnoDescription(code)) with \(activeConnections) connection(s) open; pausing accept for 250 ms (raise the fd limit or lower --max-connections)")
        guard !pausedExhausted else { return }
        pausedExhausted = true
        updatePause()
        loop.schedule(after: .milliseconds(250)) { [unowned self] in
            pausedExhausted = false
            updatePause()
        }
    }

    func logAcceptError(_ code: Int32, on mapping: Mapping) {
        acceptLog(.warning, "\(mapping): accept: \(errnoDescription(code))")
    }

    func backendFailed(_ code: Int32, mapping: Mapping, peer: SocketAddress?) {
        let client = peer.map { " for client \($0)" } ?? ""
        backendLog(.warning, "cannot reach container \(mapping.proto.rawValue)/\(mapping.container)\(client): \(errnoDescription(code))")
    }

    private func updatePause() {
        let pause = pausedAtLimit || pausedExhausted
        tcpListeners.values.forEach { $0.setPaused(pause) }
    }

    func admitFlow() -> Bool {
        if activeFlows < maxFlows { return true }
        flowLimitLog(.warning, "UDP flow limit reached: \(activeFlows) flows (--max-udp-flows \(options.maxUDPFlows)\(options.threads > 1 ? ", \(maxFlows) per thread" : "")); dropping datagrams from new clients until flows expire")
        return false
    }

    func flowOpened() {
        activeFlows += 1
        scheduleSweep()
    }

    func flowClosed() { activeFlows -= 1 }

    /// Expires idle UDP flows; runs only while flows exist.
    private func scheduleSweep() {
        guard !sweepScheduled else { return }
        sweepScheduled = true
        let timeout = options.udpTimeout.nanoseconds
        let interval = Duration.nanoseconds(Int64(min(max(timeout / 4, 100_000_000), 5_000_000_000)))
        loop.schedule(after: interval) { [unowned self] in
            sweepScheduled = false
            let now = monotonicNanoseconds()
            let deadline = now > timeout ? now - timeout : 0
            udpListeners.values.forEach { $0.expire(idleSince: deadline) }
            if activeFlows > 0 { scheduleSweep() }
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limit now in force.
public func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 1024 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { limit = raised }
    }
    return Int(min(limit.rlim_cur, 1 << 30))  // RLIM_INFINITY is the largest value
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

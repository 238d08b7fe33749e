public import Addressing
import BerthSupport
import CBerth
import Glibc
import IPAM
public import Reactor

/// How berth-dns runs.
public struct ServerOptions: Sendable {
    /// One file per network (aardvark-dns's format), the pid file and the lock.
    public var configDirectory: String
    /// Where it listens on each gateway address (aardvark-dns's default is 5533; netavark passes 53).
    public var port: UInt16 = 5533
    /// The host's resolvers, re-read whenever the file changes.
    public var resolvConf: String = "/etc/resolv.conf"
    /// Names under this domain are answered as the bare container names (aardvark-dns's
    /// --filter-search-domain); nil turns it off.
    public var searchDomain: String? = "dns.podman"
    /// How long one upstream gets to answer before the next is asked.
    public var upstreamTimeout: Duration = .milliseconds(1500)
    /// When a forwarded query is answered SERVFAIL at the latest.
    public var queryDeadline: Duration = .milliseconds(4000)
    /// Port upstream resolvers listen on.
    public var upstreamPort: UInt16 = 53
    public var cacheSize = 10_000
    /// Exit once the configuration has no network left.
    public var exitWhenEmpty = true
    public var maxTCPConnections = 512
    public var tcpIdleTimeout: Duration = .seconds(10)

    public init(configDirectory: String) { self.configDirectory = configDirectory }
}

/// The resolver: one process and one thread for every network, on an epoll loop. It answers
/// container names from the Zone, forwards the rest, and follows the configuration directory
/// (inotify and SIGHUP) by building a new Zone and swapping it in: sockets for addresses that
/// stay are kept, so no query is dropped on reload.
public final class DNSServer {
    public let options: ServerOptions
    public let loop: EventLoop
    public private(set) var zone: Zone
    private let responder = Responder()
    private let forwarder: Forwarder
    private var upstreams: [IPAddress] = []

    private struct Listener {
        var udp: Int32
        var tcp: Int32
    }
    private var listeners: [IPAddress: Listener] = [:]
    private var bindRetries: Set<IPAddress> = []
    private var retryTimer: EventLoop.TimerID?

    // UDP batches: up to `batch` datagrams in and out per system call.
    private let batch = 32
    private let slot = 4096
    private let inbound: UnsafeMutablePointer<berth_datagram>
    private let outbound: UnsafeMutablePointer<berth_datagram>
    private let inBuffers: UnsafeMutableRawPointer
    private let outBuffers: UnsafeMutableRawPointer
    private let streamBuffer: UnsafeMutableRawBufferPointer

    private var connections: [Int: StreamClient] = [:]
    private var nextConnection = 1
    private var inotify: Int32 = -1
    private var configWatch: Int32 = -1
    private var resolvWatch: Int32 = -1
    private var reloadTimer: EventLoop.TimerID?
    private var exitLock: FileLock?
    private var stopped = false

    /// Called once the server listens (after the first bind attempt on every address).
    public var onReady: (() -> Void)?
    public private(set) var reloadCount = 0
    public private(set) var answeredCount = 0

    public init(options: ServerOptions) throws {
        self.options = options
        loop = try EventLoop()
        zone = Zone(networks: [], searchDomain: options.searchDomain)
        forwarder = Forwarder(
            loop: loop, timeout: options.upstreamTimeout, deadline: options.queryDeadline, cacheSize: options.cacheSize)
        inbound = .allocate(capacity: batch)
        outbound = .allocate(capacity: batch)
        inBuffers = .allocate(byteCount: batch * slot, alignment: 16)
        outBuffers = .allocate(byteCount: batch * slot, alignment: 16)
        streamBuffer = .allocate(byteCount: 65535, alignment: 16)
        inbound.initialize(repeating: berth_datagram(), count: batch)
        outbound.initialize(repeating: berth_datagram(), count: batch)
        for i in 0..<batch {
            inbound[i].buffer = inBuffers + i * slot
            inbound[i].capacity = UInt32(slot)
            outbound[i].buffer = outBuffers + i * slot
        }
        forwarder.deliver = { [unowned self] client, bytes in self.deliver(client, bytes) }
    }

    deinit {
        for (_, listener) in listeners {
            close(listener.udp)
            close(listener.tcp)
        }
        for (_, connection) in connections { close(connection.fd) }
        if inotify >= 0 { close(inotify) }
        inbound.deallocate()
        outbound.deallocate()
        inBuffers.deallocate()
        outBuffers.deallocate()
        streamBuffer.deallocate()
        responder.deallocate()
    }

    // MARK: Life cycle

    /// Reads the configuration, binds every gateway address, writes the pid file and calls
    /// `onReady`. Returns false when there is nothing to serve (no network file).
    public func start() throws -> Bool {
        try loop.onSignals([SIGHUP, SIGTERM, SIGINT]) { [unowned self] signal in
            if signal == SIGHUP { self.reload(reason: "SIGHUP", rereadResolvConf: true) } else { self.shutdown() }
        }
        watchFiles()
        readResolvConf()
        let (networks, errors) = try ConfigDirectory.load(options.configDirectory)
        for error in errors { Log.warning("configuration: \(error)") }
        zone = Zone(networks: networks, searchDomain: options.searchDomain)
        if !zone.hasContainers && options.exitWhenEmpty { return false }
        syncListeners()
        try Files.writeAtomically(
            "\(options.configDirectory)/\(ConfigDirectory.pidFileName)", Array("\(getpid())".utf8), durable: false)
        scheduleSweep()
        onReady?()
        return true
    }

    /// Runs until no network has a container left, or a SIGTERM/SIGINT.
    public func run() throws {
        try loop.run()
    }

    public func shutdown() {
        guard !stopped else { return }
        stopped = true
        let pidPath = "\(options.configDirectory)/\(ConfigDirectory.pidFileName)"
        if ConfigDirectory.readPID(options.configDirectory) == getpid() { try? Files.remove(pidPath) }
        loop.stop()
    }

    // MARK: Configuration

    /// Builds the new zone from the directory and swaps it in. A file that does not parse
    /// keeps its network's previous state, so a half-written file never removes a network.
    public func reload(reason: String, rereadResolvConf: Bool = false) {
        // Once exiting, the directory lock is held: a reload here would wait for it forever.
        guard !stopped else { return }
        reloadCount += 1
        if rereadResolvConf { readResolvConf() }
        let loaded: (networks: [NetworkFile], errors: [DNSConfigError])
        do {
            loaded = try ConfigDirectory.load(options.configDirectory)
        } catch let error as SystemError where error.errno == ENOENT {
            // The directory itself was removed (netavark does when its last network goes).
            loaded = ([], [])
        } catch {
            Log.error("reload (\(reason)): \(error)")
            return
        }
        var networks = loaded.networks
        for error in loaded.errors {
            Log.warning("configuration: \(error); keeping the previous state of that network")
            if let previous = zone.networks.first(where: { $0.fileName == error.file }) { networks.append(previous) }
        }
        let next = Zone(networks: networks, searchDomain: options.searchDomain)
        if !next.hasContainers && options.exitWhenEmpty {
            exitIfStillEmpty()
            if stopped { return }
            // A writer added a network while we waited for the lock: load again.
            reload(reason: "after exit check")
            return
        }
        zone = next
        syncListeners()
        Log.info("reloaded (\(reason)): \(zone.networks.count) networks, \(listeners.count) addresses")
    }

    /// With the directory lock held (writers take it too), checks once more that no network
    /// is left, removes the pid file and stops; the lock is held until the process exits, so
    /// a writer either sees this server still running and its network served, or sees no
    /// server and starts a new one.
    private func exitIfStillEmpty() {
        // Only dnsname takes the lock; in a directory netavark writes there is none to share
        // (and a stray file there would upset aardvark-dns if it ran again).
        let lockPath = "\(options.configDirectory)/\(ConfigDirectory.lockFileName)"
        guard Files.exists(lockPath), let lock = try? FileLock(path: lockPath) else {
            Log.info("no container left: exiting")
            shutdown()
            return
        }
        if let (networks, _) = try? ConfigDirectory.load(options.configDirectory), networks.contains(where: { !$0.containers.isEmpty }) {
            return
        }
        exitLock = lock
        Log.info("no container left: exiting")
        shutdown()
    }

    private func readResolvConf() {
        let text = (try? Files.readText(options.resolvConf)) ?? ""
        var found: [IPAddress] = []
        for server in ResolvConf(text: text).nameservers {
            if let address = IPAddress(server) { found.append(address) }
        }
        // Loopback resolvers (systemd-resolved's 127.0.0.53) are unreachable from containers'
        // namespaces; berth-dns runs in the host's, so they are kept, but only as the last resort.
        let isLoopback = { (a: IPAddress) in
            switch a {
            case .v4(let v4): v4.value >> 24 == 127
            case .v6(let v6): v6.value == 1
            }
        }
        let ordered = found.filter { !isLoopback($0) } + found.filter(isLoopback)
        if ordered != upstreams {
            upstreams = ordered
            forwarder.cache.removeAll()
            Log.info("upstream resolvers: \(upstreams.map(\.description).joined(separator: ", "))")
        }
    }

    public var hostUpstreams: [IPAddress] { upstreams }

    // MARK: Watching files

    private func watchFiles() {
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else {
            Log.warning("inotify unavailable: reload on SIGHUP only")
            return
        }
        let changes = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE)
        configWatch = inotify_add_watch(inotify, options.configDirectory, changes | UInt32(IN_DELETE_SELF | IN_MOVE_SELF))
        resolvWatch = inotify_add_watch(inotify, Files.parent(of: options.resolvConf), changes)
        try? loop.register(inotify, for: .readable) { [unowned self] _ in self.readNotifications() }
    }

    private func readNotifications() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let resolvName = Files.baseName(of: options.resolvConf)
        var configChanged = false, resolvChanged = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var offset = 0
            while offset + 16 <= n {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw in
                    (
                        raw.load(fromByteOffset: offset, as: Int32.self), raw.load(fromByteOffset: offset + 4, as: UInt32.self),
                        Int(raw.load(fromByteOffset: offset + 12, as: UInt32.self))
                    )
                }
                if wd == configWatch && mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) != 0 { configChanged = true }
                let nameBytes = buffer[(offset + 16)..<min(offset + 16 + length, n)].prefix(while: { $0 != 0 })
                let name = String(decoding: nameBytes, as: UTF8.self)
                if wd == configWatch && ConfigDirectory.isNetworkFile(name) { configChanged = true }
                if wd == resolvWatch && name == resolvName { resolvChanged = true }
                offset += 16 + length
            }
        }
        if resolvChanged { readResolvConf() }
        if configChanged && reloadTimer == nil {
            // Coalesce a burst of changes into one reload.
            reloadTimer = loop.schedule(after: .milliseconds(2)) { [unowned self] in
                self.reloadTimer = nil
                self.reload(reason: "configuration changed")
            }
        }
    }

    // MARK: Listening

    /// Binds addresses new in the zone and closes those no longer in it.
    private func syncListeners() {
        let wanted = zone.listenAddresses
        for (address, listener) in listeners where !wanted.contains(address) {
            loop.unregister(listener.udp)
            loop.unregister(listener.tcp)
            close(listener.udp)
            close(listener.tcp)
            listeners[address] = nil
        }
        bindRetries = bindRetries.intersection(wanted)
        for address in wanted where listeners[address] == nil { bind(address) }
    }

    private func bind(_ address: IPAddress) {
        let socketAddress = SocketAddress(address, port: options.port)
        do {
            let udp = try Sockets.bound(socketAddress, type: Int32(SOCK_DGRAM.rawValue))
            let tcp: Int32
            do {
                tcp = try Sockets.bound(socketAddress, type: Int32(SOCK_STREAM.rawValue))
            } catch {
                close(udp)
                throw error
            }
            try loop.register(udp, for: .readable) { [unowned self] _ in self.serveDatagrams(udp, local: address) }
            try loop.register(tcp, for: .readable) { [unowned self] _ in self.accept(tcp, local: address) }
            listeners[address] = Listener(udp: udp, tcp: tcp)
            bindRetries.remove(address)
        } catch {
            // The address may not be there yet, or a previous server still holds it: retry.
            if bindRetries.insert(address).inserted { Log.warning("\(error); retrying every second") }
            if retryTimer == nil {
                retryTimer = loop.schedule(after: .seconds(1)) { [unowned self] in
                    self.retryTimer = nil
                    for address in self.bindRetries where self.listeners[address] == nil { self.bind(address) }
                }
            }
        }
    }

    public var boundAddresses: Set<IPAddress> { Set(listeners.keys) }

    // MARK: UDP

    private func serveDatagrams(_ fd: Int32, local: IPAddress) {
        for _ in 0..<8 {  // then let other descriptors have a turn
            let received = berth_receive_batch(fd, inbound, UInt32(batch))
            if received <= 0 { return }
            var replies = 0
            for i in 0..<Int(received) {
                let length = Int(inbound[i].length)
                guard length <= slot, let peer = SocketAddress(&inbound[i].peer) else { continue }
                let query = UnsafeRawBufferPointer(start: inbound[i].buffer, count: length)
                let out = UnsafeMutableRawBufferPointer(start: outbound[replies].buffer, count: slot)
                switch responder.respond(to: query, from: peer.address, listener: local, zone: zone, stream: false, into: out) {
                case .reply(let size):
                    outbound[replies].capacity = UInt32(size)
                    outbound[replies].peer = inbound[i].peer
                    outbound[replies].peer_length = inbound[i].peer_length
                    replies += 1
                case .forward(let request):
                    let client = ForwardClient(
                        kind: .datagram(fd: fd, peer: peer), id: readUInt16(query, 0),
                        maxSize: Int(request.ednsSize ?? UInt16(DNSLimits.classicUDPSize)))
                    forwarder.forward(query, request: request, client: client, upstreams: upstreamAddresses(request))
                case .drop:
                    continue
                }
            }
            if replies > 0 {
                answeredCount += replies
                _ = berth_send_batch(fd, outbound, UInt32(replies))
            }
            if Int(received) < batch { return }
        }
    }

    private func upstreamAddresses(_ request: ForwardRequest) -> [SocketAddress] {
        let listening = Set(listeners.keys)
        return (request.upstreams ?? upstreams)
            .filter { !(listening.contains($0) && options.upstreamPort == options.port) }  // never ourselves
            .map { SocketAddress($0, port: options.upstreamPort) }
    }

    private func deliver(_ client: ForwardClient, _ bytes: [UInt8]) {
        switch client.kind {
        case .datagram(let fd, let peer):
            answeredCount += 1
            bytes.withUnsafeBytes { raw in
                _ = peer.withSockaddr { sendto(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, $1) }
            }
        case .stream(let id):
            guard let connection = connections[id] else { return }
            answeredCount += 1
            connection.enqueue(bytes)
            flush(connection)
        }
    }

    // MARK: TCP

    private final class StreamClient {
        let id: Int
        let fd: Int32
        let local: IPAddress
        let peer: SocketAddress
        var inbox: [UInt8] = []
        var outbox: [UInt8] = []
        var lastActive = monotonicNanoseconds()
        init(id: Int, fd: Int32, local: IPAddress, peer: SocketAddress) {
            self.id = id
            self.fd = fd
            self.local = local
            self.peer = peer
        }
        func enqueue(_ message: [UInt8]) {
            outbox += [UInt8(message.count >> 8 & 0xFF), UInt8(message.count & 0xFF)]
            outbox += message
        }
    }

    private func accept(_ listener: Int32, local: IPAddress) {
        for _ in 0..<16 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    berth_accept_nonblocking(listener, $0, &length)
                }
            }
            if fd < 0 { return }
            guard connections.count < options.maxTCPConnections, let peer = withUnsafePointer(to: &storage, { SocketAddress($0) }) else {
                close(fd)
                continue
            }
            let connection = StreamClient(id: nextConnection, fd: fd, local: local, peer: peer)
            nextConnection += 1
            do {
                try loop.register(fd, for: .readable) { [unowned self] events in self.serveStream(connection, events) }
                connections[connection.id] = connection
            } catch {
                close(fd)
            }
        }
    }

    private func serveStream(_ connection: StreamClient, _ events: EventLoop.Events) {
        connection.lastActive = monotonicNanoseconds()
        if events.contains(.writable) { flush(connection) }
        guard events.contains(.readable) || events.contains(.hangup) || events.contains(.error) else { return }
        var chunk = [UInt8](repeating: 0, count: 16384)
        let n = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            closeStream(connection)
            return
        }
        if n > 0 { connection.inbox += chunk[0..<n] }
        while connection.inbox.count >= 2 {
            let length = Int(connection.inbox[0]) << 8 | Int(connection.inbox[1])
            guard connection.inbox.count >= 2 + length else { break }
            let message = Array(connection.inbox[2..<2 + length])
            connection.inbox.removeFirst(2 + length)
            let disposition = message.withUnsafeBytes { query in
                responder.respond(to: query, from: connection.peer.address, listener: connection.local, zone: zone, stream: true, into: streamBuffer)
            }
            switch disposition {
            case .reply(let size):
                answeredCount += 1
                connection.enqueue(Array(UnsafeRawBufferPointer(rebasing: streamBuffer[0..<size])))
            case .forward(let request):
                let client = ForwardClient(kind: .stream(connection: connection.id), id: UInt16(message[0]) << 8 | UInt16(message[1]), maxSize: 65535)
                message.withUnsafeBytes { forwarder.forward($0, request: request, client: client, upstreams: upstreamAddresses(request)) }
            case .drop:
                closeStream(connection)
                return
            }
        }
        flush(connection)
    }

    private func flush(_ connection: StreamClient) {
        guard connections[connection.id] != nil else { return }
        while !connection.outbox.isEmpty {
            let n = connection.outbox.withUnsafeBytes { send(connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN {
                    try? loop.modify(connection.fd, for: [.readable, .writable])
                    return
                }
                closeStream(connection)
                return
            }
            connection.outbox.removeFirst(n)
        }
        try? loop.modify(connection.fd, for: .readable)
    }

    private func closeStream(_ connection: StreamClient) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        loop.unregister(connection.fd)
        close(connection.fd)
    }

    /// Closes idle TCP connections every second.
    private func scheduleSweep() {
        loop.schedule(after: .seconds(1)) { [weak self] in
            guard let self else { return }
            let limit = monotonicNanoseconds() - min(self.options.tcpIdleTimeout.nanoseconds, monotonicNanoseconds())
            for (_, connection) in self.connections where connection.lastActive < limit { self.closeStream(connection) }
            // Belt and braces for inotify: a removed configuration directory ends the server.
            if !Files.isDirectory(self.options.configDirectory) { self.reload(reason: "configuration directory removed") }
            self.scheduleSweep()
        }
    }

    public var openConnections: Int { connections.count }
}

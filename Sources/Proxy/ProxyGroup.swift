import BerthSupport
import CBerth
import Glibc
import Synchronization

/// What the signal-handling thread asks the other event loops to do.
enum Command: Sendable {
    case reload, drain
}

/// A command queue another thread can post to; the owning loop watches `fd` (an eventfd).
final class Mailbox: Sendable {
    let fd: Int32
    private let commands = Mutex<[Command]>([])

    init() throws {
        fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard fd >= 0 else { throw SystemError.current("eventfd") }
    }

    deinit { close(fd) }

    func post(_ command: Command) {
        commands.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    func take() -> [Command] {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
        return commands.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
    }
}

/// berth-proxy's process: one `ProxyServer` per --threads, each on its own thread and event loop
/// with its own SO_REUSEPORT listeners (the kernel spreads connections and UDP clients over
/// them). The calling thread runs the first server and takes the signals, and passes reload and
/// drain on to the others.
public final class ProxyGroup {
    private let servers: [ProxyServer]

    public init(options: ProxyOptions, descriptorLimit: Int) throws {
        let count = options.threads
        servers = try (0..<count).map { try ProxyServer(options: options, descriptorLimit: descriptorLimit, index: $0, count: count) }
    }

    /// Installs the signal handlers, then binds every mapping in every server; throws the first
    /// failure (and closes what it bound).
    public func start(listenFD: Int32? = nil) throws(ProxyError) {
        let first = servers[0]
        let others = servers.dropFirst().map(\.mailbox)
        // Signals first (and before any thread exists, so all inherit the blocked mask): a stop
        // signal right after readiness must drain, not kill.
        do {
            try first.loop.onSignals([SIGTERM, SIGINT, SIGHUP]) { [unowned first] signal in
                let command: Command = signal == SIGHUP ? .reload : .drain
                others.forEach { $0.post(command) }
                switch command {
                case .reload: first.reload()
                case .drain: first.drain()
                }
            }
        } catch {
            throw ProxyError("\(error)")
        }
        for server in servers { try server.start(listenFD: listenFD) }
    }

    /// Runs every server until a stop signal has drained them all.
    public func run() throws {
        let threads = try servers.dropFirst().map { server in try startThread(ServerBox(server)) }
        defer { threads.forEach { pthread_join($0, nil) } }
        try servers[0].run()
    }
}

/// Hands a server to the thread that runs it; nothing else touches it from then on (the mailbox
/// is the only way in).
private final class ServerBox: @unchecked Sendable {
    let server: ProxyServer
    init(_ server: ProxyServer) { self.server = server }
}

private func startThread(_ box: ServerBox) throws -> pthread_t {
    var thread = pthread_t()
    let context = Unmanaged.passRetained(box).toOpaque()
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<ServerBox>.fromOpaque(raw!).takeRetainedValue()
        do {
            try box.server.run()
        } catch {
            Log.error("event loop: \(error)")
        }
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<ServerBox>.fromOpaque(context).release()
        throw SystemError("pthread_create", errno: rc)
    }
    return thread
}

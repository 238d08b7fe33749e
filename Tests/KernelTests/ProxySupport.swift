import BerthSupport
import CBerth
import Glibc
import Namespaces
@testable import Proxy
import Reactor
import Testing

/// A "host" namespace where berth-proxy runs and a "container" namespace joined to it by a veth
/// pair: host 10.200.0.1/24 + fd00:200::1/64, container 10.200.0.2/24 + fd00:200::2/64, with a
/// busybox httpd serving `index.html` ("hello from the container") on port 80 in the container.
/// Everything, processes included, goes away with the value.
final class ProxyLab {
    let host: NetworkNamespace
    let container: NetworkNamespace
    let directory: String
    private var processes: [ChildProcess] = []

    static let hostIP = "10.200.0.1", containerIP = "10.200.0.2"
    static let hostIP6 = "fd00:200::1", containerIP6 = "fd00:200::2"
    static let page = "hello from the container\n"

    init(httpd: Bool = true) throws {
        host = try NetworkNamespace.createAnonymous()
        container = try NetworkNamespace.createAnonymous()
        directory = "/tmp/berth-test-proxy-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Files.makeDirectories(directory + "/www")
        try Files.write(directory + "/www/index.html", Array(ProxyLab.page.utf8))
        try sh(host, "ip link set lo up",
               "ip link add veth0 type veth peer name eth0 netns \(container.path)",
               "ip addr add \(ProxyLab.hostIP)/24 dev veth0", "ip -6 addr add \(ProxyLab.hostIP6)/64 dev veth0 nodad",
               "ip link set veth0 up")
        try sh(container, "ip link set lo up", "ip addr add \(ProxyLab.containerIP)/24 dev eth0",
               "ip -6 addr add \(ProxyLab.containerIP6)/64 dev eth0 nodad", "ip link set eth0 up")
        if httpd {
            let server = try ChildProcess(
                "/bin/busybox", ["httpd", "-f", "-p", "80", "-h", directory + "/www"], in: container, log: directory + "/httpd.log")
            processes.append(server)
            try waitUntil("httpd listens") { self.canConnect(self.container, SocketAddress(ip: ip(ProxyLab.containerIP), port: 80)) }
        }
    }

    deinit {
        processes.forEach { $0.kill() }
        _ = try? Subprocess.run("/bin/rm", arguments: ["-rf", directory], environment: [:])
    }

    /// Starts berth-proxy in the host namespace and waits for its readiness report on fd 3.
    func proxy(_ arguments: [String], extraDescriptors: [Int32] = []) throws -> ProxyProcess {
        let proxy = try ProxyProcess(arguments, in: host, log: "\(directory)/proxy-\(processes.count).log",
                                     extraDescriptors: extraDescriptors)
        processes.append(proxy.process)
        return proxy
    }

    /// GET through busybox wget from the host namespace; nil when it fails.
    func get(_ url: String) throws -> String? {
        let out = try Subprocess.run("/usr/bin/timeout", arguments: ["5", "/bin/busybox", "wget", "-qO-", url],
                                     environment: [:], netnsFD: host.fd)
        return out.status == 0 ? String(decoding: out.stdout, as: UTF8.self) : nil
    }

    /// A TCP socket of `namespace`, connected (blocking) to `address`; nil if refused.
    func connect(from namespace: NetworkNamespace, to address: SocketAddress) throws -> TestSocket? {
        let socket = try TestSocket(in: namespace, family: address.family, type: SOCK_STREAM)
        return socket.connect(address) ? socket : nil
    }

    func canConnect(_ namespace: NetworkNamespace, _ address: SocketAddress) -> Bool {
        (try? connect(from: namespace, to: address)) != nil
    }

    /// A listening TCP socket in the container namespace (a server the test drives itself).
    func containerListener(port: UInt16, v6: Bool = false) throws -> TestSocket {
        let address = SocketAddress(ip: ip(v6 ? ProxyLab.containerIP6 : ProxyLab.containerIP), port: port)
        let socket = try TestSocket(in: container, family: address.family, type: SOCK_STREAM)
        try socket.bind(address)
        #expect(listen(socket.fd, 4096) == 0)
        return socket
    }
}

/// A process started by a test, killed (SIGKILL) and reaped when released at the latest.
final class ChildProcess: @unchecked Sendable {
    let pid: Int32
    let logPath: String
    private(set) var exitStatus: Int32?

    init(_ path: String, _ arguments: [String], in namespace: NetworkNamespace, log: String,
         extraDescriptors: [Int32] = []) throws {
        let logFD = try FileDescriptor.open(log, O_WRONLY | O_CREAT | O_TRUNC)
        let null = try FileDescriptor.open("/dev/null", O_RDWR)
        pid = try Subprocess.spawn(path, arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
                                   stdin: null.rawValue, stdout: logFD.rawValue, stderr: logFD.rawValue,
                                   netnsFD: namespace.fd, extraDescriptors: extraDescriptors)
        logPath = log
    }

    deinit { kill() }

    var log: String { (try? Files.readText(logPath)) ?? "" }

    func signal(_ signal: Int32) { if exitStatus == nil { Glibc.kill(pid, signal) } }

    /// Waits up to `timeout` for the process to exit; its status, or nil if it still runs.
    @discardableResult
    func wait(timeout: Duration) -> Int32? {
        if let exitStatus { return exitStatus }
        let deadline = monotonicNanoseconds() + timeout.nanoseconds
        repeat {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let low = status & 0x7f
                exitStatus = low == 0 ? (status >> 8) & 0xff : 128 + low
                return exitStatus
            }
            usleep(10_000)
        } while monotonicNanoseconds() < deadline
        return nil
    }

    var isRunning: Bool { wait(timeout: .zero) == nil }

    func kill() {
        guard exitStatus == nil else { return }
        Glibc.kill(pid, SIGKILL)
        wait(timeout: .seconds(5))
    }

    /// Open descriptors (entries of /proc/PID/fd).
    var descriptorCount: Int { (try? Files.list("/proc/\(pid)/fd").count) ?? -1 }

    /// CPU time used so far (user + system), in clock ticks.
    var cpuTicks: Int {
        guard let stat = try? Files.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return -1 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }
}

/// berth-proxy started with a readiness pipe on fd 3; `readiness` is what it reported.
struct ProxyProcess {
    let process: ChildProcess
    let readiness: String

    init(_ arguments: [String], in namespace: NetworkNamespace, log: String, extraDescriptors: [Int32]) throws {
        var fds: [Int32] = [0, 0]
        #expect(berth_pipe_cloexec(&fds) == 0)
        defer { close(fds[0]) }
        do {
            process = try ChildProcess(Built.path("berth-proxy"), arguments, in: namespace, log: log, extraDescriptors: [fds[1]] + extraDescriptors)
        } catch {
            close(fds[1])
            throw error
        }
        close(fds[1])
        // The report is complete at end of file: the proxy closes fd 3 (or exits) after writing.
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 10_000) > 0 {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            text += buffer[0..<n]
        }
        readiness = String(decoding: text, as: UTF8.self)
    }

    var pid: Int32 { process.pid }
    var log: String { process.log }
}

/// A socket the test owns, opened inside a namespace and used from the test's thread.
final class TestSocket: @unchecked Sendable {
    let fd: Int32

    init(in namespace: NetworkNamespace, family: Int32, type: __socket_type) throws {
        fd = try namespace.run {
            let fd = socket(family, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError.current("socket") }
            return fd
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    init(adopting fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    func bind(_ address: SocketAddress) throws {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard address.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            throw SystemError.current("bind", object: "\(address)")
        }
    }

    func connect(_ address: SocketAddress) -> Bool { address.withSockaddr { Glibc.connect(fd, $0, $1) } == 0 }

    /// Accepts one connection, waiting up to `milliseconds`.
    func accept(waiting milliseconds: Int32 = 5000) -> TestSocket? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, milliseconds) == 1 else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { return nil }
        let socket = TestSocket(adopting: client)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return socket
    }

    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
    }

    func sendTo(_ text: String, _ address: SocketAddress) -> Bool {
        let bytes = Array(text.utf8)
        return address.withSockaddr { sendto(fd, bytes, bytes.count, 0, $0, $1) } == bytes.count
    }

    /// One read: the text, "" at end of stream, nil on error or timeout (errno tells).
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// Reads until end of stream; nil on error.
    func receiveAll() -> String? {
        var text = ""
        while true {
            guard let chunk = receive() else { return nil }
            if chunk.isEmpty { return text }
            text += chunk
        }
    }

    /// One datagram and its sender.
    func receiveFrom() -> (String, SocketAddress)? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
        }
        guard n >= 0, let from = withUnsafeBytes(of: &storage, { SocketAddress(storage: $0.baseAddress!) }) else { return nil }
        return (String(decoding: buffer[0..<n], as: UTF8.self), from)
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// Runs shell-free `ip` commands (each a string of words) in a namespace, failing on the first error.
func sh(_ namespace: NetworkNamespace, _ commands: String...) throws {
    for command in commands {
        let words = command.split(separator: " ").map(String.init)
        let out = try Subprocess.run("/usr/sbin/" + words[0], arguments: Array(words.dropFirst()), environment: [:],
                                     netnsFD: namespace.fd)
        guard out.status == 0 else {
            throw SystemError(command, errno: 0, kernelMessage: String(decoding: out.stderr, as: UTF8.self))
        }
    }
}

/// Polls `condition` every 20 ms for up to `timeout`; throws naming `what` if it never holds.
func waitUntil(_ what: String, timeout: Duration = .seconds(5), _ condition: () throws -> Bool) throws {
    let deadline = monotonicNanoseconds() + timeout.nanoseconds
    while true {
        if try condition() { return }
        if monotonicNanoseconds() > deadline { throw SystemError("timed out waiting: \(what)", errno: ETIMEDOUT) }
        usleep(20_000)
    }
}

func address(_ text: String, _ port: UInt16) -> SocketAddress { SocketAddress(ip: ip(text), port: port) }


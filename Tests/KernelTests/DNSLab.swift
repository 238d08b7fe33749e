import Addressing
import BerthSupport
import DNS
import Glibc
import Namespaces
import Testing

/// A scratch world for berth-dns: a "host" namespace (where the server runs, gateway and
/// container addresses on lo), an upstream namespace with dnsmasq behind a veth, container
/// namespaces behind veths for busybox, and a configuration directory. Everything it started
/// is killed by pid, and everything it made is removed, when it is released.
final class DNSLab: @unchecked Sendable {
    let host: NetworkNamespace
    let directory: String
    private var namespaces: [NetworkNamespace] = []
    private var children: [Int32] = []
    static let upstreamAddress = IPAddress("192.0.2.53")!

    init() throws {
        host = try NetworkNamespace.createAnonymous()
        var template = Array("/tmp/berth-test-dns-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemError.current("mkdtemp") }
        directory = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try ip(host, "link", "set", "lo", "up")
    }

    deinit {
        for pid in children {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        // A daemonized server (started by dnsname) is not our child: kill it by its pid file.
        for dir in [directory, "\(directory)/dns"] {
            if let pid = ConfigDirectory.readPID(dir), isBerthDNS(pid) { kill(pid, SIGKILL) }
        }
        _ = try? Subprocess.run("/bin/rm", arguments: ["-rf", directory], environment: [:])
    }

    // MARK: Setup

    @discardableResult
    func ip(_ namespace: NetworkNamespace, _ arguments: String...) throws -> String {
        let out = try Subprocess.run("/usr/sbin/ip", arguments: arguments, environment: [:], netnsFD: namespace.fd)
        guard out.status == 0 else {
            throw SystemError("ip \(arguments.joined(separator: " "))", errno: 0, kernelMessage: String(decoding: out.stderr, as: UTF8.self))
        }
        return String(decoding: out.stdout, as: UTF8.self)
    }

    /// Addresses on the host namespace's lo (gateways and stand-in container addresses).
    func addHostAddresses(_ addresses: [String]) throws {
        for address in addresses {
            try ip(host, "addr", "add", address + (address.contains(":") ? "/128" : "/32"), "dev", "lo", "nodad")
        }
    }

    private var links = 0
    /// A namespace joined to the host by a veth: `hostAddress` on the host side, `address` inside.
    func attachedNamespace(hostAddress: String, address: String, prefix: Int = 24) throws -> NetworkNamespace {
        let namespace = try NetworkNamespace.createAnonymous()
        namespaces.append(namespace)
        links += 1
        let outside = "vdns\(links)"
        try ip(host, "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace.path)
        try ip(host, "addr", "add", "\(hostAddress)/\(prefix)", "dev", outside)
        try ip(host, "link", "set", outside, "up")
        try ip(namespace, "link", "set", "lo", "up")
        try ip(namespace, "addr", "add", "\(address)/\(prefix)", "dev", "eth0")
        try ip(namespace, "link", "set", "eth0", "up")
        try ip(namespace, "route", "add", "default", "via", hostAddress)
        return namespace
    }

    func write(_ network: NetworkFile) throws {
        try Files.writeAtomically("\(directory)/\(network.fileName)", Array(network.text.utf8), durable: false)
    }

    func remove(_ network: String) throws { try Files.remove("\(directory)/\(network)") }

    // MARK: Processes

    /// Starts berth-dns in the foreground in the host namespace and waits for its ready line.
    @discardableResult
    func startServer(port: UInt16 = 53, extra: [String] = []) throws -> Int32 {
        let resolv = "\(directory)/resolv.conf"
        if !Files.exists(resolv) { try writeResolvConf(["192.0.2.53"]) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.current("pipe") }
        defer { close(fds[0]) }
        let pid = try Subprocess.spawn(
            Built.path("berth-dns"),
            arguments: ["--config", directory, "-p", String(port), "--resolv-conf", resolv, "--foreground", "--upstream-timeout", "300",
                "--query-timeout", "700"] + extra + ["run"],
            environment: [:], stdout: fds[1], netnsFD: host.fd)
        close(fds[1])
        children.append(pid)
        let line = try readLine(fds[0], timeout: 5)
        guard line.contains("ready") else { throw SystemError("berth-dns did not start: \(line)", errno: 0) }
        return pid
    }

    func writeResolvConf(_ servers: [String]) throws {
        try Files.writeAtomically(
            "\(directory)/resolv.conf", Array(servers.map { "nameserver \($0)\n" }.joined().utf8), durable: false)
    }

    /// An upstream resolver in its own namespace (dnsmasq with a static host list) at
    /// 192.0.2.53, reached from the host through 192.0.2.1. Returns dnsmasq's pid.
    @discardableResult
    func startUpstream(hosts: [(String, String)]) throws -> Int32 {
        let namespace = try attachedNamespace(hostAddress: "192.0.2.1", address: "192.0.2.53")
        let hostsFile = "\(directory)/upstream-hosts"
        try Files.writeAtomically(hostsFile, Array(hosts.map { "\($0.1) \($0.0)\n" }.joined().utf8), durable: false)
        let pid = try Subprocess.spawn(
            "/usr/sbin/dnsmasq",
            arguments: [
                "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts=\(hostsFile)",
                "--listen-address=192.0.2.53", "--bind-interfaces", "--port=53", "--local-ttl=300", "--local=/upstream.test/",
                "--pid-file=", "--user=root", "--group=root",
            ], environment: [:], stderr: -1, netnsFD: namespace.fd)
        children.append(pid)
        // Ready when it answers.
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while monotonicNanoseconds() < deadline {
            if let reply = try? host.run({
                try DNSClient.exchange(.query(id: 1, name: DNSName("probe.upstream.test")!, type: .a), server: Self.upstreamAddress, timeout: .milliseconds(200))
            }), reply.isResponse {
                return pid
            }
            usleep(20_000)
        }
        throw SystemError("dnsmasq did not answer", errno: ETIMEDOUT)
    }

    func stop(_ pid: Int32) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        children.removeAll { $0 == pid }
    }

    /// Waits for a child of ours to exit; its exit status, or nil if it is still running.
    func waitExit(_ pid: Int32, seconds: Double) -> Int32? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                children.removeAll { $0 == pid }
                return (status >> 8) & 0xFF
            }
            usleep(10_000)
        }
        return nil
    }

    // MARK: Asking

    /// One question from the host namespace, as `source` (a container's address).
    func ask(
        _ qname: String, _ type: RecordType = .a, server: String, source: String? = nil, tcp: Bool = false,
        edns: UInt16? = nil, timeout: Duration = .seconds(2)
    ) throws -> DNSMessage {
        let query = DNSMessage.query(id: UInt16.random(in: 1...65535), name: DNSName(qname)!, type: type, edns: edns)
        return try host.run {
            try DNSClient.exchange(
                query, server: IPAddress(server)!, source: source.flatMap { IPAddress($0) }, timeout: timeout, tcp: tcp)
        }
    }

    /// `busybox nslookup NAME SERVER` inside a namespace.
    func nslookup(_ qname: String, server: String, in namespace: NetworkNamespace, type: String? = nil) throws -> String {
        var arguments = ["nslookup"]
        if let type { arguments.append("-type=\(type)") }
        arguments += [qname, server]
        let out = try Subprocess.run("/bin/busybox", arguments: arguments, environment: [:], netnsFD: namespace.fd)
        return String(decoding: out.stdout + out.stderr, as: UTF8.self)
    }
}

func addresses(_ message: DNSMessage) -> Set<String> {
    Set(message.answers.compactMap {
        switch $0.data {
        case .a(let a): a.description
        case .aaaa(let a): a.description
        case .ptr(let n): n.description
        default: nil
        }
    })
}

func isBerthDNS(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0, let stat = try? Files.readText("/proc/\(pid)/stat") else { return false }
    // Zombies are gone as far as serving goes.
    if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return false }
    return ((try? Files.readText("/proc/\(pid)/comm")) ?? "").hasPrefix("berth-dns")
}

func readLine(_ fd: Int32, timeout seconds: Double) throws -> String {
    var collected: [UInt8] = []
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while monotonicNanoseconds() < deadline {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&entry, 1, 100) > 0 {
            var byte: UInt8 = 0
            let n = read(fd, &byte, 1)
            if n <= 0 { break }
            if byte == 0x0A { break }
            collected.append(byte)
        }
    }
    return String(decoding: collected, as: UTF8.self)
}

import Addressing
import BerthSupport
import CNI
import Glibc
import JSON
import Namespaces
import TestSupport
import Testing

/// One test's world for the bridge plugin: a "host" namespace where the plugins run, an IPAM
/// data directory, and helpers to attach containers as a runtime does.
final class BridgeWorld {
    let host: NetworkNamespace
    let data: TemporaryDirectory
    let executable: String

    init(executable: String = Built.path("bridge")) throws {
        host = try NetworkNamespace.createAnonymous()
        data = try TemporaryDirectory()
        self.executable = executable
    }

    /// A network configuration: `extra` is spliced into the plugin object, `ipam` replaces the
    /// default host-local section.
    func config(
        name: String = "testnet", bridge: String = "br-test", version: String = "1.0.0", extra: String = "",
        ipam: String? = nil, subnet: String = "10.50.0.0/24", type: String = "bridge"
    ) -> String {
        let ipamSection = ipam ?? #"{"type": "host-local", "subnet": "\#(subnet)", "dataDir": "\#(data.path)"}"#
        return #"{"cniVersion": "\#(version)", "name": "\#(name)", "type": "\#(type)", "bridge": "\#(bridge)", "isGateway": true, "ipMasq": true, "ipam": \#(ipamSection)\#(extra)}"#
    }

    func call(_ command: String, _ config: String, container: NetworkNamespace?, id: String, ifName: String = "eth0", args: String? = nil, netns: String? = nil) throws -> PluginOutcome {
        try run(executable, PluginCall(command: command, containerID: id, netns: netns ?? container?.path ?? "", ifName: ifName, args: args, config: config), in: host)
    }

    /// ADD that must succeed; returns the parsed result and the raw text (for prevResult).
    func add(_ config: String, container: NetworkNamespace, id: String, ifName: String = "eth0", args: String? = nil,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> (CNIResult, String) {
        let out = try call("ADD", config, container: container, id: id, ifName: ifName, args: args)
        try #require(out.status == 0, "ADD \(id): \(out)", sourceLocation: sourceLocation)
        return (try CNIResult(parsing: try #require(out.json)), out.text)
    }

    /// The same configuration with prevResult added (for CHECK and DEL).
    func with(prevResult: String, _ config: String) -> String {
        String(config.dropLast()) + #", "prevResult": \#(prevResult)}"#
    }

    /// Addresses host-local holds for the network.
    func allocations(network: String = "testnet") throws -> [String] {
        let dir = "\(data.path)/\(network)"
        guard Files.isDirectory(dir) else { return [] }
        return try Files.list(dir).filter { IPAddress($0) != nil }.sorted()
    }

    /// Link names in the host namespace, without lo.
    func hostLinks() throws -> [String] {
        try ipJSON(host, "link", "show").compactMap { $0["ifname"]?.stringValue }.filter { $0 != "lo" }.sorted()
    }

    /// Runs a command inside a namespace.
    func exec(_ namespace: NetworkNamespace, _ arguments: [String]) throws -> Subprocess.Outcome {
        try Subprocess.run(arguments[0], arguments: Array(arguments.dropFirst()), environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], netnsFD: namespace.fd)
    }

    /// One ping from a namespace; true when it got an answer.
    func ping(from namespace: NetworkNamespace, _ address: String) throws -> Bool {
        let family = address.contains(":") ? ["-6"] : []
        return try exec(namespace, ["/bin/busybox", "ping"] + family + ["-c", "1", "-W", "1", address]).status == 0
    }
}

/// Configuration lists in a directory of their own, run through `berth cni` (berth's CNI
/// runtime) inside a world's host namespace, exactly as a runtime runs them.
final class ConfigLists {
    let world: BridgeWorld
    let directory: TemporaryDirectory

    init(_ world: BridgeWorld) throws {
        self.world = world
        directory = try TemporaryDirectory()
    }

    /// Writes NAME.conflist with the given plugin objects (comma-separated JSON).
    func write(_ name: String, plugins: String, version: String = "0.4.0") throws {
        try directory.write("\(name).conflist", #"{"cniVersion": "\#(version)", "name": "\#(name)", "plugins": [\#(plugins)]}"#)
    }

    /// `berth cni ARGUMENTS` with this directory for configurations and the result cache.
    func berth(_ arguments: [String]) throws -> PluginOutcome {
        let out = try Subprocess.run(
            Built.path("berth"), arguments: ["cni"] + arguments + ["--plugin-dir", Built.directory, "--config-dir", directory.path, "--cache-dir", directory.file("cache")],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], netnsFD: world.host.fd)
        return PluginOutcome(status: out.status, stdout: out.stdout, stderr: String(decoding: out.stderr, as: UTF8.self))
    }
}

/// Accepts one TCP connection on `port` inside `namespace` while `connect` runs, and returns
/// the peer address it saw (nil when none came).
func acceptedPeer(in namespace: NetworkNamespace, port: UInt16, ipv6: Bool = false, during connect: () throws -> Void) throws -> String? {
    let listener = try namespace.run { () throws -> Int32 in
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var ok: Int32
        if ipv6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard ok == 0, listen(fd, 8) == 0 else { throw SystemError.current("listen") }
        return fd
    }
    defer { close(listener) }
    _ = fcntl(listener, F_SETFL, O_NONBLOCK)
    try connect()
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    for _ in 0..<50 {
        let fd = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) } }
        if fd >= 0 {
            close(fd)
            return withUnsafeBytes(of: storage) { raw -> String? in
                if storage.ss_family == sa_family_t(AF_INET) {
                    return IPAddress(bytes: Array(raw[4..<8]))?.description
                }
                return IPAddress(bytes: Array(raw[8..<24]))?.description
            }
        }
        usleep(20_000)
    }
    return nil
}

/// An "outside" network reachable from the host namespace through a veth pair (made with `ip`):
/// host side 192.0.2.1/24 and 2001:db8::1/64, outside 192.0.2.2/24 and 2001:db8::2/64.
final class OutsideNetwork {
    let namespace: NetworkNamespace
    init(host: NetworkNamespace) throws {
        namespace = try NetworkNamespace.createAnonymous()
        let ip = { (ns: NetworkNamespace, args: String) throws in
            let out = try Subprocess.run("/usr/sbin/ip", arguments: args.split(separator: " ").map(String.init), environment: [:], netnsFD: ns.fd)
            try #require(out.status == 0, "ip \(args): \(String(decoding: out.stderr, as: UTF8.self))")
        }
        try ip(host, "link add uplink type veth peer name wan netns \(namespace.path)")
        try ip(host, "addr add 192.0.2.1/24 dev uplink")
        try ip(host, "addr add 2001:db8::1/64 dev uplink nodad")
        try ip(host, "link set uplink up")
        try ip(namespace, "addr add 192.0.2.2/24 dev wan")
        try ip(namespace, "addr add 2001:db8::2/64 dev wan nodad")
        try ip(namespace, "link set wan up")
        try ip(namespace, "link set lo up")
    }

    /// Accepts one TCP connection on `port` inside the outside namespace while `connect` runs,
    /// and returns the peer address the outside saw.
    func peerAddress(port: UInt16, ipv6: Bool = false, during connect: () throws -> Void) throws -> String? {
        try acceptedPeer(in: namespace, port: port, ipv6: ipv6, during: connect)
    }
}

/// Opens a TCP connection from inside `namespace` (the socket is made on the namespace's own
/// thread, then used from here) and closes it; false if it did not connect within a second.
@discardableResult
func connectTCP(from namespace: NetworkNamespace, to address: String, port: UInt16) throws -> Bool {
    guard let ip = IPAddress(address) else { return false }
    let fd = try namespace.run { socket(ip.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    guard fd >= 0 else { throw SystemError.current("socket") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 1, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let bytes = ip.bytes
    if ip.isIPv4 {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &addr.sin_addr) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
    var addr = sockaddr_in6()
    addr.sin6_family = sa_family_t(AF_INET6)
    addr.sin6_port = port.bigEndian
    withUnsafeMutableBytes(of: &addr.sin6_addr) { $0.copyBytes(from: bytes) }
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } } == 0
}

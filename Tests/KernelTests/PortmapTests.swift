import Addressing
import BerthSupport
import CNI
import Glibc
import JSON
import Namespaces
import TestSupport
import Testing

/// A host namespace with an "outside" network (192.0.2.0/24, 2001:db8::/64 on `uplink`), lo
/// up, and bridge + portmap configuration lists run through `berth cni` as a runtime runs them.
final class PortmapLab {
    let world: BridgeWorld
    let outside: OutsideNetwork
    let lists: ConfigLists
    var host: NetworkNamespace { world.host }

    init() throws {
        world = try BridgeWorld()
        outside = try OutsideNetwork(host: world.host)
        lists = try ConfigLists(world)
        try must(world.host, "/usr/sbin/ip", "link", "set", "lo", "up")
        // br_netfilter (when loaded) sends bridged traffic through the inet hooks and hides
        // hairpin mistakes (see PacketLab): tests run without it unless they turn it on.
        try bridgeNetfilter(false)
        try must(outside.namespace, "/bin/busybox", "ping", "-c", "1", "-W", "2", "192.0.2.1")
    }

    /// Whether bridged IPv4 and IPv6 traffic passes the inet hooks (br_netfilter, when loaded).
    /// Returns false when the module is not loaded.
    @discardableResult
    func bridgeNetfilter(_ on: Bool) throws -> Bool {
        guard Files.exists("/proc/sys/net/bridge/bridge-nf-call-iptables") else { return false }
        for family in ["iptables", "ip6tables"] { try world.host.writeSysctl("net/bridge/bridge-nf-call-\(family)", on ? "1" : "0") }
        return true
    }

    /// The bridge plugin object: `subnet6` makes the network dual-stack.
    func bridgePlugin(bridge: String, subnet: String, subnet6: String? = nil, extra: String = "") -> String {
        var ranges = #"[{"subnet": "\#(subnet)"}]"#
        if let subnet6 { ranges += #", [{"subnet": "\#(subnet6)"}]"# }
        return #"{"type": "bridge", "bridge": "\#(bridge)", "isGateway": true, "isDefaultGateway": true, "ipMasq": true\#(extra), "ipam": {"type": "host-local", "ranges": [\#(ranges)], "dataDir": "\#(world.data.path)"}}"#
    }

    /// A network NAME: bridge (with `bridgeExtra` spliced in), then portmap (with `portmap`).
    func network(_ name: String, bridge: String, subnet: String, subnet6: String? = nil, bridgeExtra: String = "", portmap: String = "", version: String = "1.0.0") throws {
        let plugin = #"{"type": "portmap", "capabilities": {"portMappings": true}\#(portmap)}"#
        try lists.write(name, plugins: bridgePlugin(bridge: bridge, subnet: subnet, subnet6: subnet6, extra: bridgeExtra) + ", " + plugin, version: version)
    }

    func berth(_ command: String, _ network: String, _ container: NetworkNamespace?, id: String, ports: String? = nil, netns: String? = nil) throws -> PluginOutcome {
        var arguments = [command, network]
        if command != "gc" { arguments += [netns ?? container?.path ?? "", "--container-id", id] }
        if let ports { arguments += ["--cap-args", #"{"portMappings": [\#(ports)]}"#] }
        return try lists.berth(arguments)
    }

    /// ADD that must succeed.
    @discardableResult
    func add(_ network: String, _ container: NetworkNamespace, id: String, ports: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> CNIResult {
        let out = try berth("add", network, container, id: id, ports: ports)
        try #require(out.status == 0, "ADD \(id): \(out)", sourceLocation: sourceLocation)
        return try CNIResult(parsing: try #require(out.json))
    }

    /// The elements of a map of berth's table as nft lists them (compact JSON).
    func elements(_ map: String) throws -> [String] { try nftElements(host, map) }

    /// What `timeout 2 busybox wget -q -O - URL` prints from `namespace`, or nil.
    func fetch(from namespace: NetworkNamespace, _ url: String) throws -> String? {
        let out = try world.exec(namespace, ["/usr/bin/timeout", "2", "/bin/busybox", "wget", "-q", "-O", "-", url])
        let text = String(decoding: out.stdout, as: UTF8.self).trimmingSuffix()
        return out.status == 0 ? text : nil
    }

    /// `fetch`, retried for a few seconds while the server starts.
    func fetchEventually(from namespace: NetworkNamespace, _ url: String) throws -> String? {
        for _ in 0..<10 {
            if let text = try fetch(from: namespace, url) { return text }
            usleep(100_000)
        }
        return nil
    }
}

/// `busybox httpd` serving one page from inside a namespace.
final class WebServer {
    let pid: Int32
    let root: TemporaryDirectory

    init(_ namespace: NetworkNamespace, port: Int = 80, page: String) throws {
        root = try TemporaryDirectory()
        try root.write("index.html", page + "\n")
        pid = try Subprocess.spawn(
            "/bin/busybox", arguments: ["httpd", "-f", "-p", String(port), "-h", root.path], environment: [:], netnsFD: namespace.fd)
    }

    deinit {
        kill(pid, SIGTERM)
        _ = try? Subprocess.wait(pid)
    }
}

/// A UDP socket made inside a namespace and used from the test's thread.
final class UDPSocket {
    let fd: Int32

    init(in namespace: NetworkNamespace, ipv6: Bool = false, port: UInt16 = 0) throws {
        fd = try namespace.run { () throws -> Int32 in
            let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError.current("socket") }
            var storage = Self.address(ipv6 ? IPAddress("::")! : IPAddress("0.0.0.0")!, port: port)
            let ok = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(ipv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)) }
            }
            guard ok == 0 else { throw SystemError.current("bind") }
            return fd
        }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    static func address(_ ip: IPAddress, port: UInt16) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            if ip.isIPv4 {
                raw.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
                for (i, b) in ip.bytes.enumerated() { raw[4 + i] = b }
            } else {
                raw.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
                for (i, b) in ip.bytes.enumerated() { raw[8 + i] = b }
            }
        }
        return storage
    }

    func send(_ text: String, to address: String, port: UInt16) {
        var storage = Self.address(IPAddress(address)!, port: port)
        let length = socklen_t(address.contains(":") ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        _ = Array(text.utf8).withUnsafeBytes { bytes in
            withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, length) } }
        }
    }

    /// The next datagram and its sender ("192.0.2.2", port), or nil after two seconds.
    func receive() -> (text: String, from: String, port: UInt16)? {
        var buffer = [UInt8](repeating: 0, count: 1500)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &length) } }
        }
        guard n >= 0 else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            let from = storage.ss_family == sa_family_t(AF_INET) ? IPAddress(bytes: Array(raw[4..<8])) : IPAddress(bytes: Array(raw[8..<24]))
            return (String(decoding: buffer[0..<n], as: UTF8.self), from?.description ?? "?", port)
        }
    }
}

let http8080 = #"{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}"#

@Suite struct PortmapTests {
    /// A published port answers from the outside, from the host (its addresses and
    /// 127.0.0.1), from the container's neighbours and itself (hairpin), and from a container
    /// on another, isolated bridge; route_localnet is on for that bridge only.
    @Test func publishedPortIsReachableFromEverywhere() throws {
        let lab = try PortmapLab()
        try lab.network("web", bridge: "br-web", subnet: "10.60.0.0/24")
        try lab.network("other", bridge: "br-other", subnet: "10.61.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let c3 = try NetworkNamespace.createAnonymous()
        try lab.add("web", c1, id: "c1", ports: http8080)
        try lab.add("web", c2, id: "c2", ports: "")
        try lab.add("other", c3, id: "c3", ports: "")
        let server = try WebServer(c1, page: "hello from c1")
        defer { withExtendedLifetime(server) {} }

        // (a) from outside, through the host's address.
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://192.0.2.1:8080/") == "hello from c1")
        // (b) from the host itself: its uplink address and the bridge's.
        #expect(try lab.fetch(from: lab.host, "http://192.0.2.1:8080/") == "hello from c1")
        #expect(try lab.fetch(from: lab.host, "http://10.60.0.1:8080/") == "hello from c1")
        // (c) from 127.0.0.1 on the host: route_localnet on br-web, and nowhere else.
        #expect(try lab.fetch(from: lab.host, "http://127.0.0.1:8080/") == "hello from c1")
        #expect(try lab.host.readSysctl("net/ipv4/conf/br-web/route_localnet") == "1")
        for link in ["all", "default", "uplink", "lo", "br-other"] {
            #expect(try lab.host.readSysctl("net/ipv4/conf/\(link)/route_localnet") == "0", "\(link)")
        }
        // (d) hairpin: a neighbour on the same bridge, and the container itself.
        #expect(try lab.fetch(from: c2, "http://192.0.2.1:8080/") == "hello from c1")
        #expect(try lab.fetch(from: c2, "http://10.60.0.1:8080/") == "hello from c1")
        #expect(try lab.fetch(from: c1, "http://192.0.2.1:8080/") == "hello from c1")
        #expect(try lab.fetch(from: c1, "http://10.60.0.1:8080/") == "hello from c1")
        // (e) a container on another bridge: the published port, though isolation holds.
        #expect(try lab.fetch(from: c3, "http://192.0.2.1:8080/") == "hello from c1")
        #expect(try lab.fetch(from: c3, "http://10.60.0.1:8080/") == "hello from c1")
        #expect(try !lab.world.ping(from: c3, "10.60.0.2"))
        #expect(try !connectTCP(from: c3, to: "10.60.0.2", port: 80))

        // The elements: one, owned by c1's attachment and naming its network.
        let elements = try lab.elements("ports_v4")
        #expect(elements.count == 1)
        #expect(elements.first?.contains(#"["tcp",8080]"#) == true && elements.first?.contains(#"["10.60.0.2",80]"#) == true, "\(elements)")
        #expect(elements.first?.contains("network web") == true, "\(elements)")

        // DEL: the port goes, the others' attachments stay.
        #expect(try lab.berth("del", "web", c1, id: "c1").status == 0)
        #expect(try lab.elements("ports_v4").isEmpty)
        #expect(try lab.fetch(from: lab.outside.namespace, "http://192.0.2.1:8080/") == nil)
    }

    /// route_localnet on the bridge would let a container reach the host's 127.0.0.1 services;
    /// the guard chain drops such packets (kubernetes #90259). Shown by lifting the guard.
    @Test func guardClosesTheRouteLocalnetHole() throws {
        let lab = try PortmapLab()
        try lab.network("web", bridge: "br-web", subnet: "10.60.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        try lab.add("web", c1, id: "c1", ports: http8080)
        try lab.add("web", c2, id: "c2", ports: "")
        #expect(try lab.host.readSysctl("net/ipv4/conf/br-web/route_localnet") == "1")
        // c2 sends packets for 127.0.0.0/8 to the host, as a hostile container can.
        try c2.writeSysctl("net/ipv4/conf/eth0/route_localnet", "1")
        try must(c2, "/usr/sbin/ip", "route", "add", "127.0.0.0/8", "via", "10.60.0.1", "dev", "eth0")
        let peer = try acceptedPeer(in: lab.host, port: 9999) {
            let connected = try connectTCP(from: c2, to: "127.0.0.1", port: 9999)
            #expect(!connected)
        }
        #expect(peer == nil)
        // Without the guard the host's loopback service answers the container.
        try must(lab.host, "/usr/sbin/nft", "flush", "chain", "inet", "berth", "guard")
        let exposed = try acceptedPeer(in: lab.host, port: 9999) {
            let connected = try connectTCP(from: c2, to: "127.0.0.1", port: 9999)
            #expect(connected)
        }
        #expect(exposed == "10.60.0.3")
    }

    @Test func udp() throws {
        let lab = try PortmapLab()
        try lab.network("dns", bridge: "br-dns", subnet: "10.62.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        try lab.add("dns", c1, id: "c1", ports: #"{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}"#)
        try lab.add("dns", c2, id: "c2", ports: "")
        let server = try UDPSocket(in: c1, port: 53)
        for (client, target, seenAs) in [
            (lab.outside.namespace, "192.0.2.1", "192.0.2.2"),  // from outside: the client's own address
            (c2, "192.0.2.1", "10.62.0.1"),  // hairpin: masqueraded to the bridge
            (lab.host, "127.0.0.1", "10.62.0.1"),  // localhost: masqueraded to the bridge
        ] {
            let socket = try UDPSocket(in: client)
            socket.send("question", to: target, port: 5353)
            let got = try #require(server.receive(), "from \(seenAs)")
            #expect(got.text == "question")
            #expect(got.from == seenAs)
            server.send("answer", to: got.from, port: got.port)
            let reply = try #require(socket.receive(), "reply to \(seenAs)")
            #expect(reply.text == "answer")
            #expect(reply.from == target && reply.port == 5353)
        }
        // TCP on the same port is not published.
        #expect(try !connectTCP(from: lab.outside.namespace, to: "192.0.2.1", port: 5353))
    }

    /// A UDP client that sent to the port before it was published got "port unreachable" and
    /// left a conntrack entry without DNAT, which its next datagrams (same source port) would
    /// keep following: ADD deletes it, so the client reaches the container at once.
    @Test func udpClientThatCameTooEarly() throws {
        let lab = try PortmapLab()
        try lab.network("dns", bridge: "br-dns", subnet: "10.62.0.0/24")
        // berth's table is there (conntrack runs) from an earlier container on.
        try lab.add("dns", try NetworkNamespace.createAnonymous(), id: "c0", ports: "")
        let client = try UDPSocket(in: lab.outside.namespace)
        client.send("too early", to: "192.0.2.1", port: 5353)
        usleep(100_000)
        let table = { () throws -> String in try lab.host.run { try Files.readText("/proc/thread-self/net/nf_conntrack") } }
        let stale = try table().split(separator: "\n").filter { $0.contains("udp") && $0.contains("dport=5353") }
        #expect(stale.count == 1 && stale.first?.contains("src=192.0.2.2 dst=192.0.2.1") == true, "\(stale)")
        let c1 = try NetworkNamespace.createAnonymous()
        try lab.add("dns", c1, id: "c1", ports: #"{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}"#)
        let server = try UDPSocket(in: c1, port: 53)
        client.send("on time", to: "192.0.2.1", port: 5353)
        #expect(server.receive()?.text == "on time")
    }

    /// A dual-stack container's port on every address of both families; ::1 is never DNATed
    /// (IPv6 has no route_localnet): it stays on the host for the userland proxy.
    @Test func ipv6() throws {
        let lab = try PortmapLab()
        try lab.network("web6", bridge: "br-web6", subnet: "10.63.0.0/24", subnet6: "fd63::/64")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let result = try lab.add("web6", c1, id: "c1", ports: http8080)
        #expect(result.ips.map(\.address.address.description).sorted() == ["10.63.0.2", "fd63::2"])
        try lab.add("web6", c2, id: "c2", ports: "")
        let server = try WebServer(c1, page: "hello over v6")
        defer { withExtendedLifetime(server) {} }
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://[2001:db8::1]:8080/") == "hello over v6")
        #expect(try lab.fetch(from: lab.outside.namespace, "http://192.0.2.1:8080/") == "hello over v6")
        #expect(try lab.fetch(from: lab.host, "http://[2001:db8::1]:8080/") == "hello over v6")
        #expect(try lab.fetch(from: lab.host, "http://[fd63::1]:8080/") == "hello over v6")
        #expect(try lab.fetch(from: c2, "http://[2001:db8::1]:8080/") == "hello over v6")
        #expect(try lab.fetch(from: c1, "http://[fd63::1]:8080/") == "hello over v6")
        #expect(try lab.elements("ports_v6").first?.contains(#"["fd63::2",80]"#) == true)

        // [::1]:8080 is not translated: refused at once with nothing listening, and a listener
        // on the host (berth-proxy's place) gets the connection, not the container.
        #expect(try !connectTCP(from: lab.host, to: "::1", port: 8080))
        let peer = try acceptedPeer(in: lab.host, port: 8080, ipv6: true) {
            let connected = try connectTCP(from: lab.host, to: "::1", port: 8080)
            #expect(connected)
        }
        #expect(peer == "::1")
        // 127.0.0.1 is served by DNAT all the same.
        #expect(try lab.fetch(from: lab.host, "http://127.0.0.1:8080/") == "hello over v6")
    }

    /// With br_netfilter loaded (docker, kubernetes), bridged frames pass the inet hooks: DNAT
    /// then happens on the bridge path, and a container reaching its own published port needs
    /// its bridge port to send frames back where they came from (`hairpinMode`, as the
    /// reference bridge plugin and podman configure it).
    @Test func hairpinWithBridgeNetfilter() throws {
        let lab = try PortmapLab()
        guard try lab.bridgeNetfilter(true) else { return }  // module not loaded: nothing to show
        try lab.network("hp", bridge: "br-hp", subnet: "10.69.0.0/24", subnet6: "fd69::/64", bridgeExtra: #", "hairpinMode": true"#)
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        try lab.add("hp", c1, id: "c1", ports: http8080)
        try lab.add("hp", c2, id: "c2", ports: "")
        let server = try WebServer(c1, page: "hairpin")
        defer { withExtendedLifetime(server) {} }
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://192.0.2.1:8080/") == "hairpin")
        for url in ["http://192.0.2.1:8080/", "http://10.69.0.1:8080/", "http://[2001:db8::1]:8080/", "http://[fd69::1]:8080/"] {
            #expect(try lab.fetchEventually(from: c1, url) == "hairpin", "c1 \(url)")
            #expect(try lab.fetch(from: c2, url) == "hairpin", "c2 \(url)")
        }
        #expect(try lab.fetch(from: lab.host, "http://127.0.0.1:8080/") == "hairpin")
    }

    @Test func hostIPRestrictsTheAddress() throws {
        let lab = try PortmapLab()
        try lab.network("web", bridge: "br-web", subnet: "10.60.0.0/24", subnet6: "fd60::/64")
        let c1 = try NetworkNamespace.createAnonymous()
        try lab.add("web", c1, id: "c1", ports: """
            {"hostPort": 8081, "containerPort": 80, "hostIP": "192.0.2.1"},
            {"hostPort": 8082, "containerPort": 80, "protocol": "TCP", "hostIP": "127.0.0.1"},
            {"hostPort": 8083, "containerPort": 80, "hostIP": "2001:db8::1"},
            {"hostPort": 8084, "containerPort": 80, "hostIP": "0.0.0.0"}
            """)
        let server = try WebServer(c1, page: "restricted")
        defer { withExtendedLifetime(server) {} }
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://192.0.2.1:8081/") == "restricted")
        #expect(try lab.fetch(from: lab.host, "http://192.0.2.1:8081/") == "restricted")
        #expect(try !connectTCP(from: lab.host, to: "10.60.0.1", port: 8081))
        #expect(try !connectTCP(from: lab.host, to: "127.0.0.1", port: 8081))
        #expect(try lab.fetch(from: lab.host, "http://127.0.0.1:8082/") == "restricted")
        #expect(try !connectTCP(from: lab.host, to: "192.0.2.1", port: 8082))
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://[2001:db8::1]:8083/") == "restricted")
        #expect(try !connectTCP(from: lab.host, to: "fd60::1", port: 8083))
        #expect(try !connectTCP(from: lab.outside.namespace, to: "192.0.2.1", port: 8083))
        // 0.0.0.0: every IPv4 address, no IPv6 one.
        #expect(try lab.fetch(from: lab.outside.namespace, "http://192.0.2.1:8084/") == "restricted")
        #expect(try !connectTCP(from: lab.outside.namespace, to: "2001:db8::1", port: 8084))
        #expect(try lab.elements("ports_ip_v4").count == 2)
        #expect(try lab.elements("ports_ip_v6").count == 1)
        #expect(try lab.elements("ports_v4").count == 1)
        #expect(try lab.elements("ports_v6").isEmpty)

        // An address the host does not have is refused, and nothing changes.
        let before = try ["ports_v4", "ports_ip_v4", "ports_v6", "ports_ip_v6"].map(lab.elements)
        let c2 = try NetworkNamespace.createAnonymous()
        let refused = try lab.berth("add", "web", c2, id: "c2", ports: #"{"hostPort": 9000, "containerPort": 80, "hostIP": "198.51.100.7"}"#)
        #expect(refused.status != 0 && refused.stderr.contains("198.51.100.7 is not an address of this host"), "\(refused)")
        #expect(try ["ports_v4", "ports_ip_v4", "ports_v6", "ports_ip_v6"].map(lab.elements) == before)
    }

    /// A port another attachment holds fails ADD with a CNI error naming the port and the
    /// holder's network, in one atomic batch: nothing changes (not even the request's free ports).
    @Test func conflictsAreRefusedAndChangeNothing() throws {
        let lab = try PortmapLab()
        try lab.network("alpha", bridge: "br-alpha", subnet: "10.64.0.0/24")
        try lab.network("beta", bridge: "br-beta", subnet: "10.65.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let c3 = try NetworkNamespace.createAnonymous(), c4 = try NetworkNamespace.createAnonymous()
        let first = try lab.add("alpha", c1, id: "c1", ports: http8080 + #", {"hostPort": 9090, "containerPort": 90, "protocol": "udp"}"#)
        let before = try lab.nftMap("ports_v4")

        let second = try lab.berth("add", "alpha", c2, id: "c2", ports: #"{"hostPort": 7070, "containerPort": 70}, "# + http8080)
        #expect(second.status != 0, "\(second)")
        #expect(second.stderr.contains("host port 8080/tcp (every IPv4 address) is already published by another container of network \"alpha\""), "\(second)")
        #expect(try lab.nftMap("ports_v4") == before)
        // ADD again for c1 itself (a retried ADD) takes over its own elements.
        let c1Address = try #require(first.ips.first).address.address
        let again = #"{"cniVersion": "1.0.0", "name": "alpha", "type": "portmap", "runtimeConfig": {"portMappings": [\#(http8080), {"hostPort": 9090, "containerPort": 90, "protocol": "udp"}]}, "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "\#(c1Address)/24"}]}}"#
        let readd = try run(Built.path("portmap"), PluginCall(command: "ADD", containerID: "c1", netns: c1.path, config: again), in: lab.host)
        #expect(readd.status == 0, "\(readd) \(again)")
        #expect(try lab.nftMap("ports_v4") == before)
        // The runtime cleans the failed attachment up; c1's port stays.
        #expect(try lab.berth("del", "alpha", c2, id: "c2", ports: #"{"hostPort": 7070, "containerPort": 70}, "# + http8080).status == 0)
        #expect(try lab.nftMap("ports_v4") == before)

        // From another network: named too.
        let third = try lab.berth("add", "beta", c3, id: "c3", ports: http8080)
        #expect(third.status != 0 && third.stderr.contains("network \"alpha\""), "\(third)")
        // On one address against the port on every address; the plugin's own error, code 100.
        let prev = #""prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.65.0.9/24"}]}"#
        let fourth = try run(Built.path("portmap"), PluginCall(command: "ADD", containerID: "c4", netns: c4.path, config: #"{"cniVersion": "1.0.0", "name": "beta", "type": "portmap", "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "hostIP": "192.0.2.1"}]}, \#(prev)}"#), in: lab.host)
        #expect(fourth.errorCode == 100, "\(fourth)")
        #expect(fourth.json?["msg"]?.stringValue == "portmap: host port 8080/tcp on 192.0.2.1 is already published by another container of network \"alpha\"", "\(fourth)")
        #expect(try lab.elements("ports_ip_v4").isEmpty)
        // Another protocol on the same port is free.
        #expect(try lab.berth("del", "beta", c3, id: "c3", ports: http8080).status == 0)
        try lab.add("beta", c3, id: "c3b", ports: #"{"hostPort": 8080, "containerPort": 80, "protocol": "udp"}"#)
        #expect(try lab.elements("ports_v4").count == 3)
    }

    /// Several ADDs at once asking for one port: exactly one gets it.
    @Test func concurrentAddsForOnePortHaveOneWinner() throws {
        let lab = try PortmapLab()
        try lab.network("race", bridge: "br-race", subnet: "10.66.0.0/24")
        let containers = try (0..<4).map { _ in try NetworkNamespace.createAnonymous() }
        let outputs = try TemporaryDirectory()
        var pids: [Int32] = []
        for (i, container) in containers.enumerated() {
            let fd = open(outputs.file("out\(i)"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            defer { close(fd) }
            pids.append(try Subprocess.spawn(
                Built.path("berth"),
                arguments: ["cni", "add", "race", container.path, "--container-id", "r\(i)", "--cap-args", #"{"portMappings": [\#(http8080)]}"#,
                            "--plugin-dir", Built.directory, "--config-dir", lab.lists.directory.path, "--cache-dir", lab.lists.directory.file("cache")],
                environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], stderr: fd, netnsFD: lab.host.fd))
        }
        let statuses = try pids.map { try Subprocess.wait($0) }
        #expect(statuses.filter { $0 == 0 }.count == 1, "\(statuses)")
        for i in 0..<4 where statuses[i] != 0 {
            let text = try outputs.read("out\(i)")
            #expect(text.contains("host port 8080/tcp (every IPv4 address) is already published"), "\(text)")
        }
        #expect(try lab.elements("ports_v4").count == 1)
    }

    /// DEL removes exactly the attachment's elements: with the cached result, without
    /// prevResult, without the mappings, with the namespace gone, and never an element the
    /// key has since been given to.
    @Test func delRemovesExactlyItsOwnElements() throws {
        let lab = try PortmapLab()
        let masq = #", "masqAll": true"#
        try lab.network("web", bridge: "br-web", subnet: "10.60.0.0/24", subnet6: "fd60::/64", portmap: masq)
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let c3 = try NetworkNamespace.createAnonymous()
        let ports = http8080 + #", {"hostPort": 8443, "containerPort": 443, "hostIP": "192.0.2.1"}"#
        try lab.add("web", c1, id: "c1", ports: ports)
        #expect(try lab.elements("ports_v4").count == 1 && lab.elements("ports_ip_v4").count == 1 && lab.elements("ports_v6").count == 1)
        #expect(try lab.elements("dnat_masq_v4").count == 1 && lab.elements("dnat_masq_v6").count == 1)

        // Direct DEL without prevResult and with the namespace gone (CNI_NETNS names nothing).
        let plugin = #"{"cniVersion": "1.0.0", "name": "web", "type": "portmap", "masqAll": true, "runtimeConfig": {"portMappings": [\#(ports)]}}"#
        let del = try run(Built.path("portmap"), PluginCall(command: "DEL", containerID: "c1", netns: "/run/netns/berth-test-gone", config: plugin), in: lab.host)
        #expect(del.status == 0, "\(del)")
        for map in ["ports_v4", "ports_ip_v4", "ports_v6", "ports_ip_v6", "dnat_masq_v4", "dnat_masq_v6"] {
            #expect(try lab.elements(map).isEmpty, "\(map)")
        }
        // The bridge's elements of the attachment are not portmap's to remove.
        #expect(try lab.elements("own_v4").count == 1)
        #expect(try lab.berth("del", "web", c1, id: "c1", ports: ports).status == 0)

        // Without the mappings either: the portmap sets are searched by owner.
        try lab.add("web", c2, id: "c2", ports: ports)
        let bare = #"{"cniVersion": "1.0.0", "name": "web", "type": "portmap"}"#
        #expect(try run(Built.path("portmap"), PluginCall(command: "DEL", containerID: "c2", config: bare), in: lab.host).status == 0)
        for map in ["ports_v4", "ports_ip_v4", "ports_v6", "dnat_masq_v4", "dnat_masq_v6"] {
            #expect(try lab.elements(map).isEmpty, "\(map)")
        }
        #expect(try lab.berth("del", "web", c2, id: "c2", ports: ports).status == 0)

        // A key taken over by another attachment (c2's element was removed by hand, c3 took
        // the port) stays when c2's DEL comes late, with its cached result.
        try lab.add("web", c2, id: "c2", ports: http8080)
        try must(lab.host, "/usr/sbin/nft", "delete", "element", "inet", "berth", "ports_v4", "{ tcp . 8080 }")
        try must(lab.host, "/usr/sbin/nft", "delete", "element", "inet", "berth", "ports_v6", "{ tcp . 8080 }")
        let third = try lab.add("web", c3, id: "c3", ports: http8080)
        #expect(try lab.berth("del", "web", c2, id: "c2", ports: http8080).status == 0)
        let left = try lab.elements("ports_v4")
        let address = try #require(third.ips.first { $0.address.isIPv4 }).address.address
        #expect(left.count == 1 && left.first?.contains("\"\(address)\"") == true, "\(left)")
        #expect(try lab.berth("del", "web", c3, id: "c3", ports: http8080).status == 0)
        #expect(try lab.elements("ports_v4").isEmpty)
        // DEL again, and DEL of what never was, succeed.
        #expect(try lab.berth("del", "web", c3, id: "c3", ports: http8080).status == 0)
        #expect(try run(Built.path("portmap"), PluginCall(command: "DEL", containerID: "never", config: plugin), in: lab.host).status == 0)
    }

    @Test func gcRemovesOnlyThisNetworksOrphans() throws {
        let lab = try PortmapLab()
        try lab.network("alpha", bridge: "br-alpha", subnet: "10.64.0.0/24")
        try lab.network("beta", bridge: "br-beta", subnet: "10.65.0.0/24")
        let namespaces = try (0..<4).map { _ in try NetworkNamespace.createAnonymous() }
        for (i, ns) in namespaces.prefix(3).enumerated() {
            try lab.add("alpha", ns, id: "a\(i)", ports: #"{"hostPort": \#(8000 + i), "containerPort": 80}"#)
        }
        try lab.add("beta", namespaces[3], id: "b0", ports: #"{"hostPort": 8100, "containerPort": 80}"#)
        let gc = #"{"cniVersion": "1.1.0", "name": "alpha", "type": "portmap", "cni.dev/valid-attachments": [{"containerID": "a0", "ifname": "eth0"}]}"#
        let out = try run(Built.path("portmap"), PluginCall(command: "GC", containerID: "", config: gc), in: lab.host)
        #expect(out.status == 0, "\(out)")
        let left = try lab.elements("ports_v4")
        #expect(left.count == 2, "\(left)")
        #expect(left.contains { $0.contains(#"["tcp",8000]"#) } && left.contains { $0.contains(#"["tcp",8100]"#) })
        // The bridge's elements are the bridge's to collect.
        #expect(try lab.elements("own_v4").count == 4)
    }

    @Test func checkNoticesAMissingElementAndRouteLocalnet() throws {
        let lab = try PortmapLab()
        try lab.network("web", bridge: "br-web", subnet: "10.60.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous()
        try lab.add("web", c1, id: "c1", ports: http8080)
        #expect(try lab.berth("check", "web", c1, id: "c1", ports: http8080).status == 0)
        try lab.host.writeSysctl("net/ipv4/conf/br-web/route_localnet", "0")
        let localnet = try lab.berth("check", "web", c1, id: "c1", ports: http8080)
        #expect(localnet.status != 0 && localnet.stderr.contains("route_localnet is off for br-web"), "\(localnet)")
        try lab.host.writeSysctl("net/ipv4/conf/br-web/route_localnet", "1")
        try must(lab.host, "/usr/sbin/nft", "delete", "element", "inet", "berth", "ports_v4", "{ tcp . 8080 }")
        let missing = try lab.berth("check", "web", c1, id: "c1", ports: http8080)
        #expect(missing.status != 0 && missing.stderr.contains("tcp/8080 -> 80 is not published"), "\(missing)")
        // STATUS: ready.
        let status = #"{"cniVersion": "1.1.0", "name": "web", "type": "portmap"}"#
        #expect(try run(Built.path("portmap"), PluginCall(command: "STATUS", config: status), in: lab.host).status == 0)
    }

    /// masqAll: the container sees every published-port client as the bridge's address.
    @Test func masqAllHidesTheClientAddress() throws {
        let lab = try PortmapLab()
        try lab.network("plain", bridge: "br-plain", subnet: "10.67.0.0/24")
        try lab.network("masq", bridge: "br-masq", subnet: "10.68.0.0/24", portmap: #", "masqAll": true"#)
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        try lab.add("plain", c1, id: "c1", ports: #"{"hostPort": 8001, "containerPort": 80}"#)
        // An entry a dead attachment left for the address c2 will get is taken over.
        try must(lab.host, "/usr/sbin/nft", "add", "element", "inet", "berth", "dnat_masq_v4", #"{ 10.68.0.2 comment "owner 0123456789abcdef net 01234567" }"#)
        try lab.add("masq", c2, id: "c2", ports: #"{"hostPort": 8002, "containerPort": 80}"#)
        let masqElements = try lab.elements("dnat_masq_v4")
        #expect(masqElements.count == 1 && masqElements.first?.contains("network masq") == true, "\(masqElements)")
        let plain = try acceptedPeer(in: c1, port: 80) { _ = try connectTCP(from: lab.outside.namespace, to: "192.0.2.1", port: 8001) }
        let masked = try acceptedPeer(in: c2, port: 80) { _ = try connectTCP(from: lab.outside.namespace, to: "192.0.2.1", port: 8002) }
        #expect(plain == "192.0.2.2")
        #expect(masked == "10.68.0.1")
    }

    /// The reference README's configurations (cni.dev, plugins/meta/portmap), unchanged but
    /// for `ptp`, which berth does not have (bridge in its place), and a trailing comma JSON
    /// does not allow.
    @Test func referenceReadmeConfigurations() throws {
        let lab = try PortmapLab()
        let bridge = #"{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "ipam": {"type": "host-local", "subnet": "172.16.30.0/24", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "\#(lab.world.data.path)"}}"#
        try lab.lists.write("mynet", plugins: bridge + #", {"type": "portmap", "capabilities": {"portMappings": true}}"#, version: "0.3.1")
        let c1 = try NetworkNamespace.createAnonymous()
        try lab.add("mynet", c1, id: "c1", ports: #"{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}"#)
        let server = try WebServer(c1, page: "readme")
        defer { withExtendedLifetime(server) {} }
        #expect(try lab.fetchEventually(from: lab.outside.namespace, "http://192.0.2.1:8080/") == "readme")
        #expect(try lab.fetch(from: lab.host, "http://127.0.0.1:8080/") == "readme")
        #expect(try lab.berth("del", "mynet", c1, id: "c1", ports: http8080).status == 0)
        #expect(try lab.elements("ports_v4").isEmpty)

        // markMasqBit alone (iptables backend only) is accepted and unused; both it and
        // externalSetMarkChain are refused, as the reference refuses them.
        try lab.lists.write("marked", plugins: bridge + #", {"type": "portmap", "backend": "iptables", "capabilities": {"portMappings": true}, "snat": true, "markMasqBit": 13}"#, version: "0.3.1")
        let c2 = try NetworkNamespace.createAnonymous()
        try lab.add("marked", c2, id: "c2", ports: http8080)
        #expect(try lab.berth("del", "marked", c2, id: "c2", ports: http8080).status == 0)

        let prev = #""prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "172.16.30.9/24"}]}"#
        for (plugin, code, words) in [
            (#"{"type": "portmap", "backend": "iptables", "capabilities": {"portMappings": true}, "snat": true, "markMasqBit": 13, "externalSetMarkChain": "CNI-HOSTPORT-SETMARK", "conditionsV4": ["!", "-d", "192.0.2.0/24"], "conditionsV6": ["!", "-d", "fc00::/7"]}"#, Int64(2), "conditionsV4"),
            (#"{"type": "portmap", "backend": "nftables", "capabilities": {"portMappings": true}, "snat": true, "conditionsV4": ["ip", "daddr", "!=", "192.0.2.0/24"], "conditionsV6": ["ip6", "daddr", "!=", "fc00::/7"]}"#, 2, "conditionsV4"),
            (#"{"type": "portmap", "markMasqBit": 13, "externalSetMarkChain": "KUBE-MARK-MASQ"}"#, 7, "externalSetMarkChain and markMasqBit"),
            (#"{"type": "portmap", "markMasqBit": 32}"#, 7, "markMasqBit"),
        ] {
            let config = String(plugin.dropLast()) + #", "cniVersion": "1.0.0", "name": "x", "runtimeConfig": {"portMappings": [\#(http8080)]}, \#(prev)}"#
            let out = try run(Built.path("portmap"), PluginCall(command: "ADD", netns: c1.path, config: config), in: lab.host)
            #expect(out.errorCode == code, "\(plugin): \(out)")
            #expect(out.json?["msg"]?.stringValue?.contains(words) == true, "\(out)")
        }
    }

    /// Bad mappings are refused with the field named, before anything changes.
    @Test(arguments: [
        (#"{"hostPort": 0, "containerPort": 80}"#, "hostPort"),
        (#"{"hostPort": 8080, "containerPort": 70000}"#, "containerPort"),
        (#"{"hostPort": "8000-8010", "containerPort": 80}"#, "port ranges"),
        (#"{"hostPort": 8080, "containerPort": 80, "protocol": "icmp"}"#, "protocol"),
        (#"{"hostPort": 8080, "containerPort": 80, "hostIP": "localhost"}"#, "hostIP"),
        (#"{"hostPort": 8080, "containerPort": 80}, {"hostPort": 8080, "containerPort": 81}"#, "same host port"),
        (#"{"hostPort": 8080, "containerPort": 80}, {"hostPort": 8080, "containerPort": 80, "hostIP": "127.0.0.1"}"#, "same host port"),
    ])
    func invalidMappingsAreRefused(_ mappings: String, _ words: String) throws {
        let host = try NetworkNamespace.createAnonymous()
        let config = #"{"cniVersion": "1.0.0", "name": "x", "type": "portmap", "runtimeConfig": {"portMappings": [\#(mappings)]}, "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}}"#
        let out = try run(Built.path("portmap"), PluginCall(command: "ADD", netns: "/proc/self/ns/net", config: config), in: host)
        #expect(out.errorCode == 7, "\(out)")
        #expect(out.json?["msg"]?.stringValue?.contains(words) == true, "\(out)")
        #expect(try nft(host, "list", "tables").out.isEmpty)
    }

    /// ADD without mappings passes prevResult through (in the configuration's version) and
    /// touches nothing; ADD without prevResult is refused.
    @Test func passesPrevResultThrough() throws {
        let host = try NetworkNamespace.createAnonymous()
        let prev = #"{"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"version": "4", "address": "10.0.0.2/24", "interface": 0}]}"#
        let config = #"{"cniVersion": "1.0.0", "name": "x", "type": "portmap", "prevResult": \#(prev)}"#
        let out = try run(Built.path("portmap"), PluginCall(command: "ADD", netns: "/proc/self/ns/net", config: config), in: host)
        #expect(out.status == 0, "\(out)")
        #expect(out.json?["cniVersion"]?.stringValue == "1.0.0")
        #expect(out.json?["ips"]?.arrayValue?.first?["address"]?.stringValue == "10.0.0.2/24")
        #expect(try nft(host, "list", "tables").out.isEmpty)
        let alone = #"{"cniVersion": "1.0.0", "name": "x", "type": "portmap", "runtimeConfig": {"portMappings": [\#(http8080)]}}"#
        #expect(try run(Built.path("portmap"), PluginCall(command: "ADD", netns: "/proc/self/ns/net", config: alone), in: host).errorCode == 7)
    }
}

extension PortmapLab {
    /// `nft -j list map inet berth NAME`, as printed (for "nothing changed").
    func nftMap(_ name: String) throws -> String {
        let out = try nft(host, "-j", "list", "map", "inet", "berth", name)
        #expect(out.status == 0, "\(out.err)")
        return out.out
    }
}

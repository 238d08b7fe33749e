import Addressing
import BerthSupport
import Firewall
import Glibc
import Namespaces
import Testing

/// Runs a tool in a namespace and requires success.
@discardableResult
func must(_ ns: NetworkNamespace, _ tool: String, _ arguments: String...) throws -> String {
    let r = try Subprocess.run(tool, arguments: arguments, environment: [:], netnsFD: ns.fd)
    let err = String(decoding: r.stderr, as: UTF8.self)
    try #require(r.status == 0, "\(tool) \(arguments.joined(separator: " ")): \(err)")
    return String(decoding: r.stdout, as: UTF8.self)
}

/// What `busybox nc -w SECONDS HOST PORT` prints from inside `ns` (the server's greeting), or
/// nil when the connection fails.
func connect(from ns: NetworkNamespace, _ host: String, _ port: Int, seconds: Int = 1) throws -> String? {
    let r = try Subprocess.run(
        "/bin/busybox", arguments: ["nc", "-w", String(seconds), host, String(port)], environment: [:], netnsFD: ns.fd)
    let out = String(decoding: r.stdout, as: UTF8.self).trimmingSuffix()
    return r.status == 0 && !out.isEmpty ? out : nil
}

extension String {
    func trimmingSuffix() -> String { String(reversed().drop { $0 == "\n" }.reversed()) }
}

/// A greeting server: `busybox nc -ll -p PORT -e busybox echo TEXT` inside `ns`.
final class Greeter {
    let pid: Int32
    init(_ ns: NetworkNamespace, port: Int, text: String) throws {
        pid = try Subprocess.spawn(
            "/bin/busybox", arguments: ["nc", "-ll", "-p", String(port), "-e", "/bin/busybox", "echo", text],
            environment: [:], netnsFD: ns.fd)
    }
    deinit {
        kill(pid, SIGTERM)
        _ = try? Subprocess.wait(pid)
    }
}

/// A host namespace with bridge brt (10.99.0.1/24) and containers a (.2) and b (.3) on it, and
/// an outside namespace (192.0.2.2) on the host's other link (192.0.2.1) without a route back
/// to the containers, so only masqueraded traffic gets answers.
struct PacketLab {
    let host: NetworkNamespace, a: NetworkNamespace, b: NetworkNamespace, outside: NetworkNamespace
    let socket: FirewallSocket

    init() throws {
        host = try .createAnonymous()
        a = try .createAnonymous()
        b = try .createAnonymous()
        outside = try .createAnonymous()
        let ip = "/usr/sbin/ip"
        try must(host, ip, "link", "add", "brt", "type", "bridge")
        for (name, ns, address) in [("va", a, "10.99.0.2/24"), ("vb", b, "10.99.0.3/24")] {
            try must(host, ip, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns.path)
            try must(host, ip, "link", "set", name, "master", "brt", "up")
            try must(ns, ip, "addr", "add", address, "dev", "eth0")
            try must(ns, ip, "link", "set", "eth0", "up")
            try must(ns, ip, "route", "add", "default", "via", "10.99.0.1")
        }
        try must(host, ip, "link", "add", "ve0", "type", "veth", "peer", "name", "eth0", "netns", outside.path)
        try must(host, ip, "addr", "add", "10.99.0.1/24", "dev", "brt")
        try must(host, ip, "addr", "add", "192.0.2.1/24", "dev", "ve0")
        for link in ["brt", "ve0", "lo"] { try must(host, ip, "link", "set", link, "up") }
        try must(outside, ip, "addr", "add", "192.0.2.2/24", "dev", "eth0")
        try must(outside, ip, "link", "set", "eth0", "up")
        try host.writeSysctl("net/ipv4/ip_forward", "1")
        // br_netfilter, when loaded, makes bridged traffic pass the inet hooks too and hides
        // hairpin mistakes (conntrack fixes the reply on the bridge path). Test without it.
        if Files.exists("/proc/sys/net/bridge/bridge-nf-call-iptables") {
            try host.writeSysctl("net/bridge/bridge-nf-call-iptables", "0")
        }
        // Neighbours resolved before the first connection attempt.
        for ns in [a, b] { try must(ns, "/bin/busybox", "ping", "-c", "1", "-W", "2", "10.99.0.1") }
        try must(outside, "/bin/busybox", "ping", "-c", "1", "-W", "2", "192.0.2.1")
        socket = try FirewallSocket.open(in: host)
    }

    /// Connects, retrying briefly while the server starts listening.
    func greeting(from ns: NetworkNamespace, _ host: String, _ port: Int) throws -> String? {
        for _ in 0..<20 {
            if let text = try connect(from: ns, host, port) { return text }
            usleep(50_000)
        }
        return nil
    }
}

@Suite struct FirewallPacketTests {
    @Test func dnatMasqueradeAndHairpinCarryTraffic() throws {
        let lab = try PacketLab()
        let berth = BerthRuleset.table
        let addressA = IPv4Address(10, 99, 0, 2), addressB = IPv4Address(10, 99, 0, 3)
        let ownerA = Owner(network: "lab", container: "a", ifname: "eth0")
        let ownerB = Owner(network: "lab", container: "b", ifname: "eth0")
        let published = Element(key: [.tcp, 8080], to: [.ipv4(addressB), 80], comment: ownerB.comment)

        var batch = BerthRuleset.installation()
        batch.add(elements: [Element("brt", comment: "network lab")], to: BerthRuleset.bridges)
        batch.add(elements: [Element("brt", "brt", comment: "network lab")], to: BerthRuleset.bridgeSelf)
        batch.add(elements: [Element(.ipv4(addressA), "brt", comment: ownerA.comment), Element(.ipv4(addressB), "brt", comment: ownerB.comment)], to: BerthRuleset.ownV4)
        batch.add(elements: [Element(.ipv4(addressA), comment: ownerA.comment), Element(.ipv4(addressB), comment: ownerB.comment)], to: BerthRuleset.masqV4)
        batch.add(elements: [published], to: BerthRuleset.portsV4)
        try lab.socket.commit(batch)

        let server = try Greeter(lab.b, port: 80, text: "hello-from-b")
        let remote = try Greeter(lab.outside, port: 9000, text: "outside")
        defer { withExtendedLifetime((server, remote)) {} }

        // Published port from outside: DNAT to b.
        #expect(try lab.greeting(from: lab.outside, "192.0.2.1", 8080) == "hello-from-b")
        // a to the outside: only a masqueraded source gets an answer.
        #expect(try lab.greeting(from: lab.a, "192.0.2.2", 9000) == "outside")
        // Hairpin: a reaches b's published port through the host's address.
        #expect(try connect(from: lab.a, "192.0.2.1", 8080) == "hello-from-b")
        // From the host itself (output chain).
        #expect(try connect(from: lab.host, "192.0.2.1", 8080) == "hello-from-b")

        // Published ports on 127.0.0.1, from the host: the output chain's DNAT sends a packet
        // with a loopback source out of the bridge, which the kernel allows only with
        // route_localnet; the 127.0.0.0/8 masquerade then makes the reply come back.
        #expect(try connect(from: lab.host, "127.0.0.1", 8080) == nil)
        try lab.host.writeSysctl("net/ipv4/conf/brt/route_localnet", "1")
        #expect(try connect(from: lab.host, "127.0.0.1", 8080) == "hello-from-b")

        // The draft ruleset's order (return before the hairpin masquerade) breaks hairpin.
        var draft = Batch(berth)
        draft.flush(chain: "postrouting")
        let postrouting = BerthRuleset.rules.filter { $0.chain == "postrouting" }
        for rule in postrouting.dropFirst(2) + postrouting.prefix(2) { draft.add(rule) }
        try lab.socket.commit(draft)
        #expect(try connect(from: lab.a, "192.0.2.1", 8080) == nil)
        try lab.socket.commit(BerthRuleset.installation())
        #expect(try connect(from: lab.a, "192.0.2.1", 8080) == "hello-from-b")

        // DEL of b's attachment: its published port is gone, a's elements stay.
        try lab.socket.commit(BerthRuleset.removal(of: ownerB, listedBy: lab.socket))
        #expect(try connect(from: lab.outside, "192.0.2.1", 8080) == nil)
        #expect(try lab.socket.elements(of: BerthRuleset.ownV4, in: berth).map(\.owner) == [ownerA])
    }
}

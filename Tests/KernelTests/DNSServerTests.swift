import Addressing
import BerthSupport
import DNS
import Glibc
import Namespaces
import Testing

/// berth-dns as built, in namespaces these tests make, with dnsmasq as the upstream in its own
/// namespace. Clients are busybox nslookup in container namespaces and DNSClient asking from
/// container addresses.
@Suite(.serialized) struct DNSServerTests {
    static let networkA = NetworkFile(
        name: "neta", gateways: [IPAddress("10.89.0.1")!, IPAddress("fd89::1")!], domain: "example.test",
        containers: [
            ContainerEntry(id: "aaa1", ipv4: [IPv4Address("10.89.0.5")!], ipv6: [IPv6Address("fd89::5")!], names: ["web1", "www"]),
            ContainerEntry(id: "aaa2", ipv4: [IPv4Address("10.89.0.6")!], names: ["db"]),
        ])
    static let networkB = NetworkFile(
        name: "netb", gateways: [IPAddress("10.90.0.1")!],
        containers: [ContainerEntry(id: "bbb1", ipv4: [IPv4Address("10.90.0.5")!], names: ["api"])])

    /// A lab with networks A and B, stand-in containers on lo, and a server running.
    func lab(upstream: Bool = true) throws -> DNSLab {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1", "fd89::1", "10.89.0.6", "10.90.0.1", "10.90.0.5"])
        if upstream {
            try lab.startUpstream(hosts: [("example.upstream.test", "198.51.100.7"), ("other.upstream.test", "198.51.100.8")])
        }
        try lab.write(Self.networkA)
        try lab.write(Self.networkB)
        try lab.startServer()
        return lab
    }

    @Test func busyboxResolvesNamesAliasesDomainsAAAAAndPTR() throws {
        let lab = try DNSLab()
        // A real container namespace on network A behind a veth; the gateway is the host side.
        let container = try lab.attachedNamespace(hostAddress: "10.89.0.1", address: "10.89.0.5")
        try lab.ip(lab.host, "addr", "add", "fd89::1/64", "dev", "vdns1", "nodad")
        try lab.ip(container, "addr", "add", "fd89::5/64", "dev", "eth0", "nodad")
        try lab.write(Self.networkA)
        try lab.write(Self.networkB)
        try lab.startServer()

        for name in ["web1", "www", "db", "web1.example.test", "db.dns.podman"] {
            let out = try lab.nslookup(name, server: "10.89.0.1", in: container)
            let expected = name.hasPrefix("db") ? "10.89.0.6" : "10.89.0.5"
            #expect(out.contains("Address: \(expected)"), "\(name): \(out)")
        }
        #expect(try lab.nslookup("web1", server: "10.89.0.1", in: container, type: "aaaa").contains("fd89::5"))
        #expect(try lab.nslookup("10.89.0.6", server: "10.89.0.1", in: container).contains("db.example.test"))
        // Over IPv6 too.
        #expect(try lab.nslookup("web1", server: "fd89::1", in: container).contains("10.89.0.5"))
        // Network B's names are not visible from A's container.
        let isolated = try lab.nslookup("api.dns.podman", server: "10.89.0.1", in: container)
        #expect(!isolated.contains("10.90.0.5"), "\(isolated)")
    }

    @Test func answersDependOnWhoAsks() throws {
        let lab = try lab(upstream: false)
        #expect(addresses(try lab.ask("web1", server: "10.89.0.1", source: "10.89.0.6")) == ["10.89.0.5"])
        #expect(addresses(try lab.ask("api", server: "10.90.0.1", source: "10.90.0.5")) == ["10.90.0.5"])
        // B's container cannot see A's names, whichever gateway it asks.
        #expect(try lab.ask("web1.dns.podman", server: "10.90.0.1", source: "10.90.0.5").rcode == .nameError)
        #expect(try lab.ask("web1.dns.podman", server: "10.89.0.1", source: "10.90.0.5").rcode == .nameError)
        #expect(try lab.ask("api.dns.podman", server: "10.89.0.1", source: "10.89.0.6").rcode == .nameError)
        // Not an open resolver: nothing listens on other addresses.
        #expect(throws: (any Error).self) { try lab.ask("web1", server: "10.89.0.6", timeout: .milliseconds(300)) }
    }

    @Test func tcpQueriesOnOneConnectionAndUDP() throws {
        let lab = try lab(upstream: false)
        let tcp = try lab.ask("www", server: "10.89.0.1", source: "10.89.0.6", tcp: true)
        #expect(addresses(tcp) == ["10.89.0.5"])
        #expect(addresses(try lab.ask("web1", .aaaa, server: "fd89::1", tcp: true)) == ["fd89::5"])
        let ptr = try lab.ask(DNSName(reverseOf: IPAddress("10.89.0.5")!).description, .ptr, server: "10.89.0.1", tcp: true)
        #expect(addresses(ptr) == ["web1.example.test.", "www.example.test."])
    }

    @Test func forwardsCachesAndFailsWithServfail() throws {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1", "fd89::1", "10.89.0.6"])
        let upstream = try lab.startUpstream(hosts: [("example.upstream.test", "198.51.100.7"), ("other.upstream.test", "198.51.100.8")])
        try lab.write(Self.networkA)
        try lab.startServer()

        let first = try lab.ask("example.upstream.test", server: "10.89.0.1", source: "10.89.0.6", edns: 1232)
        #expect(addresses(first) == ["198.51.100.7"])
        #expect(first.opt != nil)  // EDNS passed through
        #expect(try lab.ask("nosuch.upstream.test", server: "10.89.0.1").rcode == .nameError)
        // The upstream goes away: the cached answer is still served, with an aged TTL...
        lab.stop(upstream)
        sleep(1)
        let cached = try lab.ask("example.upstream.test", server: "10.89.0.1", source: "10.89.0.6", edns: 1232)
        #expect(addresses(cached) == ["198.51.100.7"])
        #expect((cached.answers.first?.ttl ?? 300) < 300)
        // ...and what was never asked gets SERVFAIL within the bound (700 ms here), not silence.
        let start = monotonicNanoseconds()
        let failed = try lab.ask("other.upstream.test", server: "10.89.0.1", timeout: .seconds(3))
        #expect(failed.rcode == .serverFailure)
        #expect(monotonicNanoseconds() - start < 1_500_000_000)
    }

    @Test func truncatedUpstreamAnswersAreFetchedOverTCP() throws {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1"])
        // 40 addresses: more than 512 bytes, so dnsmasq truncates over UDP without EDNS.
        try lab.startUpstream(hosts: (1...40).map { ("big.upstream.test", "198.51.100.\($0)") })
        try lab.write(Self.networkA)
        try lab.startServer()
        // The client asks over TCP without EDNS; berth-dns asks UDP, gets TC, retries TCP.
        let big = try lab.ask("big.upstream.test", server: "10.89.0.1", tcp: true)
        #expect(big.answers.count == 40)
        // Over UDP without EDNS the client is told to retry over TCP.
        let udp = try lab.ask("big.upstream.test", server: "10.89.0.1")
        #expect(udp.isTruncated)
    }

    @Test func networkUpstreamsAndFallbackInOrder() throws {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1"])
        try lab.startUpstream(hosts: [("example.upstream.test", "198.51.100.7")])
        // The first upstream does not exist; the second answers.
        var network = Self.networkA
        network.upstreams = [IPAddress("192.0.2.77")!, DNSLab.upstreamAddress]
        try lab.write(network)
        try lab.writeResolvConf(["192.0.2.78"])
        try lab.startServer()
        #expect(addresses(try lab.ask("example.upstream.test", server: "10.89.0.1")) == ["198.51.100.7"])
    }

    @Test func reloadsOnChangesAndFollowsResolvConf() throws {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1", "10.91.0.1"])
        try lab.writeResolvConf(["192.0.2.78"])  // nothing there
        try lab.write(Self.networkA)
        try lab.startServer()
        #expect(try lab.ask("example.upstream.test", server: "10.89.0.1").rcode == .serverFailure)
        try lab.startUpstream(hosts: [("example.upstream.test", "198.51.100.7")])
        try lab.writeResolvConf(["192.0.2.53"])
        usleep(100_000)
        #expect(addresses(try lab.ask("example.upstream.test", server: "10.89.0.1")) == ["198.51.100.7"])

        // A new network: its gateway is bound without a restart (no SIGHUP: inotify).
        let c = NetworkFile(
            name: "netc", gateways: [IPAddress("10.91.0.1")!],
            containers: [ContainerEntry(id: "ccc1", ipv4: [IPv4Address("10.91.0.5")!], names: ["late"])])
        try lab.write(c)
        var answered = false
        for _ in 0..<50 where !answered {
            answered = (try? lab.ask("late", server: "10.91.0.1", timeout: .milliseconds(100))).map { addresses($0) == ["10.91.0.5"] } ?? false
        }
        #expect(answered)
        // Removing it closes its address.
        try lab.remove("netc")
        usleep(200_000)
        #expect(throws: (any Error).self) { try lab.ask("late", server: "10.91.0.1", timeout: .milliseconds(200)) }
    }

    @Test func bindsAGatewayThatAppearsLater() throws {
        let lab = try DNSLab()
        try lab.write(Self.networkA)  // 10.89.0.1 is not on any interface yet
        try lab.startServer()
        try lab.addHostAddresses(["10.89.0.1"])
        #expect(addresses(try lab.ask("web1", server: "10.89.0.1")) == ["10.89.0.5"])
    }

    /// A container is added while clients hammer the server: every query gets its answer,
    /// and the new container is answered as soon as the reload is through.
    @Test func containerAddedDuringAQueryStormDropsNothing() throws {
        let lab = try lab(upstream: false)
        let server = try #require(ConfigDirectory.readPID(lab.directory))
        var grown = Self.networkA
        grown.containers.append(ContainerEntry(id: "aaa3", ipv4: [IPv4Address("10.89.0.9")!], names: ["fresh"]))
        let total = 4000
        let (received, freshAnswered) = try lab.host.run { () throws -> (Int, Int) in
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var size: Int32 = 8 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4)
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = UInt16(53).bigEndian
            to.sin_addr.s_addr = IPv4Address("10.89.0.1")!.value.bigEndian
            var got = 0, fresh = 0
            var seen = Set<UInt16>()
            var buffer = [UInt8](repeating: 0, count: 1500)
            func drain(blocking: Bool) {
                while got < total {
                    let n = recv(fd, &buffer, buffer.count, blocking ? 0 : Int32(MSG_DONTWAIT))
                    if n < 12 { return }
                    let id = UInt16(buffer[0]) << 8 | UInt16(buffer[1])
                    guard seen.insert(id).inserted else { continue }
                    got += 1
                    // Odd IDs ask for the container that is added mid-storm.
                    if id & 1 == 1, buffer[3] & 0xF == 0, buffer[7] > 0 { fresh += 1 }
                }
            }
            for i in 0..<total {
                let query = DNSMessage.query(id: UInt16(i), name: DNSName(i & 1 == 1 ? "fresh" : "db")!, type: .a).encoded()
                _ = withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, query, query.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if i == total / 4 {
                    try Files.writeAtomically("\(lab.directory)/neta", Array(grown.text.utf8), durable: false)
                    kill(server, SIGHUP)
                }
                if i % 250 == 0 { kill(server, SIGHUP) }  // and reload over and over
                if i % 50 == 0 { drain(blocking: false) }
            }
            drain(blocking: true)
            return (got, fresh)
        }
        #expect(received == total, "answered \(received) of \(total)")
        #expect(freshAnswered > total / 4, "the new container was answered \(freshAnswered) times")
        #expect(addresses(try lab.ask("fresh", server: "10.89.0.1")) == ["10.89.0.9"])
    }

    /// Random junk at the live server, seeded and bounded: it keeps answering.
    @Test func survivesMalformedTraffic() throws {
        let lab = try lab(upstream: false)
        let server = try #require(ConfigDirectory.readPID(lab.directory))
        try lab.host.run {
            var rng = LinearCongruential(state: 0xD15E_A5E)
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = UInt16(53).bigEndian
            to.sin_addr.s_addr = IPv4Address("10.89.0.1")!.value.bigEndian
            let seed = DNSMessage.query(id: 1, name: DNSName("web1.example.test")!, type: .a, edns: 1232).encoded()
            for i in 0..<5000 {
                var bytes = seed
                if i % 3 == 0 {
                    bytes = (0..<Int.random(in: 0...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                } else {
                    for _ in 0..<Int.random(in: 1...8, using: &rng) {
                        bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                    if i % 5 == 0 { bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng)) }
                }
                _ = withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            // Junk over TCP too: a length prefix promising more than comes, then garbage.
            let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(tcp) }
            _ = withUnsafePointer(to: &to) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(tcp, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let junk: [UInt8] = [0, 30, 0xC0, 0x0C, 0xC0, 0x0C] + Array(repeating: 0xFF, count: 40)
            _ = send(tcp, junk, junk.count, Int32(MSG_NOSIGNAL))
        }
        #expect(isBerthDNS(server))
        #expect(addresses(try lab.ask("web1", server: "10.89.0.1")) == ["10.89.0.5"])
        #expect(addresses(try lab.ask("web1", server: "10.89.0.1", tcp: true)) == ["10.89.0.5"])
    }

    @Test func exitsWhenTheLastNetworkIsGone() throws {
        let lab = try lab(upstream: false)
        let pid = try #require(ConfigDirectory.readPID(lab.directory))
        try lab.remove("neta")
        usleep(100_000)
        #expect(lab.waitExit(pid, seconds: 0.2) == nil)  // B is still there
        #expect(addresses(try lab.ask("api", server: "10.90.0.1")) == ["10.90.0.5"])
        // A network whose containers are all gone (netavark leaves the gateway line) counts as gone.
        var empty = Self.networkB
        empty.containers = []
        try lab.write(empty)
        #expect(lab.waitExit(pid, seconds: 3) == 0)
        #expect(!Files.exists("\(lab.directory)/\(ConfigDirectory.pidFileName)"))
    }

    /// netavark removes the whole directory with its last network.
    @Test func exitsWhenTheDirectoryIsRemoved() throws {
        let lab = try lab(upstream: false)
        let pid = try #require(ConfigDirectory.readPID(lab.directory))
        _ = try Subprocess.run("/bin/rm", arguments: ["-rf", lab.directory], environment: [:])
        #expect(lab.waitExit(pid, seconds: 3) == 0)
    }

    @Test func daemonModeReturnsWhenReady() throws {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1"])
        try lab.write(Self.networkA)
        try lab.writeResolvConf(["192.0.2.53"])
        let out = try Subprocess.run(
            Built.path("berth-dns"), arguments: ["-c", lab.directory, "-p", "53", "--resolv-conf", "\(lab.directory)/resolv.conf", "run"],
            environment: [:], netnsFD: lab.host.fd)
        #expect(out.status == 0, "\(String(decoding: out.stderr, as: UTF8.self))")
        // Listening as soon as the command returned: no retry loop here.
        #expect(addresses(try lab.ask("web1", server: "10.89.0.1", timeout: .milliseconds(500))) == ["10.89.0.5"])
        let pid = try #require(ConfigDirectory.readPID(lab.directory))
        #expect(isBerthDNS(pid))
        try lab.remove("neta")
        var gone = false
        for _ in 0..<300 where !gone {
            gone = !isBerthDNS(pid)
            usleep(10_000)
        }
        #expect(gone)
    }
}

/// Knuth's MMIX LCG: a seeded, reproducible stream for the live-server fuzz.
struct LinearCongruential: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state ^ (state >> 29)
    }
}

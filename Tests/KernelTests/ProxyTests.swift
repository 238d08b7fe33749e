import BerthSupport
import Glibc
import Namespaces
@testable import Proxy
import Testing

/// berth-proxy as a runtime runs it: in a "host" namespace, forwarding to a "container"
/// namespace over a veth pair, observed with busybox wget and the test's own sockets.
@Suite struct ProxyTests {
    let c = ProxyLab.containerIP

    func docker(_ hostIP: String, _ hostPort: Int, _ containerIP: String, _ containerPort: Int, proto: String = "tcp")
        -> [String]
    {
        ["-proto", proto, "-host-ip", hostIP, "-host-port", "\(hostPort)", "-container-ip", containerIP,
         "-container-port", "\(containerPort)"]
    }

    @Test func wildcardHostIPServesLoopbackAndHostAddressOverIPv4Only() throws {
        let lab = try ProxyLab()
        let proxy = try lab.proxy(docker("0.0.0.0", 8080, c, 80))
        #expect(proxy.readiness == "0\n")
        #expect(try lab.get("http://127.0.0.1:8080/") == ProxyLab.page)
        #expect(try lab.get("http://\(ProxyLab.hostIP):8080/") == ProxyLab.page)
        #expect(try lab.get("http://[::1]:8080/") == nil, "0.0.0.0 is IPv4 only, as docker-proxy's tcp4")
    }

    @Test func hostIPRestrictsTheListeningAddress() throws {
        let lab = try ProxyLab()
        let local = try lab.proxy(docker("127.0.0.1", 8080, c, 80))
        let external = try lab.proxy(docker(ProxyLab.hostIP, 8081, c, 80))
        #expect(local.readiness == "0\n" && external.readiness == "0\n")
        #expect(try lab.get("http://127.0.0.1:8080/") == ProxyLab.page)
        #expect(try lab.get("http://\(ProxyLab.hostIP):8080/") == nil)
        #expect(try lab.get("http://\(ProxyLab.hostIP):8081/") == ProxyLab.page)
        #expect(try lab.get("http://127.0.0.1:8081/") == nil)
    }

    @Test func ipv6LoopbackToIPv6Container() throws {
        let lab = try ProxyLab()
        let proxy = try lab.proxy(docker("::1", 8080, ProxyLab.containerIP6, 80))
        #expect(proxy.readiness == "0\n")
        #expect(try lab.get("http://[::1]:8080/") == ProxyLab.page)
        #expect(try lab.get("http://127.0.0.1:8080/") == nil)
        // And across families: IPv6 loopback to the container's IPv4 address.
        let mixed = try lab.proxy(["--mapping", "tcp:[::1]:8081:\(c):80"])
        #expect(mixed.readiness == "0\n")
        #expect(try lab.get("http://[::1]:8081/") == ProxyLab.page)
    }

    @Test func udpEchoWithOneFlowPerClientAndIdleExpiry() throws {
        let lab = try ProxyLab(httpd: false)
        let echo = try TestSocket(in: lab.container, family: AF_INET, type: SOCK_DGRAM)
        try echo.bind(address(c, 5300))
        let proxy = try lab.proxy(docker("127.0.0.1", 5300, c, 5300, proto: "udp") + ["--udp-timeout", "0.5"])
        #expect(proxy.readiness == "0\n")
        let idle = proxy.process.descriptorCount
        let clients = try (0..<2).map { _ in try TestSocket(in: lab.host, family: AF_INET, type: SOCK_DGRAM) }
        var senders: [SocketAddress] = []
        for (i, client) in clients.enumerated() {
            for round in 0..<2 {
                #expect(client.sendTo("ping \(i).\(round)", address("127.0.0.1", 5300)))
                let received = try #require(echo.receiveFrom())
                #expect(received.0 == "ping \(i).\(round)")
                senders.append(received.1)
                #expect(echo.sendTo("pong \(i).\(round)", received.1))
                let reply = try #require(client.receiveFrom())
                #expect(reply.0 == "pong \(i).\(round)")
                #expect(reply.1 == address("127.0.0.1", 5300), "replies come from the published address")
            }
        }
        // Each client keeps its own flow (source) toward the container.
        #expect(senders[0] == senders[1] && senders[2] == senders[3] && senders[0] != senders[2])
        #expect(proxy.process.descriptorCount == idle + 2)
        try waitUntil("idle flows expire") { proxy.process.descriptorCount == idle }
    }

    @Test func udpFlowLimitDropsNewClientsWithALogLine() throws {
        let lab = try ProxyLab(httpd: false)
        let echo = try TestSocket(in: lab.container, family: AF_INET, type: SOCK_DGRAM)
        try echo.bind(address(c, 5300))
        let proxy = try lab.proxy(docker("127.0.0.1", 5300, c, 5300, proto: "udp") + ["--max-udp-flows", "1"])
        #expect(proxy.readiness == "0\n")
        let first = try TestSocket(in: lab.host, family: AF_INET, type: SOCK_DGRAM)
        let second = try TestSocket(in: lab.host, family: AF_INET, type: SOCK_DGRAM)
        #expect(first.sendTo("one", address("127.0.0.1", 5300)))
        #expect(echo.receiveFrom()?.0 == "one")
        #expect(second.sendTo("two", address("127.0.0.1", 5300)))
        try waitUntil("flow limit logged") { proxy.log.contains("UDP flow limit reached: 1 flows (--max-udp-flows 1)") }
        #expect(first.sendTo("three", address("127.0.0.1", 5300)))
        #expect(echo.receiveFrom()?.0 == "three", "the datagram of the second client was dropped, the first still flows")
    }

    @Test func raisesTheDescriptorLimitToTheHardLimit() throws {
        let lab = try ProxyLab(httpd: false)
        let proxy = try ChildProcess("/usr/bin/prlimit", ["--nofile=256:4096", "--", Built.path("berth-proxy")]
                                     + docker("127.0.0.1", 8080, c, 80), in: lab.host, log: lab.directory + "/limit.log")
        try waitUntil("proxy listens") { lab.canConnect(lab.host, address("127.0.0.1", 8080)) }
        let limits = try Files.readText("/proc/\(proxy.pid)/limits")
        let line = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") } ?? ""
        #expect(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).prefix(2) == ["4096", "4096"], "\(line)")
    }

    @Test func readinessReportsSuccessBadFlagsAndPortInUse() throws {
        let lab = try ProxyLab(httpd: false)
        let ok = try lab.proxy(docker("127.0.0.1", 8080, c, 80))
        #expect(ok.readiness == "0\n")

        let taken = try lab.proxy(docker("127.0.0.1", 8080, c, 80))
        #expect(taken.readiness == "1\nlisten tcp4 127.0.0.1:8080: bind: address already in use")
        #expect(taken.process.wait(timeout: .seconds(5)) == 1)
        #expect(taken.log.contains("berth-proxy: listen tcp4 127.0.0.1:8080: bind: address already in use"))

        let bad = try lab.proxy(docker("127.0.0.1", 8081, c, 80) + ["-host-port", "http"])
        #expect(bad.readiness.hasPrefix("1\ninvalid -host-port 'http'"))
        #expect(bad.process.wait(timeout: .seconds(5)) == 2)
        #expect(bad.log.contains("berth-proxy: invalid -host-port 'http'"))

        let unknown = try lab.proxy(["-frobnicate", "1"])
        #expect(unknown.readiness.hasPrefix("1\nflag provided but not defined: -frobnicate"))
        #expect(unknown.process.wait(timeout: .seconds(5)) == 2)

        let sctp = try lab.proxy(docker("127.0.0.1", 8082, c, 80, proto: "sctp"))
        #expect(sctp.readiness.hasPrefix("1\nunsupported protocol sctp"))
        #expect(sctp.process.wait(timeout: .seconds(5)) != 0)

        // No fd 3 at all: the proxy runs regardless.
        let plain = try ChildProcess(Built.path("berth-proxy"), docker("127.0.0.1", 8083, c, 80), in: lab.host,
                                     log: lab.directory + "/plain.log")
        try waitUntil("proxy without fd 3 listens") { lab.canConnect(lab.host, address("127.0.0.1", 8083)) }
        #expect(plain.isRunning)
    }

    @Test func containerNotListeningResetsTheClientAndProxyKeepsRunning() throws {
        let lab = try ProxyLab()
        let proxy = try lab.proxy(["--mapping", "tcp:127.0.0.1:8080:\(c):81", "--mapping", "tcp:127.0.0.1:8081:\(c):80"])
        #expect(proxy.readiness == "0\n")
        for _ in 0..<3 {
            let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 8080)))
            let start = monotonicNanoseconds()
            #expect(client.receive() == nil && errno == ECONNRESET, "refusal is passed on as a reset")
            #expect(monotonicNanoseconds() - start < 1_000_000_000)
        }
        #expect(proxy.process.isRunning)
        #expect(try lab.get("http://127.0.0.1:8081/") == ProxyLab.page)
        #expect(proxy.log.contains("cannot reach container tcp/\(c):81"))
        #expect(proxy.log.contains("Connection refused"))
    }

    @Test func halfClosePropagatesEachWay() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000))
        #expect(proxy.readiness == "0\n")
        let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000)))
        let accepted = try #require(server.accept())
        #expect(client.send("request"))
        client.shutdownWrite()
        #expect(accepted.receiveAll() == "request", "the client's FIN reaches the container")
        // The other direction still flows after the client's half-close.
        #expect(accepted.send("response part 1, "))
        #expect(accepted.send("part 2"))
        accepted.shutdownWrite()
        #expect(client.receiveAll() == "response part 1, part 2")
    }

    @Test func tenThousandShortConnectionsLeakNoDescriptors() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000))
        #expect(proxy.readiness == "0\n")
        func roundTrip(_ i: Int) throws -> Bool {
            guard let client = try lab.connect(from: lab.host, to: address("127.0.0.1", 9000)),
                client.send("ping \(i)"), let accepted = server.accept(), accepted.receive() == "ping \(i)",
                accepted.send("pong \(i)")
            else { return false }
            accepted.shutdownWrite()
            return client.receiveAll() == "pong \(i)"
        }
        for i in 0..<20 { #expect(try roundTrip(i)) }  // warms the pipe pool
        usleep(300_000)
        let before = proxy.process.descriptorCount
        var failures = 0
        for i in 0..<10_000 where !(try roundTrip(i)) { failures += 1 }
        #expect(failures == 0)
        var after = -1
        try? waitUntil("connections close") {
            after = proxy.process.descriptorCount
            return after <= before + 8
        }
        // The pipe pool may keep a few more idle pipes than after the warm-up; a leak of even
        // one descriptor per hundred connections would show as a hundred.
        #expect(after <= before + 8, "descriptors before \(before), after \(after)")
        #expect(proxy.process.isRunning)
    }

    @Test func idleConnectionsHoldOnlyTheirTwoSockets() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000))
        #expect(proxy.readiness == "0\n")
        let before = proxy.process.descriptorCount
        var pairs: [(TestSocket, TestSocket)] = []
        for i in 0..<20 {
            let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000)))
            let accepted = try #require(server.accept())
            #expect(client.send("hello \(i)") && accepted.receive() == "hello \(i)")
            #expect(accepted.send("hi \(i)") && client.receive() == "hi \(i)")
            pairs.append((client, accepted))
        }
        // Pipes go back to the pool when a direction goes idle; the pool keeps a few.
        let after = proxy.process.descriptorCount
        #expect(after - before <= 2 * 20 + 4, "descriptors before \(before), with 20 idle connections \(after)")
    }

    @Test func connectionLimitLogsAndPausesWithoutSpinning() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000) + ["--max-connections", "5"])
        #expect(proxy.readiness == "0\n")
        var clients = try (0..<8).map { _ in try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000))) }
        var accepted = (0..<5).compactMap { _ in server.accept() }
        #expect(accepted.count == 5)
        #expect(server.accept(waiting: 300) == nil, "the sixth waits in the backlog")
        try waitUntil("limit logged") { proxy.log.contains("connection limit reached: 5 open (--max-connections 5)") }
        let ticks = proxy.process.cpuTicks
        usleep(1_000_000)
        #expect(proxy.process.cpuTicks - ticks < 10, "no busy loop at the limit")
        // One finishes (both ends close; which container socket is whose is not known, so all
        // container ends close and one client): the next client in the backlog is served.
        clients.removeFirst()
        accepted.removeAll()
        #expect(server.accept() != nil)
    }

    @Test func descriptorExhaustionPausesAcceptWithoutSpinning() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000) + ["--max-connections", "1000"])
        #expect(proxy.readiness == "0\n")
        // Room for about five connections beyond what the proxy holds now.
        let limit = proxy.process.descriptorCount + 10
        let prlimit = try Subprocess.run("/usr/bin/prlimit", arguments: ["--pid", "\(proxy.pid)", "--nofile=\(limit):\(limit)"],
                                         environment: [:])
        #expect(prlimit.status == 0)
        let clients = try (0..<20).map { _ in try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000))) }
        var accepted: [TestSocket] = []
        while let one = server.accept(waiting: 500) { accepted.append(one) }
        #expect(accepted.count > 0 && accepted.count < 20, "\(accepted.count) accepted; log: \(proxy.log)")
        try waitUntil("exhaustion logged") { proxy.log.contains("Too many open files (EMFILE)") }
        #expect(proxy.log.contains("pausing accept for 250 ms"))
        let ticks = proxy.process.cpuTicks
        usleep(1_000_000)
        #expect(proxy.process.cpuTicks - ticks < 10, "no busy loop on EMFILE")
        #expect(proxy.process.isRunning)
        _ = clients
    }

    @Test func sigtermStopsAcceptingDrainsOpenConnectionsAndExitsZero() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000) + ["--drain-timeout", "10", "--log-level", "info"])
        #expect(proxy.readiness == "0\n")
        let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000)))
        let accepted = try #require(server.accept())
        proxy.process.signal(SIGTERM)
        try waitUntil("drain started") { proxy.log.contains("stopping: waiting up to") }
        #expect(!lab.canConnect(lab.host, address("127.0.0.1", 9000)), "no longer accepting")
        #expect(proxy.process.isRunning, "still draining")
        #expect(client.send("late request"))
        #expect(accepted.receive() == "late request")
        #expect(accepted.send("late response"))
        #expect(client.receive() == "late response")
        accepted.shutdownWrite()
        client.shutdownWrite()
        #expect(proxy.process.wait(timeout: .seconds(5)) == 0)
    }

    @Test func drainTimeoutBoundsTheWait() throws {
        let lab = try ProxyLab(httpd: false)
        let server = try lab.containerListener(port: 9000)
        let proxy = try lab.proxy(docker("127.0.0.1", 9000, c, 9000) + ["--drain-timeout", "0.3"])
        let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 9000)))
        let accepted = try #require(server.accept())
        let start = monotonicNanoseconds()
        proxy.process.signal(SIGINT)
        #expect(proxy.process.wait(timeout: .seconds(5)) == 0)
        let elapsed = monotonicNanoseconds() - start
        #expect(elapsed >= 250_000_000 && elapsed < 3_000_000_000, "\(elapsed) ns")
        #expect(proxy.log.contains("drain timeout: closing 1 connection(s) still open"))
        _ = (client, accepted)
    }

    @Test func multipleMappingsInOneProcessAndSighupReloadKeepsEstablishedConnections() throws {
        let lab = try ProxyLab()
        let server = try lab.containerListener(port: 9000)
        let file = lab.directory + "/mappings"
        try Files.write(file, Array("""
            # published ports of one container
            tcp:127.0.0.1:8081:\(c):80
            tcp:[::1]:8082:[\(ProxyLab.containerIP6)]:80   # IPv6
            tcp:127.0.0.1:8090:\(c):9000

            """.utf8))
        let proxy = try lab.proxy(["--mappings", file, "--mapping", "tcp:\(ProxyLab.hostIP):8080:\(c):80", "--log-level", "info"])
        #expect(proxy.readiness == "0\n")
        #expect(try lab.get("http://\(ProxyLab.hostIP):8080/") == ProxyLab.page)
        #expect(try lab.get("http://127.0.0.1:8081/") == ProxyLab.page)
        #expect(try lab.get("http://[::1]:8082/") == ProxyLab.page)
        let client = try #require(try lab.connect(from: lab.host, to: address("127.0.0.1", 8090)))
        let accepted = try #require(server.accept())

        try Files.write(file, Array("tcp:127.0.0.1:8081:\(c):80\ntcp:127.0.0.1:8083:\(c):80\n".utf8))
        proxy.process.signal(SIGHUP)
        try waitUntil("new mapping served") { try lab.get("http://127.0.0.1:8083/") == ProxyLab.page }
        #expect(proxy.log.contains("reloaded: 1 added, 2 removed, 0 failed, 3 serving"))
        #expect(!lab.canConnect(lab.host, address("127.0.0.1", 8090)))
        #expect(try lab.get("http://[::1]:8082/") == nil)
        #expect(try lab.get("http://127.0.0.1:8081/") == ProxyLab.page)
        #expect(try lab.get("http://\(ProxyLab.hostIP):8080/") == ProxyLab.page, "command-line mappings stay")
        // The connection accepted through the removed mapping goes on.
        #expect(client.send("still here"))
        #expect(accepted.receive() == "still here")
        #expect(accepted.send("yes"))
        #expect(client.receive() == "yes")

        // A broken file changes nothing.
        try Files.write(file, Array("tcp:127.0.0.1:notaport:\(c):80\n".utf8))
        proxy.process.signal(SIGHUP)
        try waitUntil("reload error logged") { proxy.log.contains("keeping the current mappings") }
        #expect(try lab.get("http://127.0.0.1:8083/") == ProxyLab.page)
    }

    @Test func threadsShareTheMappingsReloadAndStopTogether() throws {
        let lab = try ProxyLab()
        let file = lab.directory + "/mappings"
        try Files.write(file, Array("tcp:127.0.0.1:8081:\(c):80\nudp:127.0.0.1:5300:\(c):5300\n".utf8))
        let proxy = try lab.proxy(["--threads", "2", "--mappings", file, "--log-level", "info"])
        #expect(proxy.readiness == "0\n")
        #expect(proxy.log.contains("on 2 thread(s)"))
        for _ in 0..<10 { #expect(try lab.get("http://127.0.0.1:8081/") == ProxyLab.page) }
        try Files.write(file, Array("tcp:127.0.0.1:8083:\(c):80\n".utf8))
        proxy.process.signal(SIGHUP)
        try waitUntil("new mapping served") { try lab.get("http://127.0.0.1:8083/") == ProxyLab.page }
        try waitUntil("every thread reloaded") {
            (0..<10).allSatisfy { _ in !lab.canConnect(lab.host, address("127.0.0.1", 8081)) }
        }
        for _ in 0..<10 { #expect(try lab.get("http://127.0.0.1:8083/") == ProxyLab.page) }
        proxy.process.signal(SIGTERM)
        #expect(proxy.process.wait(timeout: .seconds(5)) == 0)
    }

    @Test func useListenFDServesTheInheritedSocket() throws {
        let lab = try ProxyLab()
        let listener = try TestSocket(in: lab.host, family: AF_INET, type: SOCK_STREAM)
        try listener.bind(address("127.0.0.1", 8080))
        let proxy = try lab.proxy(docker("127.0.0.1", 8080, c, 80) + ["-use-listen-fd"], extraDescriptors: [listener.fd])
        #expect(proxy.readiness == "0\n")
        #expect(try lab.get("http://127.0.0.1:8080/") == ProxyLab.page)
    }
}

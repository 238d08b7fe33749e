import Addressing
import BerthSupport
import Glibc
import JSON
import Namespaces
import Netlink
import Testing

/// What a bridge plugin does for one container: a "host" namespace with a bridge, a veth whose
/// peer lands in the container namespace under its final name, addresses and default routes.
struct ContainerSetup {
    let host: NetworkNamespace
    let container: NetworkNamespace
    let hostSocket: RouteSocket
    let containerSocket: RouteSocket
    var bridge: Link
    var hostVeth: Link
    var eth0: Link

    static func make() throws -> ContainerSetup {
        let host = try NetworkNamespace.createAnonymous()
        let container = try NetworkNamespace.createAnonymous()
        return try make(
            host: host, container: container, hostSocket: try RouteSocket.open(in: host),
            containerSocket: try RouteSocket.open(in: container))
    }

    /// The netlink part alone: 16 acknowledged requests (13 changes, 3 lookups).
    static func make(
        host: NetworkNamespace, container: NetworkNamespace, hostSocket: RouteSocket, containerSocket: RouteSocket
    ) throws -> ContainerSetup {

        let bridge = try hostSocket.createBridge(name: "br0", mtu: 1400)
        try hostSocket.setUp(index: bridge.index)
        try hostSocket.addAddress(net("10.88.0.1/24"), index: bridge.index)
        try hostSocket.addAddress(net("fd88::1/64"), index: bridge.index, noDAD: true)
        let hostVeth = try hostSocket.createVeth(
            name: "veth1a2b3c4d", peerName: "eth0", peerNamespaceFD: container.fd, mtu: 1400, master: bridge.index)
        try hostSocket.setUp(index: hostVeth.index)

        let eth0 = try #require(try containerSocket.link(named: "eth0"))
        try containerSocket.setUp(index: try containerSocket.index(named: "lo"))
        try containerSocket.setUp(index: eth0.index)
        try containerSocket.addAddress(net("10.88.0.2/24"), index: eth0.index)
        try containerSocket.addAddress(net("fd88::2/64"), index: eth0.index, noDAD: true)
        try containerSocket.addRoute(.defaultRoute(via: ip("10.88.0.1"), interfaceIndex: eth0.index))
        try containerSocket.addRoute(.defaultRoute(via: ip("fd88::1"), interfaceIndex: eth0.index))
        return ContainerSetup(
            host: host, container: container, hostSocket: hostSocket, containerSocket: containerSocket,
            bridge: bridge, hostVeth: hostVeth, eth0: eth0)
    }
}

@Suite struct NetlinkSetupTests {
    @Test func bridgeVethAddressesAndRoutesAsTheKernelSeesThem() throws {
        let setup = try ContainerSetup.make()
        let (host, container) = (setup.host, setup.container)

        // Through the API.
        #expect(setup.bridge.kind == "bridge")
        #expect(setup.bridge.mtu == 1400)
        #expect(setup.hostVeth.kind == "veth")
        #expect(setup.hostVeth.masterIndex == setup.bridge.index)
        #expect(setup.hostVeth.portKind == "bridge")
        #expect(setup.hostVeth.mtu == 1400)
        #expect(setup.hostVeth.linkNamespaceID != nil)
        #expect(setup.hostVeth.linkIndex == setup.eth0.index)
        #expect(setup.eth0.kind == "veth")
        #expect(setup.eth0.mtu == 1400)
        #expect(setup.eth0.masterIndex == nil)
        let eth0 = try #require(try setup.containerSocket.link(index: setup.eth0.index))
        #expect(eth0.isUp)
        #expect(try setup.hostSocket.link(named: "eth0") == nil)
        let containerLinks = try setup.containerSocket.links().map(\.name).sorted()
        #expect(containerLinks == ["eth0", "lo"])
        let addresses = try setup.containerSocket.addresses(index: eth0.index).filter { !$0.address.address.isLinkLocalV6 }
        #expect(Set(addresses.map(\.address)) == [net("10.88.0.2/24"), net("fd88::2/64")])
        let v4 = try #require(addresses.first { $0.address.isIPv4 })
        #expect(v4.broadcast == ip("10.88.0.255"))
        let v6 = try #require(addresses.first { !$0.address.isIPv4 })
        #expect(v6.flags.contains(.noDAD))
        #expect(!v6.flags.contains(.tentative))
        let defaults = try setup.containerSocket.routes().filter(\.isDefault)
        #expect(Set(defaults.compactMap(\.gateway)) == [ip("10.88.0.1"), ip("fd88::1")])
        #expect(defaults.allSatisfy { $0.interfaceIndex == eth0.index && $0.table == Route.mainTable })

        // Through `ip -j`, independently.
        let bridge = try ipObject(host, "-d", "link", "show", "br0")
        #expect(bridge["linkinfo"]?["info_kind"]?.stringValue == "bridge")
        #expect(bridge["mtu"]?.intValue == 1400)
        let veth = try ipObject(host, "-d", "link", "show", "veth1a2b3c4d")
        #expect(veth["master"]?.stringValue == "br0")
        #expect(veth["linkinfo"]?["info_kind"]?.stringValue == "veth")
        #expect(veth["flags"]?.arrayValue?.contains("UP") == true)
        let containerEth0 = try ipObject(container, "link", "show", "eth0")
        #expect(containerEth0["mtu"]?.intValue == 1400)
        #expect(containerEth0["flags"]?.arrayValue?.contains("UP") == true)
        #expect(try ipAddresses(host, "br0").isSuperset(of: ["10.88.0.1/24", "fd88::1/64"]))
        #expect(try ipAddresses(container, "eth0").isSuperset(of: ["10.88.0.2/24", "fd88::2/64"]))
        let v4Default = try ipObject(container, "route", "show", "default")
        #expect(v4Default["gateway"]?.stringValue == "10.88.0.1")
        #expect(v4Default["dev"]?.stringValue == "eth0")
        let v6Default = try ipObject(container, "-6", "route", "show", "default")
        #expect(v6Default["gateway"]?.stringValue == "fd88::1")
    }

    /// Times the whole setup (bridge, veth with the peer placed in the container, v4 + v6
    /// addresses on both sides, links up, two default routes) and prints it; not an assertion.
    @Test func timeTheFullSetup() throws {
        var total: [Duration] = [], requests: [Duration] = []
        for _ in 0..<9 {
            let start = ContinuousClock.now
            let host = try NetworkNamespace.createAnonymous()
            let container = try NetworkNamespace.createAnonymous()
            let hostSocket = try RouteSocket.open(in: host)
            let containerSocket = try RouteSocket.open(in: container)
            let netlinkStart = ContinuousClock.now
            _ = try ContainerSetup.make(
                host: host, container: container, hostSocket: hostSocket, containerSocket: containerSocket)
            let end = ContinuousClock.now
            total.append(end - start)
            requests.append(end - netlinkStart)
        }
        func milliseconds(_ samples: [Duration]) -> String {
            samples.sorted().map { d in
                let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
                return "\((ms * 10).rounded() / 10)"
            }.joined(separator: " ")
        }
        let report = """
            netlink setup, ms sorted: requests only [\(milliseconds(requests))]; \
            with 2 namespaces + 2 sockets [\(milliseconds(total))]

            """
        writeAll(fd: STDERR_FILENO, Array(report.utf8))
    }
}

extension IPAddress {
    var isLinkLocalV6: Bool { if case .v6(let a) = self { a.isLinkLocal } else { false } }
}

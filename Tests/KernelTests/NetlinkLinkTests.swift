import Addressing
import BerthSupport
import Glibc
import JSON
import Namespaces
import Netlink
import Testing

@Suite struct NetlinkLinkTests {
    @Test func upDownMTUMACPromiscuousAllMulticast() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: ns)
        let v0 = try socket.createVeth(name: "v0", peerName: "v1")
        let mac = MACAddress("02:42:ac:11:00:02")!

        try socket.setUp(index: v0.index)
        try socket.setMTU(index: v0.index, 1280)
        try socket.setMAC(index: v0.index, mac)
        try socket.setPromiscuous(index: v0.index, true)
        try socket.setAllMulticast(index: v0.index, true)
        var link = try #require(try socket.link(index: v0.index))
        #expect(link.isUp && link.mtu == 1280 && link.mac == mac)
        #expect(link.isPromiscuous && link.promiscuity == 1 && link.isAllMulticast)
        let seen = try ipObject(ns, "link", "show", "v0")
        let flags = seen["flags"]?.arrayValue ?? []
        #expect(flags.contains("UP") && flags.contains("PROMISC") && flags.contains("ALLMULTI"))
        #expect(seen["mtu"]?.intValue == 1280)
        #expect(seen["address"]?.stringValue == "02:42:ac:11:00:02")

        try socket.setPromiscuous(index: v0.index, false)
        try socket.setAllMulticast(index: v0.index, false)
        try socket.setUp(index: v0.index, false)
        link = try #require(try socket.link(index: v0.index))
        #expect(!link.isUp && !link.isPromiscuous && link.promiscuity == 0 && !link.isAllMulticast)
        #expect(link.operState == .down)
        let after = try ipObject(ns, "link", "show", "v0")["flags"]?.arrayValue ?? []
        #expect(!after.contains("UP") && !after.contains("PROMISC") && !after.contains("ALLMULTI"))

        // Several changes in one request.
        try socket.modifyLink(index: v0.index, LinkChanges(up: true, mtu: 1300))
        link = try #require(try socket.link(index: v0.index))
        #expect(link.isUp && link.mtu == 1300)
    }

    @Test func masterNomasterAndHairpin() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: ns)
        let bridge = try socket.createBridge(name: "br0")
        let v0 = try socket.createVeth(name: "v0", peerName: "v1")
        #expect(v0.masterIndex == nil)

        try socket.setMaster(index: v0.index, master: bridge.index)
        var link = try #require(try socket.link(index: v0.index))
        #expect(link.masterIndex == bridge.index && link.portKind == "bridge" && link.hairpin == false)
        #expect(try ipObject(ns, "link", "show", "v0")["master"]?.stringValue == "br0")

        try socket.setHairpin(index: v0.index, true)
        link = try #require(try socket.link(index: v0.index))
        #expect(link.hairpin == true)
        let port = try ipObject(ns, "-d", "link", "show", "v0")
        #expect(port["linkinfo"]?["info_slave_data"]?["hairpin"]?.boolValue == true)
        try socket.setHairpin(index: v0.index, false)
        #expect(try socket.link(index: v0.index)?.hairpin == false)

        try socket.setMaster(index: v0.index, master: nil)
        link = try #require(try socket.link(index: v0.index))
        #expect(link.masterIndex == nil && link.portKind == nil && link.hairpin == nil)
        #expect(try ipObject(ns, "link", "show", "v0")["master"] == nil)
    }

    @Test func renameMoveAndDelete() throws {
        let first = try NetworkNamespace.createAnonymous()
        let second = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: first)
        let secondSocket = try RouteSocket.open(in: second)
        let v0 = try socket.createVeth(name: "v0", peerName: "v1")
        let v1 = try #require(try socket.link(named: "v1"))

        try socket.rename(index: v0.index, to: "renamed0")
        #expect(try socket.link(named: "v0") == nil)
        #expect(try socket.link(named: "renamed0")?.index == v0.index)
        #expect(try ipObject(first, "link", "show", "renamed0")["ifname"]?.stringValue == "renamed0")

        // Move and rename in one request, onto a name that is taken in the old namespace.
        try socket.moveToNamespace(index: v1.index, namespaceFD: second.fd, newName: "renamed0")
        #expect(try socket.link(named: "v1") == nil)
        let moved = try #require(try secondSocket.link(named: "renamed0"))
        #expect(moved.kind == "veth")
        #expect(try ipObject(second, "link", "show", "renamed0")["ifname"]?.stringValue == "renamed0")

        // Move without a new name.
        let d0 = try socket.createVeth(name: "d0", peerName: "d1")
        try socket.moveToNamespace(index: d0.index, namespaceFD: second.fd)
        #expect(try secondSocket.link(named: "d0") != nil)

        try socket.deleteLink(name: "d1")
        #expect(try secondSocket.link(named: "d0") == nil, "deleting one end removes the pair")
        try socket.deleteLink(index: v0.index)
        #expect(try secondSocket.link(named: "renamed0") == nil)
        #expect(try ipJSON(first, "link", "show").count == 1)
        #expect(try ipJSON(second, "link", "show").count == 1)
    }

    @Test func vethPeerMACAndMTU() throws {
        let host = try NetworkNamespace.createAnonymous()
        let container = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: host)
        let mac = MACAddress("02:00:00:00:00:aa")!, peerMAC = MACAddress("02:00:00:00:00:bb")!
        let veth = try socket.createVeth(
            name: "vh", peerName: "eth0", peerNamespaceFD: container.fd, mtu: 9000, mac: mac, peerMAC: peerMAC)
        #expect(veth.mac == mac && veth.mtu == 9000)
        let peer = try ipObject(container, "link", "show", "eth0")
        #expect(peer["address"]?.stringValue == "02:00:00:00:00:bb")
        #expect(peer["mtu"]?.intValue == 9000)
    }

    /// More links than fit in one receive: the dump arrives in several datagrams.
    @Test func multiPartDump() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: ns)
        for i in 0..<60 { try socket.createVeth(name: "a\(i)", peerName: "b\(i)") }
        let links = try socket.links()
        #expect(links.count == 121)
        #expect(Set(links.map(\.name)).count == 121)
        #expect(try ipJSON(ns, "link", "show").count == 121)
    }

    @Test func bridgeVLANFilteringWhereTheKernelHasIt() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try RouteSocket.open(in: ns)
        let bridge: Link
        do {
            bridge = try socket.createBridge(name: "br0", vlanFiltering: true)
        } catch let error as SystemError where error.errno == EOPNOTSUPP {
            // Kernels built without CONFIG_BRIDGE_VLAN_FILTERING (like this machine's).
            #expect(error.operation == "create bridge" && error.object == "br0")
            let plain = try socket.createBridge(name: "br0")
            // Even "off" is refused: the kernel has no switch to turn.
            expectSystemError(EOPNOTSUPP) { try socket.setVLANFiltering(bridgeIndex: plain.index, true) }
            expectSystemError(EOPNOTSUPP) { try socket.setVLANFiltering(bridgeIndex: plain.index, false) }
            let v0 = try socket.createVeth(name: "v0", peerName: "v1", master: plain.index)
            let vlanError = expectSystemError(EOPNOTSUPP) {
                try socket.addBridgeVLAN(index: v0.index, vid: 10, pvid: true, untagged: true)
            }
            #expect(vlanError?.description.contains("add vlan 10 to v0") == true)
            return
        }
        #expect(bridge.vlanFiltering == true)
        try socket.setVLANFiltering(bridgeIndex: bridge.index, false)
        #expect(try socket.link(index: bridge.index)?.vlanFiltering == false)
        try socket.setVLANFiltering(bridgeIndex: bridge.index, true)
        let v0 = try socket.createVeth(name: "v0", peerName: "v1", master: bridge.index)
        try socket.addBridgeVLAN(index: v0.index, vid: 10, pvid: true, untagged: true)
        let ports = try toolJSON(ns, "/usr/sbin/bridge", "vlan", "show", "dev", "v0")
        let vlans = ports.first?["vlans"]?.arrayValue ?? []
        let vlan10 = try #require(vlans.first { $0["vlan"]?.intValue == 10 })
        #expect(vlan10["flags"]?.arrayValue?.contains("PVID") == true)
        try socket.deleteBridgeVLAN(index: v0.index, vid: 10)
    }
}

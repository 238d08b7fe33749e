import Addressing
import Netlink
import Testing

/// Requests, byte for byte. Expected bytes come either from iproute2 (captured with
/// `strace -e trace=sendmsg -e write=3 ip ...` in a scratch namespace; the test reuses the
/// captured sequence number) or were written out by hand from the uapi structs:
///   nlmsghdr  { u32 len; u16 type; u16 flags; u32 seq; u32 pid }
///   ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change }
///   ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index }
///   rtmsg     { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags }
///   nlattr    { u16 len; u16 type } + payload, padded to 4
/// Types: RTM_NEWLINK 16, DELLINK 17, GETLINK 18, SETLINK 19, NEWADDR 20, DELADDR 21,
/// GETADDR 22, NEWROUTE 24, DELROUTE 25, GETROUTE 26. Flags: REQUEST 1, ACK 4, EXCL 0x200,
/// CREATE 0x400, REPLACE 0x100, DUMP 0x300.
@Suite struct RouteMessageBytesTests {
    /// iproute2's sequence number in the captures.
    let captured: UInt32 = 0x6b0c_0ac8

    func expectBytes(_ request: NetlinkRequest, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let wanted = hex(expected)
        #expect(request.bytes == wanted, "\n got  \(hexText(request.bytes))\n want \(hexText(wanted))", sourceLocation: sourceLocation)
    }

    // MARK: Links

    @Test func vethWithPeerInNamespaceMasterMTUAndMACs() throws {
        let request = try RouteMessage.createVeth(
            name: "veth1a2b3c4d", peerName: "eth0", peerNamespaceFD: 7, mtu: 1400,
            mac: MACAddress("02:00:00:00:00:aa"), peerMAC: MACAddress("02:00:00:00:00:bb"), master: 5)
        expectBytes(request.with(sequence: 1), """
            9c 00 00 00  10 00  05 06  01 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            11 00 03 00  76 65 74 68 31 61 32 62 33 63 34 64 00  00 00 00
            08 00 04 00  78 05 00 00
            0a 00 01 00  02 00 00 00 00 aa  00 00
            08 00 0a 00  05 00 00 00
            4c 00 12 00
              08 00 01 00  76 65 74 68
              40 00 02 00
                3c 00 01 00
                  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                  09 00 03 00  65 74 68 30 00  00 00 00
                  08 00 04 00  78 05 00 00
                  0a 00 01 00  02 00 00 00 00 bb  00 00
                  08 00 1c 00  07 00 00 00
            """)
    }

    @Test func vethSameAsIproute2() throws {
        // ip link add v0 type veth peer name v1
        expectBytes(try RouteMessage.createVeth(name: "v0", peerName: "v1").with(sequence: captured), """
            54 00 00 00 10 00 05 06 c8 0a 0c 6b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            07 00 03 00 76 30 00 00 2c 00 12 00 08 00 01 00 76 65 74 68 20 00 02 00 1c 00 01 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 07 00 03 00 76 31 00 00
            """)
    }

    @Test func bridgeSameAsIproute2() throws {
        // ip link add br0 type bridge
        expectBytes(try RouteMessage.createBridge(name: "br0").with(sequence: captured), """
            38 00 00 00 10 00 05 06 c8 0a 0c 6b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            08 00 03 00 62 72 30 00 10 00 12 00 0a 00 01 00 62 72 69 64 67 65 00 00
            """)
    }

    @Test func bridgeWithMTUMACAndVLANFiltering() throws {
        let request = try RouteMessage.createBridge(
            name: "br0", mtu: 1400, mac: MACAddress("02:00:00:00:00:01"), vlanFiltering: true)
        expectBytes(request.with(sequence: 2), """
            58 00 00 00  10 00  05 06  02 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            08 00 03 00  62 72 30 00
            08 00 04 00  78 05 00 00
            0a 00 01 00  02 00 00 00 00 01  00 00
            1c 00 12 00
              0a 00 01 00  62 72 69 64 67 65  00 00
              0c 00 02 00
                05 00 07 00  01  00 00 00
            """)
    }

    @Test func vlanFilteringOnAnExistingBridgeSameAsIproute2() {
        // ip link set br0 type bridge vlan_filtering 1
        expectBytes(RouteMessage.setVLANFiltering(bridgeIndex: 2, true).with(sequence: 0x6b0c_0bd2), """
            3c 00 00 00 10 00 05 00 d2 0b 0c 6b 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00
            1c 00 12 00 0a 00 01 00 62 72 69 64 67 65 00 00 0c 00 02 00 05 00 07 00 01 00 00 00
            """)
    }

    @Test func dummy() throws {
        expectBytes(try RouteMessage.createDummy(name: "d0").with(sequence: 3), """
            38 00 00 00  10 00  05 06  03 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            07 00 03 00  64 30 00  00
            10 00 12 00  09 00 01 00  64 75 6d 6d 79  00 00 00
            """)
    }

    @Test func setMasterAndNomasterSameAsIproute2() throws {
        // ip link set v0 master br0 (v0 = 4, br0 = 2); ip link set v0 nomaster
        expectBytes(try RouteMessage.modifyLink(index: 4, LinkChanges(master: 2)).with(sequence: captured), """
            28 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            08 00 0a 00 02 00 00 00
            """)
        expectBytes(try RouteMessage.modifyLink(index: 4, LinkChanges(master: 0)).with(sequence: captured), """
            28 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            08 00 0a 00 00 00 00 00
            """)
    }

    @Test func upMTUPromiscRenameSameAsIproute2() throws {
        // ip link set v0 up
        expectBytes(try RouteMessage.modifyLink(index: 4, LinkChanges(up: true)).with(sequence: captured), """
            20 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 04 00 00 00 01 00 00 00 01 00 00 00
            """)
        // ip link set v0 mtu 1300
        expectBytes(try RouteMessage.modifyLink(index: 4, LinkChanges(mtu: 1300)).with(sequence: captured), """
            28 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            08 00 04 00 14 05 00 00
            """)
        // ip link set br0 promisc on
        expectBytes(try RouteMessage.modifyLink(index: 2, LinkChanges(promiscuous: true)).with(sequence: captured), """
            20 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 02 00 00 00 00 01 00 00 00 01 00 00
            """)
        // ip link set br0 name br1
        expectBytes(try RouteMessage.modifyLink(index: 2, LinkChanges(name: "br1")).with(sequence: captured), """
            28 00 00 00 10 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00
            08 00 03 00 62 72 31 00
            """)
    }

    @Test func downAllMulticastAndMAC() throws {
        // IFF_UP 0x1 cleared, IFF_ALLMULTI 0x200 set: flags 0x200, change 0x201.
        let request = try RouteMessage.modifyLink(
            index: 9, LinkChanges(up: false, allMulticast: true, mac: MACAddress("02:42:ac:11:00:02")))
        expectBytes(request.with(sequence: 5), """
            2c 00 00 00  10 00  05 00  05 00 00 00  00 00 00 00
            00 00 00 00  09 00 00 00  00 02 00 00  01 02 00 00
            0a 00 01 00  02 42 ac 11 00 02  00 00
            """)
    }

    @Test func moveToNamespaceAndRenameInOneMessage() throws {
        let request = try RouteMessage.modifyLink(index: 3, LinkChanges(name: "eth0", namespaceFD: 9))
        expectBytes(request.with(sequence: 4), """
            34 00 00 00  10 00  05 00  04 00 00 00  00 00 00 00
            00 00 00 00  03 00 00 00  00 00 00 00  00 00 00 00
            09 00 03 00  65 74 68 30 00  00 00 00
            08 00 1c 00  09 00 00 00
            """)
    }

    @Test func deleteLinkSameAsIproute2AndByName() throws {
        // ip link del v0
        expectBytes(RouteMessage.deleteLink(index: 4).with(sequence: captured), """
            20 00 00 00 11 00 05 00 c8 0a 0c 6b 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            """)
        expectBytes(try RouteMessage.deleteLink(name: "v0").with(sequence: 1), """
            28 00 00 00  11 00  05 00  01 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            07 00 03 00  76 30 00  00
            """)
    }

    @Test func hairpinAndVLANSameAsBridgeTool() {
        // bridge link set dev v0 hairpin on: AF_BRIDGE (7), IFLA_PROTINFO (12) | NLA_F_NESTED
        expectBytes(RouteMessage.setHairpin(index: 4, true).with(sequence: captured + 1), """
            2c 00 00 00 13 00 05 00 c9 0a 0c 6b 00 00 00 00 07 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            0c 00 0c 80 05 00 04 00 01 00 00 00
            """)
        // bridge vlan add dev v0 vid 10 pvid untagged: IFLA_AF_SPEC (26) { IFLA_BRIDGE_VLAN_INFO (2) }
        let vlan = RouteMessage.bridgeVLAN(add: true, index: 4, vid: 10, pvid: true, untagged: true)
        expectBytes(vlan.with(sequence: captured + 1), """
            2c 00 00 00 13 00 05 00 c9 0a 0c 6b 00 00 00 00 07 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00
            0c 00 1a 00 08 00 02 00 06 00 0a 00
            """)
    }

    @Test func vlanOnTheBridgeItselfAndRemoval() {
        // IFLA_BRIDGE_FLAGS (0) = BRIDGE_FLAGS_SELF (2), then the VLAN without flags; RTM_DELLINK.
        expectBytes(RouteMessage.bridgeVLAN(add: false, index: 2, vid: 100, bridgeSelf: true).with(sequence: 6), """
            34 00 00 00  11 00  05 00  06 00 00 00  00 00 00 00
            07 00 00 00  02 00 00 00  00 00 00 00  00 00 00 00
            14 00 1a 00
              06 00 00 00  02 00  00 00
              08 00 02 00  00 00  64 00
            """)
    }

    @Test func getAndDumpLinks() throws {
        // IFLA_EXT_MASK (29) = RTEXT_FILTER_SKIP_STATS (8)
        expectBytes(try RouteMessage.getLink(name: "br0").with(sequence: 7), """
            30 00 00 00  12 00  05 00  07 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            08 00 03 00  62 72 30 00
            08 00 1d 00  08 00 00 00
            """)
        expectBytes(RouteMessage.getLink(index: 5).with(sequence: 7), """
            28 00 00 00  12 00  05 00  07 00 00 00  00 00 00 00
            00 00 00 00  05 00 00 00  00 00 00 00  00 00 00 00
            08 00 1d 00  08 00 00 00
            """)
        expectBytes(RouteMessage.dumpLinks().with(sequence: 8), """
            28 00 00 00  12 00  01 03  08 00 00 00  00 00 00 00
            00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
            08 00 1d 00  08 00 00 00
            """)
    }

    @Test func interfaceNamesAreValidatedBeforeTheKernelSeesThem() {
        for bad in ["", "sixteen-chars-xx", "a/b", "a:b", "a b", ".", ".."] {
            #expect(throws: (any Error).self, "\(bad)") { try RouteMessage.createBridge(name: bad) }
        }
        #expect(throws: Never.self) { try RouteMessage.createBridge(name: "fifteen-chars-x") }
    }

    // MARK: Addresses

    @Test func ipv4AddressWithBroadcastSameAsIproute2() {
        // ip addr add 10.0.0.2/24 brd + dev v0: IFA_LOCAL (2), IFA_ADDRESS (1), IFA_BROADCAST (4)
        expectBytes(RouteMessage.addAddress(IPNetwork("10.0.0.2/24")!, index: 4).with(sequence: captured), """
            30 00 00 00 14 00 05 06 c8 0a 0c 6b 00 00 00 00 02 18 00 00 04 00 00 00 08 00 02 00 0a 00 00 02
            08 00 01 00 0a 00 00 02 08 00 04 00 0a 00 00 ff
            """)
    }

    @Test func ipv6AddressWithNoDADSameAsIproute2() {
        // ip addr add fd00::2/64 dev v0 nodad: IFA_F_NODAD (2) in ifa_flags
        let request = RouteMessage.addAddress(IPNetwork("fd00::2/64")!, index: 4, noDAD: true)
        expectBytes(request.with(sequence: captured), """
            40 00 00 00 14 00 05 06 c8 0a 0c 6b 00 00 00 00 0a 40 02 00 04 00 00 00 14 00 02 00 fd 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 02 14 00 01 00 fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02
            """)
    }

    @Test func pointToPointIPv4HasNoBroadcastAndReplaceFlags() {
        // /31: no broadcast; replace: REQUEST|ACK|REPLACE|CREATE = 0x505
        let request = RouteMessage.addAddress(IPNetwork("10.0.0.0/31")!, index: 2, replace: true)
        expectBytes(request.with(sequence: 9), """
            28 00 00 00  14 00  05 05  09 00 00 00  00 00 00 00
            02 1f 00 00  02 00 00 00
            08 00 02 00  0a 00 00 00
            08 00 01 00  0a 00 00 00
            """)
    }

    @Test func deleteAndDumpAddresses() {
        expectBytes(RouteMessage.deleteAddress(IPNetwork("10.0.0.2/24")!, index: 4).with(sequence: 10), """
            28 00 00 00  15 00  05 00  0a 00 00 00  00 00 00 00
            02 18 00 00  04 00 00 00
            08 00 02 00  0a 00 00 02
            08 00 01 00  0a 00 00 02
            """)
        expectBytes(RouteMessage.dumpAddresses(family: .v6).with(sequence: 11), """
            18 00 00 00  16 00  01 03  0b 00 00 00  00 00 00 00
            0a 00 00 00  00 00 00 00
            """)
    }

    // MARK: Routes

    @Test func ipv4DefaultRouteSameAsIproute2() {
        // ip route add default via 10.0.0.1: table main (254), boot (3), universe (0), unicast (1)
        expectBytes(RouteMessage.addRoute(.defaultRoute(via: IPAddress("10.0.0.1")!)).with(sequence: captured), """
            24 00 00 00 18 00 05 06 c8 0a 0c 6b 00 00 00 00 02 00 00 00 fe 03 00 01 00 00 00 00 08 00 05 00
            0a 00 00 01
            """)
    }

    @Test func ipv6DefaultRouteWithInterface() {
        // No RTA_DST for ::/0; RTA_GATEWAY (5), RTA_OIF (4)
        let route = Route.defaultRoute(via: IPAddress("fd00::1")!, interfaceIndex: 3)
        expectBytes(RouteMessage.addRoute(route).with(sequence: 12), """
            38 00 00 00  18 00  05 06  0c 00 00 00  00 00 00 00
            0a 00 00 00  fe 03 00 01  00 00 00 00
            14 00 05 00  fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01
            08 00 04 00  03 00 00 00
            """)
    }

    @Test func routeWithMetricSourceAndMetricsSameAsIproute2() {
        // ip route add 10.9.0.0/16 via 10.0.0.2 metric 100 mtu 1300 advmss 1200 src 10.0.0.1
        let route = Route(
            destination: IPNetwork("10.9.0.0/16")!, gateway: IPAddress("10.0.0.2"), priority: 100, mtu: 1300,
            advmss: 1200, preferredSource: IPAddress("10.0.0.1"))
        expectBytes(RouteMessage.addRoute(route).with(sequence: 0x6b0c_0aee), """
            50 00 00 00 18 00 05 06 ee 0a 0c 6b 00 00 00 00 02 10 00 00 fe 03 00 01 00 00 00 00 08 00 01 00
            0a 09 00 00 08 00 05 00 0a 00 00 02 08 00 06 00 64 00 00 00 08 00 07 00 0a 00 00 01 14 00 08 00
            08 00 02 00 14 05 00 00 08 00 08 00 b0 04 00 00
            """)
    }

    @Test func deleteRouteSameAsIproute2() {
        // ip route del 10.0.0.0/24 dev v0: protocol 0, scope nowhere (255), type 0
        let route = Route(destination: IPNetwork("10.0.0.0/24")!, interfaceIndex: 4)
        expectBytes(RouteMessage.deleteRoute(route).with(sequence: captured), """
            2c 00 00 00 19 00 05 00 c8 0a 0c 6b 00 00 00 00 02 18 00 00 fe 00 ff 00 00 00 00 00 08 00 01 00
            0a 00 00 00 08 00 04 00 04 00 00 00
            """)
    }

    @Test func linkScopeRouteInALargeTableOnLinkAndReplace() {
        // Table 1000 does not fit rtm_table: RTA_TABLE (15) and rtm_table 0. No gateway: link
        // scope (253). onLink: RTNH_F_ONLINK (4) in rtm_flags. Host bits of the destination cleared.
        let route = Route(destination: IPNetwork("10.7.0.9/24")!, interfaceIndex: 2, table: 1000, onLink: true)
        expectBytes(RouteMessage.addRoute(route, replace: true).with(sequence: 13), """
            34 00 00 00  18 00  05 05  0d 00 00 00  00 00 00 00
            02 18 00 00  00 03 fd 01  04 00 00 00
            08 00 0f 00  e8 03 00 00
            08 00 01 00  0a 07 00 00
            08 00 04 00  02 00 00 00
            """)
        expectBytes(RouteMessage.dumpRoutes(family: .v4).with(sequence: 14), """
            1c 00 00 00  1a 00  01 03  0e 00 00 00  00 00 00 00
            02 00 00 00  00 00 00 00  00 00 00 00
            """)
    }
}

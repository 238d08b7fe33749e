import Addressing
import BerthSupport
import Glibc
import Netlink
import Testing

/// Parsing what the kernel sent, from bytes captured with strace (see Captured.swift). The
/// expected values are what `ip -j` printed for the same objects.
@Suite struct ReplyParsingTests {
    func single(_ bytes: [UInt8]) throws -> NetlinkMessage {
        let messages = try NetlinkMessage.split(bytes[...])
        try #require(messages.count == 1)
        return messages[0]
    }

    @Test func vethBridgePort() throws {
        // {"ifindex":4,"link":"v1","ifname":"v0","flags":["NO-CARRIER","BROADCAST","MULTICAST",
        //  "PROMISC","UP","M-DOWN"],"mtu":1400,"master":"br0","operstate":"LOWERLAYERDOWN",
        //  "address":"02:00:00:00:00:02","promiscuity":2,"allmulti":1,
        //  "linkinfo":{"info_kind":"veth","info_slave_kind":"bridge","info_slave_data":{"hairpin":true,...}}}
        let message = try single(Captured.linkV0)
        #expect(message.type == 16)
        let link = try #require(Link(message))
        #expect(link.index == 4)
        #expect(link.name == "v0")
        #expect(link.linkIndex == 3, "v1")
        #expect(link.linkNamespaceID == nil, "the peer is in the same namespace")
        #expect(link.isUp && link.isPromiscuous && !link.isAllMulticast && !link.isLoopback)
        #expect(link.mtu == 1400)
        #expect(link.masterIndex == 2, "br0")
        #expect(link.operState == .lowerLayerDown)
        #expect(link.operState.description == "LOWERLAYERDOWN")
        #expect(link.mac == MACAddress("02:00:00:00:00:02"))
        #expect(link.promiscuity == 2)
        #expect(link.kind == "veth")
        #expect(link.portKind == "bridge")
        #expect(link.hairpin == true)
        #expect(link.vlanFiltering == nil)
    }

    @Test func bridge() throws {
        // {"ifindex":2,"ifname":"br0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],
        //  "mtu":1400,"operstate":"DOWN","address":"02:00:00:00:00:01","promiscuity":0,
        //  "linkinfo":{"info_kind":"bridge","info_data":{"vlan_filtering":0,...}}}
        let link = try #require(Link(try single(Captured.linkBridge)))
        #expect(link.index == 2 && link.name == "br0")
        #expect(link.isUp && !link.isPromiscuous && link.promiscuity == 0)
        #expect(link.mtu == 1400)
        #expect(link.operState == .down)
        #expect(link.mac == MACAddress("02:00:00:00:00:01"))
        #expect(link.kind == "bridge" && link.vlanFiltering == false)
        #expect(link.masterIndex == nil && link.portKind == nil && link.hairpin == nil)
    }

    @Test func addressDump() throws {
        // {"family":"inet","local":"10.0.0.1","prefixlen":24,"broadcast":"10.0.0.255",
        //  "scope":"global","label":"br0"}, {"family":"inet6","local":"fd00::1","prefixlen":64,
        //  "scope":"global","nodad":true}; both permanent (valid_life_time forever)
        let messages = try NetlinkMessage.split(Captured.addressDump[...])
        #expect(messages.allSatisfy { $0.flags & 0x2 != 0 }, "NLM_F_MULTI")
        let addresses = messages.compactMap(InterfaceAddress.init)
        try #require(addresses.count == 2)
        let v4 = addresses[0], v6 = addresses[1]
        #expect(v4.index == 2 && v6.index == 2)
        #expect(v4.address == IPNetwork("10.0.0.1/24"))
        #expect(v4.broadcast == IPAddress("10.0.0.255"))
        #expect(v4.label == "br0")
        #expect(v4.scope == .universe)
        #expect(v4.flags == .permanent)
        #expect(v6.address == IPNetwork("fd00::1/64"))
        #expect(v6.flags == [.permanent, .noDAD])
        #expect(v6.broadcast == nil)
    }

    @Test func routeDump() throws {
        // {"dst":"10.0.0.0/24","dev":"br0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.1"},
        // {"dst":"10.9.0.0/16","gateway":"10.0.0.2","dev":"br0","protocol":"boot","scope":"global",
        //  "prefsrc":"10.0.0.1","metric":100,"metrics":[{"mtu":1300,"advmss":1200}]}
        let routes = try NetlinkMessage.split(Captured.routeDump[...]).compactMap(Route.init)
        try #require(routes.count == 2)
        #expect(
            routes[0]
                == Route(
                    destination: IPNetwork("10.0.0.0/24")!, interfaceIndex: 2, scope: .link, protocol: .kernel,
                    preferredSource: IPAddress("10.0.0.1")))
        #expect(
            routes[1]
                == Route(
                    destination: IPNetwork("10.9.0.0/16")!, gateway: IPAddress("10.0.0.2"), interfaceIndex: 2,
                    priority: 100, mtu: 1300, advmss: 1200, preferredSource: IPAddress("10.0.0.1")))
        #expect(routes.allSatisfy { $0.table == Route.mainTable && $0.type == .unicast && !$0.isDefault })

        let done = try NetlinkMessage.split(Captured.routeDumpDone[...])
        #expect(done.map(\.type) == [3], "NLMSG_DONE")
        #expect(NetlinkAcknowledgement(donePayload: done[0].payload, flags: done[0].flags)?.errno == 0)
    }

    @Test func errorWithExtendedAckAfterAnEchoedRequest() throws {
        // "Error: Nexthop has invalid gateway." The request is echoed (no NETLINK_CAP_ACK), then
        // NLMSGERR_ATTR_MSG.
        let message = try single(Captured.invalidGateway)
        #expect(message.type == 2, "NLMSG_ERROR")
        let ack = try #require(NetlinkAcknowledgement(errorPayload: message.payload, flags: message.flags))
        #expect(ack.errno == ENETUNREACH)
        #expect(ack.message == "Nexthop has invalid gateway")
        #expect(ack.attributeOffset == nil)
    }

    @Test func errorWithoutExtendedAck() throws {
        // "RTNETLINK answers: File exists"
        let message = try single(Captured.bridgeExists)
        let ack = try #require(NetlinkAcknowledgement(errorPayload: message.payload, flags: message.flags))
        #expect(ack.errno == EEXIST)
        #expect(ack.message == nil)
    }

    @Test func cappedErrorWithMessageAndOffset() throws {
        // Hand-built as the kernel sends it with NETLINK_CAP_ACK: flags NLM_F_CAPPED (0x100) |
        // NLM_F_ACK_TLVS (0x200); error -EINVAL; the request's header only; NLMSGERR_ATTR_MSG (1)
        // and NLMSGERR_ATTR_OFFS (2).
        let bytes = hex("""
            54 00 00 00  02 00  00 03  01 00 00 00  2a 00 00 00
            ea ff ff ff
            20 00 00 00  10 00  05 00  01 00 00 00  00 00 00 00
            27 00 01 00  41 74 74 72 69 62 75 74 65 20 66 61 69 6c 65 64 20
                         70 6f 6c 69 63 79 20 76 61 6c 69 64 61 74 69 6f 6e 00  00
            08 00 02 00  20 00 00 00
            """)
        let message = try single(bytes)
        #expect(message.sequence == 1 && message.portID == 42)
        let ack = try #require(NetlinkAcknowledgement(errorPayload: message.payload, flags: message.flags))
        #expect(ack.errno == EINVAL)
        #expect(ack.message == "Attribute failed policy validation")
        #expect(ack.attributeOffset == 32)
    }

    @Test func positiveAcknowledgement() throws {
        let ack = hex("24 00 00 00  02 00  00 01  07 00 00 00  2a 00 00 00  00 00 00 00  20 00 00 00 10 00 05 00 07 00 00 00 00 00 00 00")
        let message = try single(ack)
        #expect(NetlinkAcknowledgement(errorPayload: message.payload, flags: message.flags)?.errno == 0)
    }

    @Test func malformedRepliesAreRefusedOrCutShort() throws {
        // A message claiming more bytes than the datagram holds.
        #expect(throws: SystemError.self) { try NetlinkMessage.split(Captured.linkV0[0..<100]) }
        var short = Array(Captured.linkV0[0..<44])
        #expect(throws: SystemError.self) { try NetlinkMessage.split(short[...]) }
        // The same message with its length fixed: the attribute cut in half is dropped.
        short[0] = 44
        short[1] = 0
        let link = try #require(Link(try single(short)))
        #expect(link.index == 4 && link.name == "v0" && link.mtu == 0)
        // Too short for an ifinfomsg: not a link.
        #expect(Link(NetlinkMessage(type: 16, flags: 0, sequence: 0, portID: 0, payload: [0, 0, 0])) == nil)
        #expect(Route(NetlinkMessage(type: 24, flags: 0, sequence: 0, portID: 0, payload: [2])) == nil)
        #expect(InterfaceAddress(NetlinkMessage(type: 20, flags: 0, sequence: 0, portID: 0, payload: [2, 24, 0, 0, 1, 0, 0, 0])) == nil)
        // Trailing bytes shorter than a header are ignored.
        #expect(try NetlinkMessage.split((Captured.routeDumpDone + [0, 0])[...]).count == 1)
    }

    @Test func sequenceNumberPatchTouchesOnlyTheSequence() {
        let request = RouteMessage.deleteLink(index: 4)
        let patched = request.with(sequence: 0x0102_0304)
        #expect(patched.sequence == 0x0102_0304)
        #expect(Array(patched.bytes[8..<12]) == [4, 3, 2, 1])
        #expect(Array(patched.bytes[0..<8]) == Array(request.bytes[0..<8]))
        #expect(Array(patched.bytes[12...]) == Array(request.bytes[12...]))
        #expect(request.type == 17 && request.flags == 5)
    }

    @Test func errorTextNamesOperationObjectErrnoAndKernelMessage() {
        let error = SystemError(
            "add route", object: "0.0.0.0/0 via 10.99.0.1", errno: ENETUNREACH, kernelMessage: "Nexthop has invalid gateway")
        #expect(error.description == "add route 0.0.0.0/0 via 10.99.0.1: Network is unreachable (ENETUNREACH) (kernel: Nexthop has invalid gateway)")
        #expect(SystemError("create dummy", object: "d0", errno: EOPNOTSUPP).description.contains("EOPNOTSUPP"))
    }
}

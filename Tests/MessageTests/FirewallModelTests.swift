import Addressing
@testable import Firewall
import Glibc
import Testing

/// The failing batch of FirewallKernelTests.failedBatchChangesNothingAndNamesTheFailingMessage,
/// as compiled there: begin at sequence 51, the duplicate element's message at 53.
func failingBatch() -> Batch {
    let a = IPv4Address(10, 88, 0, 2), b = IPv4Address(10, 88, 0, 3)
    var batch = Batch(BerthRuleset.table)
    batch.add(elements: [Element(.ipv4(b))], to: BerthRuleset.masqV4)
    batch.add(
        elements: [Element(key: [.udp, 53], to: [.ipv4(b), 53]), Element(key: [.tcp, 8080], to: [.ipv4(a), 80])],
        to: BerthRuleset.portsV4, mode: .create)
    batch.add(Rule(in: "forward", .accept))
    batch.add(elements: [Element(.ipv4(b), "berth0")], to: BerthRuleset.ownV4)
    return batch
}

@Suite struct FirewallErrorMappingTests {
    /// The kernel's answer to that batch (kernel 6.18, NETLINK_CAP_ACK and NETLINK_EXT_ACK on),
    /// captured with `strace -f -e trace=recvmsg -e read=all` around the kernel test.
    static let capturedAck = hex("""
        2c 00 00 00 02 00 00 03  35 00 00 00 d6 40 00 00
        ef ff ff ff 7c 00 00 00  0c 0a 01 06 35 00 00 00
        00 00 00 00 08 00 02 00  58 00 00 00
        """)

    @Test func capturedAckNamesTheMessageAndTheElement() throws {
        let compiled = try failingBatch().compile(sequence: 51)
        let messages = NetlinkMessage.split(Self.capturedAck[...])
        #expect(messages.count == 1)
        let ack = try #require(messages[0].acknowledgement)
        #expect(ack == Acknowledgement(sequence: 53, errno: EEXIST, kernelMessage: nil, offset: 88))
        // The capture's echoed header matches the message we built.
        let failing = try #require(compiled.message(sequence: 53))
        #expect(Array(compiled.bytes(of: failing).prefix(8)) == Array(Self.capturedAck[20..<28]))
        let error = compiled.error(for: [ack])
        #expect(error.description == "create element to map ports_v4 (element tcp . 8080): File exists (EEXIST)")
        #expect(error.operationIndex == 1)
    }

    /// An acknowledgement built by hand from the uapi layout: nlmsghdr, int error, the request's
    /// header (the whole request when not capped), then the TLVs.
    func ack(sequence: UInt32, errno: Int32, offset: UInt32?, message: String? = nil, echo: [UInt8]? = nil) -> [UInt8] {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var tlvs: [UInt8] = []
        if let message {
            let text = Array(message.utf8) + [0]
            tlvs += u16(UInt16(4 + text.count)) + u16(1) + text + [UInt8](repeating: 0, count: (4 - text.count % 4) % 4)
        }
        if let offset { tlvs += u16(8) + u16(2) + u32(offset) }
        let original = echo ?? (u32(16) + u16(0x0a0c) + u16(1) + u32(sequence) + u32(0))
        let flags: UInt16 = (echo == nil ? 0x100 : 0) | (tlvs.isEmpty ? 0 : 0x200)
        let payload = u32(UInt32(bitPattern: -errno)) + original + tlvs
        return u32(UInt32(16 + payload.count)) + u16(2) + u16(flags) + u32(sequence) + u32(1234) + payload
    }

    @Test func uncappedAcksAndKernelTextAreRead() throws {
        let compiled = try failingBatch().compile(sequence: 10)
        let failing = compiled.messages[3]  // ownV4 element
        let bytes = ack(
            sequence: failing.sequence, errno: ENOENT, offset: 20, message: "Set not found",
            echo: Array(compiled.bytes(of: failing)))
        let parsed = try #require(NetlinkMessage.split(bytes[...]).first?.acknowledgement)
        #expect(parsed == Acknowledgement(sequence: failing.sequence, errno: ENOENT, kernelMessage: "Set not found", offset: 20))
        let error = compiled.error(for: [parsed])
        #expect(error.operation == "add element to set own_v4")
        #expect(error.attribute == "set")
        #expect(error.description == "add element to set own_v4 (set): No such file or directory (ENOENT) (kernel: Set not found)")
    }

    @Test func batchLevelErrorsAndSeveralFailures() throws {
        let compiled = try failingBatch().compile(sequence: 100)
        let denied = try #require(NetlinkMessage.split(ack(sequence: 100, errno: EPERM, offset: nil)[...]).first?.acknowledgement)
        #expect(compiled.error(for: [denied]).description == "commit 4 changes to table inet berth: Operation not permitted (EPERM)")

        let rule = compiled.messages[2]
        // Offset of the rule's first expression: header, nfgenmsg, table and chain names, then
        // the expressions' nest header.
        let firstExpression = try #require(NetlinkMessage.split(compiled.bytes(of: rule)).first?.attributes[4]).start + 4
        let acks = [
            Acknowledgement(sequence: 102, errno: EEXIST, offset: 88),
            Acknowledgement(sequence: 103, errno: EINVAL, offset: UInt32(firstExpression)),
        ]
        let error = compiled.error(for: acks)
        #expect(error.operationIndex == 1)
        #expect(error.alsoFailed.count == 1)
        #expect(error.alsoFailed[0].operation == "add rule to chain forward")
        #expect(error.alsoFailed[0].attribute == "expression 1 of 1 (immediate)")
        #expect(error.description.hasSuffix("; also failed: add rule to chain forward (expression 1 of 1 (immediate)): Invalid argument (EINVAL)"))
    }
}

@Suite struct FirewallModelTests {
    @Test func valuesEncodeAsNftStoresThem() throws {
        #expect(try Value.integer(8080).encoded(as: .inetService) == [0x1f, 0x90])
        #expect(try Value.tcp.encoded(as: .inetProto) == [6])
        #expect(try Value.integer(7).encoded(as: .mark) == [7, 0, 0, 0])
        #expect(try Value.string("berth0").encoded(as: .ifname) == Array("berth0".utf8) + [UInt8](repeating: 0, count: 10))
        #expect(try Value.ipv4(IPv4Address(10, 0, 0, 1)).encoded(as: .ipv4Address) == [10, 0, 0, 1])
        #expect(try Concatenation.encode([.ipv4(IPv4Address(10, 0, 0, 1)), "br0"], as: [.ipv4Address, .ifname]).count == 20)
        #expect(try Concatenation.encode([.tcp, 80], as: [.inetProto, .inetService]) == [6, 0, 0, 0, 0, 80, 0, 0])
        #expect(try Concatenation.encode([80], as: [.inetService]) == [0, 80])
        #expect(throws: FirewallError.self) { try Value.integer(70000).encoded(as: .inetService) }
        #expect(throws: FirewallError.self) { try Value.string("0123456789abcdef").encoded(as: .ifname) }
        #expect(throws: FirewallError.self) { try Value.ipv6(IPv6Address("::1")!).encoded(as: .ipv4Address) }
        #expect(throws: FirewallError.self) { try Concatenation.encode([.tcp], as: [.inetProto, .inetService]) }
        let decoded = Concatenation.decode(try Concatenation.encode([.ipv4(IPv4Address(10, 0, 0, 1)), "br0"], as: [.ipv4Address, .ifname]), as: [.ipv4Address, .ifname])
        #expect(decoded == [.ipv4(IPv4Address(10, 0, 0, 1)), "br0"])
    }

    @Test func setTypesRoundTripThroughNftNumbers() {
        for key in BerthRuleset.sets.map(\.key) {
            #expect(DataType.members(id: DataType.concatenationID(key), length: Concatenation.length(key)) == key)
        }
        #expect(DataType.concatenationID([.ipv4Address, .inetProto, .inetService]) == 0x730d)
        #expect(DataType.members(id: 0x1cd, length: 8, fieldLengths: [4, 2]) == [.ipv4Address, .inetService])
    }

    @Test func registersUseNftNumbers() {
        #expect(Register.data(0).netlinkValue == 1)  // NFT_REG_1
        #expect(Register.data(1).netlinkValue == 9)  // NFT_REG32_01
        #expect(Register.data(4).netlinkValue == 2)  // NFT_REG_2
        #expect(Register.data(15).netlinkValue == 23)
        #expect(Register.verdict.netlinkValue == 0)
        for r in (0..<16).map(Register.data) + [.verdict] { #expect(Register(netlinkValue: r.netlinkValue) == r) }
        #expect(Register(netlinkValue: 10) == .data(2))
    }

    @Test func statementsAddTheChecksNftAdds() throws {
        let rule = Rule(in: "c", .match(.tcpDport, equal: 22), .lookup(concat: [.ip6Saddr, .oifname], set: "s"), .drop)
        let inet = try rule.expressions(family: .inet)
        #expect(inet == [
            .meta(.l4proto, into: .data(0)), .compare(.data(0), .equal, [6]),
            .payload(.transport, offset: 2, length: 2, into: .data(0)), .compare(.data(0), .equal, [0, 22]),
            .meta(.nfproto, into: .data(0)), .compare(.data(0), .equal, [10]),
            .payload(.network, offset: 8, length: 16, into: .data(0)), .meta(.oifname, into: .data(4)),
            .lookup(set: "s", from: .data(0)), .verdict(.drop),
        ])
        // No family check in an ip6 table; IPv6 fields refused in an ip table.
        #expect(try rule.expressions(family: .ip6).count == inet.count - 2)
        #expect(throws: FirewallError.self) { try rule.expressions(family: .ip) }
        // Keys longer than the 64 bytes of registers are refused.
        let long = Rule(in: "c", .lookup(concat: [.ip6Saddr, .ip6Daddr, .iifname, .oifname, .mark], set: "s"))
        #expect(throws: FirewallError.self) { try long.expressions(family: .inet) }
    }

    @Test func generationGoesIntoTheBatchBegin() throws {
        var batch = failingBatch()
        let plain = try batch.compile()
        batch.generation = 0x0102_0304
        let guarded = try batch.compile()
        // NFNL_MSG_BATCH_BEGIN: 16-byte header, nfgenmsg (res_id NFNL_SUBSYS_NFTABLES), then
        // NFNL_BATCH_GENID as a big-endian u32 attribute.
        #expect(Array(plain.bytes[0..<4]) == [20, 0, 0, 0])
        #expect(Array(guarded.bytes[0..<28]) == hex("1c000000 1000 0100 01000000 00000000 00 00 000a 0800 0100 01020304"))
        #expect(guarded.bytes.count == plain.bytes.count + 8)
    }

    @Test func replaceDeletesThenCreates() {
        var batch = Batch(BerthRuleset.table)
        let element = Element(.ipv4(IPv4Address(10, 0, 0, 1)), "br0", comment: "owner 0123456789abcdef")
        batch.replace(elements: [element], in: BerthRuleset.ownV4)
        #expect(batch.operations == [.deleteElements(BerthRuleset.ownV4, [element], .ignore), .addElements(BerthRuleset.ownV4, [element], .create)])
    }

    @Test func singleFieldIntervalsAreStartAndEnd() throws {
        let ranges = SetDefinition.set("ranges", .ipv4Address, flags: .interval)
        let range = Element([.ipv4(IPv4Address(10, 1, 0, 0))], keyEnd: [.ipv4(IPv4Address(10, 1, 255, 255))])
        let kernel = try KernelElement.encode(range, of: ranges, forDeletion: false)
        #expect(kernel.map(\.key) == [[10, 1, 0, 0], [10, 2, 0, 0]])
        #expect(kernel.map(\.flags) == [0, 1])  // NFT_SET_ELEM_INTERVAL_END
        let top = Element([.ipv4(IPv4Address(255, 0, 0, 0))], keyEnd: [.ipv4(IPv4Address(255, 255, 255, 255))])
        #expect(try KernelElement.encode(top, of: ranges, forDeletion: false).count == 1)
        let single = Element(.ipv4(IPv4Address(10, 3, 0, 1)))
        #expect(try KernelElement.encode(single, of: ranges, forDeletion: true).map(\.key) == [[10, 3, 0, 1], [10, 3, 0, 2]])
        #expect(throws: FirewallError.self) { try KernelElement.encode(range, of: BerthRuleset.masqV4, forDeletion: false) }
    }

    @Test func largeElementListsAreSplitIntoMessages() throws {
        let elements = (0..<5000).map { (i: Int) -> Element in
            let port = Value.integer(UInt64(10000 + i))
            let address = IPv4Address(10, 88, UInt8(i / 250), UInt8(i % 250 + 2))
            let owner = Owner(network: "n", container: "c\(i)", ifname: "eth0")
            return Element(key: [.tcp, port], to: [.ipv4(address), 80], comment: owner.comment)
        }
        var batch = Batch(BerthRuleset.table)
        batch.add(elements: elements, to: BerthRuleset.portsV4)
        let compiled = try batch.compile()
        #expect(compiled.messages.count > 1)
        #expect(compiled.messages.allSatisfy { $0.range.count < 40 * 1024 })
        #expect(compiled.messages.flatMap(\.elementIndices) == Array(0..<5000))
        // Every message reads back as the elements it was built from.
        let decoded = Decode.elements(innerMessages(compiled), of: BerthRuleset.portsV4)
        #expect(decoded == elements)
    }

    @Test func ownMessagesReadBackAsTheModel() throws {
        let cranges = SetDefinition.set("cranges", .ipv4Address, .inetService, flags: .interval)
        let vm = SetDefinition.map("vm", key: [.ifname], data: .verdict)
        let cases: [(SetDefinition, [Element])] = [
            (BerthRuleset.ownV6, [Element(.ipv6(IPv6Address("fd00::2")!), "berth0", comment: "o")]),
            (cranges, [Element([.ipv4(IPv4Address(10, 0, 0, 0)), 80], keyEnd: [.ipv4(IPv4Address(10, 0, 0, 255)), 90])]),
            (vm, [Element(["eth1"], data: .verdict(.jump("c2"))), Element(["eth2"], data: .verdict(.accept))]),
            (SetDefinition.set("ranges", .ipv4Address, flags: .interval), [Element([.ipv4(IPv4Address(10, 1, 0, 0))], keyEnd: [.ipv4(IPv4Address(10, 1, 255, 255))]), Element(.ipv4(IPv4Address(10, 3, 0, 1)))]),
        ]
        for (set, elements) in cases {
            var batch = Batch(BerthRuleset.table)
            batch.add(elements: elements, to: set)
            #expect(Set(Decode.elements(innerMessages(try batch.compile()), of: set)) == Set(elements), "\(set.name)")
        }
        let compiled = try BerthRuleset.installation().compile()
        let rules = innerMessages(compiled).filter { $0.nftType == 6 }.compactMap(Decode.rule)
        #expect(try rules.map(\.expressions) == BerthRuleset.rules.map { try $0.expressions(family: .inet) })
        let sets = innerMessages(compiled).filter { $0.nftType == 9 }.compactMap(Decode.set)
        #expect(sets.map(\.definition) == BerthRuleset.sets + [BerthRuleset.layout])
    }

    @Test func ownerTagsAreStableAndParse() {
        let a = Owner(network: "net1", container: "c1", ifname: "eth0")
        #expect(a == Owner(network: "net1", container: "c1", ifname: "eth0"))
        #expect(a.tag.count == 16)
        #expect(a.tag == "1efe6e287f257306")  // FNV-1a 64 of "net1\0c1\0eth0", computed independently
        #expect(a != Owner(network: "net1", container: "c1e", ifname: "th0"))  // fields are separated
        #expect(Owner(comment: a.comment) == a)
        #expect(Owner(comment: "network net1") == nil)
        let elements = [Element(.ipv4(IPv4Address(10, 0, 0, 1)), comment: a.comment), Element(.ipv4(IPv4Address(10, 0, 0, 2)))]
        #expect(elements.owned(by: a).count == 1)
        #expect(elements.orphaned(keeping: [a]).isEmpty)  // the other element has no owner tag
        #expect(elements.orphaned(keeping: []).count == 1)
    }
}

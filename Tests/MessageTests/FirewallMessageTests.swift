import Addressing
@testable import Firewall
import Testing

/// The messages of a compiled batch, without batch begin/end.
func innerMessages(_ compiled: CompiledBatch) -> [NetlinkMessage] {
    compiled.messages.map { NetlinkMessage.split(compiled.bytes(of: $0)).first! }
}

/// Top-level attributes of an nf_tables message as (type, bytes) pairs sorted by type, minus
/// `ignoring`. nft puts some attributes in another order than libnftnl (it writes names itself
/// to locate errors); the kernel does not care about order, so neither does the comparison.
func attributeList(_ bytes: [UInt8], ignoring: Set<UInt16> = []) -> [(UInt16, [UInt8])] {
    Attributes(bytes, from: NetlinkMessage.nfnetlinkHeaderLength, to: bytes.count)
        .filter { !ignoring.contains($0.type) }
        .map { ($0.type, Array(bytes[$0.start..<$0.end])) }
        .sorted { $0.0 < $1.0 }
}

/// The message as nft's capture records it: header type and flags, then the same attributes
/// with the same bytes (nested attributes compared byte for byte).
func expectSame(
    _ mine: NetlinkMessage, _ theirs: CapturedMessage, ignoring: Set<UInt16> = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(mine.type == theirs.type, sourceLocation: sourceLocation)
    #expect(mine.flags == theirs.flags, sourceLocation: sourceLocation)
    let header = [UInt8](repeating: 0, count: 16)
    let a = attributeList(mine.bytes, ignoring: ignoring), b = attributeList(header + theirs.bytes, ignoring: ignoring)
    #expect(Array(mine.bytes[16..<20]) == Array(theirs.bytes[0..<4]), "nfgenmsg", sourceLocation: sourceLocation)
    #expect(a.map(\.0) == b.map(\.0), sourceLocation: sourceLocation)
    for ((type, x), (_, y)) in zip(a, b) {
        #expect(hexText(x) == hexText(y), "attribute \(type)", sourceLocation: sourceLocation)
    }
}

let setUserdata: UInt16 = 13  // NFTA_SET_USERDATA: nft keeps its own typeof notes there
let elementListSetID: UInt16 = 4  // NFTA_SET_ELEM_LIST_SET_ID: nft sends its cache's ID

/// Byte-for-byte comparison with what nft 1.0.6 sends for the same objects (captured in a
/// scratch namespace; see NftCapture.swift).
@Suite struct NftComparisonTests {
    @Test func berthRulesetMatchesNft() throws {
        let compiled = try BerthRuleset.installation().compile(sequence: 0)
        let mine = innerMessages(compiled)
        // nft sends no flushes (it creates the chains empty) and orders chains before sets.
        func kind(_ m: NetlinkMessage) -> NetlinkMessageKind { NetlinkMessageKind(m.nftType) }
        // Minus DELRULE (flush), the layout marker set, which the captured ruleset predates, and
        // the removal of earlier layouts' markers (DESTROYSET, 29).
        let layoutName = Array(BerthRuleset.layout.name.utf8) + [0]
        let ours = mine.filter {
            !(kind($0) == .rule && $0.type & 0xff == 8) && !(kind($0) == .set && $0.bytes.windows(ofCount: layoutName.count).contains { Array($0) == layoutName })
                && $0.type & 0xff != 29
        }
        let theirs = NftCapture.berthRuleset
        for k in [NetlinkMessageKind.table, .chain, .set, .rule] {
            let a = ours.filter { kind($0) == k }
            let b = theirs.filter { NetlinkMessageKind($0.type & 0xff) == k }
            #expect(a.count == b.count, "\(k)")
            for (x, y) in zip(a, b) {
                if k == .set {
                    expectSame(x, y, ignoring: [setUserdata])
                    // The key's byte order, which nft needs to print elements, is the first TLV.
                    let theirs = Attributes([UInt8](repeating: 0, count: 16) + y.bytes, from: 20, to: 16 + y.bytes.count)
                    #expect(x.attributes[setUserdata]!.bytes.prefix(6) == theirs[setUserdata]!.bytes.prefix(6))
                } else {
                    expectSame(x, y)
                }
            }
        }
    }

    static let t = Table(.inet, "t")
    static let ranges = SetDefinition.set("ranges", .ipv4Address, flags: .interval)
    static let cranges = SetDefinition.set("cranges", .ipv4Address, .inetService, flags: .interval)
    static let vm = SetDefinition.map("vm", key: [.ifname], data: .verdict)
    static let tmo = SetDefinition("tmo", key: [.ipv4Address], flags: .timeout, timeout: .seconds(30))

    @Test func statementsMatchNft() throws {
        var batch = Batch(Self.t)
        batch.addTable()
        batch.add(Chain("c2"))
        batch.add(.base("c", type: .filter, hook: .forward, priority: .filter, policy: .drop))
        batch.add(.base("n", type: .nat, hook: .prerouting, priority: .dstnat))
        batch.add(.base("p", type: .nat, hook: .postrouting, priority: .srcnat))
        for set in [Self.ranges, Self.cranges, Self.vm, Self.tmo] { batch.add(set) }
        batch.add(Rule(in: "c", comment: "x", .match(.iifname, equal: "berth0"), .match(.oifname, notEqual: "berth0"), .counter, .accept))
        batch.add(Rule(in: "c", .match(.tcpDport, equal: 8080), .notInSet([.ipSaddr], set: "ranges"), .drop))
        batch.add(Rule(in: "c", .verdictMap([.iifname], map: "vm")))
        batch.add(Rule(in: "c", .setMark(0x2a)))
        batch.add(Rule(in: "c", .match(.ipSaddr, in: IPNetwork("10.64.0.0/12")!), .accept))
        batch.add(Rule(in: "c", .match(.ip6Saddr, notIn: IPNetwork("fd00::/8")!), .accept))
        batch.add(Rule(in: "c", .match(.ctOriginalIPSaddr, in: IPNetwork("10.0.0.0/8")!), .accept))
        batch.add(
            Rule(
                in: "n", .match(.ipDaddr, equal: .ipv4(IPv4Address(10, 0, 0, 1))), .match(.tcpDport, equal: 80),
                .dnat(.ipv4, to: .address(.ipv4(IPv4Address(10, 0, 0, 2)), port: 8080))))
        batch.add(
            Rule(
                in: "p", .match(.ip6Daddr, equal: .ipv6(IPv6Address("fd00::1")!)),
                .snat(.ipv6, to: .address(.ipv6(IPv6Address("fd00::2")!)))))
        let mine = innerMessages(try batch.compile(sequence: 0))
        let theirs = NftCapture.extras
        #expect(mine.count == theirs.count)
        for (x, y) in zip(mine, theirs) {
            expectSame(x, y, ignoring: NetlinkMessageKind(x.nftType) == .set ? [setUserdata] : [])
        }
    }

    func elementMessage(_ set: SetDefinition, _ elements: [Element], delete: Bool = false, mode: Batch.Mode = .add, table: Table = BerthRuleset.table) throws -> NetlinkMessage {
        var batch = Batch(table)
        if delete { batch.delete(elements: elements, from: set) } else { batch.add(elements: elements, to: set, mode: mode) }
        let messages = innerMessages(try batch.compile(sequence: 1))
        #expect(messages.count == 1)
        return messages[0]
    }

    @Test func elementsMatchNft() throws {
        let target = [Value.ipv4(IPv4Address(10, 88, 0, 2)), 80]
        expectSame(
            try elementMessage(BerthRuleset.portsV4, [Element(key: [.tcp, 8080], to: target, comment: "owner 0123456789abcdef")]),
            NftCapture.addPortElement, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(BerthRuleset.portsV4, [Element(key: [.tcp, 8080], to: target)], delete: true),
            NftCapture.deletePortElement, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(BerthRuleset.ownV6, [Element(.ipv6(IPv6Address("fd00::2")!), "berth0", comment: "o")]),
            NftCapture.addOwnV6Element, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(
                Self.cranges, [Element([.ipv4(IPv4Address(10, 0, 0, 0)), 80], keyEnd: [.ipv4(IPv4Address(10, 0, 0, 255)), 90], comment: "abc")],
                table: Self.t),
            NftCapture.addConcatenatedRange, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(Self.vm, [Element(["eth1"], data: .verdict(.jump("c2")))], table: Self.t),
            NftCapture.addVerdictElement, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(Self.tmo, [Element([.ipv4(IPv4Address(1, 2, 3, 4))], comment: "x", timeout: .seconds(10))], table: Self.t),
            NftCapture.addTimeoutElement, ignoring: [elementListSetID])
        expectSame(
            try elementMessage(BerthRuleset.bridges, [Element("berth0")], mode: .create),
            NftCapture.createBridgeElement, ignoring: [elementListSetID])
    }
}

extension Array where Element == UInt8 {
    /// Every run of `count` consecutive bytes.
    func windows(ofCount count: Int) -> [ArraySlice<UInt8>] {
        guard count <= self.count else { return [] }
        return (0...(self.count - count)).map { self[$0..<($0 + count)] }
    }
}

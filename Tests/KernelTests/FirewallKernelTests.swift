import Addressing
import BerthSupport
import Firewall
import Glibc
import JSON
import Namespaces
import Testing

/// `nft` run inside the test's namespace: an observer independent of the Firewall module.
func nft(_ ns: NetworkNamespace, _ arguments: String...) throws -> (status: Int32, out: String, err: String) {
    let r = try Subprocess.run("/usr/sbin/nft", arguments: arguments, environment: [:], netnsFD: ns.fd)
    return (r.status, String(decoding: r.stdout, as: UTF8.self), String(decoding: r.stderr, as: UTF8.self))
}

/// The objects of `nft -j list ruleset` (tables, chains, sets, maps, rules), metainfo left out.
func nftObjects(_ ns: NetworkNamespace) throws -> [(kind: String, body: JSON)] {
    let r = try nft(ns, "-j", "list", "ruleset")
    #expect(r.status == 0, "\(r.err)")
    let items = try JSON.parse(r.out)["nftables"]?.arrayValue ?? []
    return items.compactMap { item in
        guard let (kind, body) = item.objectValue?.entries.first, kind != "metainfo" else { return nil }
        return (kind, body)
    }
}

func nftRules(_ ns: NetworkNamespace, chain: String) throws -> [JSON] {
    try nftObjects(ns).filter { $0.kind == "rule" && $0.body["chain"]?.stringValue == chain }.map(\.body)
}

/// The elements nft lists for a set or map, each as compact JSON.
func nftElements(_ ns: NetworkNamespace, _ name: String) throws -> [String] {
    let set = try nftObjects(ns).first { ($0.kind == "set" || $0.kind == "map") && $0.body["name"]?.stringValue == name }
    return (set?.body["elem"]?.arrayValue ?? []).map(\.compactString)
}

/// A namespace with berth's table installed, and a socket inside it.
func berthNamespace() throws -> (NetworkNamespace, FirewallSocket) {
    let ns = try NetworkNamespace.createAnonymous()
    let socket = try FirewallSocket.open(in: ns)
    try socket.commit(BerthRuleset.installation())
    return (ns, socket)
}

let containerA = IPv4Address(10, 88, 0, 2)
let containerB = IPv4Address(10, 88, 0, 3)

@Suite struct FirewallKernelTests {
    let berth = BerthRuleset.table

    @Test func berthRulesetLoadsAsNftSeesIt() throws {
        let (ns, _) = try berthNamespace()
        let objects = try nftObjects(ns)
        #expect(objects.filter { $0.kind == "table" }.map { $0.body["name"]?.stringValue } == ["berth"])

        func chain(_ name: String) -> JSON? { objects.first { $0.kind == "chain" && $0.body["name"]?.stringValue == name }?.body }
        for (name, type, hook, prio) in [
            ("prerouting", "nat", "prerouting", -100), ("output", "nat", "output", -100),
            ("postrouting", "nat", "postrouting", 100), ("forward", "filter", "forward", 0),
        ] {
            let c = try #require(chain(name))
            #expect(c["type"]?.stringValue == type)
            #expect(c["hook"]?.stringValue == hook)
            #expect(c["prio"]?.intValue == Int64(prio))
            #expect(c["policy"]?.stringValue == "accept")
        }
        #expect(chain("dnat_ports")?["hook"] == nil)

        let sets = objects.filter { $0.kind == "set" || $0.kind == "map" }
        #expect(Set(sets.compactMap { $0.body["name"]?.stringValue }) == Set((BerthRuleset.sets + [BerthRuleset.layout]).map(\.name)))
        let portsIP = try #require(sets.first { $0.body["name"]?.stringValue == "ports_ip_v4" })
        #expect(portsIP.kind == "map")
        #expect(portsIP.body["type"]?.compactString == #"["ipv4_addr","inet_proto","inet_service"]"#)
        #expect(portsIP.body["map"]?.stringValue == "ipv4_addr . inet_service")
        #expect(sets.first { $0.body["name"]?.stringValue == "own_v6" }?.body["type"]?.compactString == #"["ipv6_addr","ifname"]"#)

        for name in BerthRuleset.chains.map(\.name) {
            #expect(try nftRules(ns, chain: name).count == BerthRuleset.rules.filter { $0.chain == name }.count, "\(name)")
        }
        let guardRule = try nftRules(ns, chain: "guard")[0]["expr"]!.compactString
        #expect(guardRule == #"[{"match":{"op":"!=","left":{"meta":{"key":"iifname"}},"right":"lo"}},{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":{"prefix":{"addr":"127.0.0.0","len":8}}}},{"drop":null}]"#)
        #expect(chain("guard")?["prio"]?.intValue == -300)
        let prerouting = try nftRules(ns, chain: "prerouting")[0]["expr"]!.compactString
        #expect(prerouting == #"[{"match":{"op":"==","left":{"fib":{"result":"type","flags":["daddr"]}},"right":"local"}},{"jump":{"target":"dnat_ports"}}]"#)
        let dnat = try nftRules(ns, chain: "dnat_ports")[0]["expr"]!.compactString
        #expect(dnat == #"[{"dnat":{"family":"ip","addr":{"map":{"key":{"concat":[{"payload":{"protocol":"ip","field":"daddr"}},{"meta":{"key":"l4proto"}},{"payload":{"protocol":"th","field":"dport"}}]},"data":"@ports_ip_v4"}}}}]"#)
        let hairpin = try nftRules(ns, chain: "postrouting")[0]["expr"]!.compactString
        #expect(hairpin == #"[{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"dnat"}},{"match":{"op":"==","left":{"concat":[{"payload":{"protocol":"ip","field":"saddr"}},{"meta":{"key":"oifname"}}]},"right":"@own_v4"}},{"masquerade":null}]"#)
        let established = try nftRules(ns, chain: "forward")[0]["expr"]!.compactString
        #expect(established == #"[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]"#)
        let isolation = try nftRules(ns, chain: "forward")[3]["expr"]!.compactString
        #expect(isolation == #"[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"@bridges"}},{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"@bridges"}},{"drop":null}]"#)
    }

    @Test func installingAgainKeepsElementsAndDoesNotDuplicateRules() throws {
        let (ns, socket) = try berthNamespace()
        var batch = Batch(berth)
        batch.add(elements: [Element(.ipv4(containerA))], to: BerthRuleset.masqV4)
        try socket.commit(batch)
        try socket.commit(BerthRuleset.installation())
        try socket.commit(BerthRuleset.installation())
        #expect(try nftRules(ns, chain: "forward").count == 8)
        #expect(try socket.elements(of: BerthRuleset.masqV4, in: berth) == [Element(.ipv4(containerA))])
    }

    @Test func listingReturnsWhatWasCommitted() throws {
        let (_, socket) = try berthNamespace()
        #expect(try socket.tableExists(berth))
        #expect(try !socket.tableExists(Table(.inet, "absent")))
        #expect(try socket.chains(in: berth).map(\.chain) == BerthRuleset.chains)
        #expect(try Set(socket.sets(in: berth).map(\.definition)) == Set(BerthRuleset.sets + [BerthRuleset.layout]))
        for chain in BerthRuleset.chains {
            let listed = try socket.rules(in: berth, chain: chain.name)
            let expected = try BerthRuleset.rules.filter { $0.chain == chain.name }.map { try $0.expressions(family: .inet) }
            #expect(listed.map(\.expressions) == expected, "\(chain.name)")
            #expect(Set(listed.map(\.handle)).count == listed.count)
        }
    }

    @Test func elementsCarryTheirOwnerAndDeleteByOwner() throws {
        let (ns, socket) = try berthNamespace()
        let a = Owner(network: "net1", container: "c1", ifname: "eth0")
        let b = Owner(network: "net1", container: "c2", ifname: "eth0")
        #expect(a != b)
        var batch = Batch(berth)
        batch.add(elements: [Element(.ipv4(containerA), "berth0", comment: a.comment), Element(.ipv4(containerB), "berth0", comment: b.comment)], to: BerthRuleset.ownV4)
        batch.add(elements: [Element(key: [.tcp, 8080], to: [.ipv4(containerA), 80], comment: a.comment)], to: BerthRuleset.portsV4)
        batch.add(elements: [Element(key: [.udp, 53], to: [.ipv4(containerB), 5353], comment: b.comment)], to: BerthRuleset.portsV4)
        batch.add(elements: [Element("berth0", comment: "network net1")], to: BerthRuleset.bridges)
        try socket.commit(batch)

        #expect(try nftElements(ns, "own_v4").sorted() == [
            #"{"elem":{"val":{"concat":["10.88.0.2","berth0"]},"comment":"\#(a.comment)"}}"#,
            #"{"elem":{"val":{"concat":["10.88.0.3","berth0"]},"comment":"\#(b.comment)"}}"#,
        ].sorted())
        #expect(try nftElements(ns, "ports_v4").contains(#"[{"elem":{"val":{"concat":["tcp",8080]},"comment":"\#(a.comment)"}},{"concat":["10.88.0.2",80]}]"#))
        #expect(try nftElements(ns, "bridges") == [#"{"elem":{"val":"berth0","comment":"network net1"}}"#])

        let ports = try socket.elements(of: BerthRuleset.portsV4, in: berth)
        #expect(Set(ports) == [
            Element(key: [.tcp, 8080], to: [.ipv4(containerA), 80], comment: a.comment),
            Element(key: [.udp, 53], to: [.ipv4(containerB), 5353], comment: b.comment),
        ])
        #expect(ports.owned(by: a).count == 1)
        #expect(ports.orphaned(keeping: [a]).map(\.owner) == [b])
        // GC with both attachments valid: nothing to do.
        #expect(try BerthRuleset.garbage(keeping: [a, b], listedBy: socket).isEmpty)

        // DEL for owner a: what a owns, in every set, in one batch.
        let del = try BerthRuleset.removal(of: a, listedBy: socket)
        #expect(del.operations.count == 2)
        try socket.commit(del)
        // The same batch again is stale (it was listed before the commit above changed things).
        #expect(throws: FirewallError.self) { try socket.commit(del) }
        // DEL again, listed afresh: nothing left to remove, and that is not an error.
        try socket.commit(BerthRuleset.removal(of: a, listedBy: socket))
        // Deleting by key with destroy semantics needs no listing and is idempotent.
        var byKey = Batch(berth)
        byKey.delete(elements: [Element(.ipv4(containerA), "berth0")], from: BerthRuleset.ownV4, ifAbsent: .ignore)
        try socket.commit(byKey)
        try socket.commit(byKey)
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).map(\.owner) == [b])
        #expect(try socket.elements(of: BerthRuleset.portsV4, in: berth).map(\.owner) == [b])
        #expect(try nftElements(ns, "own_v4") == [#"{"elem":{"val":{"concat":["10.88.0.3","berth0"]},"comment":"\#(b.comment)"}}"#])

        // GC when b is no longer valid: b's elements go, the bridge entry (no owner) stays.
        try socket.commit(BerthRuleset.garbage(keeping: [a], listedBy: socket))
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).isEmpty)
        #expect(try socket.elements(of: BerthRuleset.portsV4, in: berth).isEmpty)
        #expect(try socket.elements(of: BerthRuleset.bridges, in: berth).count == 1)
        // DEL after the table is gone still succeeds.
        var drop = Batch(berth)
        drop.deleteTable()
        try socket.commit(drop)
        #expect(try BerthRuleset.removal(of: a, listedBy: socket).isEmpty)
    }

    @Test func failedBatchChangesNothingAndNamesTheFailingMessage() throws {
        let (ns, socket) = try berthNamespace()
        let existing = Element(key: [.tcp, 8080], to: [.ipv4(containerA), 80])
        var first = Batch(berth)
        first.add(elements: [existing], to: BerthRuleset.portsV4)
        try socket.commit(first)
        let before = try nft(ns, "list", "ruleset").out

        var batch = Batch(berth)
        batch.add(elements: [Element(.ipv4(containerB))], to: BerthRuleset.masqV4)
        batch.add(elements: [Element(key: [.udp, 53], to: [.ipv4(containerB), 53]), existing], to: BerthRuleset.portsV4, mode: .create)
        batch.add(Rule(in: "forward", .accept))
        batch.add(elements: [Element(.ipv4(containerB), "berth0")], to: BerthRuleset.ownV4)
        let error = try #require(throws: FirewallError.self) { try socket.commit(batch) }
        #expect(error.errno == EEXIST)
        #expect(error.operationIndex == 1)
        #expect(error.description == "create element to map ports_v4 (element tcp . 8080): File exists (EEXIST)")
        #expect(error.alsoFailed.isEmpty)

        #expect(try nft(ns, "list", "ruleset").out == before)
        #expect(try socket.elements(of: BerthRuleset.masqV4, in: berth).isEmpty)
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).isEmpty)
        #expect(try socket.rules(in: berth, chain: "forward").count == 8)
        // The same batch with "add" semantics succeeds.
        var again = Batch(berth)
        again.add(elements: [Element(key: [.udp, 53], to: [.ipv4(containerB), 53]), existing], to: BerthRuleset.portsV4)
        try socket.commit(again)
        #expect(try socket.elements(of: BerthRuleset.portsV4, in: berth).count == 2)
    }

    @Test func everyRejectedMessageIsReported() throws {
        let (_, socket) = try berthNamespace()
        var batch = Batch(berth)
        batch.delete(elements: [Element(.ipv4(containerA))], from: BerthRuleset.masqV4)
        batch.add(Rule(in: "forward", .jump("no_such_chain")))
        batch.deleteRule(handle: 999_999, in: "forward")
        let error = try #require(throws: FirewallError.self) { try socket.commit(batch) }
        #expect(error.operation == "delete element from set masq_v4")
        #expect(error.attribute == "element 10.88.0.2")
        #expect(error.errno == ENOENT)
        #expect(error.alsoFailed.map(\.operationIndex) == [1, 2])
        #expect(error.alsoFailed.map(\.errno) == [ENOENT, ENOENT])
        #expect(error.alsoFailed.first?.attribute == "expression 1 of 1 (immediate)")
    }

    @Test func deleteTable() throws {
        let (ns, socket) = try berthNamespace()
        var delete = Batch(berth)
        delete.deleteTable()
        try socket.commit(delete)
        #expect(try !socket.tableExists(berth))
        #expect(try nftObjects(ns).isEmpty)
        let error = try #require(throws: FirewallError.self) { try socket.commit(delete) }
        #expect(error.errno == ENOENT)
        #expect(error.description.hasPrefix("delete table inet berth"))
        var destroy = Batch(berth)
        destroy.deleteTable(ifAbsent: .ignore)
        try socket.commit(destroy)
        #expect(try socket.chains(in: berth).isEmpty)
    }

    @Test func intervalSetsSingleAndConcatenated() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try FirewallSocket.open(in: ns)
        let t = Table(.inet, "t")
        let ranges = SetDefinition.set("ranges", .ipv4Address, flags: .interval)
        let services = SetDefinition.set("services", .ipv4Address, .inetService, flags: .interval)
        let top = Element([.ipv4(IPv4Address(255, 255, 255, 0))], keyEnd: [.ipv4(IPv4Address(255, 255, 255, 255))])
        let net = Element([.ipv4(IPv4Address(10, 1, 0, 0))], keyEnd: [.ipv4(IPv4Address(10, 1, 255, 255))], comment: "net")
        let single = Element(.ipv4(IPv4Address(10, 3, 0, 1)))
        let service = Element([.ipv4(IPv4Address(10, 0, 0, 0)), 80], keyEnd: [.ipv4(IPv4Address(10, 0, 0, 255)), 90], comment: "abc")
        let exact = Element(.ipv4(IPv4Address(10, 9, 9, 9)), 443)
        var batch = Batch(t)
        batch.addTable()
        batch.add(ranges)
        batch.add(services)
        batch.add(elements: [net, single, top], to: ranges)
        batch.add(elements: [service, exact], to: services)
        try socket.commit(batch)

        #expect(try Set(socket.elements(of: ranges, in: t)) == [net, single, top])
        #expect(try Set(socket.elements(of: services, in: t)) == [service, exact])
        #expect(try Set(nftElements(ns, "ranges")) == [
            #"{"elem":{"val":{"prefix":{"addr":"10.1.0.0","len":16}},"comment":"net"}}"#, #""10.3.0.1""#,
            #"{"prefix":{"addr":"255.255.255.0","len":24}}"#,
        ])
        #expect(try Set(nftElements(ns, "services")) == [
            #"{"elem":{"val":{"concat":[{"prefix":{"addr":"10.0.0.0","len":24}},{"range":[80,90]}]},"comment":"abc"}}"#,
            #"{"concat":["10.9.9.9",443]}"#,
        ])

        var delete = Batch(t)
        delete.delete(elements: [net, top], from: ranges)
        delete.delete(elements: [service], from: services)
        try socket.commit(delete)
        #expect(try socket.elements(of: ranges, in: t) == [single])
        #expect(try socket.elements(of: services, in: t) == [exact])
    }

    @Test func timeoutsAndVerdictMaps() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try FirewallSocket.open(in: ns)
        let t = Table(.ip, "t")
        let recent = SetDefinition("recent", key: [.ipv4Address], flags: .timeout, timeout: .seconds(60))
        let dispatch = SetDefinition.map("dispatch", key: [.ifname], data: .verdict)
        var batch = Batch(t)
        batch.addTable()
        batch.add(Chain("from_berth0"))
        batch.add(.base("in", type: .filter, hook: .input, priority: .filter))
        batch.add(recent)
        batch.add(dispatch)
        batch.add(elements: [Element([.ipv4(containerA)], comment: "short", timeout: .seconds(10)), Element(.ipv4(containerB))], to: recent)
        batch.add(elements: [Element(["berth0"], data: .verdict(.jump("from_berth0"))), Element(["eth9"], data: .verdict(.drop))], to: dispatch)
        batch.add(Rule(in: "in", .verdictMap([.iifname], map: "dispatch")))
        try socket.commit(batch)

        let elements = try socket.elements(of: recent, in: t)
        let short = try #require(elements.first { $0.key == [.ipv4(containerA)] })
        #expect(short.comment == "short")
        #expect(short.timeout == .seconds(10))
        #expect(try #require(short.expiration) <= .seconds(10))
        let long = try #require(elements.first { $0.key == [.ipv4(containerB)] })
        #expect(long.timeout == nil || long.timeout == .seconds(60))
        #expect(try socket.sets(in: t).first { $0.definition.name == "recent" }?.definition == recent)

        #expect(try Set(socket.elements(of: dispatch, in: t).map(\.data)) == [.verdict(.jump("from_berth0")), .verdict(.drop)])
        #expect(try Set(nftElements(ns, "dispatch")) == [#"["berth0",{"jump":{"target":"from_berth0"}}]"#, #"["eth9",{"drop":null}]"#])
        #expect(try nftRules(ns, chain: "in")[0]["expr"]?.compactString == #"[{"vmap":{"key":{"meta":{"key":"iifname"}},"data":"@dispatch"}}]"#)
    }

    @Test func rulesByHandleFlushInsertAndComments() throws {
        let (ns, socket) = try berthNamespace()
        var batch = Batch(berth)
        batch.add(Chain("scratch"))
        batch.add(Rule(in: "scratch", comment: "first", .match(.iifname, equal: "berth0"), .counter, .accept))
        batch.add(Rule(in: "scratch", comment: "second", .match(.tcpDport, equal: 22), .drop))
        batch.insert(Rule(in: "scratch", comment: "top", .match(.mark, equal: 7), .return))
        try socket.commit(batch)
        var rules = try socket.rules(in: berth, chain: "scratch")
        #expect(rules.map(\.comment) == ["top", "first", "second"])
        #expect(rules[1].expressions.contains(.counter(Counter())))
        #expect(try nftRules(ns, chain: "scratch").map { $0["comment"]?.stringValue } == ["top", "first", "second"])

        var delete = Batch(berth)
        delete.deleteRule(handle: rules[1].handle, in: "scratch")
        try socket.commit(delete)
        rules = try socket.rules(in: berth, chain: "scratch")
        #expect(rules.map(\.comment) == ["top", "second"])

        var flush = Batch(berth)
        flush.flush(chain: "scratch")
        flush.flush(set: "ports_v4")
        try socket.commit(flush)
        #expect(try socket.rules(in: berth, chain: "scratch").isEmpty)

        var drop = Batch(berth)
        drop.deleteChain("scratch")
        drop.deleteChain("never_was", ifAbsent: .ignore)
        try socket.commit(drop)
        #expect(try !socket.chains(in: berth).contains { $0.chain.name == "scratch" })
    }

    @Test func createSemanticsForTablesChainsAndSets() throws {
        let (_, socket) = try berthNamespace()
        for operation: Batch.Operation in [.addTable(.create), .addChain(Chain("forward"), .create), .addSet(BerthRuleset.masqV4, .create)] {
            var batch = Batch(berth)
            batch.append(operation)
            let error = try #require(throws: FirewallError.self) { try socket.commit(batch) }
            #expect(error.errno == EEXIST, "\(operation)")
        }
        var add = Batch(berth)
        add.addTable()
        add.add(Chain("forward"))
        add.add(BerthRuleset.masqV4)
        try socket.commit(add)
    }

    @Test func replaceTakesOverAKeyAndStaleListingsAreRefused() throws {
        let (_, socket) = try berthNamespace()
        let dead = Owner(network: "n", container: "dead", ifname: "eth0")
        let alive = Owner(network: "n", container: "alive", ifname: "eth0")
        var first = Batch(berth)
        first.add(elements: [Element(.ipv4(containerA), "berth0", comment: dead.comment)], to: BerthRuleset.ownV4)
        try socket.commit(first)

        // GC listed while the dead attachment still owned the address...
        let gc = try BerthRuleset.garbage(keeping: [alive], listedBy: socket)
        #expect(gc.operations.count == 1)
        // ...then ADD of a new attachment took the address over.
        var add = Batch(berth)
        add.replace(elements: [Element(.ipv4(containerA), "berth0", comment: alive.comment)], in: BerthRuleset.ownV4)
        try socket.commit(add)
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).map(\.owner) == [alive])
        // The stale GC batch is refused as a whole and deletes nothing.
        let error = try #require(throws: FirewallError.self) { try socket.commit(gc) }
        #expect(error.errno == ERESTART)
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).map(\.owner) == [alive])
        // Built again from a fresh listing, it has nothing to do; the retrying commit shows the way.
        try socket.commit { () throws(FirewallError) in try BerthRuleset.garbage(keeping: [alive], listedBy: socket) }
        #expect(try socket.elements(of: BerthRuleset.ownV4, in: berth).map(\.owner) == [alive])
        let before = try socket.generation()
        try socket.commit(BerthRuleset.installation())
        #expect(try socket.generation() != before)
    }

    @Test func concurrentCommitsFromTasksAndSockets() async throws {
        let (ns, first) = try berthNamespace()
        let second = try FirewallSocket.open(in: ns)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                let socket = i % 2 == 0 ? first : second
                group.addTask {
                    var batch = BerthRuleset.installation()  // every plugin call refreshes the table
                    batch.add(elements: [Element(.ipv4(IPv4Address(10, 77, 0, UInt8(i + 1))))], to: BerthRuleset.masqV4, mode: .create)
                    try socket.commit(batch)
                }
            }
            try await group.waitForAll()
        }
        #expect(try first.elements(of: BerthRuleset.masqV4, in: berth).count == 40)
        #expect(try nftRules(ns, chain: "forward").count == 8)
    }

    @Test func badRequestsAreRefusedBeforeSending() throws {
        var batch = Batch(BerthRuleset.table)
        batch.add(elements: [Element(.ipv6(IPv6Address("fd00::1")!))], to: BerthRuleset.masqV4)
        let error = try #require(throws: FirewallError.self) { try batch.compile() }
        #expect(error.errno == EINVAL)
        #expect(error.operationIndex == 0)
        #expect(error.description.contains("is not a valid ipv4_addr"))

        var long = Batch(BerthRuleset.table)
        long.add(elements: [Element("much-too-long-interface-name")], to: BerthRuleset.bridges)
        #expect(throws: FirewallError.self) { try long.compile() }
    }
}

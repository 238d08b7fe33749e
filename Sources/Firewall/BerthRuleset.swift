import BerthSupport
import Addressing
import Glibc

/// berth's own table: the chains and rules are fixed; per-container state lives in the sets and
/// maps, so the cost of an ADD and of a packet does not grow with the number of containers.
///
/// Differences from the first draft of the ruleset (see the module's report):
/// - postrouting: the hairpin masquerade (`ct status dnat ... masquerade`) comes before the
///   `return` rule of the same key, which would otherwise always win; an IPv6 one is added.
/// - dnat_ports: IPv4/IPv6 nat statements carry an explicit `meta nfproto` check (the map keys
///   alone would let IPv6 packets look up IPv4 maps); `ports_ip_v6` mirrors `ports_ip_v4`.
/// - forward: `allow_v6` is used (it was declared but no rule read it).
/// - Ports published on 127.0.0.1: DNAT in `output` works only with route_localnet=1 on the
///   bridge and a masquerade of 127.0.0.0/8 (added here, inert without route_localnet); the
///   `guard` chain drops packets to or from 127.0.0.0/8 that arrive on any other link than lo,
///   which route_localnet would otherwise let through (the portmap plugin turns it on for the
///   bridges of published ports; see docs/portmap.md).
/// - `::1` is never DNATed (`output` returns before `dnat_ports`): IPv6 has no route_localnet,
///   so a translated packet from ::1 could not leave; connections to [::1]:PORT stay on the host,
///   for a userland proxy (berth-proxy) to serve.
/// - `dnat_masq_v4`/`dnat_masq_v6`: container addresses whose published-port connections are
///   all masqueraded (portmap's `masqAll`).
public enum BerthRuleset {
    public static let table = Table(.inet, "berth")

    /// Every berth bridge (isolation between bridges).
    public static let bridges = SetDefinition.set("bridges", .ifname)
    /// "br . br" for every bridge: routed traffic that stays on one bridge.
    public static let bridgeSelf = SetDefinition.set("bridge_self", .ifname, .ifname)
    /// Container addresses to masquerade.
    public static let masqV4 = SetDefinition.set("masq_v4", .ipv4Address)
    public static let masqV6 = SetDefinition.set("masq_v6", .ipv6Address)
    /// Container address . its bridge.
    public static let ownV4 = SetDefinition.set("own_v4", .ipv4Address, .ifname)
    public static let ownV6 = SetDefinition.set("own_v6", .ipv6Address, .ifname)
    /// Addresses the firewall plugin accepts in forward.
    public static let allowV4 = SetDefinition.set("allow_v4", .ipv4Address)
    public static let allowV6 = SetDefinition.set("allow_v6", .ipv6Address)
    /// Published ports on any host address: proto . port -> container address . port.
    public static let portsV4 = SetDefinition.map(
        "ports_v4", key: [.inetProto, .inetService], data: .values([.ipv4Address, .inetService]))
    /// Published ports restricted to one host address: host address . proto . port -> ...
    public static let portsIPV4 = SetDefinition.map(
        "ports_ip_v4", key: [.ipv4Address, .inetProto, .inetService], data: .values([.ipv4Address, .inetService]))
    public static let portsV6 = SetDefinition.map(
        "ports_v6", key: [.inetProto, .inetService], data: .values([.ipv6Address, .inetService]))
    public static let portsIPV6 = SetDefinition.map(
        "ports_ip_v6", key: [.ipv6Address, .inetProto, .inetService], data: .values([.ipv6Address, .inetService]))

    /// Container addresses whose published-port (DNATed) connections are always masqueraded.
    public static let dnatMasqV4 = SetDefinition.set("dnat_masq_v4", .ipv4Address)
    public static let dnatMasqV6 = SetDefinition.set("dnat_masq_v6", .ipv6Address)

    /// An empty set whose name carries the layout's version: element-only batches flush it (a
    /// no-op), so the kernel refuses them with ENOENT when the table or this layout is missing.
    public static let layout = SetDefinition.set("layout_2", .mark)
    /// Markers of earlier layouts, removed when the table is refreshed.
    static let earlierLayouts = ["layout_1"]

    /// The sets that hold state (the layout marker is installed alongside them).
    public static let sets: [SetDefinition] = [
        bridges, bridgeSelf, masqV4, ownV4, masqV6, ownV6, allowV4, allowV6, portsV4, portsIPV4, portsV6, portsIPV6,
        dnatMasqV4, dnatMasqV6,
    ]

    /// The sets the portmap plugin owns elements in.
    public static let portSets: [SetDefinition] = [portsV4, portsIPV4, portsV6, portsIPV6, dnatMasqV4, dnatMasqV6]

    public static let chains: [Chain] = [
        .base("guard", type: .filter, hook: .prerouting, priority: .raw),
        .base("prerouting", type: .nat, hook: .prerouting, priority: .dstnat),
        .base("output", type: .nat, hook: .output, priority: .dstnat),
        Chain("dnat_ports"),
        .base("postrouting", type: .nat, hook: .postrouting, priority: .srcnat),
        .base("forward", type: .filter, hook: .forward, priority: .filter),
    ]

    static let loopback = IPNetwork("127.0.0.0/8")!
    static let loopbackV6 = IPv6Address("::1")!

    public static let rules: [Rule] = [
        Rule(in: "guard", .match(.iifname, notEqual: "lo"), .match(.ipDaddr, in: loopback), .drop),
        Rule(in: "guard", .match(.iifname, notEqual: "lo"), .match(.ipSaddr, in: loopback), .drop),

        Rule(in: "prerouting", .fibDaddrLocal, .jump("dnat_ports")),
        Rule(in: "output", .match(.ip6Daddr, equal: .ipv6(loopbackV6)), .verdict(.return)),
        Rule(in: "output", .fibDaddrLocal, .jump("dnat_ports")),

        Rule(in: "dnat_ports", .dnat(.ipv4, to: .map("ports_ip_v4", key: [.ipDaddr, .l4proto, .thDport], withPort: true))),
        Rule(in: "dnat_ports", .dnat(.ipv4, to: .map("ports_v4", key: [.l4proto, .thDport], withPort: true))),
        Rule(in: "dnat_ports", .dnat(.ipv6, to: .map("ports_ip_v6", key: [.ip6Daddr, .l4proto, .thDport], withPort: true))),
        Rule(in: "dnat_ports", .dnat(.ipv6, to: .map("ports_v6", key: [.l4proto, .thDport], withPort: true))),

        // Hairpin: a container reaching a published port of its own bridge must see the reply
        // come back through the host, so the source is masqueraded to the bridge address.
        Rule(in: "postrouting", .ctStatus(.dnat), .lookup(concat: [.ipSaddr, .oifname], set: "own_v4"), .masquerade),
        Rule(in: "postrouting", .ctStatus(.dnat), .lookup(concat: [.ip6Saddr, .oifname], set: "own_v6"), .masquerade),
        // masqAll: every published-port connection to these containers.
        Rule(in: "postrouting", .ctStatus(.dnat), .lookup(.ipDaddr, set: "dnat_masq_v4"), .masquerade),
        Rule(in: "postrouting", .ctStatus(.dnat), .lookup(.ip6Daddr, set: "dnat_masq_v6"), .masquerade),
        // Published ports reached from the host as 127.0.0.1 (needs route_localnet on the bridge).
        Rule(in: "postrouting", .ctStatus(.dnat), .match(.ipSaddr, in: loopback), .masquerade),
        Rule(in: "postrouting", .lookup(concat: [.ipSaddr, .oifname], set: "own_v4"), .return),
        Rule(in: "postrouting", .lookup(.ipSaddr, set: "masq_v4"), .masquerade),
        Rule(in: "postrouting", .lookup(concat: [.ip6Saddr, .oifname], set: "own_v6"), .return),
        Rule(in: "postrouting", .lookup(.ip6Saddr, set: "masq_v6"), .masquerade),

        Rule(in: "forward", .ctState([.established, .related]), .accept),
        Rule(in: "forward", .ctStatus(.dnat), .accept),
        Rule(in: "forward", .lookup(concat: [.iifname, .oifname], set: "bridge_self"), .accept),
        Rule(in: "forward", .lookup(.iifname, set: "bridges"), .lookup(.oifname, set: "bridges"), .drop),
        Rule(in: "forward", .lookup(.ipDaddr, set: "allow_v4"), .accept),
        Rule(in: "forward", .lookup(.ipSaddr, set: "allow_v4"), .accept),
        Rule(in: "forward", .lookup(.ip6Daddr, set: "allow_v6"), .accept),
        Rule(in: "forward", .lookup(.ip6Saddr, set: "allow_v6"), .accept),
    ]

    /// berth's inet table as one installable ruleset.
    public static let ruleset = Ruleset(
        table: table, sets: sets, layout: layout, earlierLayouts: earlierLayouts, chains: chains, rules: rules)

    public static func install(into batch: inout Batch) { ruleset.install(into: &batch) }
    public static func commit(_ elements: Batch, on socket: FirewallSocket) throws(FirewallError) {
        try ruleset.commit(elements, on: socket)
    }
    public static func installation() -> Batch { ruleset.installation() }
}

/// A table of berth's whose chains and rules are fixed and whose state lives in set elements.
public struct Ruleset: Sendable {
    public let table: Table
    public let sets: [SetDefinition]
    /// An empty set whose name carries the layout's version: element-only batches flush it (a
    /// no-op), so the kernel refuses them with ENOENT when the table or this layout is missing.
    public let layout: SetDefinition
    /// Markers of earlier layouts, removed when the table is refreshed.
    public let earlierLayouts: [String]
    public let chains: [Chain]
    public let rules: [Rule]

    public init(table: Table, sets: [SetDefinition], layout: SetDefinition, earlierLayouts: [String] = [], chains: [Chain], rules: [Rule]) {
        self.table = table
        self.sets = sets
        self.layout = layout
        self.earlierLayouts = earlierLayouts
        self.chains = chains
        self.rules = rules
    }

    /// Adds to `batch` what makes the table exist and current: table, sets and chains are
    /// added idempotently (set elements survive), each chain is flushed and its rules added
    /// again. All in the caller's batch, so plugins can add their elements in the same commit.
    public func install(into batch: inout Batch) {
        precondition(batch.table == table, "this ruleset goes into table \(table)")
        batch.addTable()
        for set in sets { batch.add(set) }
        batch.add(layout)
        for name in earlierLayouts { batch.deleteSet(name, ifAbsent: .ignore) }
        for chain in chains { batch.add(chain) }
        for chain in chains { batch.flush(chain: chain.name) }
        for rule in rules { batch.add(rule) }
    }

    /// Commits a batch of element changes, installing (or refreshing) the table first when it
    /// is missing or of another layout. The common case sends only the elements: refreshing
    /// the rules on every call would delete and re-create them, and every deletion makes the
    /// next close of a netfilter socket wait for an RCU grace period (~10 ms here). The batch's
    /// generation, when set, guards both attempts.
    public func commit(_ elements: Batch, on socket: FirewallSocket) throws(FirewallError) {
        precondition(elements.table == table, "these elements go into table \(table)")
        var fast = Batch(table)
        fast.generation = elements.generation
        fast.flush(set: layout.name)
        for operation in elements.operations { fast.append(operation) }
        do throws(FirewallError) {
            try socket.commit(fast)
        } catch where error.errno == ENOENT {
            var full = installation()
            full.generation = elements.generation
            for operation in elements.operations { full.append(operation) }
            try socket.commit(full)
        }
    }

    /// A batch that installs (or refreshes) the table.
    public func installation() -> Batch {
        var batch = Batch(table)
        install(into: &batch)
        return batch
    }
}

/// The bridge-family table that enforces `macspoofchk`: frames entering the bridge from a
/// checked port must carry that port's container MAC. Per-container state is two elements.
public enum MacSpoofRuleset {
    public static let table = Table(.bridge, "berth")
    /// Host veths whose frames are checked.
    public static let ports = SetDefinition.set("macspoof_ports", .ifname)
    /// Host veth . the only source MAC allowed through it.
    public static let allowed = SetDefinition.set("macspoof_allowed", .ifname, .etherAddress)
    public static let ruleset = Ruleset(
        table: table, sets: [ports, allowed], layout: SetDefinition.set("layout_1", .mark),
        chains: [.base("prerouting", type: .filter, hook: .prerouting, priority: -200)],
        rules: [
            Rule(in: "prerouting", .lookup(concat: [.iifname, .etherSaddr], set: "macspoof_allowed"), .return),
            Rule(in: "prerouting", .lookup(.iifname, set: "macspoof_ports"), .drop),
        ])
}

/// Who owns a set element: a short hash of network, container and interface, and a shorter
/// one of the network alone, stored as the element's comment ("owner 1f2e3d4c5b6a7988 net
/// 9a8b7c6d"), so that DEL removes exactly its own elements and GC of one network finds the
/// elements of that network that no valid attachment owns.
public struct Owner: Hashable, Sendable, CustomStringConvertible {
    /// 16 hex digits: the attachment.
    public let tag: String
    /// 8 hex digits: the network.
    public let network: String

    public init(network: String, container: String, ifname: String) {
        tag = hexDigits(fnv1a64(Array(network.utf8) + [0] + Array(container.utf8) + [0] + Array(ifname.utf8)), 16)
        self.network = Self.networkTag(network)
    }

    /// The owner named by an element comment, if it is one (words after the tags, such as the
    /// network's name, are allowed).
    public init?(comment: String?) {
        guard let parts = comment?.split(separator: " "), parts.count >= 4, parts[0] == "owner", parts[2] == "net",
            parts[1].count == 16, parts[3].count == 8, (parts[1] + parts[3]).allSatisfy(\.isHexDigit)
        else { return nil }
        tag = String(parts[1])
        network = String(parts[3])
    }

    /// The tag of a network's name, as owners carry it.
    public static func networkTag(_ network: String) -> String { hexDigits(fnv1a64(network.utf8) >> 32, 8) }

    public var comment: String { "owner \(tag) net \(network)" }
    public var description: String { comment }

    /// The comment with the network's name after the tags ("owner … net … network web"), for
    /// elements that other attachments may ask for and whose owner an error should name (a
    /// published port). A name that does not fit a comment, or has spaces, is left out.
    public func comment(networkName name: String) -> String {
        let named = "\(comment) network \(name)"
        return named.utf8.count <= 127 && !name.isEmpty && !name.contains(" ") ? named : comment
    }

    /// The network name a comment carries after the owner tags, if any.
    public static func networkName(inComment comment: String?) -> String? {
        guard let parts = comment?.split(separator: " "), parts.count >= 6, parts[4] == "network" else { return nil }
        return String(parts[5])
    }
}

extension Element {
    public var owner: Owner? { Owner(comment: comment) }
}

extension Array where Element == Firewall.Element {
    /// The elements `owner` owns (for DEL).
    public func owned(by owner: Owner) -> [Firewall.Element] { filter { $0.owner == owner } }

    /// The elements with an owner that is not among `valid` (for GC). Elements without an
    /// owner tag (a bridge's entries, say) are not attachments' and are kept; with `network`,
    /// only that network's elements are considered.
    public func orphaned(keeping valid: Set<Owner>, network: String? = nil) -> [Firewall.Element] {
        let tag = network.map(Owner.networkTag)
        return filter { element in
            guard let owner = element.owner, tag == nil || owner.network == tag else { return false }
            return !valid.contains(owner)
        }
    }
}

extension BerthRuleset {
    /// DEL: a batch that removes every element `owner` owns from berth's sets. Elements already
    /// gone, and a table that does not exist, are not errors. The batch carries the generation
    /// it was listed at: if the commit fails with ERESTART, the ruleset changed; build it again.
    /// (A DEL that knows its keys can delete them with `ifAbsent: .ignore` without listing.)
    /// With `among`, only those sets are searched (a plugin's own).
    public static func removal(
        of owner: Owner, among sets: [SetDefinition] = sets, listedBy socket: FirewallSocket
    ) throws(FirewallError) -> Batch {
        try cleanup(sets, listedBy: socket) { $0.owned(by: owner) }
    }

    /// GC: a batch that removes the elements whose owner is not among `valid` (same
    /// generation rule as `removal`).
    public static func garbage(
        keeping valid: Set<Owner>, network: String? = nil, among sets: [SetDefinition] = sets,
        listedBy socket: FirewallSocket
    ) throws(FirewallError) -> Batch {
        try cleanup(sets, listedBy: socket) { $0.orphaned(keeping: valid, network: network) }
    }

    private static func cleanup(
        _ sets: [SetDefinition], listedBy socket: FirewallSocket, _ select: ([Element]) -> [Element]
    ) throws(FirewallError) -> Batch {
        var batch = Batch(table)
        batch.generation = try socket.generation()
        guard try socket.tableExists(table) else { return batch }
        for set in sets {
            let elements: [Element]
            do throws(FirewallError) {
                elements = try socket.elements(of: set, in: table)
            } catch where error.errno == ENOENT {
                continue
            }
            batch.delete(elements: select(elements), from: set, ifAbsent: .ignore)
        }
        return batch
    }
}

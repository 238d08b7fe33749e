import Addressing
import CNI
import Firewall

/// The bridge plugin's part of berth's nftables table: per-network entries for isolation and
/// per-attachment entries for masquerade, each ADD and DEL one atomic batch. The chains and
/// rules are fixed (BerthRuleset); only set elements change, so an ADD costs the same at the
/// first container and the thousandth.
enum BridgeFirewall {
    /// This attachment's elements: "address . bridge" (own_v4/own_v6: traffic staying on its
    /// bridge, and the hairpin rule), and with ipMasq the address in masq_v4/masq_v6.
    static func elements(_ config: BridgeConfig, _ addresses: [IPAddress], owner: Owner) -> [(SetDefinition, Element)] {
        var result: [(SetDefinition, Element)] = []
        for ip in addresses {
            let own = ip.isIPv4 ? BerthRuleset.ownV4 : BerthRuleset.ownV6
            result.append((own, Element(Value(ip), .string(config.bridge), comment: owner.comment)))
            if config.ipMasq {
                result.append((ip.isIPv4 ? BerthRuleset.masqV4 : BerthRuleset.masqV6, Element(Value(ip), comment: owner.comment)))
            }
        }
        return result
    }

    /// ADD: adds the network's and this attachment's elements in one batch (installing berth's
    /// table first if needed). An element a dead attachment left under the same key is taken over.
    static func attach(_ config: BridgeConfig, _ addresses: [IPAddress], owner: Owner, socket: FirewallSocket) throws {
        var batch = Batch(BerthRuleset.table)
        if config.isolate {
            batch.add(elements: [Element(.string(config.bridge))], to: BerthRuleset.bridges)
            batch.add(elements: [Element(.string(config.bridge), .string(config.bridge))], to: BerthRuleset.bridgeSelf)
        }
        for (set, element) in elements(config, addresses, owner: owner) {
            batch.replace(elements: [element], in: set)
        }
        try BerthRuleset.commit(batch, on: socket)
    }

    /// DEL: removes exactly this attachment's elements. With the addresses known (prevResult,
    /// or the container interface), each key is looked up and deleted only if this owner still
    /// holds it; without them, the sets are listed and searched by owner.
    static func detach(_ config: BridgeConfig, _ addresses: [IPAddress]?, owner: Owner, socket: FirewallSocket) throws {
        guard try socket.tableExists(BerthRuleset.table) else { return }
        guard let addresses else {
            try socket.commit { () throws(FirewallError) in try BerthRuleset.removal(of: owner, listedBy: socket) }
            return
        }
        var batch = Batch(BerthRuleset.table)
        for (set, element) in elements(config, addresses, owner: owner) {
            guard let present = try socket.element(element.key, of: set, in: BerthRuleset.table), present.owner == owner else {
                continue
            }
            batch.delete(elements: [element], from: set, ifAbsent: .ignore)
        }
        try socket.commit(batch)
    }

    /// CHECK: every element ADD made is there and still this attachment's.
    static func verify(_ config: BridgeConfig, _ addresses: [IPAddress], owner: Owner, socket: FirewallSocket) throws {
        for (set, element) in elements(config, addresses, owner: owner) {
            let present = try socket.element(element.key, of: set, in: BerthRuleset.table)
            guard present?.owner == owner else {
                throw CNIError(
                    .internalError, "bridge CHECK: nftables element \(element) of set \(set.name) in table inet berth is missing",
                    details: present == nil ? "no such element" : "it belongs to \(present?.comment ?? "nobody")")
            }
        }
    }

    /// GC: removes this network's attachment elements that no valid attachment owns.
    static func collect(network: String, valid: Set<Owner>, socket: FirewallSocket) throws {
        guard try socket.tableExists(BerthRuleset.table) else { return }
        try socket.commit { () throws(FirewallError) in
            try BerthRuleset.garbage(keeping: valid, network: network, listedBy: socket)
        }
    }
}

/// `macspoofchk`: frames from the container's veth into the bridge must carry the container's
/// MAC; two owner-tagged elements in the bridge-family table `bridge berth`.
enum MacSpoofCheck {
    static func elements(hostVeth: String, mac: MACAddress, owner: Owner) -> [(SetDefinition, Element)] {
        [
            (MacSpoofRuleset.ports, Element(.string(hostVeth), comment: owner.comment)),
            (MacSpoofRuleset.allowed, Element(.string(hostVeth), .ether(mac), comment: owner.comment)),
        ]
    }

    static func attach(hostVeth: String, mac: MACAddress, owner: Owner, socket: FirewallSocket) throws {
        var batch = Batch(MacSpoofRuleset.table)
        for (set, element) in elements(hostVeth: hostVeth, mac: mac, owner: owner) {
            batch.replace(elements: [element], in: set)
        }
        try MacSpoofRuleset.ruleset.commit(batch, on: socket)
    }

    /// Removes this attachment's elements: looked up by key when the MAC is known, else found
    /// by owner in a listing.
    static func detach(hostVeth: String, mac: MACAddress?, owner: Owner, socket: FirewallSocket) throws {
        guard try socket.tableExists(MacSpoofRuleset.table) else { return }
        var batch = Batch(MacSpoofRuleset.table)
        if let mac {
            for (set, element) in elements(hostVeth: hostVeth, mac: mac, owner: owner)
            where try socket.element(element.key, of: set, in: MacSpoofRuleset.table)?.owner == owner {
                batch.delete(elements: [element], from: set, ifAbsent: .ignore)
            }
        } else {
            for set in MacSpoofRuleset.ruleset.sets {
                batch.delete(elements: try socket.elements(of: set, in: MacSpoofRuleset.table).owned(by: owner), from: set, ifAbsent: .ignore)
            }
        }
        try socket.commit(batch)
    }

    static func verify(hostVeth: String, mac: MACAddress, owner: Owner, socket: FirewallSocket) throws {
        for (set, element) in elements(hostVeth: hostVeth, mac: mac, owner: owner)
        where try socket.element(element.key, of: set, in: MacSpoofRuleset.table)?.owner != owner {
            throw CNIError(.internalError, "bridge CHECK: macspoofchk element \(element) of set \(set.name) in table bridge berth is missing")
        }
    }

    /// GC: this network's elements no valid attachment owns.
    static func collect(network: String, valid: Set<Owner>, socket: FirewallSocket) throws {
        guard try socket.tableExists(MacSpoofRuleset.table) else { return }
        var batch = Batch(MacSpoofRuleset.table)
        for set in MacSpoofRuleset.ruleset.sets {
            batch.delete(elements: try socket.elements(of: set, in: MacSpoofRuleset.table).orphaned(keeping: valid, network: network), from: set, ifAbsent: .ignore)
        }
        try socket.commit(batch)
    }
}

import Addressing
import CNI
import Firewall
import Glibc

/// The portmap plugin's part of berth's nftables table: one map element per published port
/// (`ports_v4`/`ports_v6` for every host address, `ports_ip_v4`/`ports_ip_v6` for one), and with
/// masqAll the container's address in `dnat_masq_v4`/`dnat_masq_v6`. Every element carries the
/// attachment's owner tag and the network's name, so DEL removes exactly its own and a refused
/// ADD can say who holds the port.
struct PublishedPorts {
    let config: PortmapConfig
    let mappings: [PortMapping]
    let owner: Owner
    /// The container's addresses (nil: unknown, as on DEL without prevResult).
    let ipv4: IPv4Address?
    let ipv6: IPv6Address?
    /// Families whose keys to consider: those with an address, or both when none is known.
    private var families: [Bool] {
        ipv4 == nil && ipv6 == nil ? [true, false] : [true, false].filter { $0 ? ipv4 != nil : ipv6 != nil }
    }

    /// A map element and the mapping it publishes.
    struct Entry {
        let set: SetDefinition
        let element: Element
        let mapping: PortMapping?
    }

    var comment: String { owner.comment(networkName: config.network) }

    /// The elements this attachment's mappings make (data only when the address is known).
    var entries: [Entry] {
        var result: [Entry] = []
        for ipv4 in families {
            let target: Value? = ipv4 ? ipv4Value : ipv6Value
            for mapping in mappings where mapping.applies(ipv4: ipv4) {
                // ::1 cannot be DNATed (no route_localnet in IPv6): the userland proxy serves it.
                if let ip = mapping.specificHostIP, ip == IPAddress("::1") { continue }
                let key: [Value] = mapping.specificHostIP.map { [Value($0), mapping.proto.value, .integer(UInt64(mapping.hostPort))] }
                    ?? [mapping.proto.value, .integer(UInt64(mapping.hostPort))]
                let set = Self.map(ipv4: ipv4, specific: mapping.specificHostIP != nil)
                let data: ElementData? = target.map { .values([$0, .integer(UInt64(mapping.containerPort))]) }
                result.append(Entry(set: set, element: Element(key, data: data, comment: comment), mapping: mapping))
            }
            if config.masqAll, !mappings.isEmpty, let target {
                result.append(Entry(set: ipv4 ? BerthRuleset.dnatMasqV4 : BerthRuleset.dnatMasqV6, element: Element([target], comment: comment), mapping: nil))
            }
        }
        return result
    }

    private var ipv4Value: Value? { ipv4.map { .ipv4($0) } }
    private var ipv6Value: Value? { ipv6.map { .ipv6($0) } }

    static func map(ipv4: Bool, specific: Bool) -> SetDefinition {
        switch (ipv4, specific) {
        case (true, false): BerthRuleset.portsV4
        case (true, true): BerthRuleset.portsIPV4
        case (false, false): BerthRuleset.portsV6
        case (false, true): BerthRuleset.portsIPV6
        }
    }

    // MARK: ADD

    /// Publishes the ports in one batch, guarded by the ruleset's generation: every key is
    /// looked up first, and one held by another attachment (in the same map, or a mapping on
    /// every address against one on a single address) fails ADD with nothing changed. Keys this
    /// attachment already holds (ADD run again) are replaced.
    func publish(on socket: FirewallSocket) throws {
        var attempt = 1
        while true {
            do {
                return try BerthRuleset.commit(try batch(on: socket), on: socket)
            } catch let error as FirewallError where error.errno == ERESTART {
                guard attempt < 20 else {
                    throw CNIError(.tryAgainLater, "portmap: berth's nftables table kept changing while the ports were published", details: "\(error)")
                }
                attempt += 1
            } catch let error as FirewallError where error.errno == EEXIST {
                // Only when the table was missing at lookup time and filled meanwhile.
                throw CNIError(.tryAgainLater, "portmap: a published port was taken while this ADD ran", details: "\(error)")
            }
        }
    }

    private func batch(on socket: FirewallSocket) throws -> Batch {
        var batch = Batch(BerthRuleset.table)
        batch.generation = try socket.generation()
        let table = BerthRuleset.table
        let entries = entries
        // Mappings on one address of a family conflict with the same port on every address.
        var specificByPort: [SetDefinition: [Element]] = [:]
        for entry in entries where entry.set == BerthRuleset.portsV4 || entry.set == BerthRuleset.portsV6 {
            let specific = entry.set == BerthRuleset.portsV4 ? BerthRuleset.portsIPV4 : BerthRuleset.portsIPV6
            if specificByPort[specific] == nil { specificByPort[specific] = try Self.elements(of: specific, socket) }
            if let held = specificByPort[specific]!.first(where: { Array($0.key.dropFirst()) == entry.element.key && $0.owner != owner }) {
                throw conflict(entry.mapping!, held: held, in: specific)
            }
        }
        for entry in entries {
            guard let mapping = entry.mapping else {
                // masqAll: keyed by the container's address, which IPAM gave this attachment;
                // an element left under it by a dead attachment is taken over.
                if try socket.element(entry.element.key, of: entry.set, in: table) != nil {
                    batch.delete(elements: [entry.element], from: entry.set, ifAbsent: .ignore)
                }
                batch.add(elements: [entry.element], to: entry.set, mode: .create)
                continue
            }
            if mapping.specificHostIP != nil {
                let any = Self.map(ipv4: mapping.hostIP!.isIPv4, specific: false)
                if let held = try socket.element(Array(entry.element.key.dropFirst()), of: any, in: table), held.owner != owner {
                    throw conflict(mapping, held: held, in: any)
                }
            }
            if let held = try socket.element(entry.element.key, of: entry.set, in: table) {
                guard held.owner == owner else { throw conflict(mapping, held: held, in: entry.set) }
                batch.delete(elements: [entry.element], from: entry.set, ifAbsent: .ignore)
            }
            batch.add(elements: [entry.element], to: entry.set, mode: .create)
        }
        return batch
    }

    private static func elements(of set: SetDefinition, _ socket: FirewallSocket) throws(FirewallError) -> [Element] {
        do throws(FirewallError) {
            return try socket.elements(of: set, in: BerthRuleset.table)
        } catch where error.errno == ENOENT {
            return []
        }
    }

    /// "tcp/8080 (every IPv4 address) is already published by another container of network web".
    private func conflict(_ mapping: PortMapping, held: Element, in set: SetDefinition) -> CNIError {
        let family = set == BerthRuleset.portsV4 || set == BerthRuleset.portsIPV4 ? "IPv4" : "IPv6"
        let what = "host port \(mapping.hostPort)/\(mapping.proto.rawValue) "
            + (mapping.specificHostIP.map { "on \($0)" } ?? "(every \(family) address)")
        // A port on every address refused for one held on a single address: say which.
        let heldKey = mapping.specificHostIP == nil && held.key.count == 3 ? " (on \(held.key[0]))" : ""
        let holder: String
        if let name = Owner.networkName(inComment: held.comment) {
            holder = "another container of network \"\(name)\""
        } else if let other = held.owner {
            holder = "another container of " + (other.network == owner.network ? "this network (\(config.network))" : "another network (tag \(other.network))")
        } else {
            holder = "an element without an owner tag (not made by a berth plugin)"
        }
        return CNIError(
            Self.portInUse, "portmap: \(what) is already published\(heldKey) by \(holder)",
            details: "element \(held.description(in: set)) of map \(set.name) in table inet berth; nothing was changed")
    }

    /// The error code of a refused ADD whose host port is taken (plugin-specific, 100 and up).
    static let portInUse: CNIError.Code = 100

    // MARK: DEL, CHECK, GC

    /// Removes this attachment's elements: each key is looked up and deleted only while this
    /// owner holds it (a port since taken by another attachment stays), in a batch guarded by
    /// the generation of the lookups. Without the mappings, the portmap sets are listed and
    /// searched by owner; masqAll entries without the container's address too.
    func unpublish(on socket: FirewallSocket, mappingsKnown: Bool) throws {
        guard try socket.tableExists(BerthRuleset.table) else { return }
        try socket.commit(attempts: 20) { () throws(FirewallError) -> Batch in
            guard mappingsKnown else { return try BerthRuleset.removal(of: owner, among: BerthRuleset.portSets, listedBy: socket) }
            var batch = Batch(BerthRuleset.table)
            if config.masqAll && ipv4 == nil && ipv6 == nil {
                batch = try BerthRuleset.removal(of: owner, among: [BerthRuleset.dnatMasqV4, BerthRuleset.dnatMasqV6], listedBy: socket)
            } else {
                batch.generation = try socket.generation()
            }
            for entry in entries {
                guard let held = try socket.element(entry.element.key, of: entry.set, in: BerthRuleset.table), held.owner == owner else {
                    continue
                }
                batch.delete(elements: [entry.element], from: entry.set, ifAbsent: .ignore)
            }
            return batch
        }
    }

    /// CHECK: every element is there, this attachment's, and points at the container.
    func verify(on socket: FirewallSocket) throws {
        for entry in entries {
            let held = try socket.element(entry.element.key, of: entry.set, in: BerthRuleset.table)
            let name = entry.mapping?.description ?? "masqAll"
            guard let held else {
                throw CNIError(.internalError, "portmap CHECK: \(name) is not published", details: "no element \(entry.element.description(in: entry.set)) in map \(entry.set.name) of table inet berth")
            }
            guard held.owner == owner else {
                throw CNIError(.internalError, "portmap CHECK: \(name) is published by another attachment", details: "element \(held.description(in: entry.set)) in \(entry.set.name)")
            }
            guard held.data == entry.element.data else {
                throw CNIError(.internalError, "portmap CHECK: \(name) points elsewhere", details: "element \(held.description(in: entry.set)) in \(entry.set.name), expected \(entry.element.description(in: entry.set))")
            }
        }
    }

    /// GC: removes this network's portmap elements that no valid attachment owns.
    static func collect(network: String, valid: Set<Owner>, socket: FirewallSocket) throws {
        guard try socket.tableExists(BerthRuleset.table) else { return }
        try socket.commit(attempts: 20) { () throws(FirewallError) in
            try BerthRuleset.garbage(keeping: valid, network: network, among: BerthRuleset.portSets, listedBy: socket)
        }
    }
}

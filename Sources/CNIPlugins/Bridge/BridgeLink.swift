import Addressing
import BerthSupport
import CNI
import Glibc
import Netlink

/// The bridge itself: found or created (safe when many ADDs race to create it), and given the
/// network's gateway addresses.
enum BridgeLink {
    static func ensure(_ config: BridgeConfig, host: RouteSocket) throws -> Link {
        var link = try host.link(named: config.bridge)
        if link == nil {
            do {
                link = try host.createBridge(
                    name: config.bridge, mtu: config.mtu, mac: stableMAC(for: config.bridge),
                    vlanFiltering: config.vlan != nil ? true : nil)
                // We own the bridge's routes: no router advertisements on it.
                try? Files.write("/proc/sys/net/ipv6/conf/\(config.bridge)/accept_ra", Array("0".utf8), flags: O_WRONLY)
            } catch let error as SystemError where error.errno == EEXIST {
                link = try host.link(named: config.bridge)  // another ADD made it first
            }
        }
        guard var bridge = link else { throw CNIError(.internalError, "bridge \(config.bridge) vanished while being set up") }
        guard bridge.kind == "bridge" else {
            throw CNIError(
                .invalidNetworkConfig, "\(config.bridge) already exists but is not a bridge (it is a \(bridge.kind ?? "physical device"))",
                details: "choose another name for \"bridge\" in the network configuration")
        }
        if !bridge.isUp || (config.promiscMode && !bridge.isPromiscuous) {
            try host.modifyLink(index: bridge.index, LinkChanges(up: true, promiscuous: config.promiscMode ? true : nil))
            bridge = try host.link(index: bridge.index) ?? bridge
        }
        return bridge
    }

    /// A locally administered MAC derived from the bridge's name, set at creation: otherwise a
    /// bridge takes the lowest MAC of its ports and changes as containers come and go.
    static func stableMAC(for name: String) -> MACAddress {
        let hash = fnv1a64(name.utf8)
        let bytes = (0..<6).map { UInt8(truncatingIfNeeded: hash >> (8 * UInt64($0))) }
        return MACAddress(bytes: [(bytes[0] & 0xfc) | 0x02] + bytes[1...])!
    }

    /// Puts each family's gateway on the bridge. An IPv4 bridge holds one address: a different
    /// one is an error unless `force` replaces it; IPv6 addresses may coexist unless they overlap.
    static func assignGateways(_ ips: [CNIResult.IPConfig], bridge: Link, host: RouteSocket, force: Bool) throws {
        for ip in ips {
            guard let gateway = ip.gateway else { continue }
            let wanted = IPNetwork(address: gateway, prefixLength: ip.address.prefixLength)
            let present = try host.addresses(index: bridge.index, family: gateway.isIPv4 ? .v4 : .v6)
                .map(\.address).filter { !$0.address.isIPv6LinkLocal }
            if present.contains(wanted) { continue }
            for other in present where gateway.isIPv4 || other.overlaps(wanted) {
                guard force else {
                    throw CNIError(
                        .invalidNetworkConfig, "\(bridge.name) already has address \(other), not \(wanted)",
                        details: "another network uses this bridge with a different subnet; set forceAddress to replace it")
                }
                try host.deleteAddress(other, index: bridge.index)
            }
            do {
                try host.addAddress(wanted, index: bridge.index, noDAD: gateway.isIPv6)
            } catch let error as SystemError where error.errno == EEXIST {}
        }
    }
}

/// IP forwarding on the host, turned on once for each family in use.
enum Forwarding {
    static func enable(for ips: [CNIResult.IPConfig]) throws {
        if ips.contains(where: { $0.address.isIPv4 }) { try turnOn("/proc/sys/net/ipv4/ip_forward") }
        if ips.contains(where: { !$0.address.isIPv4 }) { try turnOn("/proc/sys/net/ipv6/conf/all/forwarding") }
    }

    private static func turnOn(_ path: String) throws {
        if (try? Files.readText(path))?.hasPrefix("1") == true { return }
        try Files.write(path, Array("1".utf8), flags: O_WRONLY)
    }
}

import Addressing
import BerthSupport
public import CNI
import Firewall
import Glibc
import Netlink

/// `portmap` (chained after `bridge`): docker's `-p HOSTPORT:CONTAINERPORT` as DNAT in berth's
/// nftables table, from the `portMappings` capability. Configuration-compatible with the
/// reference plugin (see PortmapConfig and docs/portmap.md): published ports work from other
/// hosts, from the host itself (its addresses and 127.0.0.1), from containers on the same
/// bridge (hairpin, the container itself included) and from containers on other, isolated
/// bridges, over IPv4 and IPv6. A port held by another attachment fails ADD with nothing changed.
public struct PortmapPlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin portmap (berth): published ports as DNAT in nftables"

    public init() {}

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let config = try PortmapConfig(request, strict: true)
        guard let prev = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "portmap: must be called as a chained plugin (no prevResult)")
        }
        var result = prev
        result.cniVersion = request.version
        let mappings = config.mappings ?? []
        guard !mappings.isEmpty else { return result }
        let ports = Self.ports(config, mappings, request, prev)
        guard ports.ipv4 != nil || ports.ipv6 != nil else {
            throw CNIError(.invalidNetworkConfig, "portmap: prevResult has no address on \(request.ifName) to publish ports to")
        }
        let host = try RouteSocket()
        try Self.checkLocal(mappings, host: host)
        if let ipv4 = ports.ipv4, Localhost.served(config, mappings) {
            try Localhost.enable(toward: .v4(ipv4), host: host, log: request.stderr)
        }
        for mapping in mappings where !ports.entries.contains(where: { $0.mapping == mapping }) {
            request.stderr.log(Self.skipped(mapping, ports))
        }
        let firewall = try FirewallSocket()
        try ports.publish(on: firewall)
        Self.forgetStaleFlows(ports, local: try Self.localNetworks(host), socket: firewall, log: request.stderr)
        return result
    }

    public func del(_ request: PluginRequest) throws {
        let config = try PortmapConfig(request, strict: false)
        let prev = request.config.prevResult
        let ports = Self.ports(config, config.mappings ?? [], request, prev)
        try ports.unpublish(on: try FirewallSocket(), mappingsKnown: config.mappings != nil)
    }

    public func check(_ request: PluginRequest) throws {
        let config = try PortmapConfig(request, strict: true)
        guard let prev = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "portmap: CHECK needs prevResult")
        }
        let mappings = config.mappings ?? []
        guard !mappings.isEmpty else { return }
        let ports = Self.ports(config, mappings, request, prev)
        try ports.verify(on: try FirewallSocket())
        if let ipv4 = ports.ipv4, Localhost.served(config, mappings) {
            try Localhost.verify(toward: .v4(ipv4), host: try RouteSocket())
        }
    }

    /// Ready when berth's table can be read (a netfilter socket opens in this namespace).
    public func status(_ request: PluginRequest) throws {
        do {
            _ = try FirewallSocket().tableExists(BerthRuleset.table)
        } catch {
            throw CNIError(.pluginNotAvailable, "portmap: nftables is not usable here", details: "\(error)")
        }
    }

    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        let network = request.config.name
        let owners = Set(validAttachments.map { Owner(network: network, container: $0.containerID, ifname: $0.ifName) })
        try PublishedPorts.collect(network: network, valid: owners, socket: try FirewallSocket())
    }

    // MARK: Helpers

    /// The attachment's ports toward the container's first IPv4 and IPv6 address on the
    /// sandbox interface (an address whose interface is another one, or not in a sandbox, is
    /// skipped, as the reference does).
    static func ports(_ config: PortmapConfig, _ mappings: [PortMapping], _ request: PluginRequest, _ prev: CNIResult?) -> PublishedPorts {
        var ipv4: IPv4Address? = nil, ipv6: IPv6Address? = nil
        for ip in prev?.ips ?? [] {
            if let index = ip.interface, let interfaces = prev?.interfaces, interfaces.indices.contains(index),
                interfaces[index].name != request.ifName || (interfaces[index].sandbox ?? "").isEmpty
            {
                continue
            }
            switch ip.address.address {
            case .v4(let a): ipv4 = ipv4 ?? a
            case .v6(let a): ipv6 = ipv6 ?? a
            }
        }
        let owner = Owner(network: config.network, container: request.containerID, ifname: request.ifName)
        return PublishedPorts(config: config, mappings: mappings, owner: owner, ipv4: ipv4, ipv6: ipv6)
    }

    /// What the host's local routing table holds: its own addresses, as the DNAT rule's
    /// `fib daddr type local` sees them (127.0.0.0/8 included).
    static func localNetworks(_ host: RouteSocket) throws -> [IPNetwork] {
        try host.routes(family: nil, table: Route.localTable).filter { $0.type == .local }.map(\.destination)
    }

    /// A hostIP must be an address of this host; 0.0.0.0 and :: mean every address.
    static func checkLocal(_ mappings: [PortMapping], host: RouteSocket) throws {
        let specific = mappings.compactMap(\.specificHostIP)
        guard !specific.isEmpty else { return }
        let local = try localNetworks(host)
        for (index, mapping) in mappings.enumerated() {
            guard let ip = mapping.specificHostIP, ip != IPAddress("::1") else { continue }
            if !local.contains(where: { $0.contains(ip) }) {
                throw CNIError(
                    .invalidNetworkConfig, "portMappings[\(index)].hostIP \(ip) is not an address of this host",
                    details: "publish on an address the host has (ip address), or leave hostIP empty for every address")
            }
        }
    }

    /// UDP flows that reached a host port before it was published (a client retrying toward a
    /// container that is still starting) stay bound to where their first packet went for as long
    /// as packets keep coming, and would never meet the new DNAT. Their conntrack entries are
    /// deleted, as the reference plugin does; failures are only logged.
    static func forgetStaleFlows(_ ports: PublishedPorts, local: [IPNetwork], socket: FirewallSocket, log: OutputSink) {
        for entry in ports.entries where entry.mapping?.proto == .udp {
            guard let mapping = entry.mapping else { continue }
            let ipv6 = entry.set == BerthRuleset.portsV6 || entry.set == BerthRuleset.portsIPV6
            do {
                for flow in try socket.trackedFlows(ipv6: ipv6, proto: 17, destinationPort: mapping.hostPort) {
                    let published = mapping.specificHostIP.map { flow.destination == $0 } ?? local.contains { $0.contains(flow.destination) }
                    if published { try socket.delete(flow) }
                }
            } catch {
                log.log("portmap: cannot remove stale conntrack entries for \(mapping): \(error)")
            }
        }
    }

    /// Why a mapping got no element.
    static func skipped(_ mapping: PortMapping, _ ports: PublishedPorts) -> String {
        if mapping.specificHostIP == IPAddress("::1") {
            return "portmap: \(mapping) is not DNATed: IPv6 cannot route ::1 off the host; the userland proxy (berth-proxy) serves it"
        }
        let family = mapping.hostIP?.isIPv4 == true ? "IPv4" : "IPv6"
        return "portmap: \(mapping) skipped: the container has no \(family) address"
    }
}

/// Published ports reached from the host as 127.0.0.1. The DNAT in `output` turns such a
/// connection into one from 127.0.0.1 to the container, which the kernel routes off the host
/// only when `route_localnet` is on for the outgoing interface (and accepts the replies, after
/// the 127.0.0.0/8 masquerade, only then too). berth turns it on for exactly the interfaces that
/// lead to containers with published IPv4 ports (the bridge), never globally; the `guard` chain
/// of berth's table drops what route_localnet would otherwise let in: packets to or from
/// 127.0.0.0/8 arriving on any link but lo. It stays on when the ports go (other containers on
/// the bridge may need it, and it is inert behind the guard).
enum Localhost {
    /// Whether the attachment needs it: SNAT on (masquerade is what makes the replies come
    /// back), and a mapping on every IPv4 address or on a 127.0.0.0/8 one.
    static func served(_ config: PortmapConfig, _ mappings: [PortMapping]) -> Bool {
        config.snat && mappings.contains { mapping in
            guard mapping.applies(ipv4: true) else { return false }
            guard let ip = mapping.specificHostIP else { return true }
            return IPNetwork("127.0.0.0/8")!.contains(ip)
        }
    }

    static func enable(toward container: IPAddress, host: RouteSocket, log: OutputSink) throws {
        guard let interface = try interface(toward: container, host: host) else {
            log.log("portmap: no route to \(container) on the host; published ports will not answer on 127.0.0.1")
            return
        }
        let path = sysctl(interface)
        if (try? Files.readText(path))?.hasPrefix("1") == true { return }
        do {
            try Files.write(path, Array("1".utf8), flags: O_WRONLY)
        } catch {
            throw CNIError(.internalError, "portmap: cannot turn on route_localnet for \(interface)", details: "\(error)")
        }
    }

    static func verify(toward container: IPAddress, host: RouteSocket) throws {
        guard let interface = try interface(toward: container, host: host) else { return }
        guard (try? Files.readText(sysctl(interface)))?.hasPrefix("1") == true else {
            throw CNIError(.internalError, "portmap CHECK: route_localnet is off for \(interface)", details: "published ports do not answer on 127.0.0.1")
        }
    }

    private static func sysctl(_ interface: String) -> String { "/proc/sys/net/ipv4/conf/\(interface)/route_localnet" }

    /// The interface of the main table's most specific on-link route (no gateway) to `address`:
    /// the bridge, for a container behind one.
    static func interface(toward address: IPAddress, host: RouteSocket) throws -> String? {
        let routes = try host.routes(family: IPFamily(of: address)).filter {
            $0.destination.contains(address) && $0.interfaceIndex != nil && $0.gateway == nil && $0.type == .unicast
        }
        guard let best = routes.max(by: { $0.destination.prefixLength < $1.destination.prefixLength }),
            let link = try host.link(index: best.interfaceIndex!)
        else { return nil }
        return link.name
    }
}

import Addressing
import CNI
import Netlink

/// CHECK for the bridge plugin: the bridge, the container interface and the host veth between
/// them are as prevResult says, and the container has prevResult's addresses and routes.
struct BridgeCheck {
    let config: BridgeConfig
    let request: PluginRequest
    let prev: CNIResult
    let host: RouteSocket
    let inside: RouteSocket

    func run() throws {
        guard let bridgeEntry = prev.interfaces.first(where: { $0.name == config.bridge && $0.sandbox == nil }) else {
            throw failure("prevResult lists no bridge \(config.bridge)")
        }
        guard let containerEntry = prev.interfaces.first(where: { $0.name == request.ifName && $0.sandbox != nil }) else {
            throw failure("prevResult lists no container interface \(request.ifName)")
        }
        guard containerEntry.sandbox == request.netns else {
            throw failure("sandbox in prevResult \(containerEntry.sandbox ?? "") does not match CNI_NETNS \(request.netns)")
        }

        guard let bridge = try host.link(named: config.bridge) else { throw failure("bridge \(config.bridge) does not exist") }
        guard bridge.kind == "bridge" else { throw failure("\(config.bridge) is not a bridge") }
        try expectMAC(bridgeEntry, bridge)
        guard bridge.isPromiscuous == config.promiscMode else {
            throw failure("bridge \(config.bridge) promiscuous mode is \(bridge.isPromiscuous), configured \(config.promiscMode)")
        }

        guard let container = try inside.link(named: request.ifName) else {
            throw failure("container interface \(request.ifName) does not exist in \(request.netns)")
        }
        guard container.kind == "veth" else { throw failure("container interface \(request.ifName) is not a veth") }
        try expectMAC(containerEntry, container)

        // The host end: a veth of prevResult whose peer is the container interface, on the bridge.
        var hostEnd: (entry: CNIResult.Interface, link: Link)? = nil
        for entry in prev.interfaces where entry.sandbox == nil && entry.name != config.bridge {
            if let link = try host.link(named: entry.name), link.kind == "veth", link.linkIndex == container.index {
                hostEnd = (entry, link)
            }
        }
        guard let (entry, veth) = hostEnd else { throw failure("the host end of \(request.ifName) was not found") }
        guard veth.masterIndex == bridge.index else { throw failure("\(veth.name) is not attached to \(config.bridge)") }
        try expectMAC(entry, veth)

        let addresses = Set(try inside.addresses(index: container.index).map(\.address))
        for ip in prev.ips where !addresses.contains(ip.address) {
            throw failure("address \(ip.address) is missing from \(request.ifName)")
        }
        let routes = try inside.routes()
        for route in prev.routes {
            let present = routes.contains {
                $0.destination == route.destination.network && (route.gateway == nil || $0.gateway == route.gateway)
            }
            if !present {
                throw failure("route to \(route.destination)\(route.gateway.map { " via \($0)" } ?? "") is missing")
            }
        }
    }

    private func expectMAC(_ entry: CNIResult.Interface, _ link: Link) throws {
        guard let mac = entry.mac, !mac.isEmpty else { return }
        guard MACAddress(mac) == link.mac else {
            throw failure("\(link.name) has MAC \(link.mac?.description ?? "none"), prevResult says \(mac)")
        }
    }

    private func failure(_ message: String) -> CNIError { CNIError(.internalError, "bridge CHECK: \(message)") }
}

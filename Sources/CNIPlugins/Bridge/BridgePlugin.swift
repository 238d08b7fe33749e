import Addressing
import BerthSupport
public import CNI
import Firewall
import Glibc
import Namespaces
import Netlink

/// `bridge`: a Linux bridge on the host and a veth pair per container, the container end named
/// CNI_IFNAME inside the container's namespace, addresses from the IPAM plugin, the gateway
/// address on the bridge, masquerade and isolation between bridges in berth's nftables table.
/// Drop-in for the reference plugin's configuration (see BridgeConfig).
public struct BridgePlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin bridge (berth): Linux bridge and veth pairs"

    public init() {}

    // MARK: ADD

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let config = try BridgeConfig(request)
        let names = AttachmentNames(network: config.network, containerID: request.containerID, ifName: request.ifName)
        let sandbox = try Sandbox.open(request)
        let host = try RouteSocket()
        let inside = try RouteSocket.open(in: sandbox)

        var undo = UndoStack()
        do {
            let bridge = try BridgeLink.ensure(config, host: host)
            if try inside.link(named: request.ifName) != nil {
                throw CNIError(.invalidNetworkConfig, "the container already has an interface named \(request.ifName)")
            }
            let hostVeth = try host.createVeth(
                name: names.hostVeth, peerName: request.ifName, peerNamespaceFD: sandbox.fd, mtu: config.mtu,
                peerMAC: config.mac, master: bridge.index)
            undo.push("delete \(names.hostVeth)") { try host.deleteLink(index: hostVeth.index) }
            if config.hairpinMode { try host.setHairpin(index: hostVeth.index, true) }
            if let vlan = config.vlan { try host.addBridgeVLAN(index: hostVeth.index, vid: vlan, pvid: true, untagged: true) }
            // Up, and labelled with its owner for GC (the kernel ignores an alias at creation).
            try host.modifyLink(index: hostVeth.index, LinkChanges(up: true, alias: names.alias))
            guard let containerLink = try inside.link(named: request.ifName) else {
                throw CNIError(.internalError, "\(request.ifName) vanished from the container right after it was created")
            }
            if config.macSpoofCheck, let mac = containerLink.mac {
                let socket = try FirewallSocket()
                try MacSpoofCheck.attach(hostVeth: hostVeth.name, mac: mac, owner: names.owner, socket: socket)
                undo.push("remove macspoofchk elements") {
                    try MacSpoofCheck.detach(hostVeth: hostVeth.name, mac: mac, owner: names.owner, socket: socket)
                }
            }

            var result = CNIResult(
                cniVersion: request.version,
                interfaces: [
                    .init(name: bridge.name, mac: bridge.mac?.description),
                    .init(name: hostVeth.name, mac: hostVeth.mac?.description),
                    .init(name: containerLink.name, mac: containerLink.mac?.description, sandbox: request.netns),
                ])

            if let ipamType = config.ipamType {
                let ipam = try request.delegateAdd(type: ipamType)
                undo.push("release addresses (\(ipamType) DEL)") { try request.delegateDel(type: ipamType) }
                guard !ipam.ips.isEmpty else { throw CNIError(.internalError, "IPAM plugin \(ipamType) returned no address") }
                result.ips = ipam.ips.map { ip in
                    var ip = ip
                    ip.interface = 2
                    if ip.gateway == nil && config.isGateway { ip.gateway = ip.address.first.advanced(by: 1) }
                    return ip
                }
                result.routes = ipam.routes + Self.defaultRoutes(config, result)
                result.dns = ipam.dns
                try ContainerSide.configure(
                    sandbox, inside, link: containerLink, ips: result.ips, routes: result.routes, enableDAD: config.enableDAD)
                if config.isGateway {
                    try BridgeLink.assignGateways(result.ips, bridge: bridge, host: host, force: config.forceAddress)
                    try Forwarding.enable(for: result.ips)
                }
                let addresses = result.ips.map(\.address.address)
                let firewall = try FirewallSocket()
                try BridgeFirewall.attach(config, addresses, owner: names.owner, socket: firewall)
                undo.push("remove nftables elements") {
                    try BridgeFirewall.detach(config, addresses, owner: names.owner, socket: firewall)
                }
            } else {
                try inside.setUp(index: containerLink.index)
            }
            if let dns = config.dns { result.dns = dns }
            undo.commit()
            return result
        } catch {
            let leftovers = undo.rollback()
            if !leftovers.isEmpty {
                request.stderr.log("bridge: ADD failed and some of it could not be undone: \(leftovers.joined(separator: "; "))")
            }
            throw error
        }
    }

    /// isDefaultGateway: a default route per family through that family's gateway, unless the
    /// IPAM result already has one.
    static func defaultRoutes(_ config: BridgeConfig, _ result: CNIResult) -> [CNIResult.Route] {
        guard config.isDefaultGateway else { return [] }
        var routes: [CNIResult.Route] = []
        for ipv4 in [true, false] {
            guard let gateway = result.ips.first(where: { $0.address.isIPv4 == ipv4 })?.gateway else { continue }
            let hasDefault = result.routes.contains { $0.destination.prefixLength == 0 && $0.destination.isIPv4 == ipv4 }
            if !hasDefault {
                routes.append(.init(destination: IPNetwork(ipv4 ? "0.0.0.0/0" : "::/0")!, gateway: gateway))
            }
        }
        return routes
    }

    // MARK: DEL

    /// Removes the veth (both ends), releases the addresses and this attachment's rules. Works
    /// when the namespace is gone or CNI_NETNS is empty, and when run twice.
    public func del(_ request: PluginRequest) throws {
        let config = try BridgeConfig(request)
        let names = AttachmentNames(network: config.network, containerID: request.containerID, ifName: request.ifName)
        var failures: [String] = []
        func attempt(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch { failures.append("\(what): \(error)") }
        }
        // Order matters for latency: the nftables deletions go first, so the RCU grace period
        // they leave pending (closing a netfilter socket waits for it) passes while the kernel
        // deletes the veth, which waits for one of its own; the socket closes last.
        let sandbox = try? Sandbox.openIfPresent(request)
        let inside = try sandbox.map { try RouteSocket.open(in: $0) }
        let containerLink = try inside?.link(named: request.ifName).flatMap { $0.kind == "veth" ? $0 : nil }
        // The attachment's addresses: from prevResult, else from the interface before it goes.
        var addresses: [IPAddress]? = request.config.prevResult.map { $0.ips.map(\.address.address) }
        if addresses == nil, let inside, let containerLink {
            addresses = try inside.addresses(index: containerLink.index).map(\.address.address)
                .filter { !$0.isIPv6LinkLocal }
        }
        let firewall = try? FirewallSocket()
        attempt("remove nftables elements") {
            guard let firewall else { throw CNIError(.internalError, "cannot open a netfilter socket") }
            try BridgeFirewall.detach(config, addresses, owner: names.owner, socket: firewall)
            if config.macSpoofCheck {
                let mac = request.config.prevResult?.interfaces.first { $0.sandbox != nil && $0.name == request.ifName }?.mac
                    .flatMap { MACAddress($0) } ?? containerLink?.mac
                try MacSpoofCheck.detach(hostVeth: names.hostVeth, mac: mac, owner: names.owner, socket: firewall)
            }
        }
        attempt("remove \(request.ifName) from the container") {
            if let inside, let containerLink { try ignoringMissing { try inside.deleteLink(index: containerLink.index) } }
        }
        attempt("remove \(names.hostVeth)") {
            let host = try RouteSocket()
            try ignoringMissing { try host.deleteLink(name: names.hostVeth) }
        }
        if let ipamType = config.ipamType {
            attempt("release addresses (\(ipamType) DEL)") { try request.delegateDel(type: ipamType) }
        }
        withExtendedLifetime(firewall) {}
        guard failures.isEmpty else {
            throw CNIError(.internalError, "bridge: DEL could not remove everything", details: failures.joined(separator: "; "))
        }
    }

    // MARK: CHECK

    public func check(_ request: PluginRequest) throws {
        let config = try BridgeConfig(request)
        guard let prev = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "CHECK needs prevResult: the result of the ADD")
        }
        if let ipamType = config.ipamType { try request.delegateCheck(type: ipamType) }
        let sandbox = try Sandbox.open(request)
        let host = try RouteSocket()
        let inside = try RouteSocket.open(in: sandbox)
        try BridgeCheck(config: config, request: request, prev: prev, host: host, inside: inside).run()
        let names = AttachmentNames(network: config.network, containerID: request.containerID, ifName: request.ifName)
        if config.ipamType != nil {
            try BridgeFirewall.verify(config, prev.ips.map(\.address.address), owner: names.owner, socket: try FirewallSocket())
        }
        if config.macSpoofCheck,
            let mac = prev.interfaces.first(where: { $0.sandbox != nil && $0.name == request.ifName })?.mac.flatMap({ MACAddress($0) })
        {
            try MacSpoofCheck.verify(hostVeth: names.hostVeth, mac: mac, owner: names.owner, socket: try FirewallSocket())
        }
    }

    // MARK: STATUS and GC

    /// Ready when the bridge name is free or a bridge, and the IPAM plugin is ready.
    public func status(_ request: PluginRequest) throws {
        let config = try BridgeConfig(request)
        if let link = try RouteSocket().link(named: config.bridge), link.kind != "bridge" {
            throw CNIError(.pluginNotAvailable, "\(config.bridge) exists but is a \(link.kind ?? "device"), not a bridge")
        }
        if let ipamType = config.ipamType { _ = try request.delegate(.status, type: ipamType) }
    }

    /// Removes host veths of this network whose attachment is not valid any more (the kernel
    /// removes the container ends with them), then lets the IPAM plugin collect its own.
    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        let config = try BridgeConfig(request)
        let valid = Set(validAttachments)
        let host = try RouteSocket()
        var failures: [String] = []
        let links = try host.links()
        let bridgeIndex = links.first { $0.name == config.bridge }?.index
        for link in links {
            if let owner = AttachmentNames.parse(alias: link.alias) {
                guard owner.network == config.network else { continue }
                if valid.contains(GCAttachment(containerID: owner.containerID, ifName: owner.ifName)) { continue }
            } else {
                // An ADD killed between creating the veth and labelling it leaves a veth of
                // berth's naming on the bridge without an owner: garbage too.
                guard link.kind == "veth", link.masterIndex == bridgeIndex, bridgeIndex != nil,
                    AttachmentNames.isHostVethName(link.name)
                else { continue }
            }
            do { try ignoringMissing { try host.deleteLink(index: link.index) } } catch { failures.append("\(link.name): \(error)") }
        }
        do {
            let owners = Set(validAttachments.map {
                AttachmentNames(network: config.network, containerID: $0.containerID, ifName: $0.ifName).owner
            })
            let socket = try FirewallSocket()
            try BridgeFirewall.collect(network: config.network, valid: owners, socket: socket)
            try MacSpoofCheck.collect(network: config.network, valid: owners, socket: socket)
        } catch { failures.append("nftables: \(error)") }
        if let ipamType = config.ipamType { _ = try request.delegate(.gc, type: ipamType) }
        guard failures.isEmpty else {
            throw CNIError(.internalError, "bridge: GC could not remove everything", details: failures.joined(separator: "; "))
        }
    }
}

/// Runs `body`, treating "it is already gone" (ENODEV, ENOENT, ESRCH) as success.
func ignoringMissing(_ body: () throws -> Void) throws {
    do { try body() } catch let error as SystemError where [ENODEV, ENOENT, ESRCH].contains(error.errno) {}
}

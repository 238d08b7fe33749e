import Addressing
public import CNI
import Firewall
import Netlink

/// `firewall` (chained): accepts forwarded traffic to and from the container's addresses in
/// berth's nftables table. Configuration-compatible with the reference plugin: `backend`
/// ("iptables", "firewalld", "nftables" or absent all mean berth's table), `ingressPolicy`
/// ("open", or "same-bridge": only the container's own bridge may reach it). Accepting in one
/// nftables table cannot override a drop in another (docker's FORWARD policy, firewalld): such
/// hosts must allow the container subnets there too.
public struct FirewallPlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin firewall (berth): forward rules for container addresses in nftables"

    public init() {}

    struct Config {
        var network: String
        var sameBridge: Bool

        init(_ request: PluginRequest) throws {
            let fields = request.config.fields
            network = request.config.name
            if let backend = try fields.string("backend"), !["", "iptables", "firewalld", "nftables"].contains(backend) {
                throw CNIError(.invalidNetworkConfig, "backend \"\(backend)\" is unknown", details: "use iptables, firewalld or nftables (all mean berth's nftables table)")
            }
            switch try fields.string("ingressPolicy") ?? "" {
            case "", "open": sameBridge = false
            case "same-bridge": sameBridge = true
            case let other:
                throw CNIError(.invalidNetworkConfig, "ingressPolicy \"\(other)\" is unknown", details: "use open or same-bridge")
            }
        }
    }

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let config = try Config(request)
        guard let prev = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "firewall: missing prevResult from an earlier plugin")
        }
        let owner = Owner(network: config.network, container: request.containerID, ifname: request.ifName)
        var batch = Batch(BerthRuleset.table)
        for ip in prev.ips.map(\.address.address) {
            batch.replace(elements: [Element(Value(ip), comment: owner.comment)], in: ip.isIPv4 ? BerthRuleset.allowV4 : BerthRuleset.allowV6)
        }
        if config.sameBridge, let bridge = try bridge(of: prev) {
            batch.add(elements: [Element(.string(bridge))], to: BerthRuleset.bridges)
            batch.add(elements: [Element(.string(bridge), .string(bridge))], to: BerthRuleset.bridgeSelf)
        }
        try BerthRuleset.commit(batch, on: try FirewallSocket())
        var result = prev
        result.cniVersion = request.version
        return result
    }

    public func del(_ request: PluginRequest) throws {
        let config = try Config(request)
        let owner = Owner(network: config.network, container: request.containerID, ifname: request.ifName)
        let socket = try FirewallSocket()
        guard try socket.tableExists(BerthRuleset.table) else { return }
        guard let prev = request.config.prevResult else {
            try socket.commit { () throws(FirewallError) in try BerthRuleset.removal(of: owner, listedBy: socket) }
            return
        }
        var batch = Batch(BerthRuleset.table)
        for ip in prev.ips.map(\.address.address) {
            let set = ip.isIPv4 ? BerthRuleset.allowV4 : BerthRuleset.allowV6
            if try socket.element([Value(ip)], of: set, in: BerthRuleset.table)?.owner == owner {
                batch.delete(elements: [Element(Value(ip))], from: set, ifAbsent: .ignore)
            }
        }
        try socket.commit(batch)
    }

    public func check(_ request: PluginRequest) throws {
        let config = try Config(request)
        guard let prev = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "firewall: CHECK needs prevResult")
        }
        let owner = Owner(network: config.network, container: request.containerID, ifname: request.ifName)
        let socket = try FirewallSocket()
        for ip in prev.ips.map(\.address.address) {
            let set = ip.isIPv4 ? BerthRuleset.allowV4 : BerthRuleset.allowV6
            guard try socket.element([Value(ip)], of: set, in: BerthRuleset.table)?.owner == owner else {
                throw CNIError(.internalError, "firewall CHECK: \(ip) is missing from set \(set.name) in table inet berth")
            }
        }
    }

    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        let config = try Config(request)
        let socket = try FirewallSocket()
        guard try socket.tableExists(BerthRuleset.table) else { return }
        let owners = Set(validAttachments.map { Owner(network: config.network, container: $0.containerID, ifname: $0.ifName) })
        try socket.commit { () throws(FirewallError) in
            try BerthRuleset.garbage(keeping: owners, network: config.network, listedBy: socket)
        }
    }

    /// The bridge among prevResult's host interfaces (the bridge plugin lists it first).
    private func bridge(of result: CNIResult) throws -> String? {
        let host = try RouteSocket()
        for interface in result.interfaces where interface.sandbox == nil {
            if try host.link(named: interface.name)?.kind == "bridge" { return interface.name }
        }
        return nil
    }
}

import Addressing
public import CNI
import Netlink

/// `loopback` (and `none`, docker's "none" network, which is the same thing): brings `lo` up in
/// the container's namespace and reports its addresses. Configuration-compatible with the
/// reference plugin, which takes no options of its own.
public struct LoopbackPlugin: CNIPlugin, Sendable {
    public let about: String

    public init(name: String = "loopback") {
        about = "CNI plugin \(name) (berth): brings up the loopback interface"
    }

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let namespace = try Sandbox.open(request)
        let socket = try RouteSocket.open(in: namespace)
        let lo = try loopback(socket)
        try socket.setUp(index: lo.index, true)
        let addresses = try socket.addresses(index: lo.index)
        return CNIResult(
            cniVersion: request.version,
            interfaces: [.init(name: lo.name, mac: "00:00:00:00:00:00", sandbox: request.netns)],
            ips: addresses.map { CNIResult.IPConfig(address: $0.address, interface: 0) },
            dns: request.config.dns ?? DNSConfig())
    }

    /// Takes `lo` down again, as the reference does; nothing to do when the namespace is gone.
    public func del(_ request: PluginRequest) throws {
        guard let namespace = try Sandbox.openIfPresent(request) else { return }
        let socket = try RouteSocket.open(in: namespace)
        guard let lo = try socket.link(named: "lo") else { return }
        try socket.setUp(index: lo.index, false)
    }

    public func check(_ request: PluginRequest) throws {
        let namespace = try Sandbox.open(request)
        let socket = try RouteSocket.open(in: namespace)
        let lo = try loopback(socket)
        guard lo.isUp else { throw CNIError(.internalError, "loopback interface is down in \(request.netns)") }
        let present = Set(try socket.addresses(index: lo.index).map(\.address))
        for ip in request.config.prevResult?.ips ?? [] where !present.contains(ip.address) {
            throw CNIError(.internalError, "address \(ip.address) of prevResult is missing from lo in \(request.netns)")
        }
    }

    private func loopback(_ socket: RouteSocket) throws -> Link {
        guard let lo = try socket.link(named: "lo") else {
            throw CNIError(.internalError, "the container namespace has no loopback interface")
        }
        return lo
    }
}

public import Addressing
import BerthSupport
import CMnl
import Glibc
public import Namespaces

/// rtnetlink: links, addresses and routes of one network namespace.
///
/// A RouteSocket works on the namespace it was opened in, whichever thread later uses it.
/// Errors are SystemErrors naming the operation and the object ("create veth", "veth1a2b (peer
/// eth0)"), with the errno (EEXIST, ENODEV... stay distinguishable) and the kernel's
/// extended-ACK text when it gave one.
public final class RouteSocket: Sendable {
    public let socket: NetlinkSocket

    /// A socket in the calling thread's current network namespace.
    public init(timeout: Duration = .seconds(5)) throws {
        socket = try NetlinkSocket(protocol: NETLINK_ROUTE, timeout: timeout)
    }

    /// A socket in `namespace`, opened on a short-lived thread that enters it; the caller's
    /// thread never changes namespace. The socket can then be used from any thread.
    public static func open(in namespace: NetworkNamespace, timeout: Duration = .seconds(5)) throws -> RouteSocket {
        try namespace.run { try RouteSocket(timeout: timeout) }
    }

    // MARK: Links

    @discardableResult
    public func createBridge(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, vlanFiltering: Bool? = nil)
        throws -> Link
    {
        try perform(
            RouteMessage.createBridge(name: name, mtu: mtu, mac: mac, vlanFiltering: vlanFiltering),
            "create bridge", name)
        return try createdLink(name)
    }

    /// Creates a veth pair in one request: this end `name` here (enslaved to `master` when
    /// given), the peer `peerName` directly in the namespace `peerNamespaceFD` (here when nil).
    /// `mtu` applies to both ends. Returns this end.
    @discardableResult
    public func createVeth(
        name: String, peerName: String, peerNamespaceFD: Int32? = nil, mtu: UInt32? = nil,
        mac: MACAddress? = nil, peerMAC: MACAddress? = nil, master: Int32? = nil
    ) throws -> Link {
        try perform(
            RouteMessage.createVeth(
                name: name, peerName: peerName, peerNamespaceFD: peerNamespaceFD, mtu: mtu, mac: mac,
                peerMAC: peerMAC, master: master),
            "create veth", "\(name) (peer \(peerName))")
        return try createdLink(name)
    }

    @discardableResult
    public func createDummy(name: String, mtu: UInt32? = nil) throws -> Link {
        try perform(RouteMessage.createDummy(name: name, mtu: mtu), "create dummy", name)
        return try createdLink(name)
    }

    public func deleteLink(index: Int32) throws {
        try perform(RouteMessage.deleteLink(index: index), "delete link", linkName(index))
    }

    public func deleteLink(name: String) throws {
        try perform(RouteMessage.deleteLink(name: name), "delete link", name)
    }

    /// The link called `name`, or nil if there is none.
    public func link(named name: String) throws -> Link? {
        try optionalLink(RouteMessage.getLink(name: name), name)
    }

    /// The link with this index, or nil if there is none.
    public func link(index: Int32) throws -> Link? {
        try optionalLink(RouteMessage.getLink(index: index), "link \(index)")
    }

    /// The index of the link called `name`; ENODEV if there is none.
    public func index(named name: String) throws -> Int32 {
        guard let link = try link(named: name) else {
            throw SystemError("find link", object: name, errno: ENODEV)
        }
        return link.index
    }

    public func links() throws -> [Link] {
        try dump(RouteMessage.dumpLinks(), "list links").compactMap(Link.init)
    }

    /// Applies several changes to a link in one request.
    public func modifyLink(index: Int32, _ changes: LinkChanges) throws {
        try modify(index, changes, "change link")
    }

    /// The error names the link, followed by `detail` (" to eth1").
    private func modify(_ index: Int32, _ changes: LinkChanges, _ operation: String, detail: String = "") throws {
        try perform(RouteMessage.modifyLink(index: index, changes), operation, linkName(index) + detail)
    }

    public func setUp(index: Int32, _ up: Bool = true) throws {
        try modify(index, LinkChanges(up: up), up ? "set up" : "set down")
    }

    public func setMTU(index: Int32, _ mtu: UInt32) throws {
        try modify(index, LinkChanges(mtu: mtu), "set mtu \(mtu) on")
    }

    public func setMAC(index: Int32, _ mac: MACAddress) throws {
        try modify(index, LinkChanges(mac: mac), "set mac \(mac) on")
    }

    /// Enslaves the link to `master`, or frees it when `master` is nil.
    public func setMaster(index: Int32, master: Int32?) throws {
        let request = try RouteMessage.modifyLink(index: index, LinkChanges(master: master ?? 0))
        if let master {
            try perform(request, "enslave", "\(linkName(index)) to \(linkName(master))")
        } else {
            try perform(request, "remove master from", linkName(index))
        }
    }

    public func rename(index: Int32, to name: String) throws {
        try modify(index, LinkChanges(name: name), "rename", detail: " to \(name)")
    }

    /// Moves the link into another namespace, renaming it there in the same request when
    /// `newName` is given (so it never collides with a same-named link on the way).
    public func moveToNamespace(index: Int32, namespaceFD: Int32, newName: String? = nil) throws {
        let detail = " to namespace fd \(namespaceFD)" + (newName.map { " as \($0)" } ?? "")
        try modify(index, LinkChanges(name: newName, namespaceFD: namespaceFD), "move", detail: detail)
    }

    public func setPromiscuous(index: Int32, _ on: Bool) throws {
        try modify(index, LinkChanges(promiscuous: on), on ? "set promisc on" : "set promisc off")
    }

    public func setAllMulticast(index: Int32, _ on: Bool) throws {
        try modify(index, LinkChanges(allMulticast: on), on ? "set allmulticast on" : "set allmulticast off")
    }

    /// Hairpin mode of a bridge port: frames may go back out the port they came in on.
    public func setHairpin(index: Int32, _ on: Bool) throws {
        try perform(RouteMessage.setHairpin(index: index, on), on ? "set hairpin on" : "set hairpin off", linkName(index))
    }

    /// VLAN filtering of a bridge (EOPNOTSUPP on kernels without CONFIG_BRIDGE_VLAN_FILTERING).
    public func setVLANFiltering(bridgeIndex: Int32, _ on: Bool) throws {
        try perform(
            RouteMessage.setVLANFiltering(bridgeIndex: bridgeIndex, on),
            on ? "turn vlan filtering on for" : "turn vlan filtering off for", linkName(bridgeIndex))
    }

    /// Adds a VLAN to a bridge port (or to the bridge itself with `bridgeSelf`). The bridge
    /// must have VLAN filtering; kernels without CONFIG_BRIDGE_VLAN_FILTERING say EOPNOTSUPP.
    public func addBridgeVLAN(index: Int32, vid: UInt16, pvid: Bool = false, untagged: Bool = false, bridgeSelf: Bool = false)
        throws
    {
        try perform(
            RouteMessage.bridgeVLAN(add: true, index: index, vid: vid, pvid: pvid, untagged: untagged, bridgeSelf: bridgeSelf),
            "add vlan \(vid) to", linkName(index))
    }

    public func deleteBridgeVLAN(index: Int32, vid: UInt16, bridgeSelf: Bool = false) throws {
        try perform(
            RouteMessage.bridgeVLAN(add: false, index: index, vid: vid, bridgeSelf: bridgeSelf),
            "delete vlan \(vid) from", linkName(index))
    }

    // MARK: Addresses

    public func addAddress(_ address: IPNetwork, index: Int32, noDAD: Bool = false) throws {
        try perform(
            RouteMessage.addAddress(address, index: index, noDAD: noDAD), "add address", "\(address) to \(linkName(index))")
    }

    public func deleteAddress(_ address: IPNetwork, index: Int32) throws {
        try perform(
            RouteMessage.deleteAddress(address, index: index), "delete address", "\(address) from \(linkName(index))")
    }

    /// Addresses, of one link and one family when given.
    public func addresses(index: Int32? = nil, family: IPFamily? = nil) throws -> [InterfaceAddress] {
        try dump(RouteMessage.dumpAddresses(family: family), "list addresses")
            .compactMap(InterfaceAddress.init)
            .filter { index == nil || $0.index == index }
    }

    // MARK: Routes

    public func addRoute(_ route: Route) throws {
        try perform(RouteMessage.addRoute(route), "add route", describe(route))
    }

    /// Adds the route, or replaces the one with the same destination, table and metric.
    public func replaceRoute(_ route: Route) throws {
        try perform(RouteMessage.addRoute(route, replace: true), "replace route", describe(route))
    }

    public func deleteRoute(_ route: Route) throws {
        try perform(RouteMessage.deleteRoute(route), "delete route", describe(route))
    }

    /// Routes of one family (both when nil) in one table (all when nil; the main table by default).
    public func routes(family: IPFamily? = nil, table: UInt32? = Route.mainTable) throws -> [Route] {
        try dump(RouteMessage.dumpRoutes(family: family), "list routes")
            .compactMap(Route.init)
            .filter { table == nil || $0.table == table }
    }

    // MARK: Plumbing

    /// Sends a request and names the operation and object in any error. `object` is evaluated
    /// only on failure (it may look up a link's name).
    @discardableResult
    private func perform(_ request: NetlinkRequest, _ operation: String, _ object: @autoclosure () -> String) throws
        -> [NetlinkMessage]
    {
        do {
            return try socket.request(request)
        } catch var error as SystemError {
            error.operation = operation
            error.object = object()
            throw error
        }
    }

    private func dump(_ request: NetlinkRequest, _ operation: String) throws -> [NetlinkMessage] {
        do {
            return try socket.dump(request)
        } catch var error as SystemError {
            error.operation = operation
            throw error
        }
    }

    private func optionalLink(_ request: NetlinkRequest, _ object: String) throws -> Link? {
        do {
            return try perform(request, "get link", object).lazy.compactMap(Link.init).first
        } catch let error as SystemError where error.errno == ENODEV {
            return nil
        }
    }

    private func createdLink(_ name: String) throws -> Link {
        guard let link = try link(named: name) else {
            throw SystemError("find created link", object: name, errno: ENODEV)
        }
        return link
    }

    /// A link's name for an error message: "eth0", or "link 7" if it cannot be found.
    private func linkName(_ index: Int32) -> String {
        if let link = try? link(index: index) { return link.name }
        return "link \(index)"
    }

    private func describe(_ route: Route) -> String {
        var text = route.destination.description
        if let gateway = route.gateway { text += " via \(gateway)" }
        if let index = route.interfaceIndex { text += " dev \(linkName(index))" }
        if let priority = route.priority { text += " metric \(priority)" }
        if route.table != Route.mainTable { text += " table \(route.table)" }
        return text
    }
}

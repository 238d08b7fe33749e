public import Addressing
import BerthSupport
import CMnl
import Glibc

/// Changes to an existing link, sent together in one RTM_NEWLINK. Nil fields stay as they are.
public struct LinkChanges: Equatable, Sendable {
    public var up: Bool?
    public var promiscuous: Bool?
    public var allMulticast: Bool?
    /// A new name (in the target namespace when `namespaceFD` is set).
    public var name: String?
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// The new master's index; 0 removes the link from its master.
    public var master: Int32?
    /// Moves the link into the namespace this descriptor refers to.
    public var namespaceFD: Int32?
    /// The link's alias (IFLA_IFALIAS; the kernel ignores it when a link is created).
    public var alias: String?

    public init(
        up: Bool? = nil, promiscuous: Bool? = nil, allMulticast: Bool? = nil, name: String? = nil,
        mtu: UInt32? = nil, mac: MACAddress? = nil, master: Int32? = nil, namespaceFD: Int32? = nil,
        alias: String? = nil
    ) {
        self.up = up
        self.promiscuous = promiscuous
        self.allMulticast = allMulticast
        self.name = name
        self.mtu = mtu
        self.mac = mac
        self.master = master
        self.namespaceFD = namespaceFD
        self.alias = alias
    }
}

/// Builds rtnetlink requests. Pure functions of their arguments (sequence number and port id 0;
/// the socket sets the sequence), so the bytes can be checked without privileges.
public enum RouteMessage {
    static let ack = UInt16(NLM_F_REQUEST | NLM_F_ACK)
    static let create = ack | UInt16(NLM_F_CREATE | NLM_F_EXCL)
    static let replace = ack | UInt16(NLM_F_CREATE | NLM_F_REPLACE)
    static let dump = UInt16(NLM_F_REQUEST) | UInt16(NLM_F_DUMP)

    // MARK: Links

    /// RTM_NEWLINK creating a bridge.
    public static func createBridge(
        name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, vlanFiltering: Bool? = nil
    ) throws -> NetlinkRequest {
        try validate(interfaceName: name)
        var message = MessageWriter(type: RTM_NEWLINK, flags: create)
        message.linkHeader()
        message.linkProperties(name: name, mtu: mtu, mac: mac)
        message.nest(IFLA_LINKINFO) { info in
            info.put(IFLA_INFO_KIND, kind: "bridge")
            if let vlanFiltering {
                info.nest(IFLA_INFO_DATA) { $0.put(IFLA_BR_VLAN_FILTERING, u8: vlanFiltering ? 1 : 0) }
            }
        }
        return message.request()
    }

    /// RTM_NEWLINK turning VLAN filtering of an existing bridge on or off.
    public static func setVLANFiltering(bridgeIndex: Int32, _ on: Bool) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_NEWLINK, flags: ack)
        message.linkHeader(index: bridgeIndex)
        message.nest(IFLA_LINKINFO) { info in
            info.put(IFLA_INFO_KIND, kind: "bridge")
            info.nest(IFLA_INFO_DATA) { $0.put(IFLA_BR_VLAN_FILTERING, u8: on ? 1 : 0) }
        }
        return message.request()
    }

    /// RTM_NEWLINK creating a veth pair in one step: the peer goes straight into the namespace
    /// `peerNamespaceFD` (if given) under its final name, and this end is enslaved to `master`.
    /// `mtu` applies to both ends.
    public static func createVeth(
        name: String, peerName: String, peerNamespaceFD: Int32? = nil, mtu: UInt32? = nil,
        mac: MACAddress? = nil, peerMAC: MACAddress? = nil, master: Int32? = nil
    ) throws -> NetlinkRequest {
        try validate(interfaceName: name)
        try validate(interfaceName: peerName)
        var message = MessageWriter(type: RTM_NEWLINK, flags: create)
        message.linkHeader()
        message.linkProperties(name: name, mtu: mtu, mac: mac)
        if let master { message.put(IFLA_MASTER, u32: UInt32(bitPattern: master)) }
        message.nest(IFLA_LINKINFO) { info in
            info.put(IFLA_INFO_KIND, kind: "veth")
            info.nest(IFLA_INFO_DATA) { data in
                // VETH_INFO_PEER holds a struct ifinfomsg (zeroed) followed by the peer's attributes.
                data.nest(VETH_INFO_PEER) { peer in
                    peer.linkHeader()
                    peer.linkProperties(name: peerName, mtu: mtu, mac: peerMAC)
                    if let peerNamespaceFD { peer.put(IFLA_NET_NS_FD, u32: UInt32(bitPattern: peerNamespaceFD)) }
                }
            }
        }
        return message.request()
    }

    /// RTM_NEWLINK creating a dummy interface.
    public static func createDummy(name: String, mtu: UInt32? = nil) throws -> NetlinkRequest {
        try validate(interfaceName: name)
        var message = MessageWriter(type: RTM_NEWLINK, flags: create)
        message.linkHeader()
        message.linkProperties(name: name, mtu: mtu, mac: nil)
        message.nest(IFLA_LINKINFO) { $0.put(IFLA_INFO_KIND, kind: "dummy") }
        return message.request()
    }

    /// RTM_NEWLINK changing an existing link (no NLM_F_CREATE: a missing link is ENODEV).
    public static func modifyLink(index: Int32, _ changes: LinkChanges) throws -> NetlinkRequest {
        if let name = changes.name { try validate(interfaceName: name) }
        var flags: UInt32 = 0, change: UInt32 = 0
        for (wanted, flag) in [(changes.up, IFF_UP), (changes.promiscuous, IFF_PROMISC), (changes.allMulticast, IFF_ALLMULTI)] {
            guard let wanted else { continue }
            change |= UInt32(flag)
            if wanted { flags |= UInt32(flag) }
        }
        var message = MessageWriter(type: RTM_NEWLINK, flags: ack)
        message.linkHeader(index: index, flags: flags, change: change)
        message.linkProperties(name: changes.name, mtu: changes.mtu, mac: changes.mac)
        if let master = changes.master { message.put(IFLA_MASTER, u32: UInt32(bitPattern: master)) }
        if let fd = changes.namespaceFD { message.put(IFLA_NET_NS_FD, u32: UInt32(bitPattern: fd)) }
        if let alias = changes.alias { message.put(IFLA_IFALIAS, string: alias) }
        return message.request()
    }

    public static func deleteLink(index: Int32) -> NetlinkRequest {
        aboutLink(RTM_DELLINK, flags: ack, index: index)
    }

    public static func deleteLink(name: String) throws -> NetlinkRequest {
        try validate(interfaceName: name)
        return aboutLink(RTM_DELLINK, flags: ack, name: name)
    }

    /// RTM_GETLINK for one link, by index.
    public static func getLink(index: Int32) -> NetlinkRequest {
        aboutLink(RTM_GETLINK, flags: ack, index: index, skipStatistics: true)
    }

    /// RTM_GETLINK for one link, by name.
    public static func getLink(name: String) throws -> NetlinkRequest {
        try validate(interfaceName: name)
        return aboutLink(RTM_GETLINK, flags: ack, name: name, skipStatistics: true)
    }

    /// RTM_GETLINK dump of every link (statistics left out).
    public static func dumpLinks() -> NetlinkRequest {
        aboutLink(RTM_GETLINK, flags: dump, skipStatistics: true)
    }

    /// A request about one link named by index or, with index 0, by IFLA_IFNAME; statistics
    /// can be left out of the reply (IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS).
    private static func aboutLink(
        _ type: some BinaryInteger, flags: UInt16, index: Int32 = 0, name: String? = nil, skipStatistics: Bool = false
    ) -> NetlinkRequest {
        var message = MessageWriter(type: type, flags: flags)
        message.linkHeader(index: index)
        if let name { message.put(IFLA_IFNAME, string: name) }
        if skipStatistics { message.put(IFLA_EXT_MASK, u32: UInt32(RTEXT_FILTER_SKIP_STATS)) }
        return message.request()
    }

    /// RTM_SETLINK (AF_BRIDGE) turning hairpin mode of a bridge port on or off. The kernel only
    /// reads IFLA_PROTINFO as port settings when it carries NLA_F_NESTED.
    public static func setHairpin(index: Int32, _ on: Bool) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_SETLINK, flags: ack)
        message.linkHeader(family: UInt8(AF_BRIDGE), index: index)
        message.nest(Int32(IFLA_PROTINFO) | NLA_F_NESTED) { $0.put(IFLA_BRPORT_MODE, u8: on ? 1 : 0) }
        return message.request()
    }

    /// RTM_SETLINK (add) or RTM_DELLINK (remove), AF_BRIDGE, for a VLAN on a bridge port, or on
    /// the bridge device itself when `bridgeSelf` is set (BRIDGE_FLAGS_SELF).
    public static func bridgeVLAN(
        add: Bool, index: Int32, vid: UInt16, pvid: Bool = false, untagged: Bool = false, bridgeSelf: Bool = false
    ) -> NetlinkRequest {
        var message = MessageWriter(type: add ? RTM_SETLINK : RTM_DELLINK, flags: ack)
        message.linkHeader(family: UInt8(AF_BRIDGE), index: index)
        message.nest(IFLA_AF_SPEC) { spec in
            if bridgeSelf {
                spec.put(IFLA_BRIDGE_FLAGS, withUnsafeBytes(of: UInt16(BRIDGE_FLAGS_SELF)) { Array($0) })
            }
            // struct bridge_vlan_info { u16 flags; u16 vid; }
            var vlanFlags: UInt16 = 0
            if pvid { vlanFlags |= UInt16(BRIDGE_VLAN_INFO_PVID) }
            if untagged { vlanFlags |= UInt16(BRIDGE_VLAN_INFO_UNTAGGED) }
            let info = withUnsafeBytes(of: vlanFlags) { Array($0) } + withUnsafeBytes(of: vid) { Array($0) }
            spec.put(IFLA_BRIDGE_VLAN_INFO, info)
        }
        return message.request()
    }

    // MARK: Addresses

    /// RTM_NEWADDR. IPv4 gets IFA_LOCAL, IFA_ADDRESS and the subnet's broadcast address (below
    /// /31); IPv6 gets IFA_LOCAL and IFA_ADDRESS, and IFA_F_NODAD when `noDAD` is set so that
    /// the address is usable (and routes through it accepted) at once.
    public static func addAddress(_ address: IPNetwork, index: Int32, noDAD: Bool = false, replace: Bool = false)
        -> NetlinkRequest
    {
        var message = MessageWriter(type: RTM_NEWADDR, flags: replace ? RouteMessage.replace : create)
        let flags: UInt8 = noDAD && !address.isIPv4 ? UInt8(IFA_F_NODAD) : 0
        message.addressHeader(address, flags: flags, index: index)
        message.put(IFA_LOCAL, address.address.bytes)
        message.put(IFA_ADDRESS, address.address.bytes)
        if address.isIPv4 && address.prefixLength < 31 {
            message.put(IFA_BROADCAST, address.last.bytes)
        }
        return message.request()
    }

    public static func deleteAddress(_ address: IPNetwork, index: Int32) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_DELADDR, flags: ack)
        message.addressHeader(address, flags: 0, index: index)
        message.put(IFA_LOCAL, address.address.bytes)
        message.put(IFA_ADDRESS, address.address.bytes)
        return message.request()
    }

    /// RTM_GETADDR dump, of one family or (nil) both.
    public static func dumpAddresses(family: IPFamily? = nil) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_GETADDR, flags: dump)
        message.append(family?.rawValue ?? 0)
        message.append(UInt8(0))  // prefixlen
        message.append(UInt8(0))  // flags
        message.append(UInt8(0))  // scope
        message.append(UInt32(0))  // index
        return message.request()
    }

    // MARK: Routes

    /// RTM_NEWROUTE, failing with EEXIST if the route exists, or replacing it when `replace` is set.
    public static func addRoute(_ route: Route, replace: Bool = false) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_NEWROUTE, flags: replace ? RouteMessage.replace : create)
        message.routeHeader(route, scope: route.scope, protocol: route.protocol, type: route.type)
        message.routeKey(route)
        if let source = route.preferredSource { message.put(RTA_PREFSRC.rawValue, source.bytes) }
        if route.mtu != nil || route.advmss != nil {
            message.nest(RTA_METRICS.rawValue) { metrics in
                if let mtu = route.mtu { metrics.put(RTAX_MTU, u32: mtu) }
                if let advmss = route.advmss { metrics.put(RTAX_ADVMSS, u32: advmss) }
            }
        }
        return message.request()
    }

    /// RTM_DELROUTE matching the route's destination and table, and its gateway, interface and
    /// metric where set. Protocol and scope match anything, as with `ip route del`.
    public static func deleteRoute(_ route: Route) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_DELROUTE, flags: ack)
        message.routeHeader(
            route, scope: .nowhere, protocol: .unspecified, type: route.type == .unicast ? .unspecified : route.type)
        message.routeKey(route)
        return message.request()
    }

    /// RTM_GETROUTE dump, of one family or (nil) both.
    public static func dumpRoutes(family: IPFamily? = nil) -> NetlinkRequest {
        var message = MessageWriter(type: RTM_GETROUTE, flags: dump)
        message.append(UInt32(family?.rawValue ?? 0))  // family, dst_len, src_len, tos
        message.append(UInt64(0))  // table, protocol, scope, type, flags
        return message.request()
    }

    // MARK: Validation

    /// The kernel's rule (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or white
    /// space. Checked here so the error says so instead of "Invalid argument".
    static func validate(interfaceName name: String) throws {
        let bytes = Array(name.utf8)
        let forbidden: Set<UInt8> = [UInt8(ascii: "/"), UInt8(ascii: ":"), 0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0]
        guard (1...15).contains(bytes.count), name != ".", name != "..", !bytes.contains(where: forbidden.contains) else {
            throw SystemError(
                "invalid interface name", object: "'\(name)' (1 to 15 bytes, no '/', ':' or white space)", errno: EINVAL)
        }
    }
}

extension MessageWriter {
    /// struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change; }
    mutating func linkHeader(family: UInt8 = 0, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        append(family)
        append(UInt8(0))
        append(UInt16(0))
        append(index)
        append(flags)
        append(change)
    }

    /// IFLA_INFO_KIND without a terminating NUL, byte for byte what iproute2 sends.
    mutating func put(_ type: some BinaryInteger, kind: String) { put(type, Array(kind.utf8)) }

    mutating func linkProperties(name: String?, mtu: UInt32?, mac: MACAddress?) {
        if let name { put(IFLA_IFNAME, string: name) }
        if let mtu { put(IFLA_MTU, u32: mtu) }
        if let mac { put(IFLA_ADDRESS, mac.bytes) }
    }

    /// struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
    mutating func addressHeader(_ address: IPNetwork, flags: UInt8, index: Int32) {
        append(IPFamily(of: address.address).rawValue)
        append(UInt8(address.prefixLength))
        append(flags)
        append(RouteScope.universe.rawValue)
        append(index)
    }

    /// struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }
    /// Tables above 255 go in RTA_TABLE (see routeKey).
    mutating func routeHeader(_ route: Route, scope: RouteScope, protocol: RouteProtocol, type: RouteType) {
        append(route.family.rawValue)
        append(UInt8(route.destination.prefixLength))
        append(UInt8(0))
        append(UInt8(0))
        append(route.table < 256 ? UInt8(route.table) : 0)
        append(`protocol`.rawValue)
        append(scope.rawValue)
        append(type.rawValue)
        append(route.onLink ? UInt32(RTNH_F_ONLINK) : 0)
    }

    /// The attributes that identify a route: table, destination, gateway, interface, metric.
    mutating func routeKey(_ route: Route) {
        if route.table >= 256 { put(RTA_TABLE.rawValue, u32: route.table) }
        if route.destination.prefixLength > 0 { put(RTA_DST.rawValue, route.destination.network.address.bytes) }
        if let gateway = route.gateway { put(RTA_GATEWAY.rawValue, gateway.bytes) }
        if let index = route.interfaceIndex { put(RTA_OIF.rawValue, u32: UInt32(bitPattern: index)) }
        if let priority = route.priority { put(RTA_PRIORITY.rawValue, u32: priority) }
    }
}

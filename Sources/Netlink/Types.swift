public import Addressing
import CMnl
import Glibc

/// An address family for rtnetlink requests (AF_INET, AF_INET6).
public enum IPFamily: UInt8, Sendable, CaseIterable {
    case v4 = 2
    case v6 = 10

    public init(of address: IPAddress) { self = address.isIPv4 ? .v4 : .v6 }

    /// 0.0.0.0 or ::.
    var unspecifiedAddress: IPAddress { self == .v4 ? .v4(IPv4Address(0)) : .v6(IPv6Address(0)) }
}

/// RFC 2863 operational state (IFLA_OPERSTATE).
public struct OperState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let unknown = OperState(rawValue: 0)
    public static let notPresent = OperState(rawValue: 1)
    public static let down = OperState(rawValue: 2)
    public static let lowerLayerDown = OperState(rawValue: 3)
    public static let testing = OperState(rawValue: 4)
    public static let dormant = OperState(rawValue: 5)
    public static let up = OperState(rawValue: 6)

    /// As `ip` prints it ("UP", "LOWERLAYERDOWN").
    public var description: String {
        let names = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "operstate \(rawValue)"
    }
}

/// A network interface as the kernel reports it (RTM_NEWLINK).
public struct Link: Hashable, Sendable {
    public var index: Int32
    public var name: String
    /// The driver kind: "bridge", "veth", "dummy"...; nil for physical devices and loopback.
    public var kind: String?
    public var mac: MACAddress?
    public var mtu: UInt32
    /// IFF_* flags (administrative up, promiscuous and allmulti as requested by users).
    public var flags: UInt32
    public var operState: OperState
    /// The bridge (or other master) this link is enslaved to.
    public var masterIndex: Int32?
    /// IFLA_LINK: for a veth, the peer's index (in the namespace `linkNamespaceID` names, when set).
    public var linkIndex: Int32?
    /// IFLA_LINK_NETNSID: the peer's namespace, as a namespace id local to this namespace.
    public var linkNamespaceID: Int32?
    /// How many users asked for promiscuous mode (IFLA_PROMISCUITY).
    public var promiscuity: UInt32
    /// The kind of the master when enslaved ("bridge").
    public var portKind: String?
    /// For a bridge port: whether hairpin mode is on (IFLA_BRPORT_MODE).
    public var hairpin: Bool?
    /// For a bridge: whether VLAN filtering is on (IFLA_BR_VLAN_FILTERING).
    public var vlanFiltering: Bool?
    /// The link's alias (IFLA_IFALIAS): berth writes its owner there on host-side veths.
    public var alias: String?

    public var isUp: Bool { flags & UInt32(IFF_UP) != 0 }
    public var isPromiscuous: Bool { flags & UInt32(IFF_PROMISC) != 0 }
    public var isAllMulticast: Bool { flags & UInt32(IFF_ALLMULTI) != 0 }
    public var isLoopback: Bool { flags & UInt32(IFF_LOOPBACK) != 0 }

    /// Parses an RTM_NEWLINK message; nil for any other message.
    public init?(_ message: NetlinkMessage) {
        // struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change; }
        guard message.type == RTM_NEWLINK, let index: Int32 = load(message.payload[...], at: 4),
            let flags: UInt32 = load(message.payload[...], at: 8)
        else { return nil }
        let attributes = Attributes(payload: message.payload, after: 16)
        self.index = index
        self.flags = flags
        name = attributes.string(IFLA_IFNAME) ?? ""
        mac = attributes.bytes(IFLA_ADDRESS).flatMap { MACAddress(bytes: Array($0)) }
        mtu = attributes.u32(IFLA_MTU) ?? 0
        operState = OperState(rawValue: attributes.u8(IFLA_OPERSTATE) ?? 0)
        masterIndex = attributes.i32(IFLA_MASTER).flatMap { $0 == 0 ? nil : $0 }
        linkIndex = attributes.i32(IFLA_LINK)
        linkNamespaceID = attributes.i32(IFLA_LINK_NETNSID)
        promiscuity = attributes.u32(IFLA_PROMISCUITY) ?? 0
        alias = attributes.string(IFLA_IFALIAS).flatMap { $0.isEmpty ? nil : $0 }
        let info = attributes.nested(IFLA_LINKINFO)
        kind = info?.string(IFLA_INFO_KIND)
        portKind = info?.string(IFLA_INFO_SLAVE_KIND)
        if kind == "bridge", let filtering = info?.nested(IFLA_INFO_DATA)?.u8(IFLA_BR_VLAN_FILTERING) {
            vlanFiltering = filtering != 0
        }
        if portKind == "bridge", let mode = info?.nested(IFLA_INFO_SLAVE_DATA)?.u8(IFLA_BRPORT_MODE) {
            hairpin = mode != 0
        }
    }
}

/// IFA_F_* address flags.
public struct AddressFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let secondary = AddressFlags(rawValue: 0x01)
    public static let noDAD = AddressFlags(rawValue: 0x02)
    public static let optimistic = AddressFlags(rawValue: 0x04)
    public static let dadFailed = AddressFlags(rawValue: 0x08)
    public static let deprecated = AddressFlags(rawValue: 0x20)
    public static let tentative = AddressFlags(rawValue: 0x40)
    public static let permanent = AddressFlags(rawValue: 0x80)
    public static let noPrefixRoute = AddressFlags(rawValue: 0x200)
}

/// An address assigned to an interface (RTM_NEWADDR).
public struct InterfaceAddress: Hashable, Sendable {
    public var index: Int32
    /// The local address with its prefix length ("10.88.0.5/16").
    public var address: IPNetwork
    public var flags: AddressFlags
    public var scope: RouteScope
    public var broadcast: IPAddress?
    public var label: String?

    /// Parses an RTM_NEWADDR message; nil for any other message.
    public init?(_ message: NetlinkMessage) {
        // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
        let payload = message.payload
        guard message.type == RTM_NEWADDR, payload.count >= 8, let index: UInt32 = load(payload[...], at: 4)
        else { return nil }
        let attributes = Attributes(payload: payload, after: 8)
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
        guard let raw = attributes.bytes(IFA_LOCAL) ?? attributes.bytes(IFA_ADDRESS),
            let ip = IPAddress(bytes: Array(raw))
        else { return nil }
        self.index = Int32(bitPattern: index)
        address = IPNetwork(address: ip, prefixLength: Int(payload[1]))
        flags = AddressFlags(rawValue: attributes.u32(IFA_FLAGS) ?? UInt32(payload[2]))
        scope = RouteScope(rawValue: payload[3])
        broadcast = attributes.bytes(IFA_BROADCAST).flatMap { IPAddress(bytes: Array($0)) }
        label = attributes.string(IFA_LABEL)
    }
}

/// RT_SCOPE_*: how far a route or address reaches.
public struct RouteScope: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let universe = RouteScope(rawValue: 0)
    public static let site = RouteScope(rawValue: 200)
    public static let link = RouteScope(rawValue: 253)
    public static let host = RouteScope(rawValue: 254)
    /// In a delete request: match any scope.
    public static let nowhere = RouteScope(rawValue: 255)
}

/// RTPROT_*: who installed a route.
public struct RouteProtocol: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let unspecified = RouteProtocol(rawValue: 0)
    public static let redirect = RouteProtocol(rawValue: 1)
    public static let kernel = RouteProtocol(rawValue: 2)
    /// What `ip route add` uses; the default here too.
    public static let boot = RouteProtocol(rawValue: 3)
    public static let `static` = RouteProtocol(rawValue: 4)
    public static let dhcp = RouteProtocol(rawValue: 16)
}

/// RTN_*: what a route does with packets.
public struct RouteType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let unspecified = RouteType(rawValue: 0)
    public static let unicast = RouteType(rawValue: 1)
    public static let local = RouteType(rawValue: 2)
    public static let broadcast = RouteType(rawValue: 3)
    public static let anycast = RouteType(rawValue: 4)
    public static let multicast = RouteType(rawValue: 5)
    public static let blackhole = RouteType(rawValue: 6)
    public static let unreachable = RouteType(rawValue: 7)
    public static let prohibit = RouteType(rawValue: 8)
}

/// A route (RTM_NEWROUTE). Only single-path routes are modelled: a multipath route reads back
/// without gateway or interface.
public struct Route: Hashable, Sendable {
    public static let mainTable: UInt32 = 254
    public static let localTable: UInt32 = 255

    /// The destination network; 0.0.0.0/0 or ::/0 for a default route.
    public var destination: IPNetwork
    public var gateway: IPAddress?
    /// The output interface (RTA_OIF).
    public var interfaceIndex: Int32?
    /// The metric (RTA_PRIORITY).
    public var priority: UInt32?
    public var table: UInt32
    public var scope: RouteScope
    public var `protocol`: RouteProtocol
    public var type: RouteType
    /// RTAX_MTU and RTAX_ADVMSS in RTA_METRICS.
    public var mtu: UInt32?
    public var advmss: UInt32?
    /// The source address for locally generated packets (RTA_PREFSRC).
    public var preferredSource: IPAddress?
    /// RTNH_F_ONLINK: the gateway is reachable on the interface even outside its subnets.
    public var onLink: Bool

    /// A route. The destination's host bits are cleared (10.0.0.5/24 becomes 10.0.0.0/24).
    /// Without a scope, a unicast route through a gateway gets universe scope and one without a
    /// gateway link scope, as `ip route add` does.
    public init(
        destination: IPNetwork, gateway: IPAddress? = nil, interfaceIndex: Int32? = nil,
        priority: UInt32? = nil, table: UInt32 = Route.mainTable, scope: RouteScope? = nil,
        protocol: RouteProtocol = .boot, type: RouteType = .unicast, mtu: UInt32? = nil,
        advmss: UInt32? = nil, preferredSource: IPAddress? = nil, onLink: Bool = false
    ) {
        self.destination = destination.network
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.priority = priority
        self.table = table
        self.scope = scope ?? (gateway == nil && type == .unicast ? .link : .universe)
        self.protocol = `protocol`
        self.type = type
        self.mtu = mtu
        self.advmss = advmss
        self.preferredSource = preferredSource
        self.onLink = onLink
    }

    /// The default route of the gateway's family (0.0.0.0/0 or ::/0).
    public static func defaultRoute(
        via gateway: IPAddress, interfaceIndex: Int32? = nil, priority: UInt32? = nil, table: UInt32 = Route.mainTable
    ) -> Route {
        let any = IPFamily(of: gateway).unspecifiedAddress
        return Route(
            destination: IPNetwork(address: any, prefixLength: 0), gateway: gateway,
            interfaceIndex: interfaceIndex, priority: priority, table: table)
    }

    public var family: IPFamily { IPFamily(of: destination.address) }
    public var isDefault: Bool { destination.prefixLength == 0 }

    /// Parses an RTM_NEWROUTE message; nil for any other message or family.
    public init?(_ message: NetlinkMessage) {
        // struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }
        let payload = message.payload
        guard message.type == RTM_NEWROUTE, payload.count >= 12, let family = IPFamily(rawValue: payload[0]),
            let flags: UInt32 = load(payload[...], at: 8)
        else { return nil }
        let attributes = Attributes(payload: payload, after: 12)
        let address = attributes.bytes(RTA_DST.rawValue).flatMap { IPAddress(bytes: Array($0)) } ?? family.unspecifiedAddress
        destination = IPNetwork(address: address, prefixLength: Int(payload[1]))
        gateway = attributes.bytes(RTA_GATEWAY.rawValue).flatMap { IPAddress(bytes: Array($0)) }
        interfaceIndex = attributes.i32(RTA_OIF.rawValue)
        priority = attributes.u32(RTA_PRIORITY.rawValue)
        table = attributes.u32(RTA_TABLE.rawValue) ?? UInt32(payload[4])
        `protocol` = RouteProtocol(rawValue: payload[5])
        scope = RouteScope(rawValue: payload[6])
        type = RouteType(rawValue: payload[7])
        let metrics = attributes.nested(RTA_METRICS.rawValue)
        mtu = metrics?.u32(RTAX_MTU)
        advmss = metrics?.u32(RTAX_ADVMSS)
        preferredSource = attributes.bytes(RTA_PREFSRC.rawValue).flatMap { IPAddress(bytes: Array($0)) }
        onLink = flags & UInt32(RTNH_F_ONLINK) != 0
    }
}

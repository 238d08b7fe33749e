import Addressing
import BerthSupport
import CNI
import Glibc
import Namespaces
import Netlink

/// The container's end of the veth: addresses, link up, routes, and the per-interface sysctls
/// the reference sets, all through a socket opened inside the container's namespace.
enum ContainerSide {
    static func configure(
        _ sandbox: NetworkNamespace, _ inside: RouteSocket, link: Link, ips: [CNIResult.IPConfig],
        routes: [CNIResult.Route], enableDAD: Bool
    ) throws {
        let name = link.name
        // Plain file writes on the namespace's own thread; IPv6 may be disabled (no such file).
        try sandbox.run {
            let settings = [
                ("net/ipv6/conf/\(name)/accept_dad", enableDAD ? "1" : "0"),
                ("net/ipv4/conf/\(name)/arp_notify", "1"),
            ] + (enableDAD ? [("net/ipv6/conf/\(name)/enhanced_dad", "1")] : [])
            for (key, value) in settings {
                try? Files.write("/proc/sys/\(key)", Array(value.utf8), flags: O_WRONLY)
            }
        }
        for ip in ips {
            try inside.addAddress(ip.address, index: link.index, noDAD: ip.address.isIPv6 && !enableDAD)
        }
        try inside.setUp(index: link.index)
        if enableDAD && ips.contains(where: { $0.address.isIPv6 }) { try settle(inside, index: link.index) }

        let gateway4 = ips.first { $0.address.isIPv4 }?.gateway
        let gateway6 = ips.first { !$0.address.isIPv4 }?.gateway
        for route in routes {
            let gateway = route.gateway ?? (route.destination.isIPv4 ? gateway4 : gateway6)
            var kernelRoute = Route(destination: route.destination.network, gateway: gateway, interfaceIndex: link.index)
            kernelRoute.priority = route.priority.map(UInt32.init)
            kernelRoute.mtu = route.mtu.map(UInt32.init)
            kernelRoute.advmss = route.advmss.map(UInt32.init)
            if let table = route.table { kernelRoute.table = UInt32(table) }
            if let scope = route.scope { kernelRoute.scope = RouteScope(rawValue: UInt8(scope)) }
            do {
                try inside.addRoute(kernelRoute)
            } catch let error as SystemError where error.errno == EEXIST {
                // Another network may already have put a default route in: keep the first.
            }
        }
    }

    /// With duplicate address detection on, waits (bounded) until no IPv6 address is tentative,
    /// so routes through the gateway can be added.
    private static func settle(_ inside: RouteSocket, index: Int32) throws {
        for _ in 0..<100 {
            let tentative = try inside.addresses(index: index, family: .v6).contains { $0.flags.contains(.tentative) }
            if !tentative { return }
            usleep(50_000)
        }
        throw CNIError(.internalError, "IPv6 duplicate address detection did not finish within 5 seconds")
    }
}

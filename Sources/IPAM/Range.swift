public import Addressing

/// One allocation range inside a subnet, as host-local configures it: `subnet`, optional
/// `rangeStart`/`rangeEnd` (inclusive) and `gateway`. Canonical once built: start, end and
/// gateway are filled in with host-local's defaults (first host, last host excluding the IPv4
/// broadcast, first host).
public struct AddressRange: Equatable, Sendable, CustomStringConvertible {
    public let subnet: IPNetwork
    public let start: IPAddress
    public let end: IPAddress
    public let gateway: IPAddress

    public init(subnet: IPNetwork, start: IPAddress? = nil, end: IPAddress? = nil, gateway: IPAddress? = nil) throws(IPAMError) {
        let hostBits = subnet.address.bitWidth - subnet.prefixLength
        guard hostBits >= 2 else {
            throw IPAMError(.invalidConfiguration, "network \(subnet) is too small to allocate from")
        }
        guard subnet.isNetworkAddress else {
            throw IPAMError(.invalidConfiguration,
                "network \(subnet) has host bits set; for a prefix of length \(subnet.prefixLength) the network address is \(subnet.network.address)")
        }
        self.subnet = subnet
        let firstHost = subnet.first.advanced(by: 1)!
        // host-local leaves out the IPv4 broadcast address but not the last IPv6 address.
        let lastHost = subnet.isIPv4 ? subnet.last.advanced(by: -1)! : subnet.last
        for (name, value) in [("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)] {
            if let value, value.isIPv4 != subnet.isIPv4 {
                throw IPAMError(.invalidConfiguration, "\(name) \(value) is not of the same family as subnet \(subnet)")
            }
        }
        if let start, !subnet.contains(start) {
            throw IPAMError(.invalidConfiguration, "rangeStart \(start) is not in network \(subnet)")
        }
        if let end, !subnet.contains(end) {
            throw IPAMError(.invalidConfiguration, "rangeEnd \(end) is not in network \(subnet)")
        }
        self.start = start ?? firstHost
        self.end = end ?? lastHost
        guard self.start <= self.end else {
            throw IPAMError(.invalidConfiguration, "rangeStart \(self.start) is after rangeEnd \(self.end)")
        }
        self.gateway = gateway ?? firstHost
    }

    public var isIPv4: Bool { subnet.isIPv4 }

    public func contains(_ ip: IPAddress) -> Bool {
        subnet.contains(ip) && start <= ip && ip <= end
    }

    public func overlaps(_ other: AddressRange) -> Bool {
        isIPv4 == other.isIPv4
            && (contains(other.start) || contains(other.end) || other.contains(start) || other.contains(end))
    }

    /// Addresses that can be handed out (the gateway is never given to a container).
    public var capacity: UInt128 {
        let total = end.numeric - start.numeric + 1
        return contains(gateway) ? total - 1 : total
    }

    public var description: String { "\(start)-\(end)" }
}

/// The ranges one allocation draws from: each ADD gets exactly one address per range set.
/// All ranges in a set are of one family and do not overlap.
public struct RangeSet: Equatable, Sendable, CustomStringConvertible {
    public let ranges: [AddressRange]

    public init(_ ranges: [AddressRange]) throws(IPAMError) {
        guard let first = ranges.first else { throw IPAMError(.invalidConfiguration, "empty range set") }
        for r in ranges where r.isIPv4 != first.isIPv4 {
            throw IPAMError(.invalidConfiguration, "range set mixes IPv4 and IPv6 (\(first.subnet) and \(r.subnet))")
        }
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] where a.overlaps(b) {
                throw IPAMError(.invalidConfiguration, "subnets \(a) and \(b) overlap")
            }
        }
        self.ranges = ranges
    }

    public var isIPv4: Bool { ranges[0].isIPv4 }

    public func range(for ip: IPAddress) -> AddressRange? { ranges.first { $0.contains(ip) } }
    public func contains(_ ip: IPAddress) -> Bool { range(for: ip) != nil }

    public func overlaps(_ other: RangeSet) -> Bool {
        ranges.contains { a in other.ranges.contains { a.overlaps($0) } }
    }

    public var capacity: UInt128 { ranges.reduce(0) { $0 &+ $1.capacity } }
    public var description: String { ranges.map(\.description).joined(separator: ",") }
}

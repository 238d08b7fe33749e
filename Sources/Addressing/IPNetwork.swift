/// An address with a prefix length, in CIDR notation: "10.88.0.5/16" (an interface address) or
/// "10.88.0.0/16" (a subnet). `address` is kept as written; `network` clears the host bits.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// "10.1.2.3/24" or "fd00::/64"; nil for anything else.
    public init?(_ text: some StringProtocol) {
        guard let slash = text.firstIndex(of: "/"), let address = IPAddress(text[..<slash]) else { return nil }
        let prefixText = text[text.index(after: slash)...]
        guard !prefixText.isEmpty, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }), prefixText.count <= 3,
            let prefix = Int(prefixText), prefix <= address.bitWidth
        else { return nil }
        self.init(address: address, prefixLength: prefix)
    }

    public var isIPv4: Bool { address.isIPv4 }
    public var isIPv6: Bool { address.isIPv6 }
    public var description: String { "\(address)/\(prefixLength)" }

    private var hostBits: Int { address.bitWidth - prefixLength }
    private var hostMask: UInt128 {
        hostBits == 0 ? 0 : (hostBits >= 128 ? UInt128.max : (UInt128(1) << UInt128(hostBits)) - 1)
    }

    /// The netmask as an address ("255.255.255.0").
    public var mask: IPAddress { address.withNumeric(~hostMask) }

    /// The subnet: host bits cleared.
    public var network: IPNetwork { IPNetwork(address: address.withNumeric(address.numeric & ~hostMask), prefixLength: prefixLength) }
    public var first: IPAddress { network.address }
    public var last: IPAddress { address.withNumeric(address.numeric | hostMask) }
    /// Number of addresses (saturating at UInt128.max for a /0 IPv6 network).
    public var size: UInt128 { hostBits >= 128 ? UInt128.max : UInt128(1) << UInt128(hostBits) }

    public func contains(_ ip: IPAddress) -> Bool {
        ip.isIPv4 == address.isIPv4 && (ip.numeric & ~hostMask) == (address.numeric & ~hostMask)
    }

    public func overlaps(_ other: IPNetwork) -> Bool {
        other.address.isIPv4 == address.isIPv4 && (contains(other.first) || other.contains(first))
    }

    /// True when the address is the network itself (host bits zero).
    public var isNetworkAddress: Bool { address.numeric & hostMask == 0 }
}

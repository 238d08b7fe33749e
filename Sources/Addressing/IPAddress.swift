import Glibc

/// An IPv4 address as a 32-bit number (host order).
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Dotted quad only ("10.0.0.1"); no shorthand, no leading zeros.
    public init?(_ text: some StringProtocol) {
        var parts: [UInt32] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let n = UInt32(part), n <= 255
            else { return nil }
            parts.append(n)
        }
        guard parts.count == 4 else { return nil }
        value = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        value = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)] }
    public var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv6 address as a 128-bit number (host order).
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt128
    public init(_ value: UInt128) { self.value = value }

    public init?(_ text: some StringProtocol) {
        var raw = in6_addr()
        let ok = String(text).withCString { inet_pton(AF_INET6, $0, &raw) }
        guard ok == 1 else { return nil }
        self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })!
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        value = bytes.reduce(0) { $0 << 8 | UInt128($1) }
    }

    public var bytes: [UInt8] { (0..<16).map { UInt8(truncatingIfNeeded: value >> (8 * (15 - UInt128($0)))) } }

    /// RFC 5952 text ("fd00::1").
    public var description: String {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var isLinkLocal: Bool { value >> 118 == 0x3FA }  // fe80::/10
    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { a.value < b.value }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if text.contains(":"), let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    public init?(bytes: [UInt8]) {
        if let v4 = IPv4Address(bytes: bytes) { self = .v4(v4) } else if let v6 = IPv6Address(bytes: bytes) { self = .v6(v6) } else { return nil }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }
    public var isIPv6: Bool { !isIPv4 }
    /// fe80::/10, which every IPv6 link has and no plugin assigns.
    public var isIPv6LinkLocal: Bool { if case .v6(let a) = self { a.isLinkLocal } else { false } }
    /// 4 or 6.
    public var version: Int { isIPv4 ? 4 : 6 }
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): a.bytes
        case .v6(let a): a.bytes
        }
    }

    /// The address as a 128-bit number (IPv4 in the low 32 bits).
    public var numeric: UInt128 {
        switch self {
        case .v4(let a): UInt128(a.value)
        case .v6(let a): a.value
        }
    }

    /// An address of the same family with the given numeric value (truncated to the family's width).
    public func withNumeric(_ n: UInt128) -> IPAddress {
        switch self {
        case .v4: .v4(IPv4Address(UInt32(truncatingIfNeeded: n)))
        case .v6: .v6(IPv6Address(n))
        }
    }

    /// The address `offset` further on, or nil if that leaves the family's address space.
    public func advanced(by offset: Int) -> IPAddress? {
        let n = numeric
        let max: UInt128 = isIPv4 ? UInt128(UInt32.max) : UInt128.max
        if offset >= 0 {
            let o = UInt128(offset)
            guard n <= max - o else { return nil }
            return withNumeric(n + o)
        }
        let o = UInt128(offset.magnitude)
        guard n >= o else { return nil }
        return withNumeric(n - o)
    }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): x < y
        case (.v6(let x), .v6(let y)): x < y
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }
}

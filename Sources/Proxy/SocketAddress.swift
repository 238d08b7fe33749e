public import Addressing
import Glibc

/// An IP address and port as the kernel takes it (sockaddr_in or sockaddr_in6), built once and
/// reused for every bind, connect and sendto.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public let ip: IPAddress
    public let port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    public var family: Int32 { ip.isIPv4 ? AF_INET : AF_INET6 }

    /// "127.0.0.1:8080" or "[::1]:8080".
    public var description: String { ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }

    /// Calls `body` with the address as a sockaddr and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch ip {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = a.value.bigEndian
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let a):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: a.bytes) }
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// The address in a sockaddr_storage the kernel filled in (accept, recvfrom), if IP.
    init?(storage: UnsafeRawPointer) {
        let family = Int32(storage.load(as: sa_family_t.self))
        if family == AF_INET {
            let sin = storage.loadUnaligned(as: sockaddr_in.self)
            self.init(ip: .v4(IPv4Address(UInt32(bigEndian: sin.sin_addr.s_addr))), port: UInt16(bigEndian: sin.sin_port))
        } else if family == AF_INET6 {
            let sin6 = storage.loadUnaligned(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            self.init(ip: .v6(IPv6Address(bytes: bytes)!), port: UInt16(bigEndian: sin6.sin6_port))
        } else {
            return nil
        }
    }
}

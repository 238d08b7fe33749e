public import Addressing
import BerthSupport
import CBerth
import Glibc

/// A socket address for an IPv4 or IPv6 address and port.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Reads a sockaddr_in or sockaddr_in6 (v4-mapped IPv6 addresses become IPv4).
    init?(_ storage: UnsafePointer<sockaddr_storage>) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(storage).load(as: sockaddr_in.self)
            address = .v4(IPv4Address(UInt32(bigEndian: sin.sin_addr.s_addr)))
            port = UInt16(bigEndian: sin.sin_port)
        case AF_INET6:
            let sin6 = UnsafeRawPointer(storage).load(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                address = .v4(IPv4Address(bytes: bytes[12..<16])!)
            } else {
                address = .v6(IPv6Address(bytes: bytes)!)
            }
            port = UInt16(bigEndian: sin6.sin6_port)
        default:
            return nil
        }
    }

    var family: Int32 { address.isIPv4 ? AF_INET : AF_INET6 }

    /// Calls `body` with the sockaddr and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return try withUnsafePointer(to: &storage) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// Fills a sockaddr_storage; returns the length to pass to the kernel.
    @discardableResult
    func write(to storage: inout sockaddr_storage) -> socklen_t {
        storage = sockaddr_storage()
        switch address {
        case .v4(let v4):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = v4.value.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin, as: sockaddr_in.self) }
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let v6):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: v6.bytes) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin6, as: sockaddr_in6.self) }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    public var description: String { address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)" }
}

enum Sockets {
    static func make(family: Int32, type: Int32) throws -> Int32 {
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current("socket") }
        return fd
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A socket bound to `address`, which need not exist on the host yet (IP_FREEBIND): a
    /// gateway address that appears a moment later is served as soon as it does.
    static func bound(_ address: SocketAddress, type: Int32) throws -> Int32 {
        let fd = try make(family: address.family, type: type)
        setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if address.address.isIPv4 {
            setOption(fd, Int32(IPPROTO_IP), berth_ip_freebind(), 1)
        } else {
            setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
            setOption(fd, Int32(IPPROTO_IPV6), berth_ipv6_freebind(), 1)
            setOption(fd, Int32(IPPROTO_IP), berth_ip_freebind(), 1)
        }
        if type == Int32(SOCK_DGRAM.rawValue) {
            // Room for a burst while the loop is busy (a reload): queries wait, none is dropped.
            setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
            setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
        }
        let rc = address.withSockaddr { bind(fd, $0, $1) }
        guard rc == 0 else {
            let error = SystemError.current("bind", object: address.description)
            close(fd)
            throw error
        }
        if type == Int32(SOCK_STREAM.rawValue) {
            guard listen(fd, 128) == 0 else {
                let error = SystemError.current("listen", object: address.description)
                close(fd)
                throw error
            }
        }
        return fd
    }
}

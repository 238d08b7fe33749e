import Addressing

/// The transport a mapping forwards.
public enum TransportProtocol: String, Sendable, Hashable {
    case tcp, udp
}

/// A configuration or command-line error: one line that names the flag or entry and the fix.
public struct ProxyError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One published port: traffic to `host` (an address on this machine) goes to `container`.
///
/// Written as `PROTO:HOST_IP:HOST_PORT:CONTAINER_IP:CONTAINER_PORT`, IPv6 addresses in brackets:
/// `tcp:127.0.0.1:8080:172.17.0.2:80`, `udp:[::1]:5353:[fd00::2]:53`.
public struct Mapping: Hashable, Sendable, CustomStringConvertible {
    public var proto: TransportProtocol
    public var host: SocketAddress
    public var container: SocketAddress

    public init(proto: TransportProtocol, host: SocketAddress, container: SocketAddress) {
        self.proto = proto
        self.host = host
        self.container = container
    }

    /// The canonical spec (what `init(spec:)` reads).
    public var description: String { "\(proto.rawValue):\(host):\(container)" }

    /// Parses a spec; the error names the spec and what is wrong with it.
    public init(spec: String) throws(ProxyError) {
        var rest = Substring(spec)
        func fail(_ why: String) -> ProxyError {
            ProxyError("mapping '\(spec)': \(why) (expected PROTO:HOST_IP:HOST_PORT:CONTAINER_IP:CONTAINER_PORT, IPv6 in brackets)")
        }
        guard let colon = rest.firstIndex(of: ":") else { throw fail("no protocol") }
        let protoText = rest[..<colon]
        rest = rest[rest.index(after: colon)...]
        guard let proto = try Mapping.transport(String(protoText)) else { throw fail("unknown protocol '\(protoText)'") }
        guard let (hostIP, afterHostIP) = Mapping.takeAddress(rest), let (hostPort, afterHostPort) = Mapping.takePort(afterHostIP),
            let (containerIP, afterContainerIP) = Mapping.takeAddress(afterHostPort),
            let (containerPort, end) = Mapping.takePort(afterContainerIP, last: true), end.isEmpty
        else { throw fail("malformed") }
        guard let host = IPAddress(hostIP) else { throw fail("'\(hostIP)' is not an IP address") }
        guard let container = IPAddress(containerIP) else { throw fail("'\(containerIP)' is not an IP address") }
        guard let hp = Mapping.port(hostPort) else { throw fail("host port '\(hostPort)' is not 1-65535") }
        guard let cp = Mapping.port(containerPort) else { throw fail("container port '\(containerPort)' is not 1-65535") }
        self.init(proto: proto, host: SocketAddress(ip: host, port: hp), container: SocketAddress(ip: container, port: cp))
    }

    /// tcp or udp; sctp is refused with a reason; anything else is nil.
    static func transport(_ text: String) throws(ProxyError) -> TransportProtocol? {
        if text == "sctp" {
            throw ProxyError("unsupported protocol sctp: berth-proxy forwards tcp and udp only (the kernel DNAT path serves sctp)")
        }
        return TransportProtocol(rawValue: text)
    }

    static func port(_ text: some StringProtocol) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(text),
            (1...65535).contains(n)
        else { return nil }
        return UInt16(n)
    }

    /// An address up to the next ':' ("[v6]" in brackets), and what follows the ':'.
    private static func takeAddress(_ text: Substring) -> (Substring, Substring)? {
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let after = text[text.index(after: close)...]
            guard after.first == ":" else { return nil }
            return (text[text.index(after: text.startIndex)..<close], after.dropFirst())
        }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return (text[..<colon], text[text.index(after: colon)...])
    }

    private static func takePort(_ text: Substring, last: Bool = false) -> (Substring, Substring)? {
        if last { return (text, text[text.endIndex...]) }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return (text[..<colon], text[text.index(after: colon)...])
    }
}

/// A mappings file: one spec per line; blank lines and `#` comments are ignored.
public func parseMappingsFile(_ text: String, name: String) throws(ProxyError) -> [Mapping] {
    var mappings: [Mapping] = []
    for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = rawLine.prefix(while: { $0 != "#" }).trimmingSpaces
        if line.isEmpty { continue }
        do {
            mappings.append(try Mapping(spec: String(line)))
        } catch {
            throw ProxyError("\(name):\(number + 1): \(error.description)")
        }
    }
    return mappings
}

/// Rejects two mappings of one protocol on the same host address and port.
public func checkNoDuplicateHosts(_ mappings: [Mapping]) throws(ProxyError) {
    var seen: [String: Mapping] = [:]
    for m in mappings {
        let key = "\(m.proto.rawValue):\(m.host)"
        if let other = seen[key], other != m {
            throw ProxyError("mappings '\(other)' and '\(m)' both use \(key)")
        }
        seen[key] = m
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}

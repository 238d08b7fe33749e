import Addressing
import CNI
import Firewall
import JSON

/// One entry of the `portMappings` capability (CNI CONVENTIONS.md): `{hostPort, containerPort,
/// protocol, hostIP}`.
struct PortMapping: Hashable, CustomStringConvertible {
    enum Proto: String, CaseIterable {
        case tcp, udp, sctp
        var value: Value {
            switch self {
            case .tcp: .tcp
            case .udp: .udp
            case .sctp: .sctp
            }
        }
    }

    var hostPort: UInt16
    var containerPort: UInt16
    var proto: Proto
    /// nil: every host address of both families. 0.0.0.0 / `::`: every address of that family.
    var hostIP: IPAddress?

    /// The host address the mapping is restricted to (nil for every address).
    var specificHostIP: IPAddress? {
        guard let hostIP, hostIP.numeric != 0 else { return nil }
        return hostIP
    }

    /// Whether the mapping applies to the family (a hostIP chooses one; none means both).
    func applies(ipv4: Bool) -> Bool { hostIP.map { $0.isIPv4 == ipv4 } ?? true }

    /// The host side, as errors and docs name it: "tcp/8080", "udp/192.0.2.1:53", "tcp/[::1]:80".
    var hostDescription: String {
        guard let ip = specificHostIP else { return "\(proto.rawValue)/\(hostPort)" }
        return ip.isIPv4 ? "\(proto.rawValue)/\(ip):\(hostPort)" : "\(proto.rawValue)/[\(ip)]:\(hostPort)"
    }

    var description: String { "\(hostDescription) -> \(containerPort)" }
}

/// The `portmap` plugin's configuration: the reference plugin's keys
/// (containernetworking/plugins, plugins/meta/portmap) and the mappings from runtimeConfig.
struct PortmapConfig {
    var network: String
    /// Masquerade what needs it (hairpin, localhost). Off: no route_localnet, so 127.0.0.1 is
    /// not served; hairpin keeps its masquerade, which belongs to the bridge's elements.
    var snat: Bool
    /// Masquerade every published-port connection to the container.
    var masqAll: Bool
    /// The mappings; nil when the runtime passed none (no runtimeConfig.portMappings) or, for
    /// DEL and GC, when they could not be read: DEL then searches by owner.
    var mappings: [PortMapping]?

    /// `strict` (ADD, CHECK): refuse what berth cannot do and mappings that do not parse.
    /// Otherwise (DEL, GC) nothing is refused that would keep a runtime from cleaning up.
    init(_ request: PluginRequest, strict: Bool) throws {
        let config = request.config
        let fields = config.fields
        network = config.name
        do {
            snat = try fields.bool("snat") ?? true
            masqAll = try fields.bool("masqAll") ?? false
            if strict { try Self.checkUnsupported(fields) }
            mappings = try Self.mappings(config.runtimeConfig)
        } catch where !strict {
            snat = (try? fields.bool("snat")) ?? true
            masqAll = (try? fields.bool("masqAll")) ?? false
            mappings = nil
        }
    }

    /// Keys the reference accepts that berth refuses or only checks.
    private static func checkUnsupported(_ fields: JSONFields) throws {
        if let backend = try fields.string("backend"), !["", "iptables", "nftables"].contains(backend) {
            throw CNIError(
                .invalidNetworkConfig, "backend \"\(backend)\" is unknown",
                details: "use iptables or nftables (both mean berth's nftables table inet berth)")
        }
        for key in ["conditionsV4", "conditionsV6"] {
            if let conditions = try fields.strings(key), !conditions.isEmpty {
                throw CNIError(
                    .unsupportedField, "\(key) \(conditions) is not supported by berth's portmap plugin",
                    details: "conditions are iptables or nft rule fragments for per-container rules; berth keeps published ports in maps of one table, with no per-container rule to add them to. Filter in a table of your own (a drop in forward, priority filter) instead")
            }
        }
        // Mark-based masquerade is how the reference's iptables backend works; berth masquerades
        // by conntrack state in its own table. Checked as the reference checks them, then unused.
        let markBit = try fields.int("markMasqBit")
        if markBit != nil, fields.has("externalSetMarkChain") {
            throw CNIError(.invalidNetworkConfig, "cannot specify externalSetMarkChain and markMasqBit")
        }
        if let markBit, !(0...31).contains(markBit) {
            throw CNIError(.invalidNetworkConfig, "markMasqBit \(markBit) is out of range", details: "it must be between 0 and 31")
        }
        _ = try fields.string("externalSetMarkChain")
    }

    /// `runtimeConfig.portMappings`, validated; identical entries once. Nil when absent.
    static func mappings(_ runtimeConfig: JSONFields?) throws -> [PortMapping]? {
        guard let entries = try runtimeConfig?.objects("portMappings") else { return nil }
        var result: [PortMapping] = []
        for entry in entries {
            let mapping = PortMapping(
                hostPort: try port(entry, "hostPort"), containerPort: try port(entry, "containerPort"),
                proto: try proto(entry), hostIP: try hostIP(entry))
            if !result.contains(mapping) { result.append(mapping) }
        }
        try checkOverlaps(result)
        return result
    }

    private static func port(_ entry: JSONFields, _ key: String) throws -> UInt16 {
        if let text = entry.raw(key)?.stringValue {
            let hint = text.contains("-") ? ": port ranges are not part of the portMappings convention; give one entry per port" : ""
            throw CNIError(.invalidNetworkConfig, "\(entry.fieldPath(key)): expected a port number, found \"\(text)\"\(hint)")
        }
        guard let value = try entry.int(key) else {
            throw CNIError(.invalidNetworkConfig, "\(entry.fieldPath(key)) is required")
        }
        guard (1...65535).contains(value) else {
            throw CNIError(.invalidNetworkConfig, "\(entry.fieldPath(key)): invalid port number \(value)", details: "ports are 1-65535")
        }
        return UInt16(value)
    }

    private static func proto(_ entry: JSONFields) throws -> PortMapping.Proto {
        let text = try entry.string("protocol") ?? ""
        if text.isEmpty { return .tcp }
        guard let proto = PortMapping.Proto(rawValue: text.lowercased()) else {
            throw CNIError(.invalidNetworkConfig, "\(entry.fieldPath("protocol")): unknown protocol \"\(text)\"", details: "use tcp, udp or sctp")
        }
        return proto
    }

    private static func hostIP(_ entry: JSONFields) throws -> IPAddress? {
        let text = try entry.string("hostIP") ?? ""
        if text.isEmpty { return nil }
        guard let ip = IPAddress(text) else {
            throw CNIError(.invalidNetworkConfig, "\(entry.fieldPath("hostIP")): \"\(text)\" is not an IP address")
        }
        return ip
    }

    /// Two entries that claim the same host port of one family differently (different targets,
    /// or one on every address and one on a single address) are refused, as docker does.
    private static func checkOverlaps(_ mappings: [PortMapping]) throws {
        for (i, a) in mappings.enumerated() {
            for b in mappings[..<i] where a.proto == b.proto && a.hostPort == b.hostPort {
                for ipv4 in [true, false] where a.applies(ipv4: ipv4) && b.applies(ipv4: ipv4) {
                    let (x, y) = (a.specificHostIP, b.specificHostIP)
                    if x == nil || y == nil || x == y {
                        throw CNIError(
                            .invalidNetworkConfig, "portMappings: \(b) and \(a) publish the same host port",
                            details: "each protocol, host address and port can be published once")
                    }
                }
            }
        }
    }
}

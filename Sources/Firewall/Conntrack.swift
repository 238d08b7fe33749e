public import Addressing
import Glibc

/// A conntrack entry's original direction (ctnetlink), as far as deleting it needs.
public struct TrackedFlow: Hashable, Sendable, CustomStringConvertible {
    public var proto: UInt8
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The CTA_TUPLE_ORIG and CTA_ZONE attributes as the kernel listed them: a delete request
    /// names the entry with exactly these.
    let identity: [UInt8]

    public var description: String {
        func endpoint(_ ip: IPAddress, _ port: UInt16) -> String { ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }
        return "proto \(proto) \(endpoint(source, sourcePort)) -> \(endpoint(destination, destinationPort))"
    }
}

/// ctnetlink numbers (linux/netfilter/nfnetlink_conntrack.h).
private enum CT {
    static let subsystem: UInt16 = 1  // NFNL_SUBSYS_CTNETLINK
    static let get: UInt16 = 1, delete: UInt16 = 2  // IPCTNL_MSG_CT_GET, _DELETE
    static let tupleOrig: UInt16 = 1, zone: UInt16 = 18  // CTA_TUPLE_ORIG, CTA_ZONE
    static let tupleIP: UInt16 = 1, tupleProto: UInt16 = 2  // CTA_TUPLE_IP, CTA_TUPLE_PROTO
    static let protoNum: UInt16 = 1, protoSrcPort: UInt16 = 2, protoDstPort: UInt16 = 3
}

extension FirewallSocket {
    /// The conntrack entries of one family whose original direction goes to `destinationPort`
    /// over `proto` (one dump of the family's table, filtered here).
    public func trackedFlows(ipv6: Bool, proto: UInt8, destinationPort: UInt16) throws(FirewallError) -> [TrackedFlow] {
        let family = UInt8(ipv6 ? AF_INET6 : AF_INET)
        let replies = try exchange("list conntrack entries") { sequence in
            ctnetlinkMessage(CT.get, family: family, flags: 0x1 | NetlinkFlags.dump, sequence: sequence, attributes: [])
        }
        return replies.compactMap { message in
            guard let flow = Self.flow(message), flow.proto == proto, flow.destinationPort == destinationPort else { return nil }
            return flow
        }
    }

    /// Deletes a conntrack entry; one already gone is not an error.
    public func delete(_ flow: TrackedFlow) throws(FirewallError) {
        let family = UInt8(flow.source.isIPv4 ? AF_INET : AF_INET6)
        do throws(FirewallError) {
            _ = try exchange("delete conntrack entry \(flow)") { sequence in
                ctnetlinkMessage(CT.delete, family: family, flags: 0x1 | 0x4, sequence: sequence, attributes: flow.identity)
            }
        } catch where error.errno == ENOENT {}
    }

    private static func flow(_ message: NetlinkMessage) -> TrackedFlow? {
        guard message.type >> 8 == CT.subsystem, let tuple = message.attributes[CT.tupleOrig],
            let ip = tuple.nested[CT.tupleIP], let l4 = tuple.nested[CT.tupleProto],
            let num = l4.nested[CT.protoNum], let sport = l4.nested[CT.protoSrcPort], let dport = l4.nested[CT.protoDstPort]
        else { return nil }
        let addresses = ip.nested.map { IPAddress(bytes: $0.bytes) }
        guard addresses.count == 2, let source = addresses[0], let destination = addresses[1] else { return nil }
        var identity = Array(message.bytes[tuple.start..<tuple.end])
        identity += [UInt8](repeating: 0, count: (4 - identity.count % 4) % 4)
        if let zone = message.attributes[CT.zone] {
            identity += Array(message.bytes[zone.start..<zone.end])
            identity += [UInt8](repeating: 0, count: (4 - (zone.end - zone.start) % 4) % 4)
        }
        func port(_ attribute: Attribute) -> UInt16 { attribute.payload.count >= 2 ? UInt16(attribute.payload.first!) << 8 | UInt16(attribute.payload.dropFirst().first!) : 0 }
        return TrackedFlow(
            proto: num.u8, source: source, destination: destination, sourcePort: port(sport), destinationPort: port(dport),
            identity: identity)
    }
}

/// nlmsghdr, nfgenmsg and the (already encoded, padded) attributes of a ctnetlink request.
private func ctnetlinkMessage(_ type: UInt16, family: UInt8, flags: UInt16, sequence: UInt32, attributes: [UInt8]) -> [UInt8] {
    let length = UInt32(NetlinkMessage.nfnetlinkHeaderLength + attributes.count)
    var bytes: [UInt8] = []
    bytes += withUnsafeBytes(of: length.littleEndian, Array.init)
    bytes += withUnsafeBytes(of: (CT.subsystem << 8 | type).littleEndian, Array.init)
    bytes += withUnsafeBytes(of: flags.littleEndian, Array.init)
    bytes += withUnsafeBytes(of: sequence.littleEndian, Array.init)
    bytes += [0, 0, 0, 0]  // port id: the kernel's
    bytes += [family, 0, 0, 0]  // nfgenmsg: family, NFNETLINK_V0, res_id 0
    return bytes + attributes
}

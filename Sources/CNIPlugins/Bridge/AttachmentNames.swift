import Firewall

/// Names derived from an attachment (network, container ID, interface), so that DEL and GC
/// find what ADD made even without the container's namespace or a prevResult.
struct AttachmentNames {
    let network: String
    let containerID: String
    let ifName: String

    /// The host end of the veth: "veth" and 11 hex digits of the attachment's owner tag
    /// (15 characters, the kernel's limit).
    var hostVeth: String { "veth" + String(owner.tag.prefix(11)) }

    /// The owner tag its nftables elements carry.
    var owner: Owner { Owner(network: network, container: containerID, ifname: ifName) }

    /// Whether `name` has the shape of a host veth name berth makes.
    static func isHostVethName(_ name: String) -> Bool {
        name.count == 15 && name.hasPrefix("veth") && name.dropFirst(4).allSatisfy(\.isHexDigit)
    }

    /// Written as the host veth's alias: who owns it, readable by GC and by people (`ip link`).
    var alias: String { "berth \(network) \(containerID) \(ifName)" }

    /// The attachment an alias names, if it is one of berth's.
    static func parse(alias: String?) -> AttachmentNames? {
        guard let parts = alias?.split(separator: " "), parts.count == 4, parts[0] == "berth" else { return nil }
        return AttachmentNames(network: String(parts[1]), containerID: String(parts[2]), ifName: String(parts[3]))
    }
}

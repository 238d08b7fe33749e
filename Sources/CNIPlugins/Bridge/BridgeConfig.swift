import Addressing
import CNI
import JSON

/// The `bridge` plugin's configuration: the reference plugin's keys
/// (containernetworking/plugins, plugins/main/bridge) and berth's own `isolate`.
struct BridgeConfig {
    var network: String
    var bridge: String
    var isGateway: Bool
    var isDefaultGateway: Bool
    var forceAddress: Bool
    var ipMasq: Bool
    var mtu: UInt32?
    var hairpinMode: Bool
    var promiscMode: Bool
    var vlan: UInt16?
    var macSpoofCheck: Bool
    var enableDAD: Bool
    /// The container interface's MAC: CNI_ARGS MAC=, args.cni.mac, or runtimeConfig.mac (in
    /// rising order of precedence, as the reference has it).
    var mac: MACAddress?
    var ipamType: String?
    var dns: DNSConfig?
    /// berth: containers on this bridge cannot reach other berth bridges (docker's behaviour).
    /// The reference plugins route between bridges; set `"isolate": false` for that.
    var isolate: Bool

    static let defaultBridge = "cni0"

    init(_ request: PluginRequest) throws {
        let config = request.config
        let fields = config.fields
        network = config.name
        bridge = try fields.string("bridge") ?? Self.defaultBridge
        guard !bridge.isEmpty else { throw CNIError(.invalidNetworkConfig, "bridge: the bridge name must not be empty") }
        isDefaultGateway = try fields.bool("isDefaultGateway") ?? false
        isGateway = try fields.bool("isGateway") ?? false || isDefaultGateway
        forceAddress = try fields.bool("forceAddress") ?? false
        ipMasq = config.ipMasq
        if let value = try fields.int("mtu", in: 0...65535), value > 0 {
            guard value >= 68 else { throw CNIError(.invalidNetworkConfig, "mtu: \(value) is below the minimum of 68") }
            mtu = UInt32(value)
        }
        hairpinMode = try fields.bool("hairpinMode") ?? false
        promiscMode = try fields.bool("promiscMode") ?? false
        if hairpinMode && promiscMode {
            throw CNIError(.invalidNetworkConfig, "cannot set hairpinMode and promiscMode at the same time")
        }
        if let value = try fields.int("vlan") {
            guard (0...4094).contains(value) else {
                throw CNIError(.invalidNetworkConfig, "invalid VLAN ID \(value) (must be between 0 and 4094)")
            }
            vlan = value == 0 ? nil : UInt16(value)
        }
        if fields.has("vlanTrunk") {
            throw CNIError(.unsupportedField, "vlanTrunk is not supported by berth's bridge plugin", details: "use vlan for an access port")
        }
        macSpoofCheck = try fields.bool("macspoofchk") ?? false
        enableDAD = try fields.bool("enabledad") ?? false
        isolate = try fields.bool("isolate") ?? true

        let args = try request.cniArgs()
        try args.checkKnown(["IP", "MAC", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"])
        mac = try args.macAddress("MAC")
        if let text = try config.args?.object("cni")?.string("mac"), !text.isEmpty { mac = try Self.mac(text, "args.cni.mac") }
        if let text = try config.runtimeConfig?.string("mac"), !text.isEmpty { mac = try Self.mac(text, "runtimeConfig.mac") }
        ipamType = config.ipam?.type
        dns = config.dns.flatMap { $0.isEmpty ? nil : $0 }
    }

    private static func mac(_ text: String, _ field: String) throws -> MACAddress {
        guard let mac = MACAddress(text), !mac.isMulticast else {
            throw CNIError(.invalidNetworkConfig, "\(field): \"\(text)\" is not a unicast MAC address")
        }
        return mac
    }
}

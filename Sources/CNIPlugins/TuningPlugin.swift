import Addressing
import BerthSupport
public import CNI
import Glibc
import JSON
import Namespaces
import Netlink

/// `tuning` (chained): sysctls of the container's network namespace and attributes of its
/// interface (MAC, MTU, promiscuous, all-multicast, transmit queue length), as the reference
/// plugin configures them. The interface's original attributes are saved and put back on DEL.
public struct TuningPlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin tuning (berth): sysctls and interface attributes"

    public init() {}

    struct Config {
        var sysctls: [(key: String, value: String)] = []
        var mac: MACAddress?
        var mtu: UInt32?
        var promisc: Bool?
        var allmulti: Bool?
        var txQueueLength: UInt32?
        var dataDirectory = "/run/cni/tuning"

        init(_ request: PluginRequest) throws {
            let fields = request.config.fields
            if let sysctl = try fields.object("sysctl") {
                for (key, value) in sysctl.object {
                    guard let text = value.stringValue else {
                        throw CNIError(.invalidNetworkConfig, "sysctl.\(key): expected a string value")
                    }
                    sysctls.append((try Self.sysctlPath(key), text))
                }
            }
            mac = try Self.mac(try fields.string("mac"), "mac")
            if let value = try fields.int("mtu", in: 0...65535), value > 0 { mtu = UInt32(value) }
            promisc = try fields.bool("promisc")
            allmulti = try fields.bool("allmulti")
            if let value = try fields.int("txQLen", in: 0...Int64(UInt32.max)) { txQueueLength = UInt32(value) }
            if let dir = try fields.string("dataDir"), !dir.isEmpty { dataDirectory = dir }
            let args = try request.cniArgs()
            try args.checkKnown(["MAC", "IP", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"])
            if let value = try args.macAddress("MAC") { mac = value }
            if let cni = try request.config.args?.object("cni") {
                if let value = try Self.mac(try cni.string("mac"), "args.cni.mac") { mac = value }
                if let value = try cni.int("mtu", in: 68...65535) { mtu = UInt32(value) }
                if let value = try cni.bool("promisc") { promisc = value }
                if let value = try cni.bool("allmulti") { allmulti = value }
            }
            if let value = try Self.mac(try request.config.runtimeConfig?.string("mac"), "runtimeConfig.mac") { mac = value }
            if let mtu, mtu < 68 { throw CNIError(.invalidNetworkConfig, "mtu \(mtu) is below the minimum of 68") }
        }

        /// "net.ipv4.ip_forward" or "net/ipv4/ip_forward" → "net/ipv4/ip_forward"; only the
        /// namespace's own settings (/proc/sys/net) are allowed.
        static func sysctlPath(_ key: String) throws -> String {
            let path = key.contains("/") ? key : key.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/")
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.first == "net", parts.count >= 2, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw CNIError(.invalidNetworkConfig, "sysctl \"\(key)\" is not a network namespace setting (net.*)")
            }
            return path
        }

        static func mac(_ text: String?, _ field: String) throws -> MACAddress? {
            guard let text, !text.isEmpty else { return nil }
            guard let mac = MACAddress(text), !mac.isMulticast else {
                throw CNIError(.invalidNetworkConfig, "\(field): \"\(text)\" is not a unicast MAC address")
            }
            return mac
        }
    }

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let config = try Config(request)
        let sandbox = try Sandbox.open(request)
        for (key, value) in config.sysctls {
            do { try sandbox.writeSysctl(key, value) } catch {
                throw CNIError(.internalError, "tuning: cannot set \(key) to \(value) in \(request.netns)", details: "\(error)")
            }
        }
        var result = request.config.prevResult ?? CNIResult()
        result.cniVersion = request.version
        let wantsLinkChange = config.mac != nil || config.mtu != nil || config.promisc != nil || config.allmulti != nil
            || config.txQueueLength != nil
        guard wantsLinkChange else { return result }

        let inside = try RouteSocket.open(in: sandbox)
        guard let link = try inside.link(named: request.ifName) else {
            throw CNIError(.internalError, "tuning: the container has no interface \(request.ifName)")
        }
        try saveOriginal(link, config, request)
        if config.txQueueLength != nil {
            throw CNIError(.unsupportedField, "tuning: txQLen is not supported by berth yet")
        }
        try inside.modifyLink(
            index: link.index,
            LinkChanges(promiscuous: config.promisc, allMulticast: config.allmulti, mtu: config.mtu, mac: config.mac))
        if let mac = config.mac {
            for i in result.interfaces.indices where result.interfaces[i].name == request.ifName && result.interfaces[i].sandbox == request.netns {
                result.interfaces[i].mac = mac.description
            }
        }
        return result
    }

    /// Puts the interface's saved attributes back (when the namespace still exists).
    public func del(_ request: PluginRequest) throws {
        let config = try Config(request)
        let file = stateFile(config, request)
        defer { try? Files.remove(file) }
        guard let saved = try? JSON.parse(try Files.read(file)), let sandbox = try Sandbox.openIfPresent(request) else { return }
        let inside = try RouteSocket.open(in: sandbox)
        guard let link = try inside.link(named: request.ifName) else { return }
        try inside.modifyLink(
            index: link.index,
            LinkChanges(
                promiscuous: saved["promisc"]?.boolValue, allMulticast: saved["allmulti"]?.boolValue,
                mtu: saved["mtu"]?.intValue.map(UInt32.init), mac: saved["mac"]?.stringValue.flatMap { MACAddress($0) }))
    }

    public func check(_ request: PluginRequest) throws {
        let config = try Config(request)
        let sandbox = try Sandbox.open(request)
        for (key, value) in config.sysctls {
            let current = try sandbox.readSysctl(key)
            guard current == value else {
                throw CNIError(.internalError, "tuning CHECK: \(key) is \(current), configured \(value)")
            }
        }
        let inside = try RouteSocket.open(in: sandbox)
        guard let link = try inside.link(named: request.ifName) else {
            throw CNIError(.internalError, "tuning CHECK: the container has no interface \(request.ifName)")
        }
        if let mac = config.mac, link.mac != mac { throw CNIError(.internalError, "tuning CHECK: \(link.name) has MAC \(link.mac?.description ?? "none"), configured \(mac)") }
        if let mtu = config.mtu, link.mtu != mtu { throw CNIError(.internalError, "tuning CHECK: \(link.name) has MTU \(link.mtu), configured \(mtu)") }
        if let promisc = config.promisc, link.isPromiscuous != promisc { throw CNIError(.internalError, "tuning CHECK: \(link.name) promiscuous mode is \(link.isPromiscuous)") }
        if let allmulti = config.allmulti, link.isAllMulticast != allmulti { throw CNIError(.internalError, "tuning CHECK: \(link.name) all-multicast is \(link.isAllMulticast)") }
    }

    private func stateFile(_ config: Config, _ request: PluginRequest) -> String {
        "\(config.dataDirectory)/\(request.containerID)-\(request.ifName).json"
    }

    private func saveOriginal(_ link: Link, _ config: Config, _ request: PluginRequest) throws {
        var saved = JSONObject()
        if config.mac != nil, let mac = link.mac { saved["mac"] = .string(mac.description) }
        if config.mtu != nil { saved["mtu"] = .int(Int64(link.mtu)) }
        if config.promisc != nil { saved["promisc"] = .bool(link.isPromiscuous) }
        if config.allmulti != nil { saved["allmulti"] = .bool(link.isAllMulticast) }
        do {
            try Files.makeDirectories(config.dataDirectory)
            try Files.writeAtomically(stateFile(config, request), JSON.object(saved).compactBytes, durable: false)
        } catch {
            throw CNIError(.ioFailure, "tuning: cannot save the interface's original settings", details: "\(error)")
        }
    }
}

public import JSON
import BerthSupport

/// The per-attachment parameters a runtime supplies (the specification's "attachment
/// parameters", libcni's RuntimeConf).
public struct Attachment: Sendable {
    public var containerID: String
    /// The namespace path; may be empty for DEL when the namespace is already gone.
    public var netns: String
    public var ifName: String
    /// Generic arguments, passed as CNI_ARGS.
    public var args: CNIArgs
    /// Capability arguments: each goes to the plugins that declare the capability, inside
    /// `runtimeConfig` ("portMappings", "ips", "mac", ...).
    public var capabilityArgs: JSONObject

    public init(
        containerID: String, netns: String, ifName: String, args: CNIArgs = CNIArgs(),
        capabilityArgs: JSONObject = JSONObject()
    ) {
        self.containerID = containerID
        self.netns = netns
        self.ifName = ifName
        self.args = args
        self.capabilityArgs = capabilityArgs
    }

    var gcAttachment: GCAttachment { GCAttachment(containerID: containerID, ifName: ifName) }
}

/// The runtime side of CNI (what the reference's libcni does): runs a configuration list's
/// plugins for ADD, CHECK, DEL, STATUS and GC, and keeps the result cache.
public struct CNIRuntime: Sendable {
    /// Where plugin executables are looked up, in order; passed to plugins as CNI_PATH.
    public var pluginDirectories: [String]
    public var cache: ResultCache
    /// The environment plugins inherit (the CNI_* variables are set on top of it); the process
    /// environment unless given.
    public var environment: [String: String]
    /// Where plugins' stderr goes.
    public var stderr: OutputSink

    public init(
        pluginDirectories: [String], cacheDirectory: String = ResultCache.defaultDirectory,
        environment: [String: String]? = nil, stderr: OutputSink = .standardError()
    ) {
        self.pluginDirectories = pluginDirectories
        cache = ResultCache(directory: cacheDirectory)
        self.environment = environment ?? processEnvironment()
        self.stderr = stderr
    }

    // MARK: Operations

    /// ADD: each plugin in order, each given the previous one's result; the final result is
    /// cached and returned.
    public func add(_ list: NetworkConfigList, _ attachment: Attachment) throws(CNIError) -> CNIResult {
        let version = try usableVersion(list)
        try validate(attachment)
        var result: CNIResult? = nil
        for plugin in list.plugins {
            let stdout = try invoke(.add, plugin, of: list, attachment: attachment, prevResult: result)
            do throws(CNIError) {
                result = try PluginExecutable.parseResult(stdout, from: plugin.type, configVersion: version)
            } catch {
                throw error.prefixed("plugin type=\"\(plugin.type)\" failed (add): ")
            }
        }
        guard let result else { throw CNIError(.invalidNetworkConfig, "network \(list.name) has no plugins") }
        let stored = (try? result.json(as: version)) ?? (try? result.json(as: result.cniVersion))
        do {
            try cache.write(
                CacheEntry(
                    containerID: attachment.containerID, networkName: list.name, ifName: attachment.ifName,
                    config: list.bytes, netns: attachment.netns, cniArgs: attachment.args,
                    capabilityArgs: attachment.capabilityArgs, result: stored))
        } catch {
            throw CNIError(.ioFailure, "failed to set network \"\(list.name)\" cached result: \(error)")
        }
        return result
    }

    /// CHECK: each plugin in order with the cached result; nothing when the list disables it.
    public func check(_ list: NetworkConfigList, _ attachment: Attachment) throws(CNIError) {
        let version = try usableVersion(list)
        guard version.supportsCheck else {
            throw CNIError(.incompatibleVersion, "configuration version \"\(list.cniVersion)\" does not support the CHECK command")
        }
        if list.disableCheck { return }
        try validate(attachment)
        let cached: CNIResult?
        do {
            cached = try cachedResult(list, attachment)
        } catch {
            throw CNIError(.ioFailure, "failed to get network \"\(list.name)\" cached result: \(error)")
        }
        for plugin in list.plugins {
            _ = try invoke(.check, plugin, of: list, attachment: attachment, prevResult: cached)
        }
    }

    /// DEL: each plugin in reverse order, with the cached result (0.4.0 and later); the cache
    /// entry is removed when every plugin succeeded. An unreadable cache entry is dropped.
    public func del(_ list: NetworkConfigList, _ attachment: Attachment) throws(CNIError) {
        let version = try usableVersion(list)
        try validate(attachment)
        var cached: CNIResult? = nil
        if version.supportsCheck {
            cached = try? cachedResult(list, attachment)
        }
        for plugin in list.plugins.reversed() {
            _ = try invoke(.del, plugin, of: list, attachment: attachment, prevResult: cached)
        }
        try? cache.remove(network: list.name, containerID: attachment.containerID, ifName: attachment.ifName)
    }

    /// STATUS (1.1.0): each plugin in order; the first one not ready fails with its own code
    /// (50, 51, 11). Lists of older versions have no STATUS and are taken as ready.
    public func status(_ list: NetworkConfigList) throws(CNIError) {
        let version = try usableVersion(list)
        guard version.supportsStatusAndGC else { return }
        for plugin in list.plugins {
            _ = try invoke(.status, plugin, of: list, attachment: nil, prevResult: nil)
        }
    }

    /// GC: first a DEL for every cached attachment of this network that is not in
    /// `validAttachments`, then (1.1.0) GC on every plugin that supports the list's version,
    /// with the valid attachments. Every failure is reported, not only the first. Nothing
    /// happens when the list disables GC.
    public func gc(_ list: NetworkConfigList, validAttachments: [GCAttachment]) throws(CNIError) {
        if list.disableGC { return }
        let version = try usableVersion(list)
        let valid = Set(validAttachments)
        var failures: [CNIError] = []
        for entry in cache.entries() where entry.networkName == list.name {
            let attachment = Attachment(
                containerID: entry.containerID, netns: entry.netns, ifName: entry.ifName, args: entry.cniArgs,
                capabilityArgs: entry.capabilityArgs)
            guard !valid.contains(attachment.gcAttachment) else { continue }
            do throws(CNIError) {
                try del(list, attachment)
            } catch {
                failures.append(error.prefixed("failed to delete stale attachment \(entry.containerID) \(entry.ifName): "))
            }
        }
        if version.supportsStatusAndGC {
            let attachments = JSON.array(validAttachments.map(\.json))
            for plugin in list.plugins {
                do throws(CNIError) {
                    guard try versionInfo(pluginType: plugin.type).supports(list.cniVersion) else { continue }
                    _ = try invoke(
                        .gc, plugin, of: list, attachment: nil, prevResult: nil,
                        extra: [GCAttachment.configKey: attachments, GCAttachment.legacyConfigKey: attachments])
                } catch {
                    failures.append(error)
                }
            }
        }
        guard let first = failures.first else { return }
        if failures.count == 1 { throw first }
        throw CNIError(first.code, failures.map(\.description).joined(separator: "; "))
    }

    /// A plugin's VERSION answer. A plugin too old to know VERSION supports 0.1.0.
    public func versionInfo(pluginType: String) throws(CNIError) -> VersionInfo {
        let path = try PluginExecutable.find(pluginType, in: pluginDirectories)
        var environment = self.environment
        // Plugins built with old libraries want these set even for VERSION.
        for (key, value) in [
            ("CNI_COMMAND", "VERSION"), ("CNI_NETNS", "dummy"), ("CNI_IFNAME", "dummy"), ("CNI_PATH", "dummy"),
        ] {
            environment[key] = value
        }
        let stdin = JSON.object(["cniVersion": .string(CNIVersion.latest.description)]).compactBytes
        do {
            return try VersionInfo(decoding: try PluginExecutable.run(path, environment: environment, stdin: stdin, stderr: stderr))
        } catch where error.msg == "unknown CNI_COMMAND: VERSION" {
            return VersionInfo(cniVersion: "0.1.0", supportedVersions: ["0.1.0"])
        }
    }

    /// Checks that every plugin of the list exists and supports its version; returns the
    /// capabilities the list's plugins declare, sorted.
    public func validate(_ list: NetworkConfigList) throws(CNIError) -> [String] {
        _ = try usableVersion(list)
        var failures: [String] = []
        var capabilities: Set<String> = []
        for plugin in list.plugins {
            do throws(CNIError) {
                let info = try versionInfo(pluginType: plugin.type)
                if !info.supports(list.cniVersion) {
                    failures.append("plugin \(plugin.type) does not support config version \"\(list.cniVersion)\"")
                }
            } catch {
                failures.append(error.description)
            }
            capabilities.formUnion(plugin.capabilities.filter(\.value).keys)
        }
        if !failures.isEmpty { throw CNIError(.invalidNetworkConfig, failures.joined(separator: "; ")) }
        return capabilities.sorted()
    }

    /// The result of the attachment's last ADD, in the list's version; nil when none is cached.
    public func cachedResult(_ list: NetworkConfigList, _ attachment: Attachment) throws -> CNIResult? {
        try cache.result(
            network: list.name, containerID: attachment.containerID, ifName: attachment.ifName,
            as: try usableVersion(list))
    }

    /// The cached attachments (of every network), only `containerID`'s when given.
    public func cachedAttachments(containerID: String? = nil) -> [CacheEntry] {
        cache.entries(containerID: containerID)
    }

    // MARK: Execution

    /// The configuration one plugin gets: its own object with the list's name and version, the
    /// previous result, and `runtimeConfig` made of the capability arguments it declares;
    /// `capabilities` itself is removed (as the specification says).
    func executionConfig(
        _ plugin: NetworkConfig, of list: NetworkConfigList, attachment: Attachment?, prevResult: CNIResult?,
        extra: JSONObject = JSONObject()
    ) throws(CNIError) -> [UInt8] {
        var object: JSONObject = ["cniVersion": .string(list.cniVersion), "name": .string(list.name)]
        for entry in plugin.raw where !["cniVersion", "name", "capabilities"].contains(entry.key) {
            object[entry.key] = entry.value
        }
        if let attachment {
            var runtimeConfig = JSONObject()
            for entry in attachment.capabilityArgs where plugin.capabilities[entry.key] == true {
                runtimeConfig[entry.key] = entry.value
            }
            if !runtimeConfig.isEmpty { object["runtimeConfig"] = .object(runtimeConfig) }
        }
        if let prevResult {
            // In the list's version; one that version cannot express (a 0.2.0 result needs an
            // address) goes in its own, as the reference runtime passes it.
            let version = try usableVersion(list)
            if let converted = try? prevResult.json(as: version) {
                object["prevResult"] = converted
            } else {
                object["prevResult"] = try prevResult.json(as: prevResult.cniVersion)
            }
        }
        for entry in extra { object[entry.key] = entry.value }
        return JSON.object(object).compactBytes
    }

    /// Runs one plugin for one operation and returns its stdout.
    private func invoke(
        _ command: Command, _ plugin: NetworkConfig, of list: NetworkConfigList, attachment: Attachment?,
        prevResult: CNIResult?, extra: JSONObject = JSONObject()
    ) throws(CNIError) -> [UInt8] {
        do throws(CNIError) {
            let path = try PluginExecutable.find(plugin.type, in: pluginDirectories)
            let stdin = try executionConfig(plugin, of: list, attachment: attachment, prevResult: prevResult, extra: extra)
            var environment = self.environment
            environment["CNI_COMMAND"] = command.rawValue
            environment["CNI_CONTAINERID"] = attachment?.containerID ?? ""
            environment["CNI_NETNS"] = attachment?.netns ?? ""
            environment["CNI_IFNAME"] = attachment?.ifName ?? ""
            environment["CNI_ARGS"] = attachment?.args.text ?? ""
            environment["CNI_PATH"] = pluginDirectories.joined(separator: ":")
            return try PluginExecutable.run(path, environment: environment, stdin: stdin, stderr: stderr)
        } catch {
            throw error.prefixed("plugin type=\"\(plugin.type)\" failed (\(command.rawValue.lowercased())): ")
        }
    }

    private func usableVersion(_ list: NetworkConfigList) throws(CNIError) -> CNIVersion {
        guard let version = list.version, version.isKnown else {
            throw CNIError(
                .incompatibleVersion, "network \(list.name) has configuration version \"\(list.cniVersion)\"",
                details: "this runtime supports \(CNIVersion.all.map(\.description).joined(separator: ", "))")
        }
        return version
    }

    /// The container ID and interface name also name the cache file: they must be valid.
    private func validate(_ attachment: Attachment) throws(CNIError) {
        try CNINames.validateContainerID(attachment.containerID)
        try CNINames.validateInterfaceName(attachment.ifName)
    }
}

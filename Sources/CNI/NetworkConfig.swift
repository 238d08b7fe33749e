public import JSON

/// One plugin's configuration, as it reads it on stdin: the well-known keys typed, and the raw
/// object so the plugin reads its own keys with `fields` (errors name the field).
public struct NetworkConfig: Sendable {
    public let raw: JSONObject
    /// `cniVersion` as written; "0.1.0" when the configuration has none.
    public let cniVersion: String
    public let name: String
    public let type: String
    /// Capabilities the plugin declares (runtime side) — removed before the plugin is executed.
    public let capabilities: [String: Bool]
    /// Capability arguments the runtime passed (`runtimeConfig`).
    public let runtimeConfig: JSONFields?
    /// Conventional per-attachment arguments (`args`).
    public let args: JSONFields?
    public let ipMasq: Bool
    public let ipam: IPAM?
    public let dns: DNSConfig?
    /// The previous plugin's result (chained ADD) or the cached result (CHECK, DEL).
    public let prevResult: CNIResult?

    /// The configuration object; keys it does not know stay in `raw`.
    public var fields: JSONFields { JSONFields(raw) }

    /// The parsed version; nil when `cniVersion` is not a version at all.
    public var version: CNIVersion? { CNIVersion(cniVersion) }

    /// `path` prefixes field names in errors (a list's `plugins[1]`).
    public init(_ object: JSONObject, path: String = "") throws(JSONFieldError) {
        let fields = JSONFields(object, path: path)
        raw = object
        let written = try fields.string("cniVersion") ?? ""
        cniVersion = written.isEmpty ? CNIVersion.implied.description : written
        name = try fields.string("name") ?? ""
        type = try fields.string("type") ?? ""
        capabilities = try fields.booleanMap("capabilities")
        runtimeConfig = try fields.object("runtimeConfig")
        args = try fields.object("args")
        ipMasq = try fields.bool("ipMasq") ?? false
        ipam = try fields.object("ipam").map { f throws(JSONFieldError) in try IPAM(f) }
        dns = try fields.object("dns").map { f throws(JSONFieldError) in try DNSConfig(f) }
        if let previous = fields.raw("prevResult") {
            prevResult = try CNIResult(
                parsing: previous, defaultVersion: CNIVersion(cniVersion) ?? .implied, path: fields.fieldPath("prevResult"))
        } else {
            prevResult = nil
        }
    }

    /// Parses configuration bytes; throws JSONSyntaxError or JSONFieldError.
    public init(parsing bytes: [UInt8]) throws {
        try self.init(try JSONFields(try JSON.parse(bytes)).object)
    }

    /// The attachments a GC request says are still in use (`cni.dev/valid-attachments`, or
    /// `cni.dev/attachments` as early 1.1 runtimes wrote it). Nil when the request names none.
    public func validAttachments() throws(JSONFieldError) -> [GCAttachment]? {
        for key in [GCAttachment.configKey, GCAttachment.legacyConfigKey] {
            guard let items = try fields.objects(key) else { continue }
            var result: [GCAttachment] = []
            for item in items {
                result.append(
                    GCAttachment(containerID: try item.requiredString("containerID"), ifName: try item.requiredString("ifname")))
            }
            return result
        }
        return nil
    }
}

extension NetworkConfig {
    /// The `ipam` section: its `type` names the IPAM plugin; the rest belongs to that plugin.
    public struct IPAM: Sendable {
        public let type: String
        public let fields: JSONFields

        public init(_ fields: JSONFields) throws(JSONFieldError) {
            self.fields = fields
            type = try fields.string("type") ?? ""
        }
    }
}

/// An attachment a runtime still uses: GC must keep what belongs to it.
public struct GCAttachment: Hashable, Sendable {
    public var containerID: String
    public var ifName: String

    public init(containerID: String, ifName: String) {
        self.containerID = containerID
        self.ifName = ifName
    }

    public static let configKey = "cni.dev/valid-attachments"
    public static let legacyConfigKey = "cni.dev/attachments"

    public var json: JSON { ["containerID": .string(containerID), "ifname": .string(ifName)] }
}

extension JSONFields {
    /// An object whose members are all booleans (`capabilities`).
    func booleanMap(_ key: String) throws(JSONFieldError) -> [String: Bool] {
        guard let object = try object(key) else { return [:] }
        var result: [String: Bool] = [:]
        for entry in object.object {
            result[entry.key] = try object.bool(entry.key) ?? false
        }
        return result
    }
}

import JSON
import BerthSupport

/// A network configuration as an administrator writes it (a `.conflist`): a name, a version and
/// the plugins to run in order.
public struct NetworkConfigList: Sendable {
    public let name: String
    /// The version the runtime uses: the highest of `cniVersion` and `cniVersions` that this
    /// library supports; "0.1.0" when the list names none.
    public let cniVersion: String
    /// `cniVersions` as written (1.1.0).
    public let cniVersions: [String]
    public let disableCheck: Bool
    /// 1.1.0: the runtime must not GC this network (several runtimes share it, for example).
    public let disableGC: Bool
    public let plugins: [NetworkConfig]
    /// The document as read; the result cache keeps it.
    public let bytes: [UInt8]

    public var version: CNIVersion? { CNIVersion(cniVersion) }

    /// Parses and validates a list; throws JSONSyntaxError, or JSONFieldError naming the field.
    public init(parsing bytes: [UInt8]) throws {
        let fields = try JSONFields(try JSON.parse(bytes))
        self.bytes = bytes
        guard let name = try fields.string("name") else { throw JSONFieldError(path: "name", problem: "is required") }
        do throws(CNIError) {
            try CNINames.validateNetworkName(name)
        } catch {
            throw JSONFieldError(
                path: "name",
                problem: "\"\(name)\" is not a valid network name (a letter or digit, then letters, digits, '_', '.' or '-')")
        }
        self.name = name
        let written = try fields.string("cniVersion") ?? ""
        cniVersions = try fields.strings("cniVersions") ?? []
        var candidates: [CNIVersion] = []
        for (i, text) in cniVersions.enumerated() {
            guard let version = CNIVersion(text) else {
                throw JSONFieldError(path: "cniVersions[\(i)]", problem: "\"\(text)\" is not a version (X.Y.Z)")
            }
            candidates.append(version)
        }
        if let version = CNIVersion(written) { candidates.append(version) }
        if let best = candidates.filter(\.isKnown).max() {
            cniVersion = best.description
        } else {
            cniVersion = written.isEmpty ? CNIVersion.implied.description : written
        }
        disableCheck = try fields.lenientBool("disableCheck")
        disableGC = try fields.lenientBool("disableGC")
        guard let items = try fields.array("plugins") else { throw JSONFieldError(path: "plugins", problem: "is required") }
        guard !items.isEmpty else { throw JSONFieldError(path: "plugins", problem: "must list at least one plugin") }
        var plugins: [NetworkConfig] = []
        for (i, item) in items.enumerated() {
            let path = "plugins[\(i)]"
            let plugin = try NetworkConfig(try JSONFields(item, path: path).object, path: path)
            do throws(CNIError) {
                try CNINames.validatePluginType(plugin.type)
            } catch {
                throw JSONFieldError(
                    path: "\(path).type", problem: plugin.type.isEmpty ? "is required" : "\"\(plugin.type)\" must not contain '/'")
            }
            plugins.append(plugin)
        }
        self.plugins = plugins
    }

    /// A single-plugin configuration (a `.conf` file) as a list of one, as the reference runtime
    /// reads old-style files.
    public init(single bytes: [UInt8]) throws {
        var plugin = try JSONFields(try JSON.parse(bytes)).object
        let name = plugin["name"] ?? .null, version = plugin["cniVersion"] ?? .null
        plugin["name"] = nil
        plugin["cniVersion"] = nil
        var list: JSONObject = ["name": name]
        if !version.isNull { list["cniVersion"] = version }
        list["plugins"] = [.object(plugin)]
        try self.init(parsing: JSON.object(list).compactBytes)
    }

    /// Reads a `.conflist`, or a `.conf`/`.json` single-plugin file.
    public static func load(file path: String) throws -> NetworkConfigList {
        let bytes = try Files.read(path)
        do {
            return path.hasSuffix(".conflist") ? try NetworkConfigList(parsing: bytes) : try NetworkConfigList(single: bytes)
        } catch let error as SystemError {
            throw error
        } catch {
            throw CNIError(mapping: error).prefixed("\(path): ")
        }
    }

    /// The configuration named `name` in a directory: `.conflist` files first, then `.conf` and
    /// `.json` files, each group in name order (as the reference runtime searches).
    public static func load(named name: String, in directory: String) throws -> NetworkConfigList {
        let files = (try? Files.list(directory)) ?? []
        for suffixes in [[".conflist"], [".conf", ".json"]] {
            for file in files.filter({ f in suffixes.contains(where: { f.hasSuffix($0) }) }).sorted() {
                let list = try load(file: "\(directory)/\(file)")
                if list.name == name { return list }
            }
        }
        throw CNIError(.invalidNetworkConfig, "no network configuration named \"\(name)\" in \(directory)")
    }
}

extension JSONFields {
    /// true/false, or the strings "true"/"false" in any case (as the reference accepts them).
    func lenientBool(_ key: String) throws(JSONFieldError) -> Bool {
        guard let value = raw(key) else { return false }
        if let b = value.boolValue { return b }
        switch value.stringValue?.lowercased() {
        case "true": return true
        case "false": return false
        default: throw JSONFieldError(path: fieldPath(key), problem: "expected true or false, found \(value.compactString)")
        }
    }
}

extension CNIError {
    func prefixed(_ prefix: String) -> CNIError { CNIError(code, prefix + msg, details: details) }
}

public import JSON
import BerthSupport

/// One cached attachment, in the reference runtime's on-disk format (kind "cniCacheV1"), so
/// that berth and libcni-based runtimes (podman, containerd, cnitool) read each other's cache.
public struct CacheEntry: Equatable, Sendable {
    public static let kind = "cniCacheV1"

    public var containerID: String
    public var networkName: String
    public var ifName: String
    /// The configuration list bytes the attachment was made with.
    public var config: [UInt8]
    public var netns: String
    public var cniArgs: CNIArgs
    public var capabilityArgs: JSONObject
    /// The final result of the ADD, as JSON in its own version; nil if none was kept.
    public var result: JSON?

    public init(
        containerID: String, networkName: String, ifName: String, config: [UInt8], netns: String = "",
        cniArgs: CNIArgs = CNIArgs(), capabilityArgs: JSONObject = JSONObject(), result: JSON? = nil
    ) {
        self.containerID = containerID
        self.networkName = networkName
        self.ifName = ifName
        self.config = config
        self.netns = netns
        self.cniArgs = cniArgs
        self.capabilityArgs = capabilityArgs
        self.result = result
    }

    /// The file's JSON: `config` as base64 and `cniArgs` as [[key, value]], as Go writes them.
    public var json: JSON {
        var object: JSONObject = [
            "kind": .string(CacheEntry.kind), "containerId": .string(containerID),
            "config": .string(Base64.encode(config)), "ifName": .string(ifName), "networkName": .string(networkName),
        ]
        if !netns.isEmpty { object["netns"] = .string(netns) }
        if !cniArgs.pairs.isEmpty { object["cniArgs"] = .array(cniArgs.pairs.map { [.string($0.key), .string($0.value)] }) }
        if !capabilityArgs.isEmpty { object["capabilityArgs"] = .object(capabilityArgs) }
        if let result { object["result"] = result }
        return .object(object)
    }

    /// Reads a cache file's JSON; nil when it is not a "cniCacheV1" entry.
    public init?(_ value: JSON) {
        guard let fields = try? JSONFields(value), (try? fields.string("kind")) == CacheEntry.kind,
            let containerID = try? fields.string("containerId"), let networkName = try? fields.string("networkName"),
            let ifName = try? fields.string("ifName")
        else { return nil }
        var pairs: [(String, String)] = []
        for item in (try? fields.array("cniArgs")) ?? [] {
            guard let pair = item.arrayValue, pair.count == 2, let k = pair[0].stringValue, let v = pair[1].stringValue
            else { return nil }
            pairs.append((k, v))
        }
        self.init(
            containerID: containerID, networkName: networkName, ifName: ifName,
            config: ((try? fields.string("config")) ?? nil).flatMap(Base64.decode) ?? [],
            netns: ((try? fields.string("netns")) ?? nil) ?? "", cniArgs: CNIArgs(pairs),
            capabilityArgs: ((try? fields.object("capabilityArgs")) ?? nil)?.object ?? JSONObject(),
            result: fields.raw("result"))
    }
}

/// The result cache: `<directory>/results/<network>-<containerID>-<ifname>`.
public struct ResultCache: Sendable {
    public static let defaultDirectory = "/var/lib/cni"
    public let directory: String

    public init(directory: String = ResultCache.defaultDirectory) { self.directory = directory }

    public var resultsDirectory: String { "\(directory)/results" }

    public func path(network: String, containerID: String, ifName: String) -> String {
        "\(resultsDirectory)/\(network)-\(containerID)-\(ifName)"
    }

    /// Writes an entry atomically (directory 0700, file 0600, as the reference runtime makes them).
    public func write(_ entry: CacheEntry) throws {
        try Files.makeDirectories(resultsDirectory, mode: 0o700)
        try Files.writeAtomically(
            path(network: entry.networkName, containerID: entry.containerID, ifName: entry.ifName),
            entry.json.compactBytes, mode: 0o600)
    }

    /// The raw JSON of an attachment's cache file; nil when there is none.
    func document(network: String, containerID: String, ifName: String) throws -> JSON? {
        let file = path(network: network, containerID: containerID, ifName: ifName)
        guard Files.exists(file) else { return nil }
        return try JSON.parse(try Files.read(file))
    }

    public func entry(network: String, containerID: String, ifName: String) throws -> CacheEntry? {
        try document(network: network, containerID: containerID, ifName: ifName).flatMap(CacheEntry.init)
    }

    /// The cached result converted to `version`. Reads "cniCacheV1" entries and the older format
    /// in which the file is the result itself.
    public func result(network: String, containerID: String, ifName: String, as version: CNIVersion) throws -> CNIResult? {
        guard let document = try document(network: network, containerID: containerID, ifName: ifName) else { return nil }
        let raw: JSON
        if let entry = CacheEntry(document) {
            guard let result = entry.result else { return nil }
            raw = result
        } else {
            raw = document
        }
        return try CNIResult(parsing: raw).converted(to: version)
    }

    public func remove(network: String, containerID: String, ifName: String) throws {
        try Files.remove(path(network: network, containerID: containerID, ifName: ifName))
    }

    /// Every readable "cniCacheV1" entry, in file name order; only `containerID`'s when given.
    public func entries(containerID: String? = nil) -> [CacheEntry] {
        guard let names = try? Files.list(resultsDirectory) else { return [] }
        return names.sorted().compactMap { name in
            if let containerID, !name.contains("-\(containerID)-") { return nil }
            guard let bytes = try? Files.read("\(resultsDirectory)/\(name)"), let document = try? JSON.parse(bytes),
                let entry = CacheEntry(document), !entry.ifName.isEmpty, !entry.networkName.isEmpty,
                containerID == nil || entry.containerID == containerID
            else { return nil }
            return entry
        }
    }
}

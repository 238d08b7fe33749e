public import Addressing
public import JSON

/// host-local's configuration, read from a network configuration the way the reference reads
/// it: `ipam.ranges` (range sets), the legacy single range (`ipam.subnet`, `rangeStart`,
/// `rangeEnd`, `gateway`), `runtimeConfig.ipRanges`, `routes`, `dataDir`, `resolvConf`, and the
/// addresses a runtime asks for (`runtimeConfig.ips`, `args.cni.ips`, CNI_ARGS `IP=`).
public struct IPAMConfig: Sendable {
    public struct Route: Equatable, Sendable {
        public var destination: IPNetwork
        public var gateway: IPAddress?
    }

    public var networkName: String
    public var rangeSets: [RangeSet]
    public var routes: [Route]
    public var dataDirectory: String?
    public var resolvConf: String?
    /// Specific addresses the runtime asked for; each must fall in one range set.
    public var requestedAddresses: [IPAddress]

    /// `cniArgsIPs` are the values of CNI_ARGS `IP=` (comma separated lists are accepted).
    public init(networkConfig: JSONObject, cniArgsIPs: [String] = []) throws(IPAMError) {
        do {
            self = try Self.parse(networkConfig, cniArgsIPs)
        } catch let error as JSONFieldError {
            throw IPAMError(.invalidConfiguration, error.description)
        } catch let error as IPAMError {
            throw error
        } catch {
            throw IPAMError(.invalidConfiguration, "\(error)")
        }
    }

    private init(networkName: String, rangeSets: [RangeSet], routes: [Route], dataDirectory: String?, resolvConf: String?, requestedAddresses: [IPAddress]) {
        self.networkName = networkName
        self.rangeSets = rangeSets
        self.routes = routes
        self.dataDirectory = dataDirectory
        self.resolvConf = resolvConf
        self.requestedAddresses = requestedAddresses
    }

    private static func parse(_ networkConfig: JSONObject, _ cniArgsIPs: [String]) throws -> IPAMConfig {
        do {
            let config = JSONFields(networkConfig)
            let networkName = try config.requiredString("name")
            guard let ipam = try config.object("ipam") else {
                throw IPAMError(.invalidConfiguration, "IPAM configuration missing: no 'ipam' key")
            }
            let dataDirectory = try ipam.string("dataDir")
            let resolvConf = try ipam.string("resolvConf")
            let routes = try (ipam.objects("routes") ?? []).map { route in
                let dst = try route.requiredString("dst")
                guard let destination = IPNetwork(dst) else {
                    throw IPAMError(.invalidConfiguration, "\(route.fieldPath("dst")): '\(dst)' is not a CIDR network")
                }
                return Route(destination: destination, gateway: try Self.address(route, "gw"))
            }

            var sets: [[JSONFields]] = []
            if let runtime = try config.object("runtimeConfig"), let extra = try runtime.array("ipRanges") {
                sets += try Self.rangeSetFields(extra, path: runtime.fieldPath("ipRanges"))
            }
            if ipam.has("subnet") { sets.append([ipam]) }
            if let ranges = try ipam.array("ranges") {
                sets += try Self.rangeSetFields(ranges, path: ipam.fieldPath("ranges"))
            }
            guard !sets.isEmpty else {
                throw IPAMError(.invalidConfiguration, "no IP ranges specified: set ipam.ranges or ipam.subnet")
            }
            var rangeSets: [RangeSet] = []
            for (index, set) in sets.enumerated() {
                do {
                    rangeSets.append(try RangeSet(set.map { try Self.range($0) }))
                } catch let error as IPAMError {
                    throw IPAMError(.invalidConfiguration, "invalid range set \(index): \(error.message)")
                }
            }
            for (i, a) in rangeSets.enumerated() {
                for (j, b) in rangeSets.enumerated() where j > i && a.overlaps(b) {
                    throw IPAMError(.invalidConfiguration, "range set \(i) overlaps with range set \(j)")
                }
            }

            var requested: [String] = cniArgsIPs.flatMap { $0.split(separator: ",").map(String.init) }
            if let args = try config.object("args"), let cni = try args.object("cni") {
                requested += try cni.strings("ips") ?? []
            }
            if let runtime = try config.object("runtimeConfig") {
                requested += try runtime.strings("ips") ?? []
            }
            let requestedAddresses = try requested.map { text in
                // Runtimes send either a bare address or one with a prefix length.
                let bare = text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text
                guard let ip = IPAddress(bare) else {
                    throw IPAMError(.invalidConfiguration, "requested address '\(text)' is not an IP address")
                }
                return ip
            }
            return IPAMConfig(
                networkName: networkName, rangeSets: rangeSets, routes: routes, dataDirectory: dataDirectory,
                resolvConf: resolvConf, requestedAddresses: requestedAddresses)
        }
    }

    private static func rangeSetFields(_ sets: [JSON], path: String) throws -> [[JSONFields]] {
        try sets.enumerated().map { i, set in
            guard let items = set.arrayValue else {
                throw JSONFieldError(path: "\(path)[\(i)]", problem: "expected an array of ranges, found \(set.kindName)")
            }
            return try items.enumerated().map { j, item in try JSONFields(item, path: "\(path)[\(i)][\(j)]") }
        }
    }

    private static func range(_ fields: JSONFields) throws -> AddressRange {
        let text = try fields.requiredString("subnet")
        guard let subnet = IPNetwork(text) else {
            throw IPAMError(.invalidConfiguration, "\(fields.fieldPath("subnet")): '\(text)' is not a CIDR subnet")
        }
        do {
            return try AddressRange(
                subnet: subnet, start: try address(fields, "rangeStart"), end: try address(fields, "rangeEnd"),
                gateway: try address(fields, "gateway"))
        } catch let error as JSONFieldError {
            throw IPAMError(.invalidConfiguration, error.description)
        }
    }

    private static func address(_ fields: JSONFields, _ key: String) throws -> IPAddress? {
        guard let text = try fields.string(key), !text.isEmpty else { return nil }
        guard let ip = IPAddress(text) else {
            throw IPAMError(.invalidConfiguration, "\(fields.fieldPath(key)): '\(text)' is not an IP address")
        }
        return ip
    }
}

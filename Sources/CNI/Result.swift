public import Addressing
public import JSON

/// DNS settings, as a configuration's `dns` key and a result's `dns` key carry them.
public struct DNSConfig: Equatable, Sendable {
    public var nameservers: [String]
    public var domain: String?
    public var search: [String]
    public var options: [String]

    public init(nameservers: [String] = [], domain: String? = nil, search: [String] = [], options: [String] = []) {
        self.nameservers = nameservers
        self.domain = domain
        self.search = search
        self.options = options
    }

    public var isEmpty: Bool { nameservers.isEmpty && (domain ?? "").isEmpty && search.isEmpty && options.isEmpty }

    public init(_ fields: JSONFields) throws(JSONFieldError) {
        self.init(
            nameservers: try fields.strings("nameservers") ?? [], domain: try fields.string("domain"),
            search: try fields.strings("search") ?? [], options: try fields.strings("options") ?? [])
    }

    /// Empty members are left out, as the reference library writes them.
    public var json: JSON {
        var object = JSONObject()
        if !nameservers.isEmpty { object["nameservers"] = .array(nameservers.map(JSON.string)) }
        if let domain, !domain.isEmpty { object["domain"] = .string(domain) }
        if !search.isEmpty { object["search"] = .array(search.map(JSON.string)) }
        if !options.isEmpty { object["options"] = .array(options.map(JSON.string)) }
        return .object(object)
    }
}

/// The result of an ADD, in one model for every specification version: parsed from any
/// version's JSON shape and printed in any of them.
public struct CNIResult: Equatable, Sendable {
    public struct Interface: Equatable, Sendable {
        public var name: String
        /// Hardware address as text (not always Ethernet: InfiniBand addresses are longer).
        public var mac: String?
        /// 1.1.0 and later.
        public var mtu: Int?
        /// The namespace path for interfaces inside the container; nil for host interfaces.
        public var sandbox: String?
        /// 1.1.0 and later.
        public var socketPath: String?
        /// 1.1.0 and later.
        public var pciID: String?

        public init(
            name: String, mac: String? = nil, mtu: Int? = nil, sandbox: String? = nil, socketPath: String? = nil,
            pciID: String? = nil
        ) {
            self.name = name
            self.mac = mac
            self.mtu = mtu
            self.sandbox = sandbox
            self.socketPath = socketPath
            self.pciID = pciID
        }
    }

    public struct IPConfig: Equatable, Sendable {
        /// The interface address with its prefix ("10.88.0.5/16": host bits kept).
        public var address: IPNetwork
        public var gateway: IPAddress?
        /// Index into `interfaces`; nil in IPAM results.
        public var interface: Int?

        public init(address: IPNetwork, gateway: IPAddress? = nil, interface: Int? = nil) {
            self.address = address
            self.gateway = gateway
            self.interface = interface
        }
    }

    public struct Route: Equatable, Sendable {
        public var destination: IPNetwork
        public var gateway: IPAddress?
        /// 1.1.0 and later, as are the fields below.
        public var mtu: Int?
        public var advmss: Int?
        public var priority: Int?
        public var table: Int?
        public var scope: Int?

        public init(
            destination: IPNetwork, gateway: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
            priority: Int? = nil, table: Int? = nil, scope: Int? = nil
        ) {
            self.destination = destination
            self.gateway = gateway
            self.mtu = mtu
            self.advmss = advmss
            self.priority = priority
            self.table = table
            self.scope = scope
        }
    }

    /// The version the result was parsed from, or the one it was made for.
    public var cniVersion: CNIVersion
    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNSConfig

    public init(
        cniVersion: CNIVersion = .latest, interfaces: [Interface] = [], ips: [IPConfig] = [], routes: [Route] = [],
        dns: DNSConfig = DNSConfig()
    ) {
        self.cniVersion = cniVersion
        self.interfaces = interfaces
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }
}

// MARK: - Parsing

extension CNIResult {
    /// Parses a result in the shape of its own `cniVersion`; a result without one is taken to
    /// be in `defaultVersion` (the configuration's version, as the reference runtime assumes).
    /// `path` prefixes field names in errors ("prevResult").
    public init(parsing value: JSON, defaultVersion: CNIVersion = .implied, path: String = "") throws(JSONFieldError) {
        let fields = try JSONFields(value, path: path)
        let version: CNIVersion
        if let text = try fields.string("cniVersion"), !text.isEmpty {
            guard let parsed = CNIVersion(text), parsed.isKnown else {
                throw JSONFieldError(path: fields.fieldPath("cniVersion"), problem: "unsupported CNI result version \"\(text)\"")
            }
            version = parsed
        } else {
            version = defaultVersion
        }
        self.init(cniVersion: version, dns: try fields.object("dns").map { f throws(JSONFieldError) in try DNSConfig(f) } ?? DNSConfig())
        if version < .v0_3_0 {
            for key in ["ip4", "ip6"] {
                guard let ip = try fields.object(key) else { continue }
                ips.append(IPConfig(address: try ip.requiredIPNetwork("ip"), gateway: try ip.ipAddress("gateway")))
                for route in try ip.objects("routes") ?? [] { routes.append(try Route(route)) }
            }
        } else {
            for interface in try fields.objects("interfaces") ?? [] {
                self.interfaces.append(
                    Interface(
                        name: try interface.string("name") ?? "", mac: try interface.string("mac"),
                        mtu: nonZero(try interface.integer("mtu", in: 0...Int64(Int32.max))),
                        sandbox: try interface.string("sandbox"), socketPath: try interface.string("socketPath"),
                        pciID: try interface.string("pciID")))
            }
            for ip in try fields.objects("ips") ?? [] {
                ips.append(
                    IPConfig(
                        address: try ip.requiredIPNetwork("address"), gateway: try ip.ipAddress("gateway"),
                        interface: try ip.integer("interface", in: 0...Int64(Int32.max))))
            }
            for route in try fields.objects("routes") ?? [] { routes.append(try Route(route)) }
        }
    }

    /// Parses result bytes (a plugin's stdout); throws JSONSyntaxError or JSONFieldError.
    public init(parsing bytes: [UInt8], defaultVersion: CNIVersion = .implied) throws {
        try self.init(parsing: try JSON.parse(bytes), defaultVersion: defaultVersion)
    }
}

extension CNIResult.Route {
    init(_ fields: JSONFields) throws(JSONFieldError) {
        self.init(
            destination: try fields.requiredIPNetwork("dst"), gateway: try fields.ipAddress("gw"),
            mtu: nonZero(try fields.integer("mtu", in: 0...Int64(Int32.max))),
            advmss: nonZero(try fields.integer("advmss", in: 0...Int64(Int32.max))),
            priority: nonZero(try fields.integer("priority", in: 0...Int64(UInt32.max))),
            table: try fields.integer("table", in: 0...Int64(UInt32.max)),
            scope: try fields.integer("scope", in: 0...255))
    }
}

/// Zero means "not set" for the numeric result fields, as the reference's omitempty has it.
private func nonZero(_ value: Int?) -> Int? { value == 0 ? nil : value }

// MARK: - Printing and conversion

extension CNIResult {
    /// The result in the JSON shape of `version`, converting as the reference library does:
    /// 0.1.0/0.2.0 keep only the first IPv4 and the first IPv6 address (and the routes of those
    /// families) and need at least one address; 0.3.x and 0.4.0 give each address a `version`;
    /// fields newer than `version` are left out.
    public func json(as version: CNIVersion) throws(CNIError) -> JSON {
        guard version.isKnown else {
            throw CNIError(.incompatibleVersion, "no converter for CNI result version \(cniVersion) to \(version)")
        }
        var object: JSONObject = ["cniVersion": .string(version.description)]
        if version < .v0_3_0 {
            let ip4 = ips.first(where: { $0.address.isIPv4 }), ip6 = ips.first(where: { !$0.address.isIPv4 })
            guard ip4 != nil || ip6 != nil else {
                throw CNIError(.internalError, "cannot convert result to version \(version): no valid IP addresses")
            }
            for (key, ip) in [("ip4", ip4), ("ip6", ip6)] {
                guard let ip else { continue }
                var entry: JSONObject = ["ip": .string(ip.address.description)]
                if let gateway = ip.gateway { entry["gateway"] = .string(gateway.description) }
                let familyRoutes = routes.filter { $0.destination.isIPv4 == ip.address.isIPv4 }
                if !familyRoutes.isEmpty { entry["routes"] = .array(familyRoutes.map { $0.json(as: version) }) }
                object[key] = .object(entry)
            }
        } else {
            if !interfaces.isEmpty { object["interfaces"] = .array(interfaces.map { $0.json(as: version) }) }
            if !ips.isEmpty { object["ips"] = .array(ips.map { $0.json(as: version) }) }
            if !routes.isEmpty { object["routes"] = .array(routes.map { $0.json(as: version) }) }
        }
        object["dns"] = dns.json
        return .object(object)
    }

    /// The result as `version` sees it: what printing it in that version and reading it back gives.
    public func converted(to version: CNIVersion) throws(CNIError) -> CNIResult {
        do {
            return try CNIResult(parsing: try json(as: version))
        } catch let error as CNIError {
            throw error
        } catch {
            throw CNIError(mapping: error)
        }
    }
}

extension CNIResult.Interface {
    func json(as version: CNIVersion) -> JSON {
        var object: JSONObject = ["name": .string(name)]
        if let mac, !mac.isEmpty { object["mac"] = .string(mac) }
        if version >= .v1_1_0, let mtu { object["mtu"] = .int(Int64(mtu)) }
        if let sandbox, !sandbox.isEmpty { object["sandbox"] = .string(sandbox) }
        if version >= .v1_1_0 {
            if let socketPath, !socketPath.isEmpty { object["socketPath"] = .string(socketPath) }
            if let pciID, !pciID.isEmpty { object["pciID"] = .string(pciID) }
        }
        return .object(object)
    }
}

extension CNIResult.IPConfig {
    func json(as version: CNIVersion) -> JSON {
        var object = JSONObject()
        if version < .v1_0_0 { object["version"] = .string(address.isIPv4 ? "4" : "6") }
        if let interface { object["interface"] = .int(Int64(interface)) }
        object["address"] = .string(address.description)
        if let gateway { object["gateway"] = .string(gateway.description) }
        return .object(object)
    }
}

extension CNIResult.Route {
    func json(as version: CNIVersion) -> JSON {
        var object: JSONObject = ["dst": .string(destination.description)]
        if let gateway { object["gw"] = .string(gateway.description) }
        if version >= .v1_1_0 {
            for (key, value) in [("mtu", mtu), ("advmss", advmss), ("priority", priority), ("table", table), ("scope", scope)] {
                if let value { object[key] = .int(Int64(value)) }
            }
        }
        return .object(object)
    }
}

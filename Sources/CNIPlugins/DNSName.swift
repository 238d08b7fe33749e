import Addressing
import BerthSupport
public import CNI
import DNS
import Glibc

/// `dnsname` (chained after bridge): registers the container's name, its aliases and its
/// addresses with berth-dns, and adds the DNS server (the network's gateway) and search domain
/// to the result. Configuration-compatible with containers/dnsname as podman's CNI backend
/// writes it (`domainName`, capability `aliases`); the name comes from CNI_ARGS K8S_POD_NAME.
///
/// berth's keys: `configDir` (berth-dns's configuration directory, /run/berth/dns), `dnsPort`
/// (53), `upstreams` (the network's own resolvers), `berthDNS` (path of the server).
public struct DNSNamePlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin dnsname (berth): container names through berth-dns"

    public init() {}

    struct Settings {
        var configDirectory: String
        var port: UInt16
        var domain: String?
        var upstreams: [IPAddress]
        var server: String?
        var network: String

        init(_ request: PluginRequest) throws {
            let fields = request.config.fields
            configDirectory = try fields.string("configDir") ?? "/run/berth/dns"
            port = UInt16(try fields.int("dnsPort", in: 1...65535) ?? 53)
            let domain = try fields.string("domainName") ?? ""
            guard domain.isEmpty || DNSName(domain) != nil else {
                throw CNIError(.invalidNetworkConfig, "domainName \"\(domain)\" is not a valid domain name")
            }
            self.domain = domain.isEmpty ? nil : domain.lowercased()
            upstreams = []
            for (i, text) in (try fields.strings("upstreams") ?? []).enumerated() {
                guard let address = IPAddress(text) else {
                    throw CNIError(.invalidNetworkConfig, "upstreams[\(i)]: \"\(text)\" is not an IP address")
                }
                upstreams.append(address)
            }
            server = try fields.string("berthDNS")
            network = request.config.name
        }

        var file: String { "\(configDirectory)/\(network)" }
        var lock: String { "\(configDirectory)/\(ConfigDirectory.lockFileName)" }
    }

    public func add(_ request: PluginRequest) throws -> CNIResult {
        let settings = try Settings(request)
        guard var result = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "must be called as chained plugin", details: "dnsname needs the bridge plugin's result (prevResult)")
        }
        let name = try containerName(request)
        let aliases = try aliases(request)
        let entry = try Self.entry(request.containerID, name: name, aliases: aliases, result: result)
        let gateways = Self.gateways(result)
        guard !gateways.isEmpty else {
            throw CNIError(.invalidNetworkConfig, "prevResult has no gateway", details: "berth-dns listens on the network's gateway addresses")
        }

        try Files.makeDirectories(settings.configDirectory, mode: 0o700)
        let lock = try FileLock(path: settings.lock)
        var network = try readNetwork(settings) ?? NetworkFile(name: settings.network, gateways: [])
        for gateway in gateways where !network.gateways.contains(gateway) { network.gateways.append(gateway) }
        network.domain = settings.domain
        network.upstreams = settings.upstreams
        network.containers.removeAll { $0.id == entry.id }
        network.containers.append(entry)
        try Files.writeAtomically(settings.file, Array(network.text.utf8), durable: false)
        try ensureServer(settings, request)
        withExtendedLifetime(lock) {}

        // Served when ADD returns: wait (briefly) until the server answers the new name.
        _ = waitForAnswer(name: name, entry: entry, gateway: gateways[0], port: settings.port, timeout: .seconds(2))

        result.cniVersion = request.version
        result.dns.nameservers = gateways.map(\.description) + result.dns.nameservers.filter { !gateways.map(\.description).contains($0) }
        if let domain = settings.domain, !result.dns.search.contains(domain) { result.dns.search.append(domain) }
        return result
    }

    public func del(_ request: PluginRequest) throws {
        let settings = try Settings(request)
        guard Files.isDirectory(settings.configDirectory) else { return }
        try update(settings, request) { network in network.containers.removeAll { $0.id == request.containerID.lowercased() } }
    }

    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        let settings = try Settings(request)
        guard Files.isDirectory(settings.configDirectory) else { return }
        let valid = Set(validAttachments.map { $0.containerID.lowercased() })
        try update(settings, request) { network in network.containers.removeAll { !valid.contains($0.id) } }
    }

    public func check(_ request: PluginRequest) throws {
        let settings = try Settings(request)
        guard let result = request.config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "Required prevResult missing")
        }
        let name = try containerName(request)
        guard let network = try readNetwork(settings) else {
            throw CNIError(.internalError, "network \(settings.network) is not registered with berth-dns", details: settings.file)
        }
        guard let entry = network.containers.first(where: { $0.id == request.containerID.lowercased() }) else {
            throw CNIError(.internalError, "container \(request.containerID) is not registered on network \(settings.network)")
        }
        let expected = try Self.entry(request.containerID, name: name, aliases: try aliases(request), result: result)
        guard Set(entry.addresses) == Set(expected.addresses), entry.names.first == expected.names.first else {
            throw CNIError(
                .internalError, "registration of \(request.containerID) differs from prevResult",
                details: "registered \(entry.names) at \(entry.addresses), expected \(expected.names) at \(expected.addresses)")
        }
        guard serverPID(settings) != nil else {
            throw CNIError(.internalError, "berth-dns is not running for \(settings.configDirectory)")
        }
        guard let gateway = Self.gateways(result).first ?? network.gateways.first else {
            throw CNIError(.internalError, "no gateway to ask")
        }
        if let problem = waitForAnswer(name: name, entry: entry, gateway: gateway, port: settings.port, timeout: .seconds(1)) {
            throw CNIError(.internalError, "berth-dns at \(gateway) port \(settings.port) does not answer \(name)", details: problem)
        }
    }

    // MARK: Pieces

    private func containerName(_ request: PluginRequest) throws -> String {
        let args = try request.cniArgs()
        try args.checkKnown(["K8S_POD_NAME"])
        guard let name = args["K8S_POD_NAME"], !name.isEmpty else {
            throw CNIError(.invalidEnvironmentVariables, "CNI_ARGS has no K8S_POD_NAME", details: "dnsname registers the container under that name")
        }
        guard DNSName(name) != nil, !name.contains(" "), !name.contains(",") else {
            throw CNIError(.invalidEnvironmentVariables, "K8S_POD_NAME \"\(name)\" is not a valid DNS name")
        }
        return name
    }

    /// runtimeConfig.aliases[network], as podman passes the `aliases` capability.
    private func aliases(_ request: PluginRequest) throws -> [String] {
        guard let all = try request.config.runtimeConfig?.object("aliases") else { return [] }
        let list = try all.strings(request.config.name) ?? []
        for alias in list where DNSName(alias) == nil || alias.contains(" ") || alias.contains(",") {
            throw CNIError(.invalidNetworkConfig, "alias \"\(alias)\" is not a valid DNS name")
        }
        return list
    }

    static func entry(_ id: String, name: String, aliases: [String], result: CNIResult) throws -> ContainerEntry {
        var entry = ContainerEntry(id: id.lowercased(), names: [])
        for ip in result.ips {
            switch ip.address.address {
            case .v4(let v4): entry.ipv4.append(v4)
            case .v6(let v6): entry.ipv6.append(v6)
            }
        }
        guard !entry.addresses.isEmpty else { throw CNIError(.invalidNetworkConfig, "prevResult has no IP addresses") }
        for candidate in [name] + aliases where !entry.names.contains(candidate.lowercased()) {
            entry.names.append(candidate.lowercased())
        }
        return entry
    }

    static func gateways(_ result: CNIResult) -> [IPAddress] {
        var seen: [IPAddress] = []
        for gateway in result.ips.compactMap(\.gateway) where !seen.contains(gateway) { seen.append(gateway) }
        return seen
    }

    private func readNetwork(_ settings: Settings) throws -> NetworkFile? {
        let text: String
        do {
            text = try Files.readText(settings.file)
        } catch let error as SystemError where error.errno == ENOENT {
            return nil
        }
        do {
            return try NetworkFile(parsing: text, fileName: settings.network)
        } catch {
            throw CNIError(.internalError, "berth-dns configuration \(settings.file) is damaged", details: "\(error)")
        }
    }

    /// Changes the network's file under the lock (removing it when no container is left) and
    /// tells the server; the server exits by itself once no network is left.
    private func update(_ settings: Settings, _ request: PluginRequest, _ change: (inout NetworkFile) -> Void) throws {
        let lock = try FileLock(path: settings.lock)
        guard var network = try readNetwork(settings) else { return }
        let before = network
        change(&network)
        guard network != before else { return }
        if network.containers.isEmpty {
            try Files.remove(settings.file)
        } else {
            try Files.writeAtomically(settings.file, Array(network.text.utf8), durable: false)
        }
        if let pid = serverPID(settings) { kill(pid, SIGHUP) }
        withExtendedLifetime(lock) {}
    }

    /// The running server's pid, if the pid file names a live berth-dns (or aardvark-dns).
    private func serverPID(_ settings: Settings) -> Int32? {
        guard let pid = ConfigDirectory.readPID(settings.configDirectory), pid > 0, kill(pid, 0) == 0 else { return nil }
        let comm = ((try? Files.readText("/proc/\(pid)/comm")) ?? "").split(separator: "\n").first ?? ""
        return comm == "berth-dns" || comm == "aardvark-dns" ? pid : nil
    }

    /// Signals the running server to reload, or starts one (with the lock held, so two ADDs
    /// never start two servers); returns once it listens.
    private func ensureServer(_ settings: Settings, _ request: PluginRequest) throws {
        if let pid = serverPID(settings) {
            kill(pid, SIGHUP)
            return
        }
        guard let executable = findServer(settings, request) else {
            throw CNIError(.internalError, "berth-dns not found", details: "set berthDNS in the configuration or install it next to the plugin")
        }
        let outcome = try Subprocess.run(
            executable, arguments: ["--config", settings.configDirectory, "-p", String(settings.port), "run"],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard outcome.status == 0 else {
            throw CNIError(
                .internalError, "berth-dns did not start (exit \(outcome.status))",
                details: String(decoding: outcome.stderr + outcome.stdout, as: UTF8.self))
        }
    }

    private func findServer(_ settings: Settings, _ request: PluginRequest) -> String? {
        if let path = settings.server { return access(path, X_OK) == 0 ? path : nil }
        let own = Files.currentExecutable().map { Files.parent(of: $0) } ?? ""
        return Subprocess.find("berth-dns", in: [own] + request.path + ["/usr/local/bin", "/usr/bin", "/usr/libexec/berth"])
    }

    /// Asks the server for the name until it answers with the entry's addresses; nil when it
    /// did, else what went wrong last.
    private func waitForAnswer(name: String, entry: ContainerEntry, gateway: IPAddress, port: UInt16, timeout: Duration) -> String? {
        guard let qname = DNSName(name) else { return "invalid name" }
        let type: RecordType = entry.ipv4.isEmpty ? .aaaa : .a
        let expected = Set(entry.ipv4.isEmpty ? entry.ipv6.map(IPAddress.v6) : entry.ipv4.map(IPAddress.v4))
        let deadline = monotonicNanoseconds() + timeout.nanoseconds
        var problem = "no answer"
        var id: UInt16 = UInt16(truncatingIfNeeded: getpid())
        while monotonicNanoseconds() < deadline {
            id &+= 1
            do {
                let answer = try DNSClient.exchange(
                    .query(id: id, name: qname, type: type), server: gateway, port: port, timeout: .milliseconds(200))
                let got = Set(answer.answers.compactMap { record -> IPAddress? in
                    switch record.data {
                    case .a(let v4): .v4(v4)
                    case .aaaa(let v6): .v6(v6)
                    default: nil
                    }
                })
                if expected.isSubset(of: got) { return nil }
                problem = "answered \(got.map(\.description)) (rcode \(answer.rcode.rawValue))"
            } catch {
                problem = "\(error)"
            }
            usleep(5_000)
        }
        return problem
    }
}

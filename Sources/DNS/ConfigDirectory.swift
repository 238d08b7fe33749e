public import Addressing
import BerthSupport
import Glibc

/// A configuration problem, naming the file and line.
public struct DNSConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var problem: String
    public init(file: String, line: Int, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }
    public var description: String { line > 0 ? "\(file):\(line): \(problem)" : "\(file): \(problem)" }
}

/// One container's line in a network file:
/// `ID IPV4[,IPV4...] IPV6[,IPV6...] NAME[,ALIAS...] [DNS_SERVER[,DNS_SERVER...]]`
/// (either address column may be empty, the separators are single spaces).
public struct ContainerEntry: Equatable, Sendable {
    public var id: String
    public var ipv4: [IPv4Address]
    public var ipv6: [IPv6Address]
    /// The container's name first, then its aliases; lower-cased as aardvark-dns does.
    public var names: [String]
    /// Upstream resolvers for this container only (aardvark-dns's fifth column).
    public var dnsServers: [IPAddress]

    public init(id: String, ipv4: [IPv4Address] = [], ipv6: [IPv6Address] = [], names: [String], dnsServers: [IPAddress] = []) {
        self.id = id
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.names = names
        self.dnsServers = dnsServers
    }

    public var addresses: [IPAddress] { ipv4.map(IPAddress.v4) + ipv6.map(IPAddress.v6) }

    var line: String {
        var text = "\(id) \(ipv4.map(\.description).joined(separator: ",")) \(ipv6.map(\.description).joined(separator: ",")) \(names.joined(separator: ","))"
        if !dnsServers.isEmpty { text += " " + dnsServers.map(\.description).joined(separator: ",") }
        return text
    }
}

/// One network's file in the configuration directory, in aardvark-dns's format. The file is
/// named after the network (with `%int` appended for an internal network, which gets no
/// forwarding). Its first line is `GATEWAY[,GATEWAY...] [UPSTREAM[,UPSTREAM...]]`, and berth
/// adds one optional token there, `domain=NAME`, the network's DNS domain; every further line
/// is a container (see ContainerEntry).
public struct NetworkFile: Equatable, Sendable {
    public var name: String
    public var isInternal: Bool
    /// Where the server listens for this network.
    public var gateways: [IPAddress]
    /// Upstream resolvers for the network instead of the host's resolv.conf.
    public var upstreams: [IPAddress]
    public var domain: String?
    public var containers: [ContainerEntry]

    public static let internalSuffix = "%int"

    public init(
        name: String, isInternal: Bool = false, gateways: [IPAddress], upstreams: [IPAddress] = [], domain: String? = nil,
        containers: [ContainerEntry] = []
    ) {
        self.name = name
        self.isInternal = isInternal
        self.gateways = gateways
        self.upstreams = upstreams
        self.domain = domain
        self.containers = containers
    }

    public var fileName: String { isInternal ? name + Self.internalSuffix : name }

    /// Parses a file's text; `fileName` gives the network's name and whether it is internal.
    public init(parsing text: String, fileName: String) throws(DNSConfigError) {
        isInternal = fileName.hasSuffix(Self.internalSuffix)
        name = isInternal ? String(fileName.dropLast(Self.internalSuffix.count)) : fileName
        gateways = []
        upstreams = []
        domain = nil
        containers = []
        var sawHeader = false
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            func fail(_ problem: String) -> DNSConfigError { DNSConfigError(file: fileName, line: number, problem: problem) }
            if line.isEmpty { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            if !sawHeader {
                sawHeader = true
                for item in parts[0].split(separator: ",") {
                    guard let address = IPAddress(item) else { throw fail("invalid gateway address \"\(item)\"") }
                    gateways.append(address)
                }
                for part in parts.dropFirst() where !part.isEmpty {
                    if part.hasPrefix("domain=") {
                        let value = String(part.dropFirst("domain=".count))
                        guard DNSName(value) != nil, !value.isEmpty else { throw fail("invalid domain \"\(value)\"") }
                        domain = value.lowercased()
                        continue
                    }
                    for item in part.split(separator: ",") {
                        guard let address = IPAddress(item) else { throw fail("invalid upstream resolver address \"\(item)\"") }
                        upstreams.append(address)
                    }
                }
                guard !gateways.isEmpty else { throw fail("the first line must list the network's gateway addresses") }
                continue
            }
            guard parts.count == 4 || parts.count == 5 else {
                throw fail("expected \"ID IPV4 IPV6 NAMES [DNS_SERVERS]\" separated by single spaces")
            }
            guard !parts[0].isEmpty else { throw fail("missing container ID") }
            var entry = ContainerEntry(id: parts[0].lowercased(), names: [])
            for item in parts[1].split(separator: ",") {
                guard let address = IPv4Address(item) else { throw fail("invalid IPv4 address \"\(item)\"") }
                entry.ipv4.append(address)
            }
            for item in parts[2].split(separator: ",") {
                guard let address = IPv6Address(item) else { throw fail("invalid IPv6 address \"\(item)\"") }
                entry.ipv6.append(address)
            }
            for item in parts[3].split(separator: ",") where !item.isEmpty {
                guard let name = DNSName(item), name.labels.count > 0 else { throw fail("invalid name \"\(item)\"") }
                entry.names.append(item.lowercased())
            }
            guard !entry.names.isEmpty else { throw fail("no names for container \(entry.id)") }
            if parts.count == 5 {
                for item in parts[4].split(separator: ",") {
                    guard let address = IPAddress(item) else { throw fail("invalid DNS server address \"\(item)\"") }
                    entry.dnsServers.append(address)
                }
            }
            containers.append(entry)
        }
        guard sawHeader else { throw DNSConfigError(file: fileName, line: 0, problem: "empty network file") }
    }

    /// The file's text, as `init(parsing:)` reads it.
    public var text: String {
        var header = gateways.map(\.description).joined(separator: ",")
        if !upstreams.isEmpty { header += " " + upstreams.map(\.description).joined(separator: ",") }
        if let domain, !domain.isEmpty { header += " domain=\(domain)" }
        return ([header] + containers.map(\.line)).joined(separator: "\n") + "\n"
    }
}

/// The configuration directory: one file per network, plus the server's pid file and the lock
/// that writers and the exiting server share.
public enum ConfigDirectory {
    /// aardvark-dns's pid file name, which netavark reads.
    public static let pidFileName = "aardvark.pid"
    /// Held by writers while they change files and start or signal the server, and by the
    /// server while it decides to exit, so that an ADD never races an exit.
    public static let lockFileName = ".berth-dns.lock"

    /// Whether a directory entry is a network file (not the pid file, the lock, or a
    /// temporary file of an atomic write).
    public static func isNetworkFile(_ name: String) -> Bool {
        if name.isEmpty || name.hasPrefix(".") || name == pidFileName { return false }
        // Files.writeAtomically's temporary files: NAME.tmp.PID
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count >= 3, parts[parts.count - 2] == "tmp", parts.last!.allSatisfy(\.isNumber) { return false }
        return true
    }

    /// Reads every network file; a file that cannot be read or parsed is reported, not fatal.
    public static func load(_ directory: String) throws -> (networks: [NetworkFile], errors: [DNSConfigError]) {
        var networks: [NetworkFile] = []
        var errors: [DNSConfigError] = []
        for name in try Files.list(directory).sorted() where isNetworkFile(name) {
            let path = "\(directory)/\(name)"
            guard !Files.isDirectory(path) else { continue }
            do {
                networks.append(try NetworkFile(parsing: try Files.readText(path), fileName: name))
            } catch let error as DNSConfigError {
                errors.append(error)
            } catch let error as SystemError where error.errno == ENOENT {
                continue  // removed while we read
            } catch {
                errors.append(DNSConfigError(file: name, line: 0, problem: "\(error)"))
            }
        }
        return (networks, errors)
    }

    /// The pid in the pid file, if the file holds one.
    public static func readPID(_ directory: String) -> Int32? {
        guard let text = try? Files.readText("\(directory)/\(pidFileName)") else { return nil }
        return Int32(text.trimmingCharacters(in: " \n"))
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var sub = Substring(self)
        while let first = sub.first, chars.contains(first) { sub = sub.dropFirst() }
        while let last = sub.last, chars.contains(last) { sub = sub.dropLast() }
        return String(sub)
    }
}

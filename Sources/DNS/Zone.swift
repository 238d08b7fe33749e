public import Addressing
import Glibc

/// The records of one name as the answers section of a response, precomputed: each record's
/// owner is a pointer to the question (offset 12), so a response is the query's header and
/// question followed by these bytes.
final class ZoneEntry {
    let key: [UInt8]
    var a: [UInt8] = []
    var aCount: UInt16 = 0
    var aaaa: [UInt8] = []
    var aaaaCount: UInt16 = 0
    var ptr: [UInt8] = []
    var ptrCount: UInt16 = 0
    /// Another entry whose key has the same hash.
    var next: ZoneEntry?
    private var seen: Set<[UInt8]> = []

    init(key: [UInt8]) { self.key = key }

    func add(type: RecordType, data: [UInt8]) {
        guard seen.insert([UInt8(type.rawValue & 0xFF)] + data).inserted else { return }
        var record: [UInt8] = [0xC0, 0x0C]
        record.appendUInt16(type.rawValue)
        record.appendUInt16(dnsClassIN)
        record.appendUInt32(Zone.ttl)
        record.appendUInt16(UInt16(data.count))
        record += data
        switch type {
        case .a: a += record; aCount += 1
        case .aaaa: aaaa += record; aaaaCount += 1
        default: ptr += record; ptrCount += 1
        }
    }
}

/// What one group of networks sees: the names of every container on those networks.
struct View {
    var entries: [UInt64: ZoneEntry] = [:]
    /// Domains answered with NXDOMAIN when a name under them is unknown (wire keys).
    var domains: [[UInt8]] = []

    func lookup(_ key: UnsafeRawBufferPointer) -> ZoneEntry? {
        var entry = entries[fnv1a(key)]
        while let candidate = entry {
            if candidate.key.count == key.count,
                candidate.key.withUnsafeBytes({ memcmpEqual($0, key) })
            {
                return candidate
            }
            entry = candidate.next
        }
        return nil
    }

    mutating func entry(for key: [UInt8]) -> ZoneEntry {
        let hash = key.withUnsafeBytes { fnv1a($0) }
        var entry = entries[hash]
        while let candidate = entry {
            if candidate.key == key { return candidate }
            entry = candidate.next
        }
        let created = ZoneEntry(key: key)
        created.next = entries[hash]
        entries[hash] = created
        return created
    }
}

/// How the server treats queries arriving on one listening address.
public struct ListenerPolicy: Sendable {
    /// The view a client sees when its address is not a known container's.
    var view: Int
    /// Upstreams for the network (nil: the host's resolv.conf).
    var upstreams: [IPAddress]?
    /// Internal networks answer container names only.
    var forwards: Bool
    public var network: String
}

/// Everything the server answers from, built from the configuration files in one go and
/// swapped in whole on reload: views per group of networks, which client sees which view, and
/// what each listening address serves.
public final class Zone {
    /// aardvark-dns answers container names with TTL 0, so a renamed or moved container is
    /// never served stale from a client's cache.
    static let ttl: UInt32 = 0

    public let networks: [NetworkFile]
    var views: [View] = []
    /// A container's address → the view of all its networks.
    var clientViews: [IPAddress: Int] = [:]
    /// A container's own upstream servers (fifth column).
    var clientUpstreams: [IPAddress: [IPAddress]] = [:]
    var listeners: [IPAddress: ListenerPolicy] = [:]

    /// Builds the zone. `searchDomain` (aardvark's --filter-search-domain, "dns.podman") is
    /// answered for every network in addition to each network's own `domain=`.
    public init(networks: [NetworkFile], searchDomain: String?) {
        self.networks = networks
        var viewIndex: [[Int]: Int] = [:]
        func view(for networkIndexes: [Int]) -> Int {
            let key = Array(Set(networkIndexes)).sorted()
            if let existing = viewIndex[key] { return existing }
            let index = views.count
            viewIndex[key] = index
            views.append(buildView(key.map { networks[$0] }, searchDomain: searchDomain))
            return index
        }
        var membership: [IPAddress: [Int]] = [:]
        for (index, network) in networks.enumerated() {
            let own = view(for: [index])
            for gateway in network.gateways where listeners[gateway] == nil {
                listeners[gateway] = ListenerPolicy(
                    view: own, upstreams: network.upstreams.isEmpty ? nil : network.upstreams,
                    forwards: !network.isInternal, network: network.name)
            }
            for container in network.containers {
                for address in container.addresses where !container.dnsServers.isEmpty {
                    clientUpstreams[address] = container.dnsServers
                }
            }
        }
        // A container's networks are those where its ID appears, whichever address asks.
        var byID: [String: [Int]] = [:]
        for (index, network) in networks.enumerated() {
            for container in network.containers { byID[container.id, default: []].append(index) }
        }
        for (index, network) in networks.enumerated() {
            for container in network.containers {
                let all = byID[container.id] ?? [index]
                for address in container.addresses { membership[address, default: []] += all }
            }
        }
        for (address, indexes) in membership { clientViews[address] = view(for: indexes) }
    }

    public var isEmpty: Bool { networks.isEmpty }
    /// Whether any network has a container: without one, nobody needs the server.
    public var hasContainers: Bool { networks.contains { !$0.containers.isEmpty } }
    public var listenAddresses: Set<IPAddress> { Set(listeners.keys) }

    private func buildView(_ networks: [NetworkFile], searchDomain: String?) -> View {
        var view = View()
        var domains: Set<[UInt8]> = []
        let search = searchDomain.flatMap { DNSName($0) }.flatMap { $0.labels.isEmpty ? nil : $0 }
        if let search { domains.insert(search.wireKey) }
        for network in networks {
            let own = network.domain.flatMap { DNSName($0) }.flatMap { $0.labels.isEmpty ? nil : $0 }
            if let own { domains.insert(own.wireKey) }
            let suffixes = [own, search].compactMap { $0 }
            for container in network.containers {
                let names = container.names.compactMap { DNSName($0) }
                for name in names {
                    let forms = [name] + suffixes.compactMap { name.appending($0) }
                    for form in forms {
                        let entry = view.entry(for: form.wireKey)
                        for v4 in container.ipv4 { entry.add(type: .a, data: v4.bytes) }
                        for v6 in container.ipv6 { entry.add(type: .aaaa, data: v6.bytes) }
                    }
                }
                for address in container.addresses {
                    let entry = view.entry(for: DNSName(reverseOf: address).wireKey)
                    for name in names {
                        let target = (own ?? search).flatMap { name.appending($0) } ?? name
                        entry.add(type: .ptr, data: target.wire)
                    }
                }
            }
        }
        view.domains = Array(domains)
        return view
    }
}

/// FNV-1a, 64 bits: cheap and good enough to spread a few thousand names.
@inline(__always) func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

@inline(__always) func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    guard let pa = a.baseAddress, let pb = b.baseAddress else { return a.count == 0 }
    return memcmp(pa, pb, a.count) == 0
}

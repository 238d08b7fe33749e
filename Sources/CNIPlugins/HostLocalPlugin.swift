import Addressing
import BerthSupport
public import CNI
import IPAM

/// `host-local`: addresses from configured ranges, recorded on disk in the reference plugin's
/// layout (so allocations survive a switch between it and berth), under a per-network lock.
/// Beyond the reference: DEL reads only the attachment's own index entry, and GC and STATUS
/// are implemented.
public struct HostLocalPlugin: CNIPlugin, Sendable {
    public let about = "CNI plugin host-local (berth): IP address management from local ranges"

    public init() {}

    public func add(_ request: PluginRequest) throws -> CNIResult {
        try mappingErrors { try allocate(request) }
    }

    private func allocate(_ request: PluginRequest) throws -> CNIResult {
        let config = try Self.configuration(request)
        let store = try AllocationStore(network: config.networkName, dataDirectory: config.dataDirectory)
        let owner = Owner(containerID: request.containerID, ifName: request.ifName)
        var dns = DNSConfig()
        if let path = config.resolvConf, !path.isEmpty {
            let resolv = try ResolvConf(path: path)
            dns = DNSConfig(nameservers: resolv.nameservers, domain: resolv.domain, search: resolv.search, options: resolv.options)
        }
        if config.rangeSets.filter(\.isIPv4).count > 1 || config.rangeSets.filter({ !$0.isIPv4 }).count > 1,
            request.version < .v0_3_0
        {
            throw CNIError(.invalidNetworkConfig, "CNI version \(request.version) does not support more than one address per family")
        }

        let ips: [CNIResult.IPConfig] = try store.locked {
            var requested = config.requestedAddresses
            var ips: [CNIResult.IPConfig] = []
            do {
                for (index, set) in config.rangeSets.enumerated() {
                    let wanted = requested.firstIndex(where: set.contains).map { requested.remove(at: $0) }
                    let allocator = Allocator(rangeSet: set, rangeSetIndex: index, store: store)
                    let (address, gateway) = try allocator.allocate(for: owner, requested: wanted)
                    ips.append(CNIResult.IPConfig(address: address, gateway: gateway))
                }
                guard requested.isEmpty else {
                    throw IPAMError(.unavailable, "requested addresses \(requested.map(\.description).joined(separator: ", ")) are in no configured range")
                }
            } catch {
                // All or nothing: give back what this call reserved.
                _ = try? store.release(owner)
                throw error
            }
            return ips
        }
        return CNIResult(
            cniVersion: request.version, ips: ips,
            routes: config.routes.map { CNIResult.Route(destination: $0.destination, gateway: $0.gateway) }, dns: dns)
    }

    public func del(_ request: PluginRequest) throws {
        let config = try Self.configuration(request)
        try mappingErrors {
            let store = try AllocationStore(network: config.networkName, dataDirectory: config.dataDirectory)
            try store.locked { _ = try store.release(Owner(containerID: request.containerID, ifName: request.ifName)) }
        }
    }

    public func check(_ request: PluginRequest) throws {
        let config = try Self.configuration(request)
        let store = try AllocationStore(network: config.networkName, dataDirectory: config.dataDirectory)
        let owner = Owner(containerID: request.containerID, ifName: request.ifName)
        let held = try mappingErrors { try store.locked { try store.addresses(of: owner) } }
        guard !held.isEmpty else {
            throw CNIError(.internalError, "host-local: no address is allocated to container \(request.containerID) (\(request.ifName))")
        }
        for ip in request.config.prevResult?.ips ?? [] where !held.contains(ip.address.address) {
            throw CNIError(.internalError, "host-local: \(ip.address.address) of prevResult is not allocated to container \(request.containerID)")
        }
    }

    /// Ready when the data directory is usable and every range set has a free address.
    public func status(_ request: PluginRequest) throws {
        let config = try Self.configuration(request)
        let store: AllocationStore
        do { store = try AllocationStore(network: config.networkName, dataDirectory: config.dataDirectory) } catch {
            throw CNIError(.pluginNotAvailable, "host-local: \(error)")
        }
        let reserved = try store.reservedAddresses()
        for (index, set) in config.rangeSets.enumerated() {
            let used = UInt128(reserved.filter(set.contains).count)
            if used >= set.capacity {
                throw CNIError(.pluginNotAvailable, "host-local: range set \(index) (\(set)) has no free address", details: "\(used) of \(set.capacity) in use")
            }
        }
    }

    /// Releases every reservation whose owner is not a valid attachment.
    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        let config = try Self.configuration(request)
        let store = try AllocationStore(network: config.networkName, dataDirectory: config.dataDirectory)
        let valid = Set(validAttachments.map { Owner(containerID: $0.containerID, ifName: $0.ifName) })
        let validContainers = Set(validAttachments.map(\.containerID))
        try mappingErrors {
            try store.locked {
                for (ip, owner) in try store.reservations() {
                    if let owner, valid.contains(owner) { continue }
                    // The oldest host-local wrote no interface name: keep those of live containers.
                    if let owner, owner.ifName.isEmpty, validContainers.contains(owner.containerID) { continue }
                    try store.forceRelease(ip)
                }
                try store.pruneIndex()
            }
        }
    }

    /// host-local's own errors become CNI errors with their message intact.
    private func mappingErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as IPAMError { throw CNIError(error) }
    }

    static func configuration(_ request: PluginRequest) throws -> IPAMConfig {
        let args = try request.cniArgs()
        try args.checkKnown(["IP", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"])
        do {
            return try IPAMConfig(networkConfig: request.config.raw, cniArgsIPs: args["IP"].map { [$0] } ?? [])
        } catch {
            throw CNIError(error)
        }
    }
}

extension CNIError {
    /// host-local's errors: configuration mistakes are code 7, the rest internal (as the
    /// reference reports them), each with its message.
    init(_ error: IPAMError) {
        switch error.kind {
        case .invalidConfiguration: self.init(.invalidNetworkConfig, error.message)
        case .exhausted, .unavailable, .storage: self.init(.internalError, error.message)
        }
    }
}

public import Addressing

/// Hands out one address from a range set, round-robin from the last address handed out (as
/// host-local does), never the gateway, never an address already reserved.
public struct Allocator: Sendable {
    public let rangeSet: RangeSet
    public let rangeSetIndex: Int
    public let store: AllocationStore

    public init(rangeSet: RangeSet, rangeSetIndex: Int, store: AllocationStore) {
        self.rangeSet = rangeSet
        self.rangeSetIndex = rangeSetIndex
        self.store = store
    }

    /// Reserves an address for `owner`: `requested` if given, otherwise the next free one.
    /// Call with the store's lock held.
    public func allocate(for owner: Owner, requested: IPAddress? = nil) throws(IPAMError) -> (address: IPNetwork, gateway: IPAddress) {
        if let requested {
            guard let range = rangeSet.range(for: requested) else {
                throw IPAMError(.unavailable, "requested address \(requested) is not in range set \(rangeSet)")
            }
            if requested == range.gateway {
                throw IPAMError(.unavailable, "requested address \(requested) is the subnet's gateway")
            }
            guard try store.reserve(requested, for: owner, rangeSetIndex: rangeSetIndex) else {
                throw IPAMError(.unavailable, "requested address \(requested) is already in use")
            }
            return (IPNetwork(address: requested, prefixLength: range.subnet.prefixLength), range.gateway)
        }

        for held in try store.addresses(of: owner) where rangeSet.contains(held) {
            throw IPAMError(.unavailable, "\(held) is already allocated to \(owner); duplicate allocation is not allowed")
        }
        var candidates = Candidates(rangeSet: rangeSet, after: store.lastReserved(rangeSetIndex: rangeSetIndex))
        while let (ip, range) = candidates.next() {
            if ip == range.gateway || store.isReserved(ip) { continue }
            if try store.reserve(ip, for: owner, rangeSetIndex: rangeSetIndex) {
                return (IPNetwork(address: ip, prefixLength: range.subnet.prefixLength), range.gateway)
            }
        }
        throw IPAMError(.exhausted, "no IP addresses available in range set \(rangeSet)")
    }
}

/// Every address of a range set exactly once, starting just after `after` when it lies in the
/// set (round-robin), otherwise at the first range's start.
struct Candidates {
    let rangeSet: RangeSet
    private var rangeIndex: Int
    private var current: IPAddress?
    private var first: IPAddress?

    init(rangeSet: RangeSet, after last: IPAddress?) {
        self.rangeSet = rangeSet
        if let last, let index = rangeSet.ranges.firstIndex(where: { $0.contains(last) }) {
            rangeIndex = index
            current = last
        } else {
            rangeIndex = 0
            current = nil
        }
    }

    mutating func next() -> (IPAddress, AddressRange)? {
        var range = rangeSet.ranges[rangeIndex]
        let candidate: IPAddress
        if let current {
            if current == range.end {
                rangeIndex = (rangeIndex + 1) % rangeSet.ranges.count
                range = rangeSet.ranges[rangeIndex]
                candidate = range.start
            } else {
                candidate = current.advanced(by: 1)!
            }
        } else {
            candidate = range.start
        }
        if let first, candidate == first { return nil }
        if first == nil { first = candidate }
        current = candidate
        return (candidate, range)
    }
}

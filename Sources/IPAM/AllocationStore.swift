public import Addressing
import BerthSupport
import Glibc

/// Who holds an address: the CNI attachment key (container ID, interface name).
public struct Owner: Hashable, Sendable, CustomStringConvertible {
    public var containerID: String
    public var ifName: String

    public init(containerID: String, ifName: String) {
        self.containerID = containerID
        self.ifName = ifName
    }

    /// What host-local writes into a reservation file.
    var fileContent: String { "\(containerID)\r\n\(ifName)" }
    /// Index entry name; neither part may contain ':' (CNI restricts both), so it splits back.
    var indexName: String { "\(containerID):\(ifName)" }
    public var description: String { "\(containerID)/\(ifName)" }

    /// Reads a reservation file's content; the oldest host-local wrote the container ID alone.
    init?(fileContent text: String) {
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { return nil }
        let lines = trimmed.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false)
        containerID = String(lines[0]).trimmingWhitespace
        ifName = lines.count > 1 ? String(lines[1]).trimmingWhitespace : ""
    }
}

/// host-local's on-disk store, in the reference layout so existing allocations survive a switch
/// between the reference plugin and berth's:
///
///     <dataDir>/<network>/<ip>                     "<containerID>\r\n<ifname>"
///     <dataDir>/<network>/last_reserved_ip.<set>   the last address handed out from range set <set>
///     <dataDir>/<network>/lock                     flock(2) serialising every change
///
/// berth adds an index so releasing an attachment does not read every file:
///
///     <dataDir>/<network>/.berth-index/<containerID>:<ifname>   its addresses, one per line
///
/// An index entry is written before the reservation it names, so a process killed between the
/// two leaves at most an entry for an address it never got (ignored: a reservation is only
/// released when its file names the owner). Reservations are created with link(2) from a
/// complete temporary file, so a reservation file never exists half-written.
public final class AllocationStore: @unchecked Sendable {
    public static let defaultDataDirectory = "/var/lib/cni/networks"
    private static let lastReservedPrefix = "last_reserved_ip."
    private static let indexDirectoryName = ".berth-index"

    public let directory: String
    private var indexDirectory: String { "\(directory)/\(Self.indexDirectoryName)" }

    public init(network: String, dataDirectory: String?) throws(IPAMError) {
        let base = (dataDirectory?.isEmpty ?? true) ? Self.defaultDataDirectory : dataDirectory!
        directory = "\(base)/\(network)"
        do {
            try Files.makeDirectories(directory)
        } catch {
            throw IPAMError(.storage, "cannot create the allocation directory: \(error)")
        }
    }

    /// Holds the network's lock (the reference's `<dir>/lock`) while `body` runs.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        let lock: FileLock
        do { lock = try FileLock(path: "\(directory)/lock") } catch {
            throw IPAMError(.storage, "cannot lock \(directory): \(error)")
        }
        return try withExtendedLifetime(lock) { try body() }
    }

    // MARK: Reservations (call with the lock held)

    public func isReserved(_ ip: IPAddress) -> Bool { Files.exists(path(of: ip)) }

    /// Reserves `ip` for `owner`; false if someone holds it already.
    public func reserve(_ ip: IPAddress, for owner: Owner, rangeSetIndex: Int) throws(IPAMError) -> Bool {
        let target = path(of: ip)
        if Files.exists(target) { return false }
        try storage("index \(owner)") { try ensureIndex(); try writeIndex(owner, addresses(indexedFor: owner) + [ip]) }
        let temporary = "\(indexDirectory)/.reserve.\(getpid())"
        try storage("write \(temporary)") {
            try Files.write(temporary, Array(owner.fileContent.utf8))
        }
        defer { unlink(temporary) }
        if link(temporary, target) != 0 {
            let code = errno
            try? writeIndex(owner, addresses(indexedFor: owner).filter { $0 != ip })
            if code == EEXIST { return false }
            throw IPAMError(.storage, "reserve \(target): \(errnoDescription(code))")
        }
        try storage("record last reserved address") {
            try Files.writeAtomically(
                "\(directory)/\(Self.lastReservedPrefix)\(rangeSetIndex)", Array(ip.description.utf8), durable: false)
        }
        return true
    }

    public func lastReserved(rangeSetIndex: Int) -> IPAddress? {
        guard let text = try? Files.readText("\(directory)/\(Self.lastReservedPrefix)\(rangeSetIndex)") else { return nil }
        return IPAddress(text.trimmingWhitespace)
    }

    /// The addresses `owner` holds (checked against the reservation files).
    public func addresses(of owner: Owner) throws(IPAMError) -> [IPAddress] {
        try storage("read index") { try ensureIndex() }
        return addresses(indexedFor: owner).filter { self.owner(of: $0) == owner }
    }

    /// Releases everything `owner` holds and returns what was released. Touches only files
    /// that name the owner, so an address since reused by another attachment is left alone.
    @discardableResult
    public func release(_ owner: Owner) throws(IPAMError) -> [IPAddress] {
        try storage("read index") { try ensureIndex() }
        var released: [IPAddress] = []
        for ip in addresses(indexedFor: owner) where self.owner(of: ip) == owner {
            let target = path(of: ip)
            guard unlink(target) == 0 || errno == ENOENT else {
                throw IPAMError(.storage, "release \(target): \(errnoDescription(errno))")
            }
            released.append(ip)
        }
        try storage("remove index entry") { try Files.remove("\(indexDirectory)/\(owner.indexName)") }
        return released
    }

    /// Every reservation in the network, with its owner (nil when the file is unreadable or
    /// empty). Reads every file: for GC and diagnostics, not for ADD or DEL.
    public func reservations() throws(IPAMError) -> [(ip: IPAddress, owner: Owner?)] {
        try reservedAddresses().map { ($0, owner(of: $0)) }
    }

    /// Addresses reserved, from the directory listing alone (no file is read).
    public func reservedAddresses() throws(IPAMError) -> [IPAddress] {
        let names = try storage("list \(directory)") { try Files.list(directory) }
        return names.compactMap { IPAddress($0) }
    }

    /// Drops a reservation whatever its owner (GC of files no attachment owns).
    public func forceRelease(_ ip: IPAddress) throws(IPAMError) {
        let target = path(of: ip)
        guard unlink(target) == 0 || errno == ENOENT else {
            throw IPAMError(.storage, "release \(target): \(errnoDescription(errno))")
        }
    }

    /// Removes index entries whose addresses are all gone (after GC).
    public func pruneIndex() throws(IPAMError) {
        try storage("prune index") {
            try ensureIndex()
            for name in try Files.list(indexDirectory) where !name.hasPrefix(".") {
                guard let owner = Owner(indexName: name) else { continue }
                if addresses(indexedFor: owner).allSatisfy({ self.owner(of: $0) != owner }) {
                    try Files.remove("\(indexDirectory)/\(name)")
                }
            }
        }
    }

    // MARK: Private

    private func path(of ip: IPAddress) -> String { "\(directory)/\(ip)" }

    private func owner(of ip: IPAddress) -> Owner? {
        guard let text = try? Files.readText(path(of: ip)) else { return nil }
        return Owner(fileContent: text)
    }

    private func addresses(indexedFor owner: Owner) -> [IPAddress] {
        guard let text = try? Files.readText("\(indexDirectory)/\(owner.indexName)") else { return [] }
        return text.split(separator: "\n").compactMap { IPAddress($0) }
    }

    private func writeIndex(_ owner: Owner, _ ips: [IPAddress]) throws {
        let path = "\(indexDirectory)/\(owner.indexName)"
        if ips.isEmpty { try Files.remove(path); return }
        var seen = Set<IPAddress>()
        let text = ips.filter { seen.insert($0).inserted }.map { "\($0)\n" }.joined()
        try Files.writeAtomically(path, Array(text.utf8), durable: false)
    }

    /// Builds the index once for a directory written by the reference plugin (or by a berth
    /// killed while building it): the `.complete` marker is written last.
    private func ensureIndex() throws {
        let marker = "\(indexDirectory)/.complete"
        if Files.exists(marker) { return }
        try Files.makeDirectories(indexDirectory)
        var byOwner: [Owner: [IPAddress]] = [:]
        for name in try Files.list(directory) {
            guard let ip = IPAddress(name), let owner = owner(of: ip) else { continue }
            byOwner[owner, default: []].append(ip)
        }
        for (owner, ips) in byOwner { try writeIndex(owner, ips) }
        try Files.write(marker, [])
    }

    private func storage<T>(_ what: String, _ body: () throws -> T) throws(IPAMError) -> T {
        do { return try body() } catch let error as IPAMError { throw error } catch {
            throw IPAMError(.storage, "\(what): \(error)")
        }
    }
}

extension Owner {
    init?(indexName: String) {
        guard let colon = indexName.firstIndex(of: ":") else { return nil }
        containerID = String(indexName[..<colon])
        ifName = String(indexName[indexName.index(after: colon)...])
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}

public import Addressing

/// The `CNI_ARGS` parameter: `K=V;K2=V2`. Keys are case-sensitive; a later pair wins over an
/// earlier one with the same key. `IgnoreUnknown=1` (or `true`) lets a plugin accept keys it
/// does not know, which it otherwise must refuse, as the reference plugins do.
public struct CNIArgs: Equatable, Sendable {
    public private(set) var pairs: [(key: String, value: String)]

    public static func == (a: CNIArgs, b: CNIArgs) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public init(_ pairs: [(String, String)] = []) {
        self.pairs = pairs.map { (key: $0.0, value: $0.1) }
    }

    /// Parses `K=V;K2=V2`; the empty string has no pairs. Every pair needs exactly one '='.
    public init(parsing text: String) throws(CNIError) {
        pairs = []
        guard !text.isEmpty else { return }
        for pair in text.split(separator: ";", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw CNIError(.invalidEnvironmentVariables, "CNI_ARGS: invalid pair \"\(pair)\"", details: "expected KEY=VALUE pairs separated by ';'")
            }
            pairs.append((key: String(parts[0]), value: String(parts[1])))
        }
    }

    /// `K=V;K2=V2`, as a runtime passes it.
    public var text: String { pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ";") }

    /// The last value given for `key`.
    public subscript(key: String) -> String? { pairs.last(where: { $0.key == key })?.value }

    /// The `IgnoreUnknown` flag: 1/0/true/false in any case.
    public func ignoreUnknown() throws(CNIError) -> Bool { try bool("IgnoreUnknown") ?? false }

    /// Refuses keys outside `known` (IgnoreUnknown is always known) unless IgnoreUnknown is set.
    public func checkKnown(_ known: some Sequence<String>) throws(CNIError) {
        let knownKeys = Set(known).union(["IgnoreUnknown"])
        let unknown = pairs.filter { !knownKeys.contains($0.key) }
        guard !unknown.isEmpty, try !ignoreUnknown() else { return }
        throw CNIError(
            .invalidEnvironmentVariables, "CNI_ARGS: unknown args \(quotedList(unknown.map { "\($0.key)=\($0.value)" }))",
            details: "this plugin knows \(knownKeys.sorted().joined(separator: ", ")); add IgnoreUnknown=1 to pass others")
    }

    public func bool(_ key: String) throws(CNIError) -> Bool? {
        guard let value = self[key] else { return nil }
        switch value.lowercased() {
        case "1", "true": return true
        case "0", "false": return false
        default: throw invalid(key, value, "expected 1, 0, true or false")
        }
    }

    /// One address (`IP=10.1.2.3`).
    public func ipAddress(_ key: String) throws(CNIError) -> IPAddress? {
        guard let value = self[key] else { return nil }
        guard let address = IPAddress(value) else { throw invalid(key, value, "expected an IP address") }
        return address
    }

    /// Comma-separated addresses (`IP=10.1.2.3,fd00::3`).
    public func ipAddresses(_ key: String) throws(CNIError) -> [IPAddress]? {
        guard let value = self[key] else { return nil }
        var result: [IPAddress] = []
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            guard let address = IPAddress(item) else { throw invalid(key, value, "invalid IP address \"\(item)\"") }
            result.append(address)
        }
        return result
    }

    public func macAddress(_ key: String) throws(CNIError) -> MACAddress? {
        guard let value = self[key] else { return nil }
        guard let mac = MACAddress(value) else { throw invalid(key, value, "expected a MAC address (aa:bb:cc:dd:ee:ff)") }
        return mac
    }

    private func invalid(_ key: String, _ value: String, _ problem: String) -> CNIError {
        CNIError(.invalidEnvironmentVariables, "CNI_ARGS: error parsing value of pair \"\(key)=\(value)\": \(problem)")
    }
}

public import Addressing
public import JSON

/// Typed readers for the address fields of CNI configurations and results, with errors that
/// name the field.
extension JSONFields {
    /// An address ("10.1.2.3" or "fd00::1").
    public func ipAddress(_ key: String) throws(JSONFieldError) -> IPAddress? {
        guard let text = try string(key) else { return nil }
        guard let address = IPAddress(text) else {
            throw JSONFieldError(path: fieldPath(key), problem: "expected an IP address, found \"\(text)\"")
        }
        return address
    }

    /// An address with a prefix length ("10.1.2.3/24"); host bits are kept.
    public func ipNetwork(_ key: String) throws(JSONFieldError) -> IPNetwork? {
        guard let text = try string(key) else { return nil }
        guard let network = IPNetwork(text) else {
            throw JSONFieldError(
                path: fieldPath(key), problem: "expected an address in CIDR notation (10.1.2.3/24), found \"\(text)\"")
        }
        return network
    }

    public func requiredIPNetwork(_ key: String) throws(JSONFieldError) -> IPNetwork {
        guard let network = try ipNetwork(key) else { throw JSONFieldError(path: fieldPath(key), problem: "is required") }
        return network
    }

    /// An integer that must fit an Int and lie in `range`.
    public func integer(_ key: String, in range: ClosedRange<Int64> = Int64(Int32.min)...Int64(Int32.max)) throws(JSONFieldError) -> Int? {
        try int(key, in: range).map { Int($0) }
    }
}

/// The name rules of the specification, with the reference library's codes and messages.
public enum CNINames {
    /// An alphanumeric first character, then alphanumerics, '_', '.' or '-'.
    static func isValidIdentifier(_ text: String) -> Bool {
        var first = true
        for byte in text.utf8 {
            let alphanumeric = (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
            if first {
                guard alphanumeric else { return false }
                first = false
            } else {
                guard alphanumeric || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                else { return false }
            }
        }
        return !first
    }

    public static func validateContainerID(_ id: String) throws(CNIError) {
        if id.isEmpty { throw CNIError(.unknownContainer, "missing containerID") }
        if !isValidIdentifier(id) {
            throw CNIError(.invalidEnvironmentVariables, "invalid characters in containerID", details: id)
        }
    }

    public static func validateNetworkName(_ name: String) throws(CNIError) {
        if name.isEmpty { throw CNIError(.invalidNetworkConfig, "missing network name") }
        if !isValidIdentifier(name) {
            throw CNIError(.invalidNetworkConfig, "invalid characters found in network name", details: name)
        }
    }

    /// Linux's rules: not empty, at most 15 bytes, not "." or "..", no '/', ':' or whitespace.
    public static func validateInterfaceName(_ name: String) throws(CNIError) {
        if name.isEmpty { throw CNIError(.invalidEnvironmentVariables, "interface name is empty") }
        if name.utf8.count > 15 {
            throw CNIError(
                .invalidEnvironmentVariables, "interface name is too long",
                details: "interface name should be less than 16 characters")
        }
        if name == "." || name == ".." { throw CNIError(.invalidEnvironmentVariables, "interface name is . or ..") }
        if name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace }) {
            throw CNIError(.invalidEnvironmentVariables, "interface name contains / or : or whitespace characters")
        }
    }

    /// A plugin type names an executable in a plugin directory: no path separators.
    public static func validatePluginType(_ type: String) throws(CNIError) {
        if type.isEmpty { throw CNIError(.invalidNetworkConfig, "no plugin name provided") }
        if type.contains("/") { throw CNIError(.invalidNetworkConfig, "invalid plugin name: \(type)") }
    }
}

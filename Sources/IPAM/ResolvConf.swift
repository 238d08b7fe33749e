import BerthSupport

/// The DNS settings host-local returns when `resolvConf` names a file: nameserver, domain,
/// search and options lines, as the reference parses them.
public struct ResolvConf: Equatable, Sendable {
    public var nameservers: [String] = []
    public var domain: String?
    public var search: [String] = []
    public var options: [String] = []

    public init(text: String) {
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            let values = fields.dropFirst().map(String.init)
            switch key {
            case "nameserver": nameservers += values.prefix(1)
            case "domain": domain = values.first
            case "search": search += values
            case "options": options += values
            default: continue
            }
        }
    }

    public init(path: String) throws(IPAMError) {
        do { self.init(text: try Files.readText(path)) } catch {
            throw IPAMError(.invalidConfiguration, "resolvConf: cannot read \(path): \(error)")
        }
    }
}

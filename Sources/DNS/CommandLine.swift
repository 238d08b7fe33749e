public import BerthSupport

/// berth-dns's command line, a superset of aardvark-dns's so netavark can run it in its place:
///
///     berth-dns [-c|--config DIR] [-p|--port PORT] [-f|--filter-search-domain DOMAIN] run|version
///
/// berth's own options: --foreground (do not daemonize), --resolv-conf PATH, --upstream-port
/// PORT, --upstream-timeout MS, --query-timeout MS, --log-level debug|info|warning|error,
/// --log-file PATH.
public struct BerthDNSCommand: Equatable, Sendable {
    public enum Action: String, Sendable { case run, version }

    public var action: Action
    public var options: ServerOptions
    public var foreground = false
    public var logLevel: Log.Level = .warning
    public var logFile: String?

    public static let usage = """
        usage: berth-dns [-c|--config DIR] [-p|--port PORT] [-f|--filter-search-domain DOMAIN]
                         [--foreground] [--resolv-conf PATH] [--upstream-port PORT]
                         [--upstream-timeout MS] [--query-timeout MS]
                         [--log-level debug|info|warning|error] [--log-file PATH] run|version
        """

    public struct UsageError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(arguments: [String]) throws(UsageError) {
        var options = ServerOptions(configDirectory: "/dev/stdin")
        var action: Action?
        var iterator = arguments.makeIterator()
        func value(_ flag: String) throws(UsageError) -> String {
            guard let next = iterator.next() else { throw UsageError(description: "\(flag) needs a value") }
            return next
        }
        func milliseconds(_ flag: String) throws(UsageError) -> Duration {
            let text = try value(flag)
            guard let ms = Int64(text), ms > 0 else { throw UsageError(description: "\(flag): expected milliseconds, got \"\(text)\"") }
            return .milliseconds(ms)
        }
        while let argument = iterator.next() {
            var flag = argument
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            let take = { () throws(UsageError) -> String in
                if let inline { return inline }
                return try value(flag)
            }
            switch flag {
            case "-c", "--config": options.configDirectory = try take()
            case "-p", "--port":
                let text = try take()
                guard let port = UInt16(text) else { throw UsageError(description: "\(flag): invalid port \"\(text)\"") }
                options.port = port
            case "-f", "--filter-search-domain":
                let text = try take()
                var domain = Substring(text)
                while domain.hasPrefix(".") { domain = domain.dropFirst() }
                options.searchDomain = domain.isEmpty ? nil : String(domain)
            case "--resolv-conf": options.resolvConf = try take()
            case "--upstream-port":
                let text = try take()
                guard let port = UInt16(text) else { throw UsageError(description: "\(flag): invalid port \"\(text)\"") }
                options.upstreamPort = port
            case "--upstream-timeout":
                if let ms = inline.flatMap({ Int64($0) }) { options.upstreamTimeout = .milliseconds(ms) } else { options.upstreamTimeout = try milliseconds(flag) }
            case "--query-timeout":
                if let ms = inline.flatMap({ Int64($0) }) { options.queryDeadline = .milliseconds(ms) } else { options.queryDeadline = try milliseconds(flag) }
            case "--foreground": foreground = true
            case "--log-level":
                let text = try take()
                guard let level = Self.level(text) else { throw UsageError(description: "--log-level: unknown level \"\(text)\"") }
                logLevel = level
            case "--log-file": logFile = try take()
            case "run", "version":
                guard action == nil else { throw UsageError(description: "more than one command") }
                action = Action(rawValue: argument)
            default:
                throw UsageError(description: "unknown argument \"\(argument)\"")
            }
        }
        guard let action else { throw UsageError(description: "missing command (run or version)") }
        self.action = action
        self.options = options
    }

    /// debug/info/warn(ing)/error, also as RUST_LOG spells them (trace counts as debug).
    public static func level(_ text: String) -> Log.Level? {
        switch text.lowercased() {
        case "trace", "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        default: nil
        }
    }
}

extension ServerOptions: Equatable {
    public static func == (a: ServerOptions, b: ServerOptions) -> Bool {
        a.configDirectory == b.configDirectory && a.port == b.port && a.resolvConf == b.resolvConf
            && a.searchDomain == b.searchDomain && a.upstreamTimeout == b.upstreamTimeout
            && a.queryDeadline == b.queryDeadline && a.upstreamPort == b.upstreamPort
    }
}

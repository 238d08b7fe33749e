import Addressing
public import BerthSupport

/// berth-proxy's command line: docker-proxy's flags (Go flag syntax: `-flag value`,
/// `-flag=value`, one or two dashes) plus berth's own for many mappings and limits.
public struct ProxyOptions: Sendable, Equatable {
    /// Mappings from the command line (the docker-proxy flags make one; `--mapping` adds more).
    public var mappings: [Mapping] = []
    /// `--mappings FILE`: more mappings, read at start and again on SIGHUP.
    public var mappingsFile: String?
    /// `-use-listen-fd`: the single docker-style mapping's socket is already bound and comes as fd 4.
    public var useListenFD = false
    /// `--max-connections`: open TCP connections at once; nil means derived from the fd limit.
    public var maxConnections: Int?
    /// `--max-udp-flows`: UDP clients tracked at once.
    public var maxUDPFlows = 4096
    /// `--udp-timeout`: a UDP flow without traffic either way for this long is closed.
    public var udpTimeout: Duration = .seconds(90)
    /// `--connect-timeout`: how long a connection to the container may take to establish
    /// (rounded up to the kernel's SYN retransmission steps: 3, 7, 15, 31, 63 or 127 s); nil
    /// leaves the kernel's default (net.ipv4.tcp_syn_retries, 6: about 127 s), as docker-proxy.
    public var connectTimeout: Duration?
    /// `--drain-timeout`: after SIGTERM/SIGINT, how long open connections may finish.
    public var drainTimeout: Duration = .seconds(5)
    /// `--threads`: event loops, each on its own thread with its own SO_REUSEPORT listeners.
    public var threads = 1
    public var logLevel: Log.Level = .warning
    public var help = false

    public init() {}

    public static let usage = """
        usage: berth-proxy -proto tcp|udp -host-ip IP -host-port PORT -container-ip IP -container-port PORT
               berth-proxy --mapping PROTO:HOST_IP:HOST_PORT:CONTAINER_IP:CONTAINER_PORT ... [--mappings FILE]

        docker-proxy's flags (one mapping):
          -proto tcp|udp          protocol (default tcp; sctp is refused)
          -host-ip IP             host address to listen on (0.0.0.0: all IPv4, ::: all IPv6)
          -host-port PORT         host port
          -container-ip IP        address to forward to
          -container-port PORT    port to forward to
          -use-listen-fd          the listening socket is already bound and passed as fd 4
        berth's flags:
          --mapping SPEC          one more mapping, e.g. tcp:127.0.0.1:8080:172.17.0.2:80, udp:[::1]:53:[fd00::2]:53
          --mappings FILE         mappings, one SPEC a line (# comments); reloaded on SIGHUP
          --max-connections N     open TCP connections at once (default: what the fd limit allows)
          --max-udp-flows N       UDP clients tracked at once (default 4096)
          --udp-timeout SECONDS   idle UDP flow expiry (default 90)
          --connect-timeout SECONDS  connecting to the container, in SYN retransmission steps
                                  (3, 7, 15, 31, 63, 127 s; default: the kernel's, about 127 s)
          --drain-timeout SECONDS after SIGTERM/SIGINT, time for open connections to finish (default 5)
          --threads N             event loops on their own threads, sharing the ports (SO_REUSEPORT; default 1)
          --log-level LEVEL       debug, info, warning (default) or error; logs go to stderr
        Readiness: "0\\n" is written to fd 3 once every listener is bound, or "1\\n<error>" on failure.
        """

    /// Parses the arguments (without the program name).
    public static func parse(_ arguments: [String]) throws(ProxyError) -> ProxyOptions {
        var options = ProxyOptions()
        var proto: String?
        var hostIP: String?, hostPort: String?, containerIP: String?, containerPort: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { break }
            guard argument.hasPrefix("-"), argument != "-" else {
                throw ProxyError("unexpected argument '\(argument)' (flags only; see --help)")
            }
            var name = Substring(argument.dropFirst(argument.hasPrefix("--") ? 2 : 1))
            var inlineValue: String?
            if let eq = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: eq)...])
                name = name[..<eq]
            }
            func value() throws(ProxyError) -> String {
                if let inlineValue { return inlineValue }
                guard index < arguments.count else { throw ProxyError("flag needs an argument: -\(name)") }
                index += 1
                return arguments[index - 1]
            }
            func bool() throws(ProxyError) -> Bool {
                switch inlineValue {
                case nil, "true", "1", "t", "T", "TRUE", "True": return true
                case "false", "0", "f", "F", "FALSE", "False": return false
                default: throw ProxyError("invalid boolean value '\(inlineValue!)' for -\(name)")
                }
            }
            switch name {
            case "proto": proto = try value()
            case "host-ip": hostIP = try value()
            case "host-port": hostPort = try value()
            case "container-ip": containerIP = try value()
            case "container-port": containerPort = try value()
            case "use-listen-fd": options.useListenFD = try bool()
            case "mapping": options.mappings.append(try Mapping(spec: try value()))
            case "mappings": options.mappingsFile = try value()
            case "max-connections": options.maxConnections = try count(try value(), flag: "max-connections")
            case "max-udp-flows": options.maxUDPFlows = try count(try value(), flag: "max-udp-flows")
            case "udp-timeout": options.udpTimeout = try seconds(try value(), flag: "udp-timeout")
            case "connect-timeout": options.connectTimeout = try seconds(try value(), flag: "connect-timeout")
            case "threads":
                options.threads = try count(try value(), flag: "threads")
                guard options.threads <= 64 else { throw ProxyError("invalid value '\(options.threads)' for --threads: use 1-64") }
            case "drain-timeout": options.drainTimeout = try seconds(try value(), flag: "drain-timeout", allowZero: true)
            case "log-level":
                let text = try value()
                guard let level = ["debug": Log.Level.debug, "info": .info, "warning": .warning, "error": .error][text] else {
                    throw ProxyError("invalid value '\(text)' for --log-level: use debug, info, warning or error")
                }
                options.logLevel = level
            case "h", "help": options.help = true
            default: throw ProxyError("flag provided but not defined: -\(name) (see --help)")
            }
        }
        if index < arguments.count {
            throw ProxyError("unexpected argument '\(arguments[index])' (flags only; see --help)")
        }
        if proto != nil || hostIP != nil || hostPort != nil || containerIP != nil || containerPort != nil {
            options.mappings.insert(
                try dockerMapping(proto: proto ?? "tcp", hostIP: hostIP, hostPort: hostPort, containerIP: containerIP,
                                  containerPort: containerPort), at: 0)
        } else if options.useListenFD {
            throw ProxyError("-use-listen-fd needs the docker-proxy flags (-proto, -host-ip, ...) for its one mapping")
        }
        if options.useListenFD && options.threads > 1 {
            throw ProxyError("-use-listen-fd serves its one socket from one thread; do not combine it with --threads")
        }
        if options.useListenFD && options.mappings.count > 1 {
            throw ProxyError("-use-listen-fd serves one mapping only; do not combine it with --mapping")
        }
        if options.mappings.isEmpty && options.mappingsFile == nil && !options.help {
            throw ProxyError("no mapping: give -host-port/-container-ip/-container-port, --mapping or --mappings (see --help)")
        }
        try checkNoDuplicateHosts(options.mappings)
        return options
    }

    /// The mapping docker-proxy's five flags describe. As in docker-proxy, an empty or missing
    /// -host-ip listens on all IPv6 addresses only (Go's "tcp6" with no address).
    private static func dockerMapping(
        proto: String, hostIP: String?, hostPort: String?, containerIP: String?, containerPort: String?
    ) throws(ProxyError) -> Mapping {
        guard let transport = try Mapping.transport(proto) else {
            throw ProxyError("unsupported protocol \(proto): use -proto tcp or -proto udp")
        }
        let host: IPAddress
        if let hostIP, !hostIP.isEmpty {
            guard let parsed = IPAddress(hostIP) else { throw ProxyError("invalid -host-ip '\(hostIP)': not an IP address") }
            host = parsed
        } else {
            host = .v6(IPv6Address(0))
        }
        guard let containerIP else { throw ProxyError("missing -container-ip") }
        guard let container = IPAddress(containerIP) else {
            throw ProxyError("invalid -container-ip '\(containerIP)': not an IP address")
        }
        guard let hostPort else { throw ProxyError("missing -host-port") }
        guard let hp = Mapping.port(hostPort) else { throw ProxyError("invalid -host-port '\(hostPort)': use 1-65535") }
        guard let containerPort else { throw ProxyError("missing -container-port") }
        guard let cp = Mapping.port(containerPort) else {
            throw ProxyError("invalid -container-port '\(containerPort)': use 1-65535")
        }
        return Mapping(proto: transport, host: SocketAddress(ip: host, port: hp), container: SocketAddress(ip: container, port: cp))
    }

    private static func count(_ text: String, flag: String) throws(ProxyError) -> Int {
        guard let n = Int(text), n > 0 else { throw ProxyError("invalid value '\(text)' for --\(flag): use a positive number") }
        return n
    }

    private static func seconds(_ text: String, flag: String, allowZero: Bool = false) throws(ProxyError) -> Duration {
        guard let s = Double(text), s.isFinite, s > 0 || (allowZero && s == 0), s <= 86400 * 365 else {
            throw ProxyError("invalid value '\(text)' for --\(flag): use seconds, e.g. 90 or 0.5")
        }
        return .nanoseconds(Int64(s * 1e9))
    }
}

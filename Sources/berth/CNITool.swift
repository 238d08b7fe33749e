import BerthSupport
import CNI
import JSON

/// `berth cni`: runs a network configuration list against a namespace the way a CNI runtime
/// does (cnitool's job), through berth's CNI runtime library.
enum CNITool {
    static let usage = """
        usage: berth cni add|check|del|status|gc NETWORK [NETNS] [options]
          NETWORK        a configuration list name, found as NAME.conflist/.conf/.json in the config dir
          NETNS          the container's network namespace path (add, check, del)
        options:
          --ifname NAME         interface inside the container (default eth0)
          --container-id ID     container ID (default: derived from NETNS)
          --args K=V;K2=V2      CNI_ARGS
          --cap-args JSON       capability arguments, e.g. '{"portMappings": [...]}'
          --config-dir DIR      default $NETCONFPATH or /etc/cni/net.d
          --plugin-dir DIR      default $CNI_PATH or /opt/cni/bin (repeatable)
          --cache-dir DIR       default /var/lib/cni
          --valid ID/IFNAME     for gc: an attachment that is still valid (repeatable)
        """

    static func run(_ arguments: [String]) throws -> Int32 {
        var positional: [String] = []
        var ifName = "eth0", containerID: String? = nil, args = "", capArgs = JSONObject()
        let env = processEnvironment()
        var configDir = env["NETCONFPATH"] ?? "/etc/cni/net.d"
        var pluginDirs: [String] = []
        var cacheDir = ResultCache.defaultDirectory
        var valid: [GCAttachment] = []
        var rest = arguments[...]
        while let arg = rest.popFirst() {
            guard arg.hasPrefix("--") else { positional.append(arg); continue }
            guard let value = rest.popFirst() else { throw UsageError("\(arg) needs a value") }
            switch arg {
            case "--ifname": ifName = value
            case "--container-id": containerID = value
            case "--args": args = value
            case "--cap-args":
                guard let object = (try? JSON.parse(value))?.objectValue else { throw UsageError("--cap-args must be a JSON object") }
                capArgs = object
            case "--config-dir": configDir = value
            case "--plugin-dir": pluginDirs.append(value)
            case "--cache-dir": cacheDir = value
            case "--valid":
                let parts = value.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw UsageError("--valid takes CONTAINERID/IFNAME") }
                valid.append(GCAttachment(containerID: parts[0], ifName: parts[1]))
            default: throw UsageError("unknown option \(arg)")
            }
        }
        if pluginDirs.isEmpty {
            pluginDirs = (env["CNI_PATH"] ?? "/opt/cni/bin").split(separator: ":").map(String.init)
        }
        guard positional.count >= 2 else { throw UsageError("missing command or network") }
        let command = positional[0], network = positional[1]
        let list = try NetworkConfigList.load(named: network, in: configDir)
        let runtime = CNIRuntime(pluginDirectories: pluginDirs, cacheDirectory: cacheDir)

        func attachment() throws -> Attachment {
            guard positional.count >= 3 else { throw UsageError("\(command) needs the namespace path") }
            let netns = positional[2]
            return Attachment(
                containerID: containerID ?? "berth-" + Files.baseName(of: netns), netns: netns, ifName: ifName,
                args: try CNIArgs(parsing: args), capabilityArgs: capArgs)
        }

        switch command {
        case "add":
            let result = try runtime.add(list, try attachment())
            writeAll(fd: 1, try result.json(as: result.cniVersion).prettyBytes + [0x0A])
        case "check": try runtime.check(list, try attachment())
        case "del": try runtime.del(list, try attachment())
        case "status": try runtime.status(list)
        case "gc": try runtime.gc(list, validAttachments: valid)
        default: throw UsageError("unknown cni command \(command)")
        }
        return 0
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

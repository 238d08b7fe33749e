import BerthSupport
import Glibc
import JSON

/// The protocol around a plugin (what the reference's pkg/skel does): reads the CNI_*
/// variables and stdin, validates them, checks versions, dispatches, and prints the result or
/// the error JSON. Nothing is read or parsed before it is needed: VERSION reads no stdin and
/// parses nothing.
public enum PluginMain {
    /// Runs one invocation in-process (for tests): the environment and stdin are given, and
    /// stdout and stderr come back.
    public static func run(
        _ plugin: some CNIPlugin, environment: [String: String], stdin: [UInt8] = []
    ) -> (exitCode: Int32, stdout: [UInt8], stderr: [UInt8]) {
        let stderr = OutputSink.collecting()
        let (code, stdout) = execute(plugin, environment: environment, readStdin: { stdin }, stderr: stderr)
        return (code, stdout, stderr.collected)
    }

    /// The `main` of a plugin executable: the process environment, stdin, stdout, stderr, exit.
    public static func main(_ plugin: some CNIPlugin) -> Never {
        let (code, stdout) = execute(
            plugin, environment: processEnvironment(), readStdin: { try readAll(fd: STDIN_FILENO) },
            stderr: .standardError())
        writeAll(fd: STDOUT_FILENO, stdout)
        exit(code)
    }

    /// The exit status and stdout of one invocation.
    static func execute(
        _ plugin: some CNIPlugin, environment: [String: String], readStdin: () throws -> [UInt8], stderr: OutputSink
    ) -> (Int32, [UInt8]) {
        var configVersion: String? = nil
        do {
            let output = try dispatch(
                plugin, environment: environment, readStdin: readStdin, stderr: stderr, configVersion: &configVersion)
            return (0, output)
        } catch {
            let context = ErrorContext(
                command: Command(rawValue: environment["CNI_COMMAND"] ?? ""), netns: environment["CNI_NETNS"] ?? "")
            return (1, CNIError(mapping: error, context: context).json(cniVersion: configVersion).prettyBytes)
        }
    }

    /// Which variables each command needs (as the reference's skel has it; CNI_NETNS is optional
    /// for DEL because containerd sends it empty once the namespace is gone).
    private static let required: [(name: String, commands: Set<Command>)] = [
        ("CNI_CONTAINERID", [.add, .check, .del]),
        ("CNI_NETNS", [.add, .check]),
        ("CNI_IFNAME", [.add, .check, .del]),
        ("CNI_PATH", [.add, .check, .del, .gc, .status]),
    ]

    private static func dispatch(
        _ plugin: some CNIPlugin, environment: [String: String], readStdin: () throws -> [UInt8], stderr: OutputSink,
        configVersion: inout String?
    ) throws -> [UInt8] {
        let commandText = environment["CNI_COMMAND"] ?? ""
        if commandText.isEmpty {
            if !plugin.about.isEmpty {
                stderr.log(plugin.about)
                stderr.log("CNI protocol versions supported: \(plugin.supportedVersions.map(\.description).joined(separator: ", "))")
                return []
            }
            throw CNIError(.invalidEnvironmentVariables, "required env variables [CNI_COMMAND] missing")
        }
        guard let command = Command(rawValue: commandText) else {
            throw CNIError(
                .invalidEnvironmentVariables, "unknown CNI_COMMAND: \(commandText)",
                details: "expected one of \(Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let supported = plugin.supportedVersions.map(\.description)
        if command == .version {
            return Array(VersionInfo(supportedVersions: supported).json.compactString.utf8) + [0x0A]
        }

        // Parameters.
        let value = { (name: String) in environment[name] ?? "" }
        var missing: [String] = []
        for (name, commands) in required where commands.contains(command) {
            let text = value(name)
            if text.isEmpty {
                missing.append(name)
            } else if name == "CNI_CONTAINERID" {
                try CNINames.validateContainerID(text)
            } else if name == "CNI_IFNAME" {
                try CNINames.validateInterfaceName(text)
            }
        }
        if !missing.isEmpty {
            throw CNIError(.invalidEnvironmentVariables, "required env variables [\(missing.joined(separator: ","))] missing")
        }

        // Configuration: the envelope first (name and version), then the version checks, then
        // the well-known fields.
        let stdin: [UInt8]
        do {
            stdin = try readStdin()
        } catch {
            throw CNIError(.ioFailure, "error reading from stdin: \(error)")
        }
        let object: JSONObject
        do {
            guard case .object(let o) = try JSON.parse(stdin) else {
                throw CNIError(.decodingFailure, "error parsing network config: expected a JSON object on stdin")
            }
            object = o
        } catch let error as JSONSyntaxError {
            throw CNIError(.decodingFailure, "error parsing network config: \(error)")
        }
        let envelope = JSONFields(object)
        let versionText: String
        do {
            let written = try envelope.string("cniVersion") ?? ""
            versionText = written.isEmpty ? CNIVersion.implied.description : written
        } catch {
            throw CNIError(.decodingFailure, "decoding version from network config: \(error)")
        }
        configVersion = versionText
        let name: String
        do {
            name = try envelope.string("name") ?? ""
        } catch {
            throw CNIError(.decodingFailure, "error parsing network config: \(error)")
        }
        try CNINames.validateNetworkName(name)
        let version = try checkVersion(versionText, command: command, supported: supported)
        let config = try NetworkConfig(object)

        let request = PluginRequest(
            command: command, containerID: value("CNI_CONTAINERID"), netns: value("CNI_NETNS"),
            ifName: value("CNI_IFNAME"), argsText: value("CNI_ARGS"),
            path: value("CNI_PATH").split(separator: ":").map(String.init), stdin: stdin, config: config,
            version: version, environment: environment, stderr: stderr)
        switch command {
        case .add:
            return try plugin.add(request).json(as: version).prettyBytes
        case .del: try plugin.del(request)
        case .check: try plugin.check(request)
        case .status: try plugin.status(request)
        case .gc: try plugin.gc(request, validAttachments: try config.validAttachments() ?? [])
        case .version: break
        }
        return []
    }

    /// The configuration's version must be one the plugin supports; CHECK needs 0.4.0 or later,
    /// STATUS and GC 1.1.0 or later, and a plugin that supports such a version.
    private static func checkVersion(_ text: String, command: Command, supported: [String]) throws(CNIError) -> CNIVersion {
        let incompatible = CNIError(
            .incompatibleVersion, "incompatible CNI versions", details: "config is \"\(text)\", plugin supports \(quotedList(supported))")
        guard let version = CNIVersion(text) else { throw incompatible }
        let floor: CNIVersion? =
            switch command {
            case .check: .v0_4_0
            case .status, .gc: .v1_1_0
            default: nil
            }
        if let floor {
            guard version >= floor else {
                throw CNIError(.incompatibleVersion, "config version does not allow \(command.rawValue)")
            }
            guard supported.contains(where: { CNIVersion($0).map { $0 >= version } ?? false }) else {
                throw CNIError(.incompatibleVersion, "plugin version does not allow \(command.rawValue)")
            }
        }
        guard supported.contains(text) else { throw incompatible }
        return version
    }
}

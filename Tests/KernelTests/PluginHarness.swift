import BerthSupport
import Glibc
import JSON
import Namespaces
import Testing

/// Where the built executables are: BERTH_BIN_DIR (an installed CNI directory, say), or the
/// build directory holding this test bundle, where the plugins are linked to berth-cni under
/// their names as `make install` links them.
enum Built {
    static let directory: String = {
        if let dir = processEnvironment()["BERTH_BIN_DIR"], !dir.isEmpty { return dir }
        let dir = Files.parent(of: Files.currentExecutable() ?? "")
        linkPlugins(in: dir)
        return dir
    }()

    /// bridge, host-local, ... → berth-cni, for every name `berth-cni --list` prints.
    private static func linkPlugins(in dir: String) {
        guard let list = try? Subprocess.run("\(dir)/berth-cni", arguments: ["--list"], environment: [:]), list.status == 0 else { return }
        for name in String(decoding: list.stdout, as: UTF8.self).split(separator: "\n") {
            let path = "\(dir)/\(name)"
            var st = stat()
            // A regular file there is a stale build of a per-plugin executable: replace it.
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFLNK { unlink(path) }
            _ = symlink("berth-cni", path)  // EEXIST when already linked
        }
    }

    static func path(_ name: String) -> String { "\(directory)/\(name)" }
}

/// The reference plugins (Debian's containernetworking-plugins).
enum Reference {
    static let directory = "/usr/lib/cni"
    static func path(_ name: String) -> String { "\(directory)/\(name)" }
}

/// What a plugin printed and how it exited.
struct PluginOutcome: CustomStringConvertible {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String

    var json: JSON? { try? JSON.parse(stdout) }
    var errorCode: Int64? { json?["code"]?.intValue }
    var text: String { String(decoding: stdout, as: UTF8.self) }
    var description: String { "exit \(status), stdout \(text), stderr \(stderr)" }
}

/// One plugin invocation, with the environment a runtime sets.
struct PluginCall: Sendable {
    var command: String
    var containerID = "ctr1"
    var netns = ""
    var ifName = "eth0"
    var args: String? = nil
    var cniPath: [String] = [Built.directory]
    var config: String
    /// Variables to leave out entirely (to test missing-variable errors).
    var unset: Set<String> = []
    /// When set, the environment exactly (nothing derived from the fields above).
    var overrideEnvironment: [String: String]? = nil

    var environment: [String: String] {
        if let overrideEnvironment { return overrideEnvironment }
        var env = [
            "CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": netns, "CNI_IFNAME": ifName,
            "CNI_PATH": cniPath.joined(separator: ":"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        if let args { env["CNI_ARGS"] = args }
        for name in unset { env[name] = nil }
        return env
    }
}

/// Runs a plugin executable exactly as a runtime does: environment, configuration on stdin,
/// inside `host`'s network namespace (the "host" side of the test).
func run(_ executable: String, _ call: PluginCall, in host: NetworkNamespace) throws -> PluginOutcome {
    let outcome = try Subprocess.run(
        executable, environment: call.environment, input: Array(call.config.utf8), netnsFD: host.fd)
    return PluginOutcome(status: outcome.status, stdout: outcome.stdout, stderr: String(decoding: outcome.stderr, as: UTF8.self))
}

/// A fresh "host" namespace and container namespaces for one test; all vanish with it.
struct Sandboxes {
    let host: NetworkNamespace
    init() throws { host = try NetworkNamespace.createAnonymous() }
    func container() throws -> NetworkNamespace { try NetworkNamespace.createAnonymous() }
}

/// Whether `ip -j link show DEV` in `namespace` says the link is administratively up.
func isUp(_ namespace: NetworkNamespace, _ device: String) throws -> Bool {
    let link = try ipObject(namespace, "link", "show", "dev", device)
    return (link["flags"]?.arrayValue ?? []).contains(.string("UP"))
}

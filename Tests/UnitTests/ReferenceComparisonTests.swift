import BerthSupport
import CNI
import JSON
import Testing

private let referenceLoopback = "/usr/lib/cni/loopback"

/// What a plugin printed and how it exited.
private struct Printed: Equatable, CustomStringConvertible {
    var exitCode: Int32
    var code: Int64?
    var msg: String?
    var details: String?

    init(exitCode: Int32, stdout: [UInt8]) {
        self.exitCode = exitCode
        let value = try? JSON.parse(stdout)
        code = value?["code"]?.intValue
        msg = value?["msg"]?.stringValue
        details = value?["details"]?.stringValue
    }

    var description: String { "exit \(exitCode) code \(code.map(String.init) ?? "-") msg \(msg ?? "-") details \(details ?? "-")" }
}

/// The reference loopback (plugins 1.1.1, skel from libcni 1.1.2) next to a PluginMain plugin
/// that supports the same versions, on the same input.
private func both(_ environment: [String: String], _ stdin: String) throws -> (reference: Printed, ours: Printed) {
    let outcome = try Subprocess.run(referenceLoopback, environment: environment, input: bytes(stdin))
    let ours = PluginMain.run(
        ScriptedPlugin(supportedVersions: Array(CNIVersion.all.prefix(6))), environment: environment, stdin: bytes(stdin))
    return (Printed(exitCode: outcome.status, stdout: outcome.stdout), Printed(exitCode: ours.exitCode, stdout: ours.stdout))
}

@Suite(.enabled(if: Files.exists(referenceLoopback)))
struct ReferenceComparisonTests {
    @Test func versionListsTheSameVersions() throws {
        let reference = try Subprocess.run(referenceLoopback, environment: ["CNI_COMMAND": "VERSION"])
        let ours = PluginMain.run(ScriptedPlugin(supportedVersions: Array(CNIVersion.all.prefix(6))), environment: ["CNI_COMMAND": "VERSION"])
        let theirs = try JSON.parse(reference.stdout), mine = try JSON.parse(ours.stdout)
        #expect(theirs["supportedVersions"] == mine["supportedVersions"])
        // Both end the line; the reference says 1.0.0 (its library's version), we say 1.1.0.
        #expect(reference.stdout.last == 0x0A && ours.stdout.last == 0x0A)
        #expect(theirs["cniVersion"] == "1.0.0" && mine["cniVersion"] == "1.1.0")
    }

    @Test func sameErrorsForBadInput() throws {
        let good = #"{"cniVersion": "1.0.0", "name": "n", "type": "loopback"}"#
        let cases: [(String, [String: String], String)] = [
            ("missing variables", ["CNI_COMMAND": "ADD"], good),
            ("missing ifname on DEL", ["CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_PATH": "/x"], good),
            ("bad container ID", cniEnvironment("ADD", containerID: "-x", netns: "/nonexistent"), good),
            ("ifname with a slash", cniEnvironment("ADD", netns: "/nonexistent", ifName: "a/b"), good),
            ("ifname too long", cniEnvironment("ADD", netns: "/nonexistent", ifName: "0123456789abcdef"), good),
            ("ifname ..", cniEnvironment("ADD", netns: "/nonexistent", ifName: ".."), good),
            ("unknown version", cniEnvironment("ADD", netns: "/nonexistent"), #"{"cniVersion": "9.9.9", "name": "n"}"#),
            ("CHECK on 0.3.1", cniEnvironment("CHECK", netns: "/nonexistent"), #"{"cniVersion": "0.3.1", "name": "n"}"#),
            ("missing name", cniEnvironment("ADD", netns: "/nonexistent"), #"{"cniVersion": "1.0.0"}"#),
            ("invalid name", cniEnvironment("ADD", netns: "/nonexistent"), #"{"cniVersion": "1.0.0", "name": "n!"}"#),
        ]
        for (what, env, stdin) in cases {
            let (reference, ours) = try both(env, stdin)
            #expect(reference == ours, "\(what): reference \(reference), ours \(ours)")
        }
    }

    @Test func sameCodesWhereMessagesDiffer() throws {
        // Malformed configuration: both 6 (the parsers word it differently).
        for stdin in ["{bad", "[1]", #"{"cniVersion": 1, "name": "n"}"#] {
            let (reference, ours) = try both(cniEnvironment("ADD", netns: "/nonexistent"), stdin)
            #expect(reference.exitCode == 1 && ours.exitCode == 1)
            #expect(reference.code == 6 && ours.code == 6, "\(stdin): reference \(reference), ours \(ours)")
        }
        // An unknown command with a valid configuration: both 4 with the same message.
        let (reference, ours) = try both(cniEnvironment("FROB"), #"{"cniVersion": "1.0.0", "name": "n"}"#)
        #expect(reference.code == 4 && ours.code == 4 && reference.msg == ours.msg)
    }

    /// Where berth deliberately differs (see the report): recorded so a change on either side shows.
    @Test func documentedDifferences() throws {
        // GC on a 1.0.0 configuration: the 1.1.2 skel knows no GC and fails on the container ID
        // it does not need (3); a 1.1 skel, and we, refuse the version (1).
        let gc = try both(["CNI_COMMAND": "GC", "CNI_PATH": "/x"], #"{"cniVersion": "1.0.0", "name": "n"}"#)
        #expect(gc.reference.code == 3 && gc.ours.code == 1)
        // An unknown command with no configuration: the reference reads and fails to decode stdin
        // first (6); we refuse the command before reading anything (4).
        let unknown = try both(["CNI_COMMAND": "FROB"], "")
        #expect(unknown.reference.code == 6 && unknown.ours.code == 4)
        // Error objects: the reference leaves out cniVersion, which the specification asks for.
        let reference = try Subprocess.run(referenceLoopback, environment: cniEnvironment("ADD", netns: "/x"), input: bytes(#"{"cniVersion": "1.0.0"}"#))
        #expect(try JSON.parse(reference.stdout)["cniVersion"] == nil)
    }

    @Test func aboutGoesToStderr() throws {
        let reference = try Subprocess.run(referenceLoopback, environment: [:])
        let ours = PluginMain.run(ScriptedPlugin(supportedVersions: Array(CNIVersion.all.prefix(6)), about: "CNI loopback plugin version unknown"), environment: [:])
        #expect(reference.status == 0 && ours.exitCode == 0)
        #expect(reference.stdout.isEmpty && ours.stdout.isEmpty)
        #expect(reference.stderr == ours.stderr)
    }

    @Test(.enabled(if: Files.exists("/usr/lib/cni/host-local")))
    func cniArgsErrorsAreCode4WhereTheReferenceSays999() throws {
        let dir = try TemporaryDirectory()
        let config = #"{"cniVersion": "1.0.0", "name": "n", "type": "x", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": "\#(dir.path)"}}"#
        let reference = try Subprocess.run(
            "/usr/lib/cni/host-local", environment: cniEnvironment("ADD", path: "/usr/lib/cni", args: "FOO=bar"), input: bytes(config))
        let theirs = try JSON.parse(reference.stdout)
        #expect(theirs["code"] == 999 && theirs["msg"] == #"ARGS: unknown args ["FOO=bar"]"#)
        let ours = try #require(throws: CNIError.self) { try CNIArgs(parsing: "FOO=bar").checkKnown(["IP"]) }
        #expect(ours.code == .invalidEnvironmentVariables && ours.msg == #"CNI_ARGS: unknown args ["FOO=bar"]"#)
    }

    /// The runtime drives the reference host-local as a one-plugin list: ADD, CHECK, DEL.
    @Test(.enabled(if: Files.exists("/usr/lib/cni/host-local")))
    func runtimeDrivesTheReferenceHostLocal() throws {
        let dir = try TemporaryDirectory()
        let list = try NetworkConfigList(
            parsing: bytes(
                #"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "host-local", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": "\#(dir.path)/data"}}]}"#
            ))
        let stderr = OutputSink.collecting()
        let runtime = CNIRuntime(
            pluginDirectories: ["/usr/lib/cni"], cacheDirectory: dir.file("cache"), environment: [:], stderr: stderr)
        let attachment = Attachment(containerID: "ctr1", netns: "/run/netns/none", ifName: "eth0")
        let result = try runtime.add(list, attachment)
        #expect(result.cniVersion == .v1_0_0 && result.ips.map(\.address.description) == ["10.9.0.2/24"])
        #expect(Files.exists(dir.file("data/net1/10.9.0.2")))
        try runtime.check(list, attachment)
        #expect(try runtime.versionInfo(pluginType: "host-local").supports("1.0.0"))
        try runtime.del(list, attachment)
        #expect(!Files.exists(dir.file("data/net1/10.9.0.2")))
        #expect(runtime.cachedAttachments().isEmpty)
        // A 1.1.0 list is refused by the 1.0.0 reference plugin with its own error.
        let newer = try NetworkConfigList(
            parsing: bytes(#"{"cniVersion": "1.1.0", "name": "net1", "plugins": [{"type": "host-local", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": "\#(dir.path)/data"}}]}"#))
        #expect(throws: CNIError(.incompatibleVersion, #"plugin type="host-local" failed (add): incompatible CNI versions"#, details: #"config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"]"#)) {
            try runtime.add(newer, attachment)
        }
    }
}

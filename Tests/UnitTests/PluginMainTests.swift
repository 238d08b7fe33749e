import Addressing
import BerthSupport
import CNI
import JSON
import Testing

private let config100 = #"{"cniVersion": "1.0.0", "name": "net1", "type": "test"}"#

private func config(_ version: String) -> String {
    #"{"cniVersion": "\#(version)", "name": "net1", "type": "test"}"#
}

@Suite struct PluginMainTests {
    // MARK: VERSION and about

    @Test func versionNeedsNothingButTheCommand() {
        let plugin = ScriptedPlugin()
        let out = PluginMain.run(plugin, environment: ["CNI_COMMAND": "VERSION"], stdin: bytes("this is never read"))
        #expect(out.exitCode == 0)
        #expect(
            string(out.stdout)
                == #"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"# + "\n")
        #expect(plugin.calls.isEmpty)
    }

    @Test func versionListsThePluginsVersions() {
        let plugin = ScriptedPlugin(supportedVersions: [.v0_4_0, .v1_0_0])
        let out = PluginMain.run(plugin, environment: ["CNI_COMMAND": "VERSION"])
        #expect(string(out.stdout) == #"{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0"]}"# + "\n")
    }

    @Test func withoutCommandPrintsAboutOnStderr() {
        let out = PluginMain.run(ScriptedPlugin(supportedVersions: [.v1_0_0, .v1_1_0], about: "CNI plugin test v1"), environment: [:])
        #expect(out.exitCode == 0 && out.stdout.isEmpty)
        #expect(string(out.stderr) == "CNI plugin test v1\nCNI protocol versions supported: 1.0.0, 1.1.0\n")
    }

    @Test func withoutCommandOrAboutIsCode4() throws {
        let out = PluginMain.run(ScriptedPlugin(), environment: [:])
        #expect(out.exitCode == 1)
        let error = try PrintedError(out.stdout)
        #expect(error.code == 4 && error.msg == "required env variables [CNI_COMMAND] missing")
        #expect(error.cniVersion == nil)
    }

    @Test func unknownCommandIsCode4() throws {
        let out = PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("FROB"), stdin: bytes(config100))
        let error = try PrintedError(out.stdout)
        #expect(out.exitCode == 1 && error.code == 4 && error.msg == "unknown CNI_COMMAND: FROB")
    }

    // MARK: Every command

    @Test func addPrintsTheResultInTheConfigVersion() throws {
        let plugin = ScriptedPlugin()
        let out = PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config100))
        #expect(out.exitCode == 0)
        #expect(plugin.calls == ["ADD"])
        #expect(string(out.stdout) == string(try sampleResult.json(as: .v1_0_0).prettyBytes))
        #expect(
            string(out.stdout) == """
                {
                    "cniVersion": "1.0.0",
                    "interfaces": [
                        {
                            "name": "eth0",
                            "mac": "0a:58:0a:01:00:05",
                            "sandbox": "/run/netns/c1"
                        }
                    ],
                    "ips": [
                        {
                            "interface": 0,
                            "address": "10.1.0.5/24",
                            "gateway": "10.1.0.1"
                        }
                    ],
                    "routes": [
                        {
                            "dst": "0.0.0.0/0"
                        }
                    ],
                    "dns": {}
                }
                """)
        // The same result for an older configuration: converted.
        let old = PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config("0.3.1")))
        let printed = try JSON.parse(old.stdout)
        #expect(printed["cniVersion"] == "0.3.1")
        #expect(printed["ips"]?.arrayValue?.first?["version"] == "4")
        let legacy = try JSON.parse(PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config("0.2.0"))).stdout)
        #expect(legacy["ip4"]?["ip"] == "10.1.0.5/24")
    }

    @Test func theRequestCarriesTheParameters() throws {
        let plugin = ScriptedPlugin(onAdd: { request throws in
            #expect(request.command == .add)
            #expect(request.containerID == "ctr1" && request.netns == "/run/netns/c1" && request.ifName == "eth0")
            #expect(request.path == ["/opt/cni/bin", "/usr/lib/cni"])
            #expect(request.argsText == "IP=10.1.0.9")
            #expect(try request.cniArgs().ipAddress("IP") == IPAddressLiteral("10.1.0.9"))
            #expect(request.version == .v1_0_0)
            #expect(request.config.name == "net1")
            #expect(request.stdin == bytes(config100))
            #expect(request.environment["CNI_COMMAND"] == "ADD")
            request.stderr.log("hello from the plugin")
            return sampleResult
        })
        let out = PluginMain.run(
            plugin, environment: cniEnvironment("ADD", path: "/opt/cni/bin:/usr/lib/cni", args: "IP=10.1.0.9"),
            stdin: bytes(config100))
        #expect(out.exitCode == 0)
        #expect(string(out.stderr) == "hello from the plugin\n")
    }

    @Test func delCheckStatusAndGC() throws {
        let plugin = ScriptedPlugin()
        #expect(PluginMain.run(plugin, environment: cniEnvironment("DEL"), stdin: bytes(config100)).exitCode == 0)
        #expect(PluginMain.run(plugin, environment: cniEnvironment("CHECK"), stdin: bytes(config100)).exitCode == 0)
        let status = PluginMain.run(plugin, environment: ["CNI_COMMAND": "STATUS", "CNI_PATH": "/opt/cni/bin"], stdin: bytes(config("1.1.0")))
        #expect(status.exitCode == 0 && status.stdout.isEmpty)
        let gcConfig = """
            {"cniVersion": "1.1.0", "name": "net1", "type": "test",
             "cni.dev/valid-attachments": [{"containerID": "ctr1", "ifname": "eth0"}]}
            """
        let gc = PluginMain.run(plugin, environment: ["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"], stdin: bytes(gcConfig))
        #expect(gc.exitCode == 0 && gc.stdout.isEmpty)
        #expect(plugin.calls == ["DEL", "CHECK", "STATUS", "GC"])
        #expect(plugin.gcAttachments == [GCAttachment(containerID: "ctr1", ifName: "eth0")])
    }

    @Test func gcWithoutValidAttachmentsGetsAnEmptyList() {
        let plugin = ScriptedPlugin()
        let gc = PluginMain.run(plugin, environment: ["CNI_COMMAND": "GC", "CNI_PATH": "/x"], stdin: bytes(config("1.1.0")))
        #expect(gc.exitCode == 0)
        #expect(plugin.gcAttachments == [])
    }

    @Test func statusErrorsKeepTheirCode() throws {
        let plugin = ScriptedPlugin(onOther: { _ in throw CNIError(.pluginNotAvailable, "no addresses left") })
        let out = PluginMain.run(plugin, environment: ["CNI_COMMAND": "STATUS", "CNI_PATH": "/x"], stdin: bytes(config("1.1.0")))
        let error = try PrintedError(out.stdout)
        #expect(out.exitCode == 1 && error.code == 50 && error.msg == "no addresses left" && error.cniVersion == "1.1.0")
    }

    @Test func delWorksWithoutNetns() {
        var env = cniEnvironment("DEL")
        env["CNI_NETNS"] = ""
        #expect(PluginMain.run(ScriptedPlugin(), environment: env, stdin: bytes(config100)).exitCode == 0)
        env["CNI_NETNS"] = nil
        #expect(PluginMain.run(ScriptedPlugin(), environment: env, stdin: bytes(config100)).exitCode == 0)
    }

    // MARK: Parameters

    @Test func missingVariablesAreCode4AndNamed() throws {
        let cases: [(String, [String: String], String)] = [
            ("ADD", ["CNI_COMMAND": "ADD"], "[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH]"),
            ("CHECK", ["CNI_COMMAND": "CHECK", "CNI_NETNS": "/x"], "[CNI_CONTAINERID,CNI_IFNAME,CNI_PATH]"),
            ("DEL", ["CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c"], "[CNI_IFNAME,CNI_PATH]"),
            ("GC", ["CNI_COMMAND": "GC"], "[CNI_PATH]"),
            ("STATUS", ["CNI_COMMAND": "STATUS", "CNI_CONTAINERID": ""], "[CNI_PATH]"),
        ]
        for (command, env, list) in cases {
            let plugin = ScriptedPlugin()
            let out = PluginMain.run(plugin, environment: env, stdin: bytes(config("1.1.0")))
            let error = try PrintedError(out.stdout)
            #expect(out.exitCode == 1 && error.code == 4, "\(command)")
            #expect(error.msg == "required env variables \(list) missing", "\(command)")
            #expect(plugin.calls.isEmpty)
        }
    }

    @Test func badContainerIDsAndInterfaceNamesAreRefused() throws {
        for (env, code, msg) in [
            (cniEnvironment("ADD", containerID: "-x"), 4, "invalid characters in containerID"),
            (cniEnvironment("DEL", containerID: "a/b"), 4, "invalid characters in containerID"),
            (cniEnvironment("ADD", ifName: "a/b"), 4, "interface name contains / or : or whitespace characters"),
            (cniEnvironment("CHECK", ifName: "0123456789abcdef"), 4, "interface name is too long"),
            (cniEnvironment("ADD", ifName: ".."), 4, "interface name is . or .."),
            (cniEnvironment("DEL", ifName: "a b"), 4, "interface name contains / or : or whitespace characters"),
        ] {
            let plugin = ScriptedPlugin()
            let out = PluginMain.run(plugin, environment: env, stdin: bytes(config100))
            let error = try PrintedError(out.stdout)
            #expect(error.code == Int64(code) && error.msg == msg)
            #expect(plugin.calls.isEmpty)
        }
        let detail = try PrintedError(PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("ADD", containerID: "-x"), stdin: bytes(config100)).stdout)
        #expect(detail.details == "-x")
    }

    // MARK: Configuration

    @Test func malformedJSONIsCode6() throws {
        for text in ["", "{bad", "[1, 2]", "\"text\"", #"{"cniVersion": 1, "name": "n"}"#, #"{"name": ["n"]}"#] {
            let plugin = ScriptedPlugin()
            let out = PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(text))
            let error = try PrintedError(out.stdout)
            #expect(out.exitCode == 1 && error.code == 6, "\(text): \(error.msg)")
            #expect(plugin.calls.isEmpty)
        }
    }

    @Test func networkNameIsRequiredAndValidated() throws {
        let missing = try PrintedError(PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("ADD"), stdin: bytes(#"{"cniVersion": "1.0.0"}"#)).stdout)
        #expect(missing.code == 7 && missing.msg == "missing network name" && missing.cniVersion == "1.0.0")
        let invalid = try PrintedError(
            PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("ADD"), stdin: bytes(#"{"cniVersion": "1.0.0", "name": "n!"}"#)).stdout)
        #expect(invalid.code == 7 && invalid.msg == "invalid characters found in network name" && invalid.details == "n!")
    }

    @Test func wrongTypedWellKnownFieldsAreCode7NamingTheField() throws {
        let out = PluginMain.run(
            ScriptedPlugin(), environment: cniEnvironment("ADD"),
            stdin: bytes(#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": 1}}"#))
        let error = try PrintedError(out.stdout)
        #expect(error.code == 7 && error.msg.contains("ipam.type"))
    }

    // MARK: Versions

    @Test func unknownVersionIsCode1() throws {
        let out = PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("ADD"), stdin: bytes(config("9.9.9")))
        let error = try PrintedError(out.stdout)
        #expect(error.code == 1 && error.msg == "incompatible CNI versions")
        #expect(error.details == #"config is "9.9.9", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]"#)
        #expect(error.cniVersion == "9.9.9")
        for bad in ["1.0", "garbage"] {
            #expect(try PrintedError(PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("DEL"), stdin: bytes(config(bad))).stdout).code == 1)
        }
    }

    @Test func missingVersionMeans010() throws {
        let noVersion = #"{"name": "net1", "type": "test"}"#
        let modern = ScriptedPlugin(supportedVersions: [.v0_4_0, .v1_0_0])
        let error = try PrintedError(PluginMain.run(modern, environment: cniEnvironment("ADD"), stdin: bytes(noVersion)).stdout)
        #expect(error.code == 1 && error.details == #"config is "0.1.0", plugin supports ["0.4.0" "1.0.0"]"#)
        #expect(modern.calls.isEmpty)
        // A plugin that supports 0.1.0 answers in its shape.
        let out = PluginMain.run(ScriptedPlugin(), environment: cniEnvironment("ADD"), stdin: bytes(noVersion))
        #expect(out.exitCode == 0)
        #expect(try JSON.parse(out.stdout)["ip4"]?["ip"] == "10.1.0.5/24")
        #expect(try JSON.parse(out.stdout)["cniVersion"] == "0.1.0")
    }

    @Test func checkNeeds040() throws {
        let plugin = ScriptedPlugin()
        let error = try PrintedError(PluginMain.run(plugin, environment: cniEnvironment("CHECK"), stdin: bytes(config("0.3.1"))).stdout)
        #expect(error.code == 1 && error.msg == "config version does not allow CHECK")
        #expect(plugin.calls.isEmpty)
        let oldPlugin = ScriptedPlugin(supportedVersions: [.v0_3_1])
        let old = try PrintedError(PluginMain.run(oldPlugin, environment: cniEnvironment("CHECK"), stdin: bytes(config("0.4.0"))).stdout)
        #expect(old.code == 1 && old.msg == "plugin version does not allow CHECK")
    }

    @Test(arguments: ["GC", "STATUS"])
    func gcAndStatusNeed110(_ command: String) throws {
        let plugin = ScriptedPlugin()
        let env = ["CNI_COMMAND": command, "CNI_PATH": "/x"]
        let error = try PrintedError(PluginMain.run(plugin, environment: env, stdin: bytes(config100)).stdout)
        #expect(error.code == 1 && error.msg == "config version does not allow \(command)")
        let oldPlugin = ScriptedPlugin(supportedVersions: [.v1_0_0])
        let old = try PrintedError(PluginMain.run(oldPlugin, environment: env, stdin: bytes(config("1.1.0"))).stdout)
        #expect(old.code == 1 && old.msg == "plugin version does not allow \(command)")
        #expect(plugin.calls.isEmpty && oldPlugin.calls.isEmpty)
    }

    // MARK: Errors from the plugin

    @Test func pluginErrorsAreMappedOnce() throws {
        struct Odd: Error, CustomStringConvertible { var description: String { "something odd" } }
        let cases: [(any Error & Sendable, Int64, String)] = [
            (CNIError(107, "plugin specific", details: "more"), 107, "plugin specific"),
            (JSONFieldError(path: "bridge", problem: "expected a string, found a number"), 7,
             "invalid network configuration: bridge: expected a string, found a number"),
            (SystemError("open", object: "/run/netns/c1", errno: 2), 3, "network namespace /run/netns/c1 does not exist"),
            (SystemError("RTM_NEWLINK", object: "veth1", errno: 17), 999, "RTM_NEWLINK veth1: File exists (EEXIST)"),
            (Odd(), 999, "something odd"),
        ]
        for (thrown, code, msg) in cases {
            let plugin = ScriptedPlugin(onAdd: { _ in throw thrown })
            let out = PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config100))
            let error = try PrintedError(out.stdout)
            #expect(out.exitCode == 1)
            #expect(error.code == code && error.msg == msg)
            #expect(error.cniVersion == "1.0.0")
        }
    }

    @Test func errorOutputIsIndentedJSON() {
        let plugin = ScriptedPlugin(onAdd: { _ in throw CNIError(.tryAgainLater, "busy") })
        let out = PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config100))
        #expect(string(out.stdout) == "{\n    \"cniVersion\": \"1.0.0\",\n    \"code\": 11,\n    \"msg\": \"busy\"\n}")
    }

    @Test func unknownCNIArgsAreRefusedByPluginsThatCheck() throws {
        let plugin = ScriptedPlugin(onAdd: { request throws in
            try request.cniArgs().checkKnown(["IP"])
            return sampleResult
        })
        let refused = try PrintedError(PluginMain.run(plugin, environment: cniEnvironment("ADD", args: "FOO=bar"), stdin: bytes(config100)).stdout)
        #expect(refused.code == 4 && refused.msg == #"CNI_ARGS: unknown args ["FOO=bar"]"#)
        let accepted = PluginMain.run(plugin, environment: cniEnvironment("ADD", args: "FOO=bar;IgnoreUnknown=1"), stdin: bytes(config100))
        #expect(accepted.exitCode == 0)
    }

    @Test func resultThatCannotBeConvertedIsAnError() throws {
        let plugin = ScriptedPlugin(onAdd: { _ in CNIResult(interfaces: [CNIResult.Interface(name: "lo")]) })
        let error = try PrintedError(PluginMain.run(plugin, environment: cniEnvironment("ADD"), stdin: bytes(config("0.2.0"))).stdout)
        #expect(error.code == 999 && error.msg.contains("no valid IP addresses"))
    }
}

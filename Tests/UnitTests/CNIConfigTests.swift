import Addressing
import BerthSupport
import CNI
import JSON
import Testing

/// The field a configuration error names, or nil if it threw something else.
func fieldErrorPath(_ body: () throws -> Void) -> String? {
    do {
        try body()
    } catch let error as JSONFieldError {
        return error.path
    } catch {
        return "not a field error: \(error)"
    }
    return nil
}

@Suite struct NetworkConfigTests {
    @Test func readsTheWellKnownKeys() throws {
        let config = try NetworkConfig(
            parsing: bytes(
                """
                {"cniVersion": "1.0.0", "name": "net1", "type": "bridge", "bridge": "br0", "ipMasq": true,
                 "capabilities": {"portMappings": true, "mac": false},
                 "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
                 "args": {"cni": {"ips": ["10.1.0.9"]}},
                 "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
                 "dns": {"nameservers": ["10.1.0.1"]},
                 "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24"}]}}
                """))
        #expect(config.cniVersion == "1.0.0" && config.version == .v1_0_0)
        #expect(config.name == "net1" && config.type == "bridge")
        #expect(config.ipMasq)
        #expect(config.capabilities == ["portMappings": true, "mac": false])
        #expect(try config.runtimeConfig?.array("portMappings")?.count == 1)
        #expect(try config.args?.object("cni")?.strings("ips") == ["10.1.0.9"])
        #expect(config.ipam?.type == "host-local")
        #expect(try config.ipam?.fields.ipNetwork("subnet") == IPNetworkLiteral("10.1.0.0/24"))
        #expect(config.dns?.nameservers == ["10.1.0.1"])
        #expect(config.prevResult?.ips.first?.address == IPNetworkLiteral("10.1.0.5/24"))
        // The plugin's own keys, with errors that name them.
        #expect(try config.fields.string("bridge") == "br0")
    }

    @Test func missingVersionIs010() throws {
        let config = try NetworkConfig(parsing: bytes(#"{"name": "n", "type": "loopback"}"#))
        #expect(config.cniVersion == "0.1.0")
        #expect(config.prevResult == nil && config.ipam == nil && !config.ipMasq)
    }

    @Test func prevResultWithoutVersionTakesTheConfigVersion() throws {
        let config = try NetworkConfig(
            parsing: bytes(#"{"cniVersion": "0.4.0", "name": "n", "prevResult": {"ips": [{"version": "4", "address": "10.1.0.5/24"}]}}"#))
        #expect(config.prevResult?.cniVersion == .v0_4_0)
        #expect(config.prevResult?.ips.count == 1)
    }

    @Test func wrongTypesNameTheField() {
        for (text, path) in [
            (#"{"name": 1}"#, "name"),
            (#"{"cniVersion": 1.0}"#, "cniVersion"),
            (#"{"type": ["bridge"]}"#, "type"),
            (#"{"ipMasq": "yes"}"#, "ipMasq"),
            (#"{"capabilities": {"portMappings": "true"}}"#, "capabilities.portMappings"),
            (#"{"capabilities": []}"#, "capabilities"),
            (#"{"runtimeConfig": 1}"#, "runtimeConfig"),
            (#"{"ipam": {"type": 5}}"#, "ipam.type"),
            (#"{"dns": {"search": [1]}}"#, "dns.search[0]"),
            (#"{"cniVersion": "1.0.0", "prevResult": {"ips": [{"address": "x"}]}}"#, "prevResult.ips[0].address"),
            (#"{"cniVersion": "1.0.0", "prevResult": "x"}"#, "prevResult"),
        ] {
            #expect(fieldErrorPath { _ = try NetworkConfig(parsing: bytes(text)) } == path, "\(text)")
        }
        // And the message says what was expected.
        do {
            _ = try NetworkConfig(parsing: bytes(#"{"ipMasq": "yes"}"#))
        } catch {
            #expect("\(error)" == "ipMasq: expected true or false, found a string")
        }
    }

    @Test func validAttachments() throws {
        let config = try NetworkConfig(
            parsing: bytes(
                #"{"cniVersion": "1.1.0", "name": "n", "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]}"#
            ))
        #expect(
            try config.validAttachments() == [
                GCAttachment(containerID: "c1", ifName: "eth0"), GCAttachment(containerID: "c2", ifName: "net1"),
            ])
        let legacy = try NetworkConfig(
            parsing: bytes(#"{"cniVersion": "1.1.0", "cni.dev/attachments": [{"containerID": "c1", "ifname": "eth0"}]}"#))
        #expect(try legacy.validAttachments()?.count == 1)
        #expect(try NetworkConfig(parsing: bytes(#"{"name": "n"}"#)).validAttachments() == nil)
        let bad = try NetworkConfig(parsing: bytes(#"{"cni.dev/valid-attachments": [{"containerID": "c1"}]}"#))
        #expect(fieldErrorPath { _ = try bad.validAttachments() } == "cni.dev/valid-attachments[0].ifname")
    }
}

@Suite struct NetworkConfigListTests {
    static let list = """
        {"cniVersion": "1.0.0", "name": "berth", "disableCheck": true,
         "plugins": [{"type": "bridge", "bridge": "berth0", "ipam": {"type": "host-local"}},
                     {"type": "portmap", "capabilities": {"portMappings": true}}]}
        """

    @Test func parsesAList() throws {
        let list = try NetworkConfigList(parsing: bytes(Self.list))
        #expect(list.name == "berth" && list.cniVersion == "1.0.0")
        #expect(list.disableCheck && !list.disableGC)
        #expect(list.plugins.map(\.type) == ["bridge", "portmap"])
        #expect(list.plugins[1].capabilities == ["portMappings": true])
        #expect(list.bytes == bytes(Self.list))
    }

    @Test func negotiatesTheHighestSupportedVersion() throws {
        func version(_ fields: String) throws -> String {
            try NetworkConfigList(parsing: bytes(#"{"name": "n", \#(fields) "plugins": [{"type": "x"}]}"#)).cniVersion
        }
        #expect(try version(#""cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.1.0"],"#) == "1.1.0")
        #expect(try version(#""cniVersions": ["0.4.0", "1.0.0"],"#) == "1.0.0")
        // Versions this library does not know are passed over.
        #expect(try version(#""cniVersion": "1.0.0", "cniVersions": ["1.0.0", "2.0.0"],"#) == "1.0.0")
        #expect(try version(#""cniVersion": "1.1.0", "cniVersions": ["0.3.1"],"#) == "1.1.0")
        #expect(try version("") == "0.1.0")
        // Nothing usable: the written version stays, and running it will fail as incompatible.
        #expect(try version(#""cniVersion": "3.0.0","#) == "3.0.0")
    }

    @Test func acceptsStringBooleansAsTheReferenceDoes() throws {
        let list = try NetworkConfigList(
            parsing: bytes(#"{"name": "n", "disableCheck": "True", "disableGC": "true", "plugins": [{"type": "x"}]}"#))
        #expect(list.disableCheck && list.disableGC)
    }

    @Test func errorsNameTheField() {
        for (text, path) in [
            (#"{"plugins": [{"type": "x"}]}"#, "name"),
            (#"{"name": 5, "plugins": [{"type": "x"}]}"#, "name"),
            (#"{"name": "-bad", "plugins": [{"type": "x"}]}"#, "name"),
            (#"{"name": "n"}"#, "plugins"),
            (#"{"name": "n", "plugins": []}"#, "plugins"),
            (#"{"name": "n", "plugins": {"type": "x"}}"#, "plugins"),
            (#"{"name": "n", "plugins": ["x"]}"#, "plugins[0]"),
            (#"{"name": "n", "plugins": [{"type": "x"}, {"bridge": "b"}]}"#, "plugins[1].type"),
            (#"{"name": "n", "plugins": [{"type": "../x"}]}"#, "plugins[0].type"),
            (#"{"name": "n", "plugins": [{"type": "x", "ipam": {"type": 1}}]}"#, "plugins[0].ipam.type"),
            (#"{"name": "n", "cniVersion": 1, "plugins": [{"type": "x"}]}"#, "cniVersion"),
            (#"{"name": "n", "cniVersions": "1.0.0", "plugins": [{"type": "x"}]}"#, "cniVersions"),
            (#"{"name": "n", "cniVersions": ["1.0"], "plugins": [{"type": "x"}]}"#, "cniVersions[0]"),
            (#"{"name": "n", "disableCheck": "maybe", "plugins": [{"type": "x"}]}"#, "disableCheck"),
            (#"{"name": "n", "disableGC": 1, "plugins": [{"type": "x"}]}"#, "disableGC"),
        ] {
            #expect(fieldErrorPath { _ = try NetworkConfigList(parsing: bytes(text)) } == path, "\(text)")
        }
        #expect(throws: JSONSyntaxError.self) { try NetworkConfigList(parsing: bytes("{")) }
    }

    @Test func singleConfigBecomesAListOfOne() throws {
        let list = try NetworkConfigList(single: bytes(#"{"cniVersion": "0.4.0", "name": "old", "type": "bridge", "bridge": "b0"}"#))
        #expect(list.name == "old" && list.cniVersion == "0.4.0")
        #expect(list.plugins.count == 1 && list.plugins[0].type == "bridge")
        #expect(list.plugins[0].raw["name"] == nil)
        #expect(try list.plugins[0].fields.string("bridge") == "b0")
    }

    @Test func loadsByNameFromADirectory() throws {
        let dir = try TemporaryDirectory()
        try dir.write("10-a.conflist", #"{"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "bridge"}]}"#)
        try dir.write("20-b.conf", #"{"cniVersion": "1.0.0", "name": "b", "type": "macvlan"}"#)
        try dir.write("30-a.conf", #"{"cniVersion": "1.0.0", "name": "a", "type": "ignored"}"#)
        try dir.write("notes.txt", "not a configuration")
        #expect(try NetworkConfigList.load(named: "a", in: dir.path).plugins[0].type == "bridge")
        #expect(try NetworkConfigList.load(named: "b", in: dir.path).plugins[0].type == "macvlan")
        #expect(throws: CNIError.self) { try NetworkConfigList.load(named: "c", in: dir.path) }
        try dir.write("05-broken.conflist", #"{"name": "x"}"#)
        do {
            _ = try NetworkConfigList.load(named: "a", in: dir.path)
            Issue.record("a broken file must be reported")
        } catch let error as CNIError {
            #expect(error.code == .invalidNetworkConfig)
            #expect(error.msg.contains("05-broken.conflist") && error.msg.contains("plugins"))
        }
    }
}

@Suite struct CNIArgsTests {
    @Test func parsesPairs() throws {
        let args = try CNIArgs(parsing: "IP=10.1.0.9;MAC=0a:58:0a:01:00:09;K8S_POD_NAME=web;IgnoreUnknown=1")
        #expect(args.pairs.count == 4)
        #expect(args["K8S_POD_NAME"] == "web" && args["k8s_pod_name"] == nil)
        #expect(try args.ipAddress("IP") == IPAddressLiteral("10.1.0.9"))
        #expect(try args.macAddress("MAC")?.description == "0a:58:0a:01:00:09")
        #expect(try args.ignoreUnknown())
        #expect(args.text == "IP=10.1.0.9;MAC=0a:58:0a:01:00:09;K8S_POD_NAME=web;IgnoreUnknown=1")
        #expect(try CNIArgs(parsing: "").pairs.isEmpty)
        #expect(try CNIArgs(parsing: "A=;B=2")["A"] == "")
        #expect(try CNIArgs(parsing: "A=1;A=2")["A"] == "2")
        #expect(try CNIArgs(parsing: "IP=10.1.0.9,fd00::9").ipAddresses("IP") == [IPAddressLiteral("10.1.0.9"), IPAddressLiteral("fd00::9")])
    }

    @Test func invalidPairsAreErrors() {
        for text in ["FOO", "A=1;", ";A=1", "A=1=2", "A=1;;B=2"] {
            #expect(throws: CNIError.self, "\(text)") { try CNIArgs(parsing: text) }
        }
        do {
            _ = try CNIArgs(parsing: "FOO")
        } catch {
            #expect(error.code == .invalidEnvironmentVariables)
            #expect(error.msg == "CNI_ARGS: invalid pair \"FOO\"")
        }
    }

    @Test func unknownKeysAreRefusedUnlessIgnoreUnknown() throws {
        let args = try CNIArgs(parsing: "IP=10.1.0.9;FOO=bar")
        do {
            try args.checkKnown(["IP"])
            Issue.record("FOO is unknown")
        } catch {
            #expect(error.code == .invalidEnvironmentVariables)
            #expect(error.msg == #"CNI_ARGS: unknown args ["FOO=bar"]"#)
        }
        try CNIArgs(parsing: "IP=10.1.0.9;FOO=bar;IgnoreUnknown=true").checkKnown(["IP"])
        try CNIArgs(parsing: "FOO=bar;IgnoreUnknown=TRUE").checkKnown([])
        #expect(throws: CNIError.self) { try CNIArgs(parsing: "FOO=bar;IgnoreUnknown=0").checkKnown([]) }
        #expect(throws: CNIError.self) { try CNIArgs(parsing: "FOO=bar;IgnoreUnknown=yes").checkKnown([]) }
        try CNIArgs(parsing: "IgnoreUnknown=1").checkKnown([])
    }

    @Test func typedValuesAreChecked() throws {
        let args = try CNIArgs(parsing: "IP=1.2.3;MAC=zz;B=maybe;IPS=10.0.0.1,x")
        #expect(throws: CNIError.self) { try args.ipAddress("IP") }
        #expect(throws: CNIError.self) { try args.macAddress("MAC") }
        #expect(throws: CNIError.self) { try args.bool("B") }
        #expect(throws: CNIError.self) { try args.ipAddresses("IPS") }
        #expect(try args.ipAddress("NONE") == nil)
        do {
            _ = try args.ipAddress("IP")
        } catch {
            #expect(error.msg.hasPrefix("CNI_ARGS: error parsing value of pair \"IP=1.2.3\""))
        }
    }
}

@Suite struct CNINameTests {
    @Test func containerIDs() {
        for good in ["a", "0", "abc-DEF_1.2", String(repeating: "f", count: 64)] {
            #expect(throws: Never.self) { try CNINames.validateContainerID(good) }
        }
        for bad in ["-a", "_a", ".a", "a/b", "a b", "a:b", "é"] {
            #expect(throws: CNIError(.invalidEnvironmentVariables, "invalid characters in containerID", details: bad)) {
                try CNINames.validateContainerID(bad)
            }
        }
        #expect(throws: CNIError(.unknownContainer, "missing containerID")) { try CNINames.validateContainerID("") }
    }

    @Test func interfaceNames() {
        for good in ["eth0", "a", "123456789012345", "net-1.2_x"] {
            #expect(throws: Never.self) { try CNINames.validateInterfaceName(good) }
        }
        for bad in ["", "1234567890123456", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\u{00A0}b"] {
            #expect(throws: CNIError.self, "\(bad)") { try CNINames.validateInterfaceName(bad) }
        }
    }

    @Test func networkNames() {
        #expect(throws: Never.self) { try CNINames.validateNetworkName("podman-1.net_x") }
        #expect(throws: CNIError(.invalidNetworkConfig, "invalid characters found in network name", details: "n!")) {
            try CNINames.validateNetworkName("n!")
        }
        #expect(throws: CNIError(.invalidNetworkConfig, "missing network name")) { try CNINames.validateNetworkName("") }
    }
}

@Suite struct CNIErrorTests {
    @Test func printsTheErrorObject() throws {
        let error = CNIError(.invalidNetworkConfig, "Invalid Configuration", details: "Network 192.168.0.0/31 too small to allocate from.")
        #expect(
            string(error.json(cniVersion: "1.0.0").prettyBytes)
                == """
                {
                    "cniVersion": "1.0.0",
                    "code": 7,
                    "msg": "Invalid Configuration",
                    "details": "Network 192.168.0.0/31 too small to allocate from."
                }
                """)
        #expect(CNIError(.ioFailure, "x").json(cniVersion: nil) == (try parse(#"{"code": 5, "msg": "x"}"#)))
        #expect(CNIError(parsing: error.json(cniVersion: "1.0.0").compactBytes) == error)
        #expect(CNIError(parsing: bytes(#"{"code": 107, "msg": "no"}"#)) == CNIError(107, "no"))
        #expect(CNIError(parsing: bytes("not json")) == nil)
        #expect(CNIError(parsing: bytes(#"{"msg": "no code"}"#)) == nil)
        #expect(error.description == "Invalid Configuration; Network 192.168.0.0/31 too small to allocate from.")
    }

    @Test func mapsOtherErrors() throws {
        struct Odd: Error {}
        let syntax = try #require(throws: JSONSyntaxError.self) { try JSON.parse("{") }
        #expect(CNIError(mapping: syntax).code == .decodingFailure)
        let field = JSONFieldError(path: "ipam.subnet", problem: "is required")
        #expect(CNIError(mapping: field) == CNIError(.invalidNetworkConfig, "invalid network configuration: ipam.subnet: is required"))
        #expect(CNIError(mapping: CNIError(105, "mine")) == CNIError(105, "mine"))
        #expect(CNIError(mapping: Odd()).code == .internalError)

        let gone = SystemError("open", object: "/run/netns/c1", errno: 2)
        let addContext = ErrorContext(command: .add, netns: "/run/netns/c1")
        #expect(CNIError(mapping: gone, context: addContext).code == .unknownContainer)
        #expect(CNIError(mapping: gone, context: addContext).msg == "network namespace /run/netns/c1 does not exist")
        #expect(CNIError(mapping: gone, context: ErrorContext(command: .check, netns: "/run/netns/c1")).code == .unknownContainer)
        #expect(CNIError(mapping: gone, context: ErrorContext(command: .del, netns: "/run/netns/c1")).code == .internalError)
        let otherFile = SystemError("open", object: "/etc/x", errno: 2)
        #expect(CNIError(mapping: otherFile, context: addContext).code == .internalError)
        #expect(CNIError(mapping: otherFile, context: addContext).msg.contains("/etc/x"))
        #expect(CNIError(mapping: SystemError("read", errno: 5)).code == .ioFailure)
    }
}

import BerthSupport
import CNI
import JSON
import Testing

/// A plugin that hands ADD/DEL/CHECK to the IPAM plugin of its configuration, as bridge does.
private struct IPAMUser: CNIPlugin {
    func add(_ request: PluginRequest) throws -> CNIResult {
        var result = try request.delegateAdd(type: request.config.ipam?.type ?? "")
        result.interfaces = [CNIResult.Interface(name: request.ifName, sandbox: request.netns)]
        for i in result.ips.indices { result.ips[i].interface = 0 }
        return result
    }
    func del(_ request: PluginRequest) throws { try request.delegateDel(type: request.config.ipam?.type ?? "") }
    func check(_ request: PluginRequest) throws { try request.delegateCheck(type: request.config.ipam?.type ?? "") }
}

private func ipamConfig(_ type: String, _ extra: String = "") -> String {
    #"{"cniVersion": "1.0.0", "name": "net1", "type": "user", "ipam": {"type": "\#(type)"\#(extra)}}"#
}

@Suite struct DelegationTests {
    @Test func delegateGetsTheSameEnvironmentAndConfiguration() throws {
        let dir = try TemporaryDirectory()
        // An IPAM plugin that prints a result without cniVersion: it is the configuration's.
        try TemporaryDirectory.writePlugin(
            in: dir.path, name: "ipam",
            body: #"ADD) echo "allocating" >&2; printf '%s' '{"ips":[{"address":"10.1.0.7/24","gateway":"10.1.0.1"}],"dns":{}}' ;;"#)
        var env = cniEnvironment("ADD", path: "/nonexistent:\(dir.path)", args: "IgnoreUnknown=1")
        env["LOGDIR"] = dir.path
        env["PATH"] = "/usr/bin:/bin"
        let config = ipamConfig("ipam")
        let out = PluginMain.run(IPAMUser(), environment: env, stdin: bytes(config))
        #expect(out.exitCode == 0, "\(string(out.stdout))")
        #expect(
            try JSON.parse(out.stdout)
                == parse(
                    """
                    {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/c1"}],
                     "ips": [{"interface": 0, "address": "10.1.0.7/24", "gateway": "10.1.0.1"}], "dns": {}}
                    """))
        #expect(try dir.read("ipam-ADD-ctr1.json") == config)
        let delegateEnv = try dir.read("ipam-ADD-ctr1.env")
        for line in ["CNI_COMMAND=ADD", "CNI_CONTAINERID=ctr1", "CNI_NETNS=/run/netns/c1", "CNI_IFNAME=eth0", "CNI_ARGS=IgnoreUnknown=1", "CNI_PATH=/nonexistent:\(dir.path)"] {
            #expect(delegateEnv.contains(line + "\n"), "\(line)")
        }
        // The delegate's stderr reaches the plugin's.
        #expect(string(out.stderr) == "allocating\n")

        var delEnv = env
        delEnv["CNI_COMMAND"] = "DEL"
        #expect(PluginMain.run(IPAMUser(), environment: delEnv, stdin: bytes(config)).exitCode == 0)
        #expect(try dir.read("calls") == "ADD ipam ctr1 eth0\nDEL ipam ctr1 eth0\n")
    }

    @Test func delegateErrorsKeepTheirCodeAndMessage() throws {
        let dir = try TemporaryDirectory()
        try TemporaryDirectory.writePlugin(
            in: dir.path, name: "ipam",
            body: #"ADD) printf '%s' '{"code":107,"msg":"pool exhausted","details":"10.1.0.0/30"}'; exit 1 ;;"#)
        var env = cniEnvironment("ADD", path: dir.path)
        env["LOGDIR"] = dir.path
        let out = PluginMain.run(IPAMUser(), environment: env, stdin: bytes(ipamConfig("ipam")))
        let error = try PrintedError(out.stdout)
        #expect(out.exitCode == 1)
        #expect(error.code == 107 && error.msg == "pool exhausted" && error.details == "10.1.0.0/30")
    }

    @Test func missingDelegateNamesTypeAndDirectories() throws {
        let out = PluginMain.run(IPAMUser(), environment: cniEnvironment("ADD", path: "/a:/b"), stdin: bytes(ipamConfig("dhcp")))
        let error = try PrintedError(out.stdout)
        #expect(error.code == 999 && error.msg == #"failed to find plugin "dhcp" in path ["/a" "/b"]"#)
        let noType = try PrintedError(PluginMain.run(IPAMUser(), environment: cniEnvironment("ADD"), stdin: bytes(ipamConfig(""))).stdout)
        #expect(noType.code == 7 && noType.msg == "no plugin name provided")
        let path = try PrintedError(PluginMain.run(IPAMUser(), environment: cniEnvironment("ADD"), stdin: bytes(ipamConfig("../x"))).stdout)
        #expect(path.code == 7 && path.msg == "invalid plugin name: ../x")
    }

    @Test func resultThatIsNotJSONIsADecodingError() throws {
        let dir = try TemporaryDirectory()
        try TemporaryDirectory.writePlugin(in: dir.path, name: "ipam", body: "ADD) echo 'not json' ;;")
        var env = cniEnvironment("ADD", path: dir.path)
        env["LOGDIR"] = dir.path
        let error = try PrintedError(PluginMain.run(IPAMUser(), environment: env, stdin: bytes(ipamConfig("ipam"))).stdout)
        #expect(error.code == 6 && error.msg.hasPrefix("invalid result from plugin ipam"))
    }

    /// The reference host-local as the delegate: it allocates in a data directory of ours.
    @Test(.enabled(if: Files.exists("/usr/lib/cni/host-local")))
    func delegatesToTheReferenceHostLocal() throws {
        let dir = try TemporaryDirectory()
        let config = ipamConfig("host-local", #", "subnet": "10.9.0.0/24", "dataDir": "\#(dir.path)""#)
        let env = cniEnvironment("ADD", path: "/usr/lib/cni")
        let out = PluginMain.run(IPAMUser(), environment: env, stdin: bytes(config))
        #expect(out.exitCode == 0, "\(string(out.stdout))")
        let result = try CNIResult(parsing: out.stdout)
        #expect(result.ips.map(\.address.description) == ["10.9.0.2/24"])
        #expect(result.ips.first?.gateway?.description == "10.9.0.1")
        #expect(try Files.readText(dir.file("net1/10.9.0.2")).hasPrefix("ctr1"))

        var check = env
        check["CNI_COMMAND"] = "CHECK"
        let checkOut = PluginMain.run(
            IPAMUser(), environment: check,
            stdin: bytes(ipamConfig("host-local", #", "subnet": "10.9.0.0/24", "dataDir": "\#(dir.path)""#)))
        #expect(checkOut.exitCode == 0, "\(string(checkOut.stdout))")

        var del = env
        del["CNI_COMMAND"] = "DEL"
        #expect(PluginMain.run(IPAMUser(), environment: del, stdin: bytes(config)).exitCode == 0)
        #expect(!Files.exists(dir.file("net1/10.9.0.2")))

        // Its errors come back as it printed them.
        let bad = ipamConfig("host-local", #", "dataDir": "\#(dir.path)""#)
        let error = try PrintedError(PluginMain.run(IPAMUser(), environment: env, stdin: bytes(bad)).stdout)
        #expect(error.code != 0 && !error.msg.isEmpty)
    }
}

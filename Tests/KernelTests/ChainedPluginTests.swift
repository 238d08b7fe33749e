import Addressing
import BerthSupport
import CNI
import Glibc
import JSON
import Namespaces
import TestSupport
import Testing

/// Configuration lists as podman's CNI backend writes them (bridge + host-local, firewall,
/// tuning), run through `berth cni` (berth's CNI runtime) exactly as a runtime runs them.
@Suite struct ChainedPluginTests {
    let world = try! BridgeWorld()
    let configs: ConfigLists

    init() throws { configs = try ConfigLists(world) }

    func conflist(_ name: String, plugins: String, version: String = "0.4.0") throws {
        try configs.write(name, plugins: plugins, version: version)
    }

    func berth(_ arguments: [String]) throws -> PluginOutcome { try configs.berth(arguments) }

    var bridgePlugin: String {
        #"{"type": "bridge", "bridge": "cni-podman9", "isGateway": true, "ipMasq": true, "hairpinMode": true, "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": "10.89.9.0/24", "gateway": "10.89.9.1"}]], "dataDir": "\#(world.data.path)"}}"#
    }

    @Test func podmanStyleListAddCheckDel() throws {
        try conflist("podman9", plugins: bridgePlugin + #", {"type": "firewall", "backend": ""}, {"type": "tuning"}"#)
        let c1 = try NetworkNamespace.createAnonymous()
        let add = try berth(["add", "podman9", c1.path, "--container-id", "ctr1"])
        #expect(add.status == 0, "\(add)")
        let result = try CNIResult(parsing: try #require(add.json))
        #expect(result.ips.first?.address.description == "10.89.9.2/24")
        #expect(try world.ping(from: c1, "10.89.9.1"))
        let allowed = try Subprocess.run("/usr/sbin/nft", arguments: ["list", "set", "inet", "berth", "allow_v4"], environment: [:], netnsFD: world.host.fd)
        #expect(String(decoding: allowed.stdout, as: UTF8.self).contains("10.89.9.2"))

        let check = try berth(["check", "podman9", c1.path, "--container-id", "ctr1"])
        #expect(check.status == 0, "\(check)")
        let del = try berth(["del", "podman9", c1.path, "--container-id", "ctr1"])
        #expect(del.status == 0, "\(del)")
        let after = try Subprocess.run("/usr/sbin/nft", arguments: ["list", "set", "inet", "berth", "allow_v4"], environment: [:], netnsFD: world.host.fd)
        #expect(!String(decoding: after.stdout, as: UTF8.self).contains("10.89.9.2"))
        #expect(try world.allocations(network: "podman9").isEmpty)
        #expect(try world.hostLinks() == ["cni-podman9"])
    }

    @Test func firewallNeedsPrevResultAndKnownValues() throws {
        let c1 = try NetworkNamespace.createAnonymous()
        for (config, code) in [
            (#"{"cniVersion": "1.0.0", "name": "fw", "type": "firewall"}"#, Int64(7)),
            (#"{"cniVersion": "1.0.0", "name": "fw", "type": "firewall", "backend": "pf", "prevResult": {"cniVersion": "1.0.0"}}"#, 7),
            (#"{"cniVersion": "1.0.0", "name": "fw", "type": "firewall", "ingressPolicy": "closed", "prevResult": {"cniVersion": "1.0.0"}}"#, 7),
        ] {
            let out = try run(Built.path("firewall"), PluginCall(command: "ADD", netns: c1.path, config: config), in: world.host)
            #expect(out.errorCode == code, "\(out)")
        }
    }

    @Test func sameBridgeIngressPolicyIsolatesABridgeThatIsNotIsolated() throws {
        let open = { (name: String, bridge: String, subnet: String) in
            #"{"type": "bridge", "bridge": "\#(bridge)", "isGateway": true, "isDefaultGateway": true, "isolate": false, "ipam": {"type": "host-local", "subnet": "\#(subnet)", "dataDir": "\#(world.data.path)"}}"#
        }
        try conflist("left", plugins: open("left", "br-left", "10.90.1.0/24") + #", {"type": "firewall", "ingressPolicy": "same-bridge"}"#, version: "1.0.0")
        try conflist("right", plugins: open("right", "br-right", "10.90.2.0/24") + #", {"type": "firewall", "ingressPolicy": "same-bridge"}"#, version: "1.0.0")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        #expect(try berth(["add", "left", c1.path, "--container-id", "c1"]).status == 0)
        #expect(try berth(["add", "right", c2.path, "--container-id", "c2"]).status == 0)
        #expect(try !world.ping(from: c1, "10.90.2.2"))
        #expect(try world.ping(from: c1, "10.90.1.1"))
    }

    @Test func tuningSetsAndRestores() throws {
        let tuning = #"{"type": "tuning", "sysctl": {"net.core.somaxconn": "512", "net/ipv4/conf/eth0/rp_filter": "2"}, "mtu": 1300, "promisc": true, "mac": "0a:00:00:00:00:07", "dataDir": "\#(configs.directory.file("tuning"))"}"#
        try conflist("tuned", plugins: bridgePlugin + ", " + tuning, version: "1.0.0")
        let c1 = try NetworkNamespace.createAnonymous()
        let add = try berth(["add", "tuned", c1.path, "--container-id", "t1"])
        #expect(add.status == 0, "\(add)")
        #expect(try c1.readSysctl("net/core/somaxconn") == "512")
        #expect(try c1.readSysctl("net/ipv4/conf/eth0/rp_filter") == "2")
        let link = try ipObject(c1, "link", "show", "dev", "eth0")
        #expect(link["mtu"]?.intValue == 1300)
        #expect(link["address"]?.stringValue == "0a:00:00:00:00:07")
        #expect(link["flags"]?.arrayValue?.contains(.string("PROMISC")) == true)
        // The result reports the MAC tuning set.
        let result = try CNIResult(parsing: try #require(add.json))
        #expect(result.interfaces.first { $0.name == "eth0" }?.mac == "0a:00:00:00:00:07")
        #expect(try berth(["check", "tuned", c1.path, "--container-id", "t1"]).status == 0)
        #expect(try berth(["del", "tuned", c1.path, "--container-id", "t1"]).status == 0)
    }

    @Test func tuningRefusesSettingsOutsideTheNetworkNamespace() throws {
        let c1 = try NetworkNamespace.createAnonymous()
        for key in ["kernel.panic", "net..x", "net/../kernel/panic"] {
            let config = #"{"cniVersion": "1.0.0", "name": "t", "type": "tuning", "sysctl": {"\#(key)": "1"}}"#
            let out = try run(Built.path("tuning"), PluginCall(command: "ADD", netns: c1.path, config: config), in: world.host)
            #expect(out.errorCode == 7, "\(key): \(out)")
        }
    }
}

import Addressing
import BerthSupport
import CNI
import Glibc
import JSON
import Namespaces
import TestSupport
import Testing

/// The bridge plugin with host-local, run as built executables in namespaces the tests make,
/// observed with `ip -j` and real traffic (busybox ping, TCP connections).
@Suite struct BridgeTests {
    @Test func twoContainersOnOneBridgeTalkAndLeaveNothingBehind() throws {
        let world = try BridgeWorld()
        let config = world.config()
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let (r1, text1) = try world.add(config, container: c1, id: "c1")
        let (r2, text2) = try world.add(config, container: c2, id: "c2")

        // The result: bridge, host veth, container interface (with sandbox); address with index 2.
        #expect(r1.interfaces.map(\.name).first == "br-test")
        #expect(r1.interfaces.count == 3 && r1.interfaces[2].name == "eth0" && r1.interfaces[2].sandbox == c1.path)
        #expect(r1.ips.first?.address.description == "10.50.0.2/24" && r1.ips.first?.interface == 2)
        #expect(r1.ips.first?.gateway?.description == "10.50.0.1")
        #expect(try ipAddresses(world.host, "br-test").contains("10.50.0.1/24"))
        #expect(try ipAddresses(c1, "eth0").contains("10.50.0.2/24"))
        let eth0 = try ipObject(c1, "link", "show", "dev", "eth0")
        #expect(eth0["address"]?.stringValue == r1.interfaces[2].mac)
        let hostVeth = try ipObject(world.host, "-d", "link", "show", "dev", r1.interfaces[1].name)
        #expect(hostVeth["master"]?.stringValue == "br-test")
        #expect(hostVeth["ifalias"]?.stringValue == "berth testnet c1 eth0")
        #expect(try world.ping(from: c1, r2.ips[0].address.address.description))
        #expect(try world.ping(from: c2, "10.50.0.1"))
        #expect(try world.host.readSysctl("net/ipv4/ip_forward") == "1")

        for (container, id, text) in [(c1, "c1", text1), (c2, "c2", text2)] {
            let check = try world.call("CHECK", world.with(prevResult: text, config), container: container, id: id)
            #expect(check.status == 0, "\(check)")
        }
        for (container, id, text) in [(c1, "c1", text1), (c2, "c2", text2)] {
            for _ in 0..<2 {
                let del = try world.call("DEL", world.with(prevResult: text, config), container: container, id: id)
                #expect(del.status == 0, "\(del)")
            }
        }
        #expect(try world.hostLinks() == ["br-test"])
        #expect(try world.allocations().isEmpty)
        #expect(try ipJSON(c1, "link", "show").count == 1)  // lo only
    }

    @Test func checkFailsWhenTheContainerAddressIsGone() throws {
        let world = try BridgeWorld()
        let config = world.config()
        let c1 = try NetworkNamespace.createAnonymous()
        let (_, text) = try world.add(config, container: c1, id: "c1")
        _ = try world.exec(c1, ["/usr/sbin/ip", "addr", "flush", "dev", "eth0"])
        let check = try world.call("CHECK", world.with(prevResult: text, config), container: c1, id: "c1")
        #expect(check.status != 0)
        #expect(check.json?["msg"]?.stringValue?.contains("10.50.0.2/24") == true, "\(check)")
    }

    @Test func outboundTrafficIsMasqueradedBehindTheHostAddress() throws {
        let world = try BridgeWorld()
        let outside = try OutsideNetwork(host: world.host)
        let c1 = try NetworkNamespace.createAnonymous()
        _ = try world.add(world.config(extra: #", "isDefaultGateway": true"#), container: c1, id: "c1")
        let seen = try outside.peerAddress(port: 8080) { try connectTCP(from: c1, to: "192.0.2.2", port: 8080) }
        #expect(seen == "192.0.2.1")
    }

    @Test func withoutIPMasqTheContainerAddressIsSeen() throws {
        let world = try BridgeWorld()
        let outside = try OutsideNetwork(host: world.host)
        _ = try world.exec(outside.namespace, ["/usr/sbin/ip", "route", "add", "10.50.0.0/24", "via", "192.0.2.1"])
        let c1 = try NetworkNamespace.createAnonymous()
        let config = world.config(extra: #", "isDefaultGateway": true"#).replacingOccurrences(#""ipMasq": true"#, #""ipMasq": false"#)
        _ = try world.add(config, container: c1, id: "c1")
        let seen = try outside.peerAddress(port: 8081) { try connectTCP(from: c1, to: "192.0.2.2", port: 8081) }
        #expect(seen == "10.50.0.2")
    }

    @Test func bridgesAreIsolatedUnlessConfiguredOtherwise() throws {
        let world = try BridgeWorld()
        let a = world.config(name: "net-a", bridge: "br-a", extra: #", "isDefaultGateway": true"#, subnet: "10.62.0.0/24")
        let b = world.config(name: "net-b", bridge: "br-b", extra: #", "isDefaultGateway": true"#, subnet: "10.63.0.0/24")
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let c3 = try NetworkNamespace.createAnonymous()
        _ = try world.add(a, container: c1, id: "c1")
        _ = try world.add(a, container: c3, id: "c3")
        _ = try world.add(b, container: c2, id: "c2")
        #expect(try world.ping(from: c1, "10.62.0.3"))  // same bridge
        #expect(try !world.ping(from: c1, "10.63.0.2"))  // other bridge: dropped
        #expect(try !world.ping(from: c2, "10.62.0.2"))
        #expect(try world.ping(from: c1, "10.63.0.1"))  // the host itself is reachable

        // The reference plugins' behaviour: a network with isolate false routes to others.
        let open = world.config(name: "net-c", bridge: "br-c", extra: #", "isDefaultGateway": true, "isolate": false"#, subnet: "10.64.0.0/24")
        let c4 = try NetworkNamespace.createAnonymous()
        _ = try world.add(open, container: c4, id: "c4")
        #expect(try world.ping(from: c4, "10.62.0.2"))
    }

    @Test func masqueradeEntriesFollowTheAttachment() throws {
        let world = try BridgeWorld()
        let config = world.config()
        let c1 = try NetworkNamespace.createAnonymous()
        let (_, text) = try world.add(config, container: c1, id: "c1")
        let elements = { (set: String) throws -> [String] in
            let out = try Subprocess.run("/usr/sbin/nft", arguments: ["-j", "list", "set", "inet", "berth", set], environment: [:], netnsFD: world.host.fd)
            let sets = try JSON.parse(out.stdout)["nftables"]?.arrayValue ?? []
            return sets.compactMap { $0["set"]?["elem"]?.arrayValue }.flatMap { $0 }.map { $0.compactString }
        }
        #expect(try elements("masq_v4").contains { $0.contains("10.50.0.2") })
        #expect(try elements("own_v4").contains { $0.contains("10.50.0.2") && $0.contains("br-test") })
        #expect(try elements("bridges").contains { $0.contains("br-test") })
        // CHECK notices a missing element.
        _ = try Subprocess.run("/usr/sbin/nft", arguments: ["delete", "element", "inet", "berth", "masq_v4", "{ 10.50.0.2 }"], environment: [:], netnsFD: world.host.fd)
        let check = try world.call("CHECK", world.with(prevResult: text, config), container: c1, id: "c1")
        #expect(check.status != 0)
        #expect(check.json?["msg"]?.stringValue?.contains("masq_v4") == true, "\(check)")
        #expect(try world.call("DEL", config, container: c1, id: "c1").status == 0)
        #expect(try elements("own_v4").isEmpty)
    }

    @Test func dualStack() throws {
        let world = try BridgeWorld()
        let ipam = #"{"type": "host-local", "dataDir": "\#(world.data.path)", "ranges": [[{"subnet": "10.51.0.0/24"}], [{"subnet": "fd51::/64"}]]}"#
        let config = world.config(extra: #", "isDefaultGateway": true"#, ipam: ipam)
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let (r1, _) = try world.add(config, container: c1, id: "c1")
        _ = try world.add(config, container: c2, id: "c2")
        #expect(r1.ips.map(\.address.description) == ["10.51.0.2/24", "fd51::2/64"])
        #expect(Set(r1.routes.map(\.destination.description)) == ["0.0.0.0/0", "::/0"])
        #expect(try ipAddresses(world.host, "br-test").isSuperset(of: ["10.51.0.1/24", "fd51::1/64"]))
        #expect(try world.ping(from: c1, "fd51::3"))
        #expect(try world.ping(from: c1, "fd51::1"))
        let routes = try ipJSON(c1, "-6", "route", "show", "default")
        #expect(routes.first?["gateway"]?.stringValue == "fd51::1")
        #expect(try world.host.readSysctl("net/ipv6/conf/all/forwarding") == "1")
    }

    @Test func referenceConfigurationKeys() throws {
        let world = try BridgeWorld()
        let config = world.config(extra: #", "mtu": 1400, "hairpinMode": true, "isDefaultGateway": true, "runtimeConfig": {"mac": "0a:58:0a:32:00:99"}"#)
        let c1 = try NetworkNamespace.createAnonymous()
        let (result, _) = try world.add(config, container: c1, id: "c1")
        let eth0 = try ipObject(c1, "link", "show", "dev", "eth0")
        #expect(eth0["mtu"]?.intValue == 1400)
        #expect(eth0["address"]?.stringValue == "0a:58:0a:32:00:99")
        let veth = try ipObject(world.host, "-d", "link", "show", "dev", result.interfaces[1].name)
        #expect(veth["linkinfo"]?["info_slave_data"]?["hairpin"] == .bool(true))
        #expect(try ipJSON(c1, "route", "show", "default").first?["gateway"]?.stringValue == "10.50.0.1")

        // MAC from CNI_ARGS (podman's way), static IP too.
        let c2 = try NetworkNamespace.createAnonymous()
        let (r2, _) = try world.add(world.config(), container: c2, id: "c2", args: "IgnoreUnknown=1;MAC=0a:58:0a:32:00:42;IP=10.50.0.42")
        #expect(r2.interfaces[2].mac == "0a:58:0a:32:00:42")
        #expect(r2.ips.first?.address.description == "10.50.0.42/24")

        // promiscMode on the bridge; isGateway false leaves the bridge without an address.
        let world2 = try BridgeWorld()
        let plain = world2.config(bridge: "br-plain", extra: #", "promiscMode": true"#).replacingOccurrences(#""isGateway": true"#, #""isGateway": false"#)
        let c3 = try NetworkNamespace.createAnonymous()
        _ = try world2.add(plain, container: c3, id: "c3")
        let bridge = try ipObject(world2.host, "-d", "addr", "show", "dev", "br-plain")
        #expect((bridge["addr_info"]?.arrayValue ?? []).allSatisfy { $0["family"]?.stringValue != "inet" })
        #expect(try ipObject(world2.host, "-d", "link", "show", "dev", "br-plain")["promiscuity"]?.intValue ?? 0 > 0)
    }

    @Test func macSpoofCheckDropsFramesFromAnotherMAC() throws {
        let world = try BridgeWorld()
        let config = world.config(version: "1.1.0", extra: #", "macspoofchk": true"#)
        let c1 = try NetworkNamespace.createAnonymous()
        let (result, text) = try world.add(config, container: c1, id: "c1")
        #expect(try world.ping(from: c1, "10.50.0.1"))
        let own = try #require(result.interfaces[2].mac)
        _ = try world.exec(c1, ["/usr/sbin/ip", "neigh", "flush", "all"])
        _ = try world.exec(c1, ["/usr/sbin/ip", "link", "set", "eth0", "address", "0a:00:00:00:00:66"])
        #expect(try !world.ping(from: c1, "10.50.0.1"))
        _ = try world.exec(c1, ["/usr/sbin/ip", "link", "set", "eth0", "address", own])
        #expect(try world.ping(from: c1, "10.50.0.1"))
        #expect(try world.call("CHECK", world.with(prevResult: text, config), container: c1, id: "c1").status == 0)
        #expect(try world.call("DEL", world.with(prevResult: text, config), container: c1, id: "c1").status == 0)
        let left = try Subprocess.run("/usr/sbin/nft", arguments: ["-j", "list", "set", "bridge", "berth", "macspoof_allowed"], environment: [:], netnsFD: world.host.fd)
        #expect(!String(decoding: left.stdout, as: UTF8.self).contains("elem"))

        // The control: without macspoofchk the same change of MAC keeps the container connected.
        let c2 = try NetworkNamespace.createAnonymous()
        _ = try world.add(world.config(), container: c2, id: "c2")
        _ = try world.exec(c2, ["/usr/sbin/ip", "link", "set", "eth0", "address", "0a:00:00:00:00:67"])
        #expect(try world.ping(from: c2, "10.50.0.1"))
    }

    @Test func forceAddressReplacesAnotherGatewayOnTheBridge() throws {
        let world = try BridgeWorld()
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        _ = try world.add(world.config(name: "net-a", subnet: "10.60.0.0/24"), container: c1, id: "c1")
        let refused = try world.call("ADD", world.config(name: "net-b", subnet: "10.61.0.0/24"), container: c2, id: "c2")
        #expect(refused.status != 0)
        #expect(refused.json?["msg"]?.stringValue?.contains("already has address 10.60.0.1/24") == true, "\(refused)")
        #expect(try world.allocations(network: "net-b").isEmpty)
        _ = try world.add(world.config(name: "net-b", extra: #", "forceAddress": true"#, subnet: "10.61.0.0/24"), container: c2, id: "c2")
        #expect(try ipAddresses(world.host, "br-test").contains("10.61.0.1/24"))
    }

    @Test func delWorksWhenTheNamespaceIsGoneOrNotGiven() throws {
        let world = try BridgeWorld()
        let config = world.config()
        var c1: NetworkNamespace? = try NetworkNamespace.createAnonymous()
        let path = c1!.path
        _ = try world.add(config, container: c1!, id: "c1")
        c1 = nil  // the namespace ends, and with it the veth pair
        let del = try world.call("DEL", config, container: nil, id: "c1", netns: path)
        #expect(del.status == 0, "\(del)")
        #expect(try world.allocations().isEmpty)

        let c2 = try NetworkNamespace.createAnonymous()
        _ = try world.add(config, container: c2, id: "c2")
        let empty = try world.call("DEL", config, container: nil, id: "c2", netns: "")
        #expect(empty.status == 0, "\(empty)")
        #expect(try world.allocations().isEmpty)
        #expect(try world.hostLinks() == ["br-test"])  // host veth removed by its derived name
    }

    // MARK: Bad input and failures leave nothing behind

    @Test func aBridgeNameThatIsAnotherKindOfLinkIsRefused() throws {
        let world = try BridgeWorld()
        _ = try world.exec(world.host, ["/usr/sbin/ip", "link", "add", "notabridge", "type", "veth", "peer", "name", "other"])
        let c1 = try NetworkNamespace.createAnonymous()
        let out = try world.call("ADD", world.config(bridge: "notabridge"), container: c1, id: "c1")
        #expect(out.errorCode == 7, "\(out)")
        #expect(out.json?["msg"]?.stringValue?.contains("not a bridge") == true)
        #expect(try world.allocations().isEmpty)
        #expect(try world.hostLinks() == ["notabridge", "other"])
    }

    @Test(arguments: [
        (#"{"type": "host-local", "subnet": "10.70.0.3/24"}"#, "host bits"),
        (#"{"type": "host-local", "subnet": "10.70.0.0/24", "rangeStart": "10.71.0.5"}"#, "rangeStart"),
        (#"{"type": "host-local", "ranges": [[{"subnet": "10.70.0.0/24"}], [{"subnet": "10.70.0.0/25"}]]}"#, "overlaps"),
        (#"{"type": "host-local", "subnet": "not-a-subnet"}"#, "CIDR"),
    ])
    func invalidIPAMConfigurationsAreCode7AndChangeNothing(_ ipam: String, _ words: String) throws {
        let world = try BridgeWorld()
        let withDir = ipam.replacingOccurrences(#"{"type": "host-local", "#, #"{"type": "host-local", "dataDir": "\#(world.data.path)", "#)
        let c1 = try NetworkNamespace.createAnonymous()
        let out = try world.call("ADD", world.config(ipam: withDir), container: c1, id: "c1")
        #expect(out.errorCode == 7, "\(out)")
        #expect(out.json?["msg"]?.stringValue?.contains(words) == true, "\(out)")
        #expect(try world.hostLinks().allSatisfy { $0 == "br-test" })  // no veth
        #expect(try ipJSON(c1, "link", "show").count == 1)
    }

    @Test(arguments: [
        (#", "mtu": 20"#, 7), (#", "vlan": 5000"#, 7), (#", "hairpinMode": true, "promiscMode": true"#, 7),
        (#", "mtu": "big""#, 7), (#", "vlanTrunk": [{"id": 5}]"#, 2),
    ])
    func invalidBridgeKeysAreRefused(_ extra: String, _ code: Int64) throws {
        let world = try BridgeWorld()
        let c1 = try NetworkNamespace.createAnonymous()
        let out = try world.call("ADD", world.config(extra: extra), container: c1, id: "c1")
        #expect(out.errorCode == code, "\(out)")
        #expect(try world.hostLinks().isEmpty)
        #expect(try world.allocations().isEmpty)
    }

    @Test func ipamExhaustedLeavesNoVeth() throws {
        let world = try BridgeWorld()
        let config = world.config(subnet: "10.72.0.0/30")  // one address
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        _ = try world.add(config, container: c1, id: "c1")
        let out = try world.call("ADD", config, container: c2, id: "c2")
        #expect(out.status != 0)
        #expect(out.json?["msg"]?.stringValue?.contains("no IP addresses available") == true, "\(out)")
        #expect(try world.hostLinks().count == 2)  // the bridge and c1's veth
        #expect(try ipJSON(c2, "link", "show").count == 1)
    }

    @Test func interfaceNameCollisionAllocatesNothing() throws {
        let world = try BridgeWorld()
        let c1 = try NetworkNamespace.createAnonymous()
        _ = try world.exec(c1, ["/usr/sbin/ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"])
        let out = try world.call("ADD", world.config(), container: c1, id: "c1")
        #expect(out.status != 0)
        #expect(out.json?["msg"]?.stringValue?.contains("already has an interface named eth0") == true, "\(out)")
        #expect(try world.allocations().isEmpty)
        #expect(try world.hostLinks().allSatisfy { $0 == "br-test" })
    }

    @Test func kernelRefusalMidwayIsUndone() throws {
        // The kernel refuses an all-zero MAC for the container end (after IPAM would run, the
        // veth creation is the failing step here): nothing may remain.
        let world = try BridgeWorld()
        let c1 = try NetworkNamespace.createAnonymous()
        let out = try world.call("ADD", world.config(extra: #", "runtimeConfig": {"mac": "00:00:00:00:00:00"}"#), container: c1, id: "c1")
        #expect(out.status != 0, "\(out)")
        #expect(try world.allocations().isEmpty)
        #expect(try world.hostLinks().allSatisfy { $0 == "br-test" })
        #expect(try ipJSON(c1, "link", "show").count == 1)
    }

    @Test func missingNamespaceIsCode3() throws {
        let world = try BridgeWorld()
        let out = try world.call("ADD", world.config(), container: nil, id: "c1", netns: "/run/netns/berth-test-nope")
        #expect(out.errorCode == 3, "\(out)")
        #expect(try world.allocations().isEmpty)
    }

    // MARK: Concurrency and crashes

    /// 32 ADDs at once on a network whose bridge does not exist yet.
    @Test func parallelAddsOnANewNetwork() throws {
        let world = try BridgeWorld()
        let config = world.config()
        let containers = try (0..<32).map { _ in try NetworkNamespace.createAnonymous() }
        let jobs = containers.enumerated().map { i, c in
            (world.executable, PluginCall(command: "ADD", containerID: "p\(i)", netns: c.path, config: config).environment, config)
        }
        let outcomes = try runConcurrently(jobs, in: world.host)
        #expect(outcomes.allSatisfy { $0.status == 0 }, "\(outcomes.filter { $0.status != 0 }.map(\.text))")
        let addresses = outcomes.compactMap { try? CNIResult(parsing: JSON.parse($0.stdout)).ips.first?.address.address }
        #expect(Set(addresses).count == 32)
        #expect(try world.hostLinks().count == 33)
        let delJobs = containers.enumerated().map { i, c in
            (world.executable, PluginCall(command: "DEL", containerID: "p\(i)", netns: c.path, config: config).environment, config)
        }
        #expect(try runConcurrently(delJobs, in: world.host).allSatisfy { $0.status == 0 })
        #expect(try world.hostLinks() == ["br-test"])
        #expect(try world.allocations().isEmpty)
    }

    /// ADDs killed at random points; DEL afterwards (as the runtime must) leaves nothing, and so
    /// does GC with no valid attachment.
    @Test func killedAddsAreCleanedUpByDelAndByGC() throws {
        let world = try BridgeWorld()
        let config = world.config(version: "1.1.0")
        var generator = SystemRandomNumberGenerator()
        var containers: [NetworkNamespace] = []
        for round in 0..<4 {
            var pids: [(Int32, String, NetworkNamespace)] = []
            for i in 0..<6 {
                let c = try NetworkNamespace.createAnonymous()
                containers.append(c)
                let id = "k\(round)x\(i)"
                let (pid, _) = try spawnPlugin(world.executable, PluginCall(command: "ADD", containerID: id, netns: c.path, config: config), dir: world.data.path, in: world.host)
                pids.append((pid, id, c))
            }
            usleep(UInt32.random(in: 1000...15000, using: &generator))
            for (pid, _, _) in pids { kill(pid, SIGKILL) }
            for (pid, id, c) in pids {
                _ = try Subprocess.wait(pid)
                if round % 2 == 0 {
                    let del = try world.call("DEL", config, container: c, id: id)
                    #expect(del.status == 0, "\(del)")
                }
            }
        }
        let gcConfig = String(config.dropLast()) + #", "cni.dev/valid-attachments": []}"#
        let gc = try world.call("GC", gcConfig, container: nil, id: "gc")
        #expect(gc.status == 0, "\(gc)")
        #expect(try world.hostLinks().allSatisfy { $0 == "br-test" })
        #expect(try world.allocations().isEmpty)
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        let parts = Array(utf8), needle = Array(target.utf8)
        var result: [UInt8] = [], i = 0
        while i < parts.count {
            if i + needle.count <= parts.count && Array(parts[i..<(i + needle.count)]) == needle {
                result += replacement.utf8
                i += needle.count
            } else {
                result.append(parts[i])
                i += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}

/// Configurations as the reference plugins' READMEs give them (plus a scratch dataDir).
@Suite struct ReferenceDocumentationConfigTests {
    @Test func bridgeReadmeExample() throws {
        let world = try BridgeWorld()
        let config = #"""
            {
                "cniVersion": "0.3.1",
                "name": "mynet",
                "type": "bridge",
                "bridge": "mynet0",
                "isDefaultGateway": true,
                "forceAddress": false,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.10.0.0/16",
                    "dataDir": "\#(world.data.path)"
                }
            }
            """#
        let c1 = try NetworkNamespace.createAnonymous(), c2 = try NetworkNamespace.createAnonymous()
        let (r1, text) = try world.add(config, container: c1, id: "c1")
        _ = try world.add(config, container: c2, id: "c2")
        #expect(r1.cniVersion == .v0_3_1)
        #expect(r1.ips.first?.address.description == "10.10.0.2/16")
        #expect(try world.ping(from: c1, "10.10.0.3"))
        #expect(try ipJSON(c1, "route", "show", "default").first?["gateway"]?.stringValue == "10.10.0.1")
        // 0.3.1 has no CHECK; DEL with prevResult as a 0.3.1 runtime sends it.
        #expect(try world.call("DEL", world.with(prevResult: text, config), container: c1, id: "c1").status == 0)
    }

    @Test func hostLocalReadmeExampleDualStack() throws {
        let world = try BridgeWorld()
        let config = #"""
            {
                "cniVersion": "0.3.1",
                "name": "dualnet",
                "type": "bridge",
                "bridge": "dual0",
                "isGateway": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [
                            {
                                "subnet": "10.1.2.0/24",
                                "rangeStart": "10.1.2.9",
                                "rangeEnd": "10.1.2.40"
                            },
                            {
                                "subnet": "10.1.4.0/24"
                            }
                        ],
                        [{
                            "subnet": "3ffe:ffff:0:01ff::/64",
                            "rangeStart": "3ffe:ffff:0:01ff::0010",
                            "rangeEnd": "3ffe:ffff:0:01ff::0020"
                        }]
                    ],
                    "routes": [
                        { "dst": "0.0.0.0/0" },
                        { "dst": "192.168.0.0/16", "gw": "10.1.2.1" },
                        { "dst": "3ffe:ffff:0:01ff::1/64" }
                    ],
                    "dataDir": "\#(world.data.path)"
                }
            }
            """#
        let c1 = try NetworkNamespace.createAnonymous()
        let (result, _) = try world.add(config, container: c1, id: "c1")
        #expect(result.ips.map(\.address.description) == ["10.1.2.9/24", "3ffe:ffff:0:1ff::10/64"])
        let routes = try ipJSON(c1, "route", "show")
        #expect(routes.contains { $0["dst"]?.stringValue == "192.168.0.0/16" && $0["gateway"]?.stringValue == "10.1.2.1" })
        #expect(routes.contains { $0["dst"]?.stringValue == "default" && $0["gateway"]?.stringValue == "10.1.2.1" })
    }
}

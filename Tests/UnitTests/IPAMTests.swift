import Addressing
import BerthSupport
import Glibc
import IPAM
import JSON
import TestSupport
import Testing

private func config(_ ipam: String, extra: String = "") throws -> JSONObject {
    try JSON.parse(#"{"cniVersion": "1.0.0", "name": "net1", "type": "bridge", "ipam": \#(ipam) \#(extra)}"#).objectValue!
}

@Suite struct IPAMConfigTests {
    @Test func legacySubnetGetsReferenceDefaults() throws {
        let c = try IPAMConfig(networkConfig: config(#"{"type": "host-local", "subnet": "10.1.0.0/24"}"#))
        let r = try #require(c.rangeSets.first?.ranges.first)
        #expect(r.start.description == "10.1.0.1")
        #expect(r.end.description == "10.1.0.254")
        #expect(r.gateway.description == "10.1.0.1")
        let v6 = try IPAMConfig(networkConfig: config(#"{"subnet": "fd00::/120"}"#)).rangeSets[0].ranges[0]
        #expect(v6.end.description == "fd00::ff")
    }

    @Test func rangesAndLegacyCombineLegacyFirst() throws {
        let c = try IPAMConfig(networkConfig: config(#"""
            {"subnet": "10.1.0.0/24", "ranges": [[{"subnet": "fd00::/64", "rangeStart": "fd00::10", "rangeEnd": "fd00::20", "gateway": "fd00::1"}]],
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.0.254"}], "dataDir": "/x", "resolvConf": "/etc/r"}
            """#))
        #expect(c.rangeSets.count == 2)
        #expect(c.rangeSets[0].isIPv4 && !c.rangeSets[1].isIPv4)
        #expect(c.rangeSets[1].ranges[0].start.description == "fd00::10")
        #expect(c.routes.count == 2 && c.routes[1].gateway?.description == "10.1.0.254")
        #expect(c.dataDirectory == "/x" && c.resolvConf == "/etc/r")
    }

    @Test func requestedAddressesFromEverySource() throws {
        let c = try IPAMConfig(
            networkConfig: config(#"{"subnet": "10.1.0.0/24"}"#,
                extra: #", "args": {"cni": {"ips": ["10.1.0.7"]}}, "runtimeConfig": {"ips": ["10.1.0.8/24"]}"#),
            cniArgsIPs: ["10.1.0.5,10.1.0.6"])
        #expect(c.requestedAddresses.map(\.description) == ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"])
    }

    @Test(arguments: [
        (#"{"subnet": "10.1.0.5/24"}"#, "host bits set"),
        (#"{"subnet": "10.1.0.0/31"}"#, "too small"),
        (#"{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.1"}"#, "rangeStart 10.2.0.1 is not in network"),
        (#"{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.3"}"#, "after rangeEnd"),
        (#"{"subnet": "banana"}"#, "is not a CIDR subnet"),
        (#"{"subnet": 5}"#, "ipam.subnet: expected a string"),
        (#"{"type": "host-local"}"#, "no IP ranges specified"),
        (#"{"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]}"#, "mixes IPv4 and IPv6"),
        (#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/25"}]]}"#, "range set 0 overlaps with range set 1"),
        (#"{"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/24"}]]}"#, "overlap"),
        (#"{"ranges": [{"subnet": "10.1.0.0/24"}]}"#, "ipam.ranges[0]: expected an array of ranges"),
        (#"{"subnet": "10.1.0.0/24", "routes": [{"dst": "nope"}]}"#, "ipam.routes[0].dst"),
    ])
    func invalidConfigurationsNameTheProblem(_ ipam: String, _ expected: String) throws {
        let object = try config(ipam)
        do {
            _ = try IPAMConfig(networkConfig: object)
            Issue.record("accepted \(ipam)")
        } catch {
            #expect(error.kind == .invalidConfiguration)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }
}

@Suite struct AllocatorTests {
    func allocator(_ subnet: String, start: String? = nil, end: String? = nil, in dir: TemporaryDirectory) throws -> Allocator {
        let range = try AddressRange(
            subnet: IPNetwork(subnet)!, start: start.flatMap { IPAddress($0) }, end: end.flatMap { IPAddress($0) })
        let store = try AllocationStore(network: "net1", dataDirectory: dir.path)
        return Allocator(rangeSet: try RangeSet([range]), rangeSetIndex: 0, store: store)
    }

    @Test func allocatesRoundRobinSkippingGatewayUntilExhausted() throws {
        let dir = try TemporaryDirectory()
        let a = try allocator("10.9.0.0/29", in: dir)
        var got: [String] = []
        for i in 0..<5 {
            let r = try a.store.locked { try a.allocate(for: Owner(containerID: "c\(i)", ifName: "eth0")) }
            got.append(r.address.description)
            #expect(r.gateway.description == "10.9.0.1")
        }
        #expect(got == ["10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29", "10.9.0.5/29", "10.9.0.6/29"])
        #expect(throws: IPAMError.self) { try a.allocate(for: Owner(containerID: "c9", ifName: "eth0")) }
        // Round robin: after releasing .3, the next allocation still goes to .3 only after wrapping.
        try a.store.release(Owner(containerID: "c1", ifName: "eth0"))
        #expect(try a.allocate(for: Owner(containerID: "c10", ifName: "eth0")).address.description == "10.9.0.3/29")
    }

    @Test func referenceFileFormat() throws {
        let dir = try TemporaryDirectory()
        let a = try allocator("10.9.0.0/24", in: dir)
        _ = try a.allocate(for: Owner(containerID: "abc", ifName: "eth1"))
        #expect(try Files.readText("\(dir.path)/net1/10.9.0.2") == "abc\r\neth1")
        #expect(try Files.readText("\(dir.path)/net1/last_reserved_ip.0") == "10.9.0.2")
    }

    @Test func requestedAddressChecks() throws {
        let dir = try TemporaryDirectory()
        let a = try allocator("10.9.0.0/24", in: dir)
        let owner = Owner(containerID: "a", ifName: "eth0")
        #expect(try a.allocate(for: owner, requested: IPAddress("10.9.0.50")).address.description == "10.9.0.50/24")
        for bad in ["10.9.0.50", "10.9.0.1", "10.10.0.1"] {
            #expect(throws: IPAMError.self) { try a.allocate(for: Owner(containerID: "b", ifName: "eth0"), requested: IPAddress(bad)) }
        }
    }

    @Test func duplicateAllocationForSameOwnerIsRefused() throws {
        let dir = try TemporaryDirectory()
        let a = try allocator("10.9.0.0/24", in: dir)
        let owner = Owner(containerID: "a", ifName: "eth0")
        _ = try a.allocate(for: owner)
        #expect(throws: IPAMError.self) { try a.allocate(for: owner) }
    }

    @Test func releaseLeavesAnAddressReusedByAnotherOwner() throws {
        let dir = try TemporaryDirectory()
        let a = try allocator("10.9.0.0/24", in: dir)
        let first = Owner(containerID: "first", ifName: "eth0"), second = Owner(containerID: "second", ifName: "eth0")
        let ip = try a.allocate(for: first).address.address
        // Simulate a crash-leftover: the reservation went away without the index noticing.
        try a.store.forceRelease(ip)
        _ = try a.allocate(for: second, requested: ip)
        #expect(try a.store.release(first).isEmpty)
        #expect(try a.store.addresses(of: second) == [ip])
    }

    @Test func indexIsBuiltFromAReferenceDirectory() throws {
        let dir = try TemporaryDirectory()
        try Files.makeDirectories("\(dir.path)/net1")
        try Files.write("\(dir.path)/net1/10.9.0.7", Array("ref\r\neth0".utf8))
        try Files.write("\(dir.path)/net1/last_reserved_ip.0", Array("10.9.0.7".utf8))
        let a = try allocator("10.9.0.0/24", in: dir)
        #expect(try a.store.addresses(of: Owner(containerID: "ref", ifName: "eth0")).map(\.description) == ["10.9.0.7"])
        // Continues round robin after the reference's last reservation.
        #expect(try a.allocate(for: Owner(containerID: "new", ifName: "eth0")).address.description == "10.9.0.8/24")
        #expect(try a.store.release(Owner(containerID: "ref", ifName: "eth0")).map(\.description) == ["10.9.0.7"])
        #expect(!Files.exists("\(dir.path)/net1/10.9.0.7"))
    }

    @Test func multipleRangesWrapAround() throws {
        let dir = try TemporaryDirectory()
        let r1 = try AddressRange(subnet: IPNetwork("10.1.0.0/24")!, start: IPAddress("10.1.0.10"), end: IPAddress("10.1.0.11"))
        let r2 = try AddressRange(subnet: IPNetwork("10.2.0.0/24")!, start: IPAddress("10.2.0.10"), end: IPAddress("10.2.0.10"))
        let store = try AllocationStore(network: "net1", dataDirectory: dir.path)
        let a = Allocator(rangeSet: try RangeSet([r1, r2]), rangeSetIndex: 0, store: store)
        let got = try (0..<3).map { try a.allocate(for: Owner(containerID: "c\($0)", ifName: "eth0")).address.description }
        #expect(got == ["10.1.0.10/24", "10.1.0.11/24", "10.2.0.10/24"])
        #expect(throws: IPAMError.self) { try a.allocate(for: Owner(containerID: "x", ifName: "eth0")) }
    }

    @Test func resolvConfParsing() {
        let r = ResolvConf(text: "# c\nnameserver 10.0.0.1\nnameserver fd00::1\ndomain example.com\nsearch a.b c.d\noptions ndots:2 edns0\n")
        #expect(r.nameservers == ["10.0.0.1", "fd00::1"])
        #expect(r.domain == "example.com" && r.search == ["a.b", "c.d"] && r.options == ["ndots:2", "edns0"])
    }
}

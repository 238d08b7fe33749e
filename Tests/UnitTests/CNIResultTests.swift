import Addressing
import CNI
import JSON
import Testing

/// A 1.1.0 result that uses every field.
let fullResult = """
    {
      "cniVersion": "1.1.0",
      "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55", "mtu": 1500},
        {"name": "eth0", "mac": "0a:58:0a:01:00:05", "mtu": 9000, "sandbox": "/run/netns/c1",
         "socketPath": "/run/vhost.sock", "pciID": "0000:03:00.1"}
      ],
      "ips": [
        {"interface": 1, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
        {"interface": 1, "address": "10.2.0.5/16"},
        {"interface": 1, "address": "fd00::5/64", "gateway": "fd00::1"}
      ],
      "routes": [
        {"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400, "advmss": 1360, "priority": 100, "table": 254, "scope": 0},
        {"dst": "192.168.0.0/16"},
        {"dst": "::/0"}
      ],
      "dns": {"nameservers": ["10.1.0.1"], "domain": "example.org", "search": ["example.org"], "options": ["ndots:2"]}
    }
    """

@Suite struct CNIResultTests {
    @Test func parsesEveryFieldOf110() throws {
        let result = try CNIResult(parsing: bytes(fullResult))
        #expect(result.cniVersion == .v1_1_0)
        #expect(result.interfaces.count == 2)
        #expect(
            result.interfaces[1]
                == CNIResult.Interface(
                    name: "eth0", mac: "0a:58:0a:01:00:05", mtu: 9000, sandbox: "/run/netns/c1",
                    socketPath: "/run/vhost.sock", pciID: "0000:03:00.1"))
        #expect(result.ips[0] == CNIResult.IPConfig(address: IPNetworkLiteral("10.1.0.5/24"), gateway: IPAddressLiteral("10.1.0.1"), interface: 1))
        #expect(result.ips[1].gateway == nil)
        #expect(
            result.routes[0]
                == CNIResult.Route(
                    destination: IPNetworkLiteral("0.0.0.0/0"), gateway: IPAddressLiteral("10.1.0.1"), mtu: 1400,
                    advmss: 1360, priority: 100, table: 254, scope: 0))
        #expect(result.dns == DNSConfig(nameservers: ["10.1.0.1"], domain: "example.org", search: ["example.org"], options: ["ndots:2"]))
    }

    @Test func roundTripsInEveryVersion() throws {
        let result = try CNIResult(parsing: bytes(fullResult))
        #expect(try result.json(as: .v1_1_0) == parse(fullResult))
        for version in CNIVersion.all {
            let printed = try result.json(as: version)
            let reparsed = try CNIResult(parsing: printed)
            #expect(reparsed.cniVersion == version)
            #expect(try reparsed.json(as: version) == printed, "\(version)")
        }
    }

    @Test func downConvertsTo100WithoutThe110Fields() throws {
        let printed = try CNIResult(parsing: bytes(fullResult)).json(as: .v1_0_0)
        #expect(
            printed == (try parse(
                """
                {"cniVersion": "1.0.0",
                 "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                                {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/run/netns/c1"}],
                 "ips": [{"interface": 1, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
                         {"interface": 1, "address": "10.2.0.5/16"},
                         {"interface": 1, "address": "fd00::5/64", "gateway": "fd00::1"}],
                 "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"}, {"dst": "::/0"}],
                 "dns": {"nameservers": ["10.1.0.1"], "domain": "example.org", "search": ["example.org"], "options": ["ndots:2"]}}
                """)))
    }

    @Test func downConvertsTo04xWithAddressVersions() throws {
        let result = try CNIResult(parsing: bytes(fullResult))
        for version in [CNIVersion.v0_3_0, .v0_3_1, .v0_4_0] {
            let printed = try result.json(as: version)
            #expect(printed["cniVersion"] == .string(version.description))
            #expect(printed["ips"]?.arrayValue?.map { $0["version"] } == [.string("4"), .string("4"), .string("6")])
            #expect(printed["ips"]?.arrayValue?[0] == (try parse(#"{"version": "4", "interface": 1, "address": "10.1.0.5/24", "gateway": "10.1.0.1"}"#)))
            #expect(printed["interfaces"]?.arrayValue?[1] == (try parse(#"{"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/run/netns/c1"}"#)))
        }
    }

    @Test func downConvertsTo02xKeepingTheFirstAddressOfEachFamily() throws {
        let result = try CNIResult(parsing: bytes(fullResult))
        let expected = try parse(
            """
            {"cniVersion": "0.2.0",
             "ip4": {"ip": "10.1.0.5/24", "gateway": "10.1.0.1",
                     "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"}]},
             "ip6": {"ip": "fd00::5/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]},
             "dns": {"nameservers": ["10.1.0.1"], "domain": "example.org", "search": ["example.org"], "options": ["ndots:2"]}}
            """)
        #expect(try result.json(as: .v0_2_0) == expected)
        var v010 = expected.objectValue!
        v010["cniVersion"] = "0.1.0"
        #expect(try result.json(as: .v0_1_0) == .object(v010))
        let converted = try result.converted(to: .v0_2_0)
        #expect(converted.interfaces.isEmpty)
        #expect(converted.ips.map(\.address.description) == ["10.1.0.5/24", "fd00::5/64"])
        #expect(converted.ips.allSatisfy { $0.interface == nil })
    }

    @Test func routesOfAFamilyWithoutAddressAreDroppedIn02x() throws {
        let result = CNIResult(
            ips: [CNIResult.IPConfig(address: IPNetworkLiteral("10.1.0.5/24"))],
            routes: [CNIResult.Route(destination: IPNetworkLiteral("::/0"))])
        #expect(try result.json(as: .v0_2_0) == parse(#"{"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/24"}, "dns": {}}"#))
    }

    @Test func downConversionTo02xNeedsAnAddress() throws {
        let result = CNIResult(interfaces: [CNIResult.Interface(name: "lo", mac: "00:00:00:00:00:00", sandbox: "/run/netns/c1")])
        #expect(throws: CNIError.self) { try result.json(as: .v0_2_0) }
        #expect(throws: CNIError.self) { try result.json(as: .v0_1_0) }
        #expect(try result.json(as: .v0_3_1)["interfaces"] != nil)
        #expect(throws: CNIError.self) { try result.json(as: CNIVersion(0, 5, 0)) }
    }

    @Test func upConvertsFrom02x() throws {
        let legacy = """
            {"cniVersion": "0.2.0",
             "ip4": {"ip": "10.1.0.2/24", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
             "ip6": {"ip": "fd00::2/64", "gateway": "fd00::1", "routes": [{"dst": "::/0", "gw": "fd00::1"}]},
             "dns": {"nameservers": ["8.8.8.8"]}}
            """
        let result = try CNIResult(parsing: bytes(legacy))
        #expect(result.cniVersion == .v0_2_0)
        #expect(
            try result.json(as: .v1_0_0)
                == parse(
                    """
                    {"cniVersion": "1.0.0",
                     "ips": [{"address": "10.1.0.2/24", "gateway": "10.1.0.1"}, {"address": "fd00::2/64", "gateway": "fd00::1"}],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
                     "dns": {"nameservers": ["8.8.8.8"]}}
                    """))
        #expect(try result.json(as: .v0_4_0)["ips"]?.arrayValue?.map { $0["version"] } == [.string("4"), .string("6")])
    }

    @Test func ipamResultHasNoInterfaces() throws {
        let ipam = #"{"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.7/24", "gateway": "10.1.0.1"}], "dns": {}}"#
        let result = try CNIResult(parsing: bytes(ipam))
        #expect(result.interfaces.isEmpty && result.ips[0].interface == nil)
        #expect(try result.json(as: .v1_0_0) == parse(ipam))
    }

    @Test func resultWithoutVersionIsInTheDefaultVersion() throws {
        let noVersion = #"{"ips": [{"version": "4", "address": "10.1.0.7/24"}]}"#
        #expect(try CNIResult(parsing: bytes(noVersion), defaultVersion: .v0_4_0).cniVersion == .v0_4_0)
        // Without a default a result is 0.1.0, whose shape has no "ips".
        #expect(try CNIResult(parsing: bytes(noVersion)).ips.isEmpty)
    }

    @Test func zeroNumericFieldsMeanUnset() throws {
        let result = try CNIResult(
            parsing: bytes(#"{"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "mtu": 0}], "routes": [{"dst": "10.0.0.0/8", "mtu": 0, "table": 0}]}"#))
        #expect(result.interfaces[0].mtu == nil)
        #expect(result.routes[0].mtu == nil && result.routes[0].table == 0)
        #expect(try result.json(as: .v1_1_0)["routes"] == parse(#"[{"dst": "10.0.0.0/8", "table": 0}]"#))
    }

    @Test func errorsNameTheField() {
        for (text, path) in [
            (#"{"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5"}]}"#, "ips[0].address"),
            (#"{"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24", "gateway": "x"}]}"#, "ips[0].gateway"),
            (#"{"cniVersion": "1.0.0", "ips": [{"gateway": "10.1.0.1"}]}"#, "ips[0].address"),
            (#"{"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24", "interface": -1}]}"#, "ips[0].interface"),
            (#"{"cniVersion": "1.0.0", "interfaces": [{"name": 3}]}"#, "interfaces[0].name"),
            (#"{"cniVersion": "1.0.0", "routes": [{"dst": "0.0.0.0/0", "gw": "fd00::/64"}]}"#, "routes[0].gw"),
            (#"{"cniVersion": "1.1.0", "routes": [{"dst": "0.0.0.0/0", "scope": 300}]}"#, "routes[0].scope"),
            (#"{"cniVersion": "1.0.0", "dns": {"nameservers": "8.8.8.8"}}"#, "dns.nameservers"),
            (#"{"cniVersion": "0.2.0", "ip4": {"gateway": "10.0.0.1"}}"#, "ip4.ip"),
            (#"{"cniVersion": "7.0.0"}"#, "cniVersion"),
            (#"{"cniVersion": 1}"#, "cniVersion"),
            (#"[1]"#, "configuration"),
        ] {
            #expect(throws: JSONFieldError.self, "\(text)") { try CNIResult(parsing: bytes(text)) }
            do {
                _ = try CNIResult(parsing: bytes(text))
            } catch let error as JSONFieldError {
                #expect(error.path == path, "\(text): \(error)")
            } catch {
                Issue.record("\(text): \(error)")
            }
        }
    }

    /// Results exactly as the reference host-local 1.1.1 printed them: reprinting what we parsed
    /// gives the same bytes.
    @Test(arguments: [referenceHostLocal020, referenceHostLocal040, referenceHostLocal100])
    func reprintsReferenceOutputByteForByte(_ text: String) throws {
        let result = try CNIResult(parsing: bytes(text))
        #expect(string(try result.json(as: result.cniVersion).prettyBytes) == text)
    }
}

let referenceHostLocal020 = """
    {
        "cniVersion": "0.2.0",
        "ip4": {
            "ip": "10.1.0.2/24",
            "gateway": "10.1.0.1",
            "routes": [
                {
                    "dst": "0.0.0.0/0"
                }
            ]
        },
        "ip6": {
            "ip": "fd00::2/64",
            "gateway": "fd00::1",
            "routes": [
                {
                    "dst": "::/0",
                    "gw": "fd00::1"
                }
            ]
        },
        "dns": {}
    }
    """

let referenceHostLocal040 = """
    {
        "cniVersion": "0.4.0",
        "ips": [
            {
                "version": "4",
                "address": "10.1.0.4/24",
                "gateway": "10.1.0.1"
            },
            {
                "version": "6",
                "address": "fd00::4/64",
                "gateway": "fd00::1"
            }
        ],
        "routes": [
            {
                "dst": "0.0.0.0/0"
            },
            {
                "dst": "::/0",
                "gw": "fd00::1"
            }
        ],
        "dns": {}
    }
    """

let referenceHostLocal100 = """
    {
        "cniVersion": "1.0.0",
        "ips": [
            {
                "address": "10.1.0.5/24",
                "gateway": "10.1.0.1"
            },
            {
                "address": "fd00::5/64",
                "gateway": "fd00::1"
            }
        ],
        "routes": [
            {
                "dst": "0.0.0.0/0"
            },
            {
                "dst": "::/0",
                "gw": "fd00::1"
            }
        ],
        "dns": {}
    }
    """

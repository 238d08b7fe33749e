import Addressing
import BerthSupport
import CNI
import DNS
import Glibc
import JSON
import Testing

/// The dnsname plugin run as a built executable, as podman's CNI backend runs it: chained after
/// bridge (prevResult), name in CNI_ARGS, aliases as a capability in runtimeConfig.
@Suite(.serialized) struct DNSNamePluginTests {
    static func prevResult(_ address: String, gateway: String = "10.89.0.1") -> String {
        #"{"cniVersion":"1.0.0","interfaces":[{"name":"cni-podman1"},{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"\#(address)/24","gateway":"\#(gateway)","interface":1}],"dns":{"nameservers":["192.0.2.1"]}}"#
    }

    static func config(_ lab: DNSLab, version: String = "1.0.0", aliases: [String] = [], prevResult: String?, extra: String = "") -> String {
        let aliasList = aliases.map { "\"\($0)\"" }.joined(separator: ",")
        var text = #"{"cniVersion":"\#(version)","name":"dnsnet","type":"dnsname","domainName":"dns.podman","capabilities":{"aliases":true},"configDir":"\#(lab.directory)/dns","runtimeConfig":{"aliases":{"dnsnet":[\#(aliasList)]}}\#(extra)"#
        if let prevResult { text += #","prevResult":\#(prevResult)"# }
        return text + "}"
    }

    static func call(_ command: String, _ id: String, name: String?, config: String) -> PluginCall {
        PluginCall(
            command: command, containerID: id, netns: "/proc/self/ns/net", ifName: "eth0",
            args: name.map { "IgnoreUnknown=1;K8S_POD_NAMESPACE=\($0);K8S_POD_NAME=\($0);K8S_POD_INFRA_CONTAINER_ID=\(id)" }, config: config)
    }

    func lab() throws -> DNSLab {
        let lab = try DNSLab()
        try lab.addHostAddresses(["10.89.0.1"])
        return lab
    }

    @Test func addCheckDelAsPodmanCallsIt() throws {
        let lab = try lab()
        let exe = Built.path("dnsname")
        let config = Self.config(lab, aliases: ["webalias"], prevResult: Self.prevResult("10.89.0.5"))
        let add = try run(exe, Self.call("ADD", "ctr1", name: "web1", config: config), in: lab.host)
        #expect(add.status == 0, "\(add)")
        let result = try CNIResult(parsing: try #require(add.json))
        #expect(result.dns.nameservers == ["10.89.0.1", "192.0.2.1"])
        #expect(result.dns.search == ["dns.podman"])
        #expect(result.ips.map(\.address.description) == ["10.89.0.5/24"])
        #expect(result.interfaces.count == 2)

        let file = try NetworkFile(parsing: try Files.readText("\(lab.directory)/dns/dnsnet"), fileName: "dnsnet")
        #expect(file.gateways == [IPAddress("10.89.0.1")!] && file.domain == "dns.podman")
        #expect(file.containers == [ContainerEntry(id: "ctr1", ipv4: [IPv4Address("10.89.0.5")!], names: ["web1", "webalias"])])
        let pid = try #require(ConfigDirectory.readPID("\(lab.directory)/dns"))
        #expect(isBerthDNS(pid))
        // Served as soon as ADD returned.
        for name in ["web1", "webalias", "web1.dns.podman"] {
            #expect(addresses(try lab.ask(name, server: "10.89.0.1")) == ["10.89.0.5"], "\(name)")
        }

        let checkConfig = Self.config(lab, aliases: ["webalias"], prevResult: add.text)
        let check = try run(exe, Self.call("CHECK", "ctr1", name: "web1", config: checkConfig), in: lab.host)
        #expect(check.status == 0, "\(check)")
        // CHECK notices a registration that is not there.
        let wrong = try run(exe, Self.call("CHECK", "ctr9", name: "web9", config: checkConfig), in: lab.host)
        #expect(wrong.status != 0 && wrong.json?["msg"]?.stringValue?.contains("not registered") == true, "\(wrong)")

        // ADD again is idempotent (one line per container).
        #expect(try run(exe, Self.call("ADD", "ctr1", name: "web1", config: config), in: lab.host).status == 0)
        #expect(try NetworkFile(parsing: try Files.readText("\(lab.directory)/dns/dnsnet"), fileName: "dnsnet").containers.count == 1)

        for _ in 0..<2 {  // DEL is idempotent
            let del = try run(exe, Self.call("DEL", "ctr1", name: "web1", config: checkConfig), in: lab.host)
            #expect(del.status == 0, "\(del)")
        }
        #expect(!Files.exists("\(lab.directory)/dns/dnsnet"))
        // The last network is gone: the server goes too.
        var gone = false
        for _ in 0..<300 where !gone {
            gone = !isBerthDNS(pid)
            usleep(10_000)
        }
        #expect(gone)
    }

    @Test(arguments: ["0.3.1", "0.4.0", "1.1.0"])
    func everyVersionPodmanWrites(version: String) throws {
        let lab = try lab()
        let config = Self.config(lab, version: version, prevResult: Self.prevResult("10.89.0.5").replacingVersion(version))
        let add = try run(Built.path("dnsname"), Self.call("ADD", "ctr1", name: "web1", config: config), in: lab.host)
        #expect(add.status == 0, "\(add)")
        #expect(add.json?["cniVersion"] == .string(version))
        #expect(try run(Built.path("dnsname"), Self.call("DEL", "ctr1", name: "web1", config: config), in: lab.host).status == 0)
    }

    /// Containers started in parallel: one server, every name registered and answered.
    @Test func parallelAddsStartOneServer() async throws {
        let lab = try lab()
        let exe = Built.path("dnsname")
        let count = 8
        let outcomes = try await withThrowingTaskGroup(of: PluginOutcome.self) { group in
            for i in 1...count {
                let config = Self.config(lab, prevResult: Self.prevResult("10.89.0.\(10 + i)"))
                group.addTask { try run(exe, Self.call("ADD", "ctr\(i)", name: "c\(i)", config: config), in: lab.host) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for outcome in outcomes { #expect(outcome.status == 0, "\(outcome)") }
        let file = try NetworkFile(parsing: try Files.readText("\(lab.directory)/dns/dnsnet"), fileName: "dnsnet")
        #expect(file.containers.count == count)
        let servers = try Subprocess.run("/usr/bin/pgrep", arguments: ["-f", "berth-dns --config \(lab.directory)/dns"], environment: [:])
        #expect(String(decoding: servers.stdout, as: UTF8.self).split(separator: "\n").count == 1)
        for i in 1...count {
            #expect(addresses(try lab.ask("c\(i)", server: "10.89.0.1")) == ["10.89.0.\(10 + i)"])
        }
    }

    @Test func gcRemovesWhatNoValidAttachmentOwns() throws {
        let lab = try lab()
        let exe = Built.path("dnsname")
        for i in 1...3 {
            let config = Self.config(lab, prevResult: Self.prevResult("10.89.0.\(20 + i)"))
            #expect(try run(exe, Self.call("ADD", "ctr\(i)", name: "g\(i)", config: config), in: lab.host).status == 0)
        }
        let gcConfig = Self.config(
            lab, version: "1.1.0", prevResult: nil,
            extra: #","cni.dev/valid-attachments":[{"containerID":"ctr2","ifname":"eth0"}]"#)
        let gc = try run(exe, PluginCall(command: "GC", config: gcConfig), in: lab.host)
        #expect(gc.status == 0, "\(gc)")
        let file = try NetworkFile(parsing: try Files.readText("\(lab.directory)/dns/dnsnet"), fileName: "dnsnet")
        #expect(file.containers.map(\.id) == ["ctr2"])
        usleep(100_000)
        #expect(try lab.ask("g1.dns.podman", server: "10.89.0.1").rcode == .nameError)
        #expect(addresses(try lab.ask("g2", server: "10.89.0.1")) == ["10.89.0.22"])
        // GC with nothing valid removes the rest; the server then exits.
        let pid = try #require(ConfigDirectory.readPID("\(lab.directory)/dns"))
        let none = Self.config(lab, version: "1.1.0", prevResult: nil, extra: #","cni.dev/valid-attachments":[]"#)
        #expect(try run(exe, PluginCall(command: "GC", config: none), in: lab.host).status == 0)
        var gone = false
        for _ in 0..<300 where !gone {
            gone = !isBerthDNS(pid)
            usleep(10_000)
        }
        #expect(gone)
    }

    @Test func badInputGetsClearErrors() throws {
        let lab = try lab()
        let exe = Built.path("dnsname")
        let noName = try run(exe, Self.call("ADD", "ctr1", name: nil, config: Self.config(lab, prevResult: Self.prevResult("10.89.0.5"))), in: lab.host)
        #expect(noName.errorCode == 4, "\(noName)")
        let notChained = try run(exe, Self.call("ADD", "ctr1", name: "web1", config: Self.config(lab, prevResult: nil)), in: lab.host)
        #expect(notChained.errorCode == 7, "\(notChained)")
        #expect(!Files.exists("\(lab.directory)/dns/dnsnet"))
        // DEL of something never added succeeds.
        #expect(try run(exe, Self.call("DEL", "ctr1", name: "web1", config: Self.config(lab, prevResult: nil)), in: lab.host).status == 0)
    }
}

extension String {
    /// The same prevResult in another version's shape (1.0.0 shape is also valid 0.3.x/0.4.0
    /// input except for the version field).
    func replacingVersion(_ version: String) -> String {
        var text = self
        if let range = text.firstRange(of: "\"cniVersion\":\"1.0.0\"") {
            text.replaceSubrange(range, with: "\"cniVersion\":\"\(version)\"")
        }
        return text
    }
}

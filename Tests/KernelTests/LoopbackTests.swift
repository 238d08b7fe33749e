import BerthSupport
import CNI
import JSON
import Namespaces
import Testing

/// berth's `loopback` and `none`, run as built executables, observed with `ip -j`, and compared
/// with the reference `loopback` on the same sequences.
@Suite struct LoopbackTests {
    static let versions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

    static func config(_ version: String, type: String = "loopback") -> String {
        #"{"cniVersion": "\#(version)", "name": "lo-net", "type": "\#(type)"}"#
    }

    @Test(arguments: ["loopback", "none"], versions)
    func addCheckDelInEveryVersion(plugin: String, version: String) throws {
        let boxes = try Sandboxes()
        let container = try boxes.container()
        #expect(try !isUp(container, "lo"))
        let exe = Built.path(plugin)
        var call = PluginCall(command: "ADD", netns: container.path, ifName: "lo", config: Self.config(version, type: plugin))

        let add = try run(exe, call, in: boxes.host)
        #expect(add.status == 0, "\(add)")
        #expect(try isUp(container, "lo"))
        let result = try #require(add.json)
        #expect(result["cniVersion"] == .string(version))
        let parsed = try CNIResult(parsing: result)
        #expect(Set(parsed.ips.map(\.address.description)) == ["127.0.0.1/8", "::1/128"])
        if CNIVersion(version)! >= .v0_3_0 {
            #expect(parsed.interfaces.first?.name == "lo")
            #expect(parsed.interfaces.first?.sandbox == container.path)
        }

        if CNIVersion(version)!.supportsCheck {
            call.command = "CHECK"
            call.config = #"{"cniVersion": "\#(version)", "name": "lo-net", "type": "\#(plugin)", "prevResult": \#(add.text)}"#
            let check = try run(exe, call, in: boxes.host)
            #expect(check.status == 0, "\(check)")
            #expect(check.stdout.isEmpty)
        }

        call.command = "DEL"
        for _ in 0..<2 {  // DEL is idempotent
            let del = try run(exe, call, in: boxes.host)
            #expect(del.status == 0, "\(del)")
            #expect(del.stdout.isEmpty)
        }
        #expect(try !isUp(container, "lo"))
    }

    @Test func checkNoticesLoopbackDown() throws {
        let boxes = try Sandboxes()
        let container = try boxes.container()
        let exe = Built.path("loopback")
        let add = try run(exe, PluginCall(command: "ADD", netns: container.path, ifName: "lo", config: Self.config("1.0.0")), in: boxes.host)
        #expect(add.status == 0)
        _ = try Subprocess.run("/usr/sbin/ip", arguments: ["link", "set", "lo", "down"], environment: [:], netnsFD: container.fd)
        let config = #"{"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback", "prevResult": \#(add.text)}"#
        let check = try run(exe, PluginCall(command: "CHECK", netns: container.path, ifName: "lo", config: config), in: boxes.host)
        #expect(check.status != 0)
        #expect(check.json?["msg"]?.stringValue?.contains("down") == true, "\(check)")
    }

    @Test func delSucceedsWhenTheNamespaceIsGoneOrEmpty() throws {
        let boxes = try Sandboxes()
        let exe = Built.path("loopback")
        for netns in ["/run/netns/berth-test-does-not-exist", ""] {
            let del = try run(exe, PluginCall(command: "DEL", netns: netns, ifName: "lo", config: Self.config("1.0.0")), in: boxes.host)
            #expect(del.status == 0, "\(del)")
        }
    }

    @Test func statusAndGCAnswerOn110() throws {
        let boxes = try Sandboxes()
        let exe = Built.path("loopback")
        let status = try run(exe, PluginCall(command: "STATUS", config: Self.config("1.1.0")), in: boxes.host)
        #expect(status.status == 0, "\(status)")
        let gcConfig = #"{"cniVersion": "1.1.0", "name": "lo-net", "type": "loopback", "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "lo"}]}"#
        let gc = try run(exe, PluginCall(command: "GC", config: gcConfig), in: boxes.host)
        #expect(gc.status == 0, "\(gc)")
        let old = try run(exe, PluginCall(command: "STATUS", config: Self.config("1.0.0")), in: boxes.host)
        #expect(old.errorCode == 1, "\(old)")
    }

    static let badInputs: [(PluginCall, Int64)] = [
        (PluginCall(command: "ADD", ifName: "lo", config: "{not json"), 6),
        (PluginCall(command: "ADD", ifName: "lo", config: #"{"cniVersion": "9.9.9", "name": "n", "type": "loopback"}"#), 1),
        (PluginCall(command: "ADD", ifName: "lo", config: #"{"cniVersion": "1.0.0", "type": "loopback"}"#), 7),
        (PluginCall(command: "ADD", ifName: "lo", config: #"{"cniVersion": "1.0.0", "name": 5, "type": "loopback"}"#), 6),
        (PluginCall(command: "ADD", ifName: "lo", config: config("1.0.0"), unset: ["CNI_CONTAINERID"]), 4),
        (PluginCall(command: "ADD", ifName: "lo", config: config("1.0.0"), unset: ["CNI_NETNS"]), 4),
        (PluginCall(command: "ADD", ifName: "lo", config: config("1.0.0"), unset: ["CNI_IFNAME"]), 4),
        (PluginCall(command: "ADD", ifName: "lo", config: config("1.0.0"), unset: ["CNI_PATH"]), 4),
        (PluginCall(command: "ADD", containerID: "-bad", ifName: "lo", config: config("1.0.0")), 4),
        (PluginCall(command: "ADD", ifName: "a/b", config: config("1.0.0")), 4),
        (PluginCall(command: "CHECK", ifName: "lo", config: config("0.3.1")), 1),
        (PluginCall(command: "BOGUS", ifName: "lo", config: config("1.0.0")), 4),
    ]

    /// Bad input gets the spec's code and changes nothing (lo stays down).
    @Test(arguments: badInputs)
    func badInputGetsTheSpecCode(_ template: PluginCall, _ code: Int64) throws {
        let boxes = try Sandboxes()
        let container = try boxes.container()
        var call = template
        if !call.unset.contains("CNI_NETNS") { call.netns = container.path }
        let out = try run(Built.path("loopback"), call, in: boxes.host)
        #expect(out.status != 0)
        #expect(out.errorCode == code, "\(out)")
        #expect(try !isUp(container, "lo"))
    }

    @Test func missingNamespaceIsUnknownContainer() throws {
        let boxes = try Sandboxes()
        let call = PluginCall(command: "ADD", netns: "/run/netns/berth-test-missing", ifName: "lo", config: Self.config("1.0.0"))
        let out = try run(Built.path("loopback"), call, in: boxes.host)
        #expect(out.errorCode == 3, "\(out)")
    }

    /// The same sequences through the reference plugin and berth's give the same results.
    @Test(arguments: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
    func sameAsReference(version: String) throws {
        var results: [CNIResult] = []
        for exe in [Reference.path("loopback"), Built.path("loopback")] {
            let boxes = try Sandboxes()
            let container = try boxes.container()
            var call = PluginCall(command: "ADD", netns: container.path, ifName: "lo", config: Self.config(version))
            let add = try run(exe, call, in: boxes.host)
            #expect(add.status == 0, "\(exe): \(add)")
            var result = try CNIResult(parsing: try #require(add.json), defaultVersion: CNIVersion(version)!)
            result.interfaces = result.interfaces.map { var i = $0; i.sandbox = "SANDBOX"; return i }
            results.append(result)
            #expect(try isUp(container, "lo"))
            if CNIVersion(version)!.supportsCheck {
                call.command = "CHECK"
                call.config = #"{"cniVersion": "\#(version)", "name": "lo-net", "type": "loopback", "prevResult": \#(add.text)}"#
                #expect(try run(exe, call, in: boxes.host).status == 0)
            }
            call.command = "DEL"
            #expect(try run(exe, call, in: boxes.host).status == 0)
            #expect(try !isUp(container, "lo"))
        }
        #expect(results[0] == results[1])
    }

    @Test func versionListsTheReferenceVersionsAndMore() throws {
        let boxes = try Sandboxes()
        var lists: [[String]] = []
        for exe in [Reference.path("loopback"), Built.path("loopback")] {
            let out = try run(exe, PluginCall(command: "VERSION", config: ""), in: boxes.host)
            #expect(out.status == 0)
            lists.append((out.json?["supportedVersions"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        #expect(Set(lists[0]).isSubset(of: Set(lists[1])))
        #expect(lists[1].contains("1.1.0"))
    }
}

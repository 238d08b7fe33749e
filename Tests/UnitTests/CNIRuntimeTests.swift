import BerthSupport
import CNI
import Glibc
import JSON
import Testing

/// What the script plugins answer.
private let firstResult =
    #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/c1"}],"ips":[{"interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"}],"dns":{}}"#
private let secondResult =
    #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/c1"}],"ips":[{"interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#
private let versions110 = #"{"cniVersion":"1.1.0","supportedVersions":["0.3.1","0.4.0","1.0.0","1.1.0"]}"#
private let versions100 = #"{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}"#

/// A temporary plugin directory with script plugins, a cache directory, and a runtime using both.
private struct Fixture {
    let dir: TemporaryDirectory
    let plugins: String
    let runtime: CNIRuntime
    let stderr = OutputSink.collecting()

    init() throws {
        dir = try TemporaryDirectory()
        try Files.makeDirectories(dir.file("bin"))
        plugins = dir.file("bin")
        runtime = CNIRuntime(
            pluginDirectories: ["\(dir.path)/empty", plugins], cacheDirectory: dir.file("cache"),
            environment: ["PATH": "/usr/bin:/bin", "LOGDIR": dir.path], stderr: stderr)
        try plugin("first", "ADD) printf '%s' '\(firstResult)' ;; VERSION) printf '%s' '\(versions110)' ;;")
        try plugin("second", "ADD) printf '%s' '\(secondResult)' ;; VERSION) printf '%s' '\(versions110)' ;;")
        try plugin("old", "ADD) printf '%s' '\(secondResult)' ;; VERSION) printf '%s' '\(versions100)' ;;")
        try plugin(
            "failing",
            """
            ADD) printf '%s' '\(firstResult)' ;;
            DEL) printf '%s' '{"code":107,"msg":"cannot delete","details":"busy"}'; exit 1 ;;
            """)
        try plugin("crashing", "ADD) echo boom >&2; exit 2 ;;")
        try plugin("notready", "STATUS) printf '%s' '{\"code\":50,\"msg\":\"no addresses left\"}'; exit 1 ;;")
    }

    func plugin(_ name: String, _ body: String) throws {
        try TemporaryDirectory.writePlugin(in: plugins, name: name, body: body)
    }

    func list(_ text: String) throws -> NetworkConfigList { try NetworkConfigList(parsing: bytes(text)) }

    /// The calls the plugins logged, then forgets them.
    func takeCalls() throws -> [String] {
        let file = dir.file("calls")
        guard Files.exists(file) else { return [] }
        defer { unlink(file) }
        return try Files.readText(file).split(separator: "\n").map(String.init)
    }

    func stdin(_ plugin: String, _ command: String, _ containerID: String = "ctr1") throws -> JSON {
        try dir.json("\(plugin)-\(command)-\(containerID).json")
    }

    func environment(_ plugin: String, _ command: String, _ containerID: String = "ctr1") throws -> [String: String] {
        var result: [String: String] = [:]
        for line in try dir.read("\(plugin)-\(command)-\(containerID).env").split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return result
    }

    var cacheFile: String { dir.file("cache/results/net1-ctr1-eth0") }
}

extension TemporaryDirectory {
    static func writePlugin(in directory: String, name: String, body: String) throws {
        let path = "\(directory)/\(name)"
        try Files.write(
            path,
            Array(
                """
                #!/bin/sh
                echo "$CNI_COMMAND \(name) $CNI_CONTAINERID $CNI_IFNAME" >> "$LOGDIR/calls"
                cat > "$LOGDIR/\(name)-$CNI_COMMAND-$CNI_CONTAINERID.json"
                env > "$LOGDIR/\(name)-$CNI_COMMAND-$CNI_CONTAINERID.env"
                case "$CNI_COMMAND" in
                \(body)
                esac
                exit 0

                """.utf8))
        chmod(path, 0o755)
    }
}

private let chain = """
    {"cniVersion": "1.0.0", "name": "net1",
     "plugins": [{"type": "first", "custom": "x", "capabilities": {"portMappings": true, "mac": false}},
                 {"type": "second", "capabilities": {"ips": true}}]}
    """

private let attachment = Attachment(
    containerID: "ctr1", netns: "/run/netns/c1", ifName: "eth0",
    args: CNIArgs([("IgnoreUnknown", "1"), ("K8S_POD_NAME", "web")]),
    capabilityArgs: [
        "portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"]], "mac": "0a:58:0a:01:00:09",
        "bandwidth": ["ingressRate": 1000],
    ])

@Suite struct CNIRuntimeTests {
    // MARK: ADD

    @Test func addChainsThePreviousResult() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        let result = try f.runtime.add(list, attachment)
        #expect(try result.json(as: .v1_0_0) == parse(secondResult))
        #expect(try f.takeCalls() == ["ADD first ctr1 eth0", "ADD second ctr1 eth0"])

        // The first plugin: name and version injected, its own keys kept, `capabilities` removed,
        // runtimeConfig holding only the capability it declares true.
        #expect(
            try f.stdin("first", "ADD")
                == parse(
                    """
                    {"cniVersion": "1.0.0", "name": "net1", "type": "first", "custom": "x",
                     "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}
                    """))
        // The second: the first's result as prevResult; no capability argument it declares was given.
        #expect(
            try f.stdin("second", "ADD")
                == parse(#"{"cniVersion": "1.0.0", "name": "net1", "type": "second", "prevResult": \#(firstResult)}"#))

        let env = try f.environment("first", "ADD")
        #expect(env["CNI_COMMAND"] == "ADD" && env["CNI_CONTAINERID"] == "ctr1" && env["CNI_NETNS"] == "/run/netns/c1")
        #expect(env["CNI_IFNAME"] == "eth0" && env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=web")
        #expect(env["CNI_PATH"] == "\(f.dir.path)/empty:\(f.plugins)")
        #expect(env["LOGDIR"] == f.dir.path)
    }

    @Test func addWritesTheCacheInLibcnisFormat() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        _ = try f.runtime.add(list, attachment)

        var st = stat()
        #expect(stat(f.cacheFile, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(stat(f.dir.file("cache/results"), &st) == 0 && st.st_mode & 0o777 == 0o700)
        let cached = try JSON.parse(try Files.read(f.cacheFile))
        #expect(cached["kind"] == "cniCacheV1")
        #expect(cached["containerId"] == "ctr1")
        #expect(cached["ifName"] == "eth0" && cached["networkName"] == "net1" && cached["netns"] == "/run/netns/c1")
        #expect(cached["config"]?.stringValue.flatMap(Base64.decode) == bytes(chain))
        #expect(cached["cniArgs"] == (try parse(#"[["IgnoreUnknown", "1"], ["K8S_POD_NAME", "web"]]"#)))
        #expect(cached["capabilityArgs"] == .object(attachment.capabilityArgs))
        #expect(cached["result"] == (try parse(secondResult)))

        #expect(try f.runtime.cachedResult(list, attachment)?.json(as: .v1_0_0) == parse(secondResult))
        let entries = f.runtime.cachedAttachments(containerID: "ctr1")
        #expect(entries.count == 1 && entries[0].netns == "/run/netns/c1" && entries[0].cniArgs == attachment.args)
        #expect(f.runtime.cachedAttachments(containerID: "ctr").isEmpty)
    }

    @Test func addStopsAtTheFirstFailureAndCachesNothing() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "first"}, {"type": "crashing"}, {"type": "second"}]}"#)
        do {
            _ = try f.runtime.add(list, attachment)
            Issue.record("ADD must fail")
        } catch {
            #expect(error.code == .internalError)
            #expect(error.msg == #"plugin type="crashing" failed (add): plugin \#(f.plugins)/crashing failed (exit status 2)"#)
            #expect(error.details == "boom\n")
        }
        #expect(try f.takeCalls() == ["ADD first ctr1 eth0", "ADD crashing ctr1 eth0"])
        #expect(!Files.exists(f.cacheFile))
        #expect(string(f.stderr.collected) == "boom\n")
    }

    @Test func missingPluginNamesTypeAndDirectories() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "nope"}]}"#)
        do {
            _ = try f.runtime.add(list, attachment)
            Issue.record("ADD must fail")
        } catch {
            #expect(error.msg == #"plugin type="nope" failed (add): failed to find plugin "nope" in path ["\#(f.dir.path)/empty" "\#(f.plugins)"]"#)
        }
    }

    @Test func addValidatesTheAttachment() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        var bad = attachment
        bad.containerID = "../etc"
        #expect(throws: CNIError(.invalidEnvironmentVariables, "invalid characters in containerID", details: "../etc")) {
            try f.runtime.add(list, bad)
        }
        bad = attachment
        bad.ifName = "a/b"
        #expect(throws: CNIError.self) { try f.runtime.add(list, bad) }
        #expect(try f.takeCalls().isEmpty)
        let future = try f.list(#"{"cniVersion": "2.0.0", "name": "net1", "plugins": [{"type": "first"}]}"#)
        #expect(throws: CNIError.self) { try f.runtime.add(future, attachment) }
    }

    @Test func prevResultThatTheListVersionCannotExpressIsPassedAsItIs() throws {
        let f = try Fixture()
        try f.plugin("noaddress", #"ADD) printf '%s' '{"cniVersion":"0.3.1","interfaces":[{"name":"lo"}]}' ;;"#)
        let list = try f.list(#"{"cniVersion": "0.2.0", "name": "net1", "plugins": [{"type": "noaddress"}, {"type": "first"}]}"#)
        _ = try f.runtime.add(list, attachment)
        #expect(try f.stdin("first", "ADD")["prevResult"] == parse(#"{"cniVersion": "0.3.1", "interfaces": [{"name": "lo"}], "dns": {}}"#))
    }

    // MARK: CHECK

    @Test func checkRunsInOrderWithTheCachedResult() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        _ = try f.runtime.add(list, attachment)
        _ = try f.takeCalls()
        try f.runtime.check(list, attachment)
        #expect(try f.takeCalls() == ["CHECK first ctr1 eth0", "CHECK second ctr1 eth0"])
        #expect(try f.stdin("first", "CHECK")["prevResult"] == parse(secondResult))
        #expect(try f.stdin("second", "CHECK")["prevResult"] == parse(secondResult))
        #expect(try f.stdin("first", "CHECK")["runtimeConfig"] != nil)
    }

    @Test func checkHonoursDisableCheckAndVersion() throws {
        let f = try Fixture()
        let disabled = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "disableCheck": true, "plugins": [{"type": "first"}]}"#)
        try f.runtime.check(disabled, attachment)
        let old = try f.list(#"{"cniVersion": "0.3.1", "name": "net1", "plugins": [{"type": "first"}]}"#)
        #expect(throws: CNIError(.incompatibleVersion, #"configuration version "0.3.1" does not support the CHECK command"#)) {
            try f.runtime.check(old, attachment)
        }
        #expect(try f.takeCalls().isEmpty)
    }

    // MARK: DEL

    @Test func delRunsInReverseWithTheCachedResultAndRemovesTheCache() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        _ = try f.runtime.add(list, attachment)
        _ = try f.takeCalls()
        try f.runtime.del(list, attachment)
        #expect(try f.takeCalls() == ["DEL second ctr1 eth0", "DEL first ctr1 eth0"])
        #expect(try f.stdin("first", "DEL")["prevResult"] == parse(secondResult))
        #expect(try f.stdin("second", "DEL")["prevResult"] == parse(secondResult))
        #expect(!Files.exists(f.cacheFile))

        // Again: nothing cached, so no prevResult; DEL still runs and succeeds.
        try f.runtime.del(list, attachment)
        #expect(try f.takeCalls() == ["DEL second ctr1 eth0", "DEL first ctr1 eth0"])
        #expect(try f.stdin("first", "DEL")["prevResult"] == nil)
    }

    @Test func delWithoutNamespaceStillRuns() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        var gone = attachment
        gone.netns = ""
        try f.runtime.del(list, gone)
        #expect(try f.environment("first", "DEL")["CNI_NETNS"] == "")
    }

    @Test func delFailurePropagatesThePluginsErrorAndKeepsTheCache() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "first"}, {"type": "failing"}]}"#)
        _ = try f.runtime.add(list, attachment)
        _ = try f.takeCalls()
        #expect(throws: CNIError(107, #"plugin type="failing" failed (del): cannot delete"#, details: "busy")) {
            try f.runtime.del(list, attachment)
        }
        #expect(try f.takeCalls() == ["DEL failing ctr1 eth0"])
        #expect(Files.exists(f.cacheFile))
    }

    @Test func olderListsGetNoPrevResultOnDel() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "0.3.1", "name": "net1", "plugins": [{"type": "first"}]}"#)
        _ = try f.runtime.add(list, attachment)
        try f.runtime.del(list, attachment)
        #expect(try f.stdin("first", "DEL")["prevResult"] == nil)
        #expect(try f.stdin("first", "DEL")["cniVersion"] == "0.3.1")
    }

    // MARK: Cache written by libcni

    @Test func readsACacheWrittenByLibcni() throws {
        let f = try Fixture()
        let list = try f.list(chain)
        // As Go's encoding/json writes it: struct fields in order, map keys sorted.
        let goCache = #"{"kind":"cniCacheV1","containerId":"ctr1","config":"\#(Base64.encode(bytes(chain)))","ifName":"eth0","networkName":"net1","netns":"/run/netns/c1","cniArgs":[["IgnoreUnknown","1"]],"capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},"result":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"name":"eth0","sandbox":"/run/netns/c1"}],"ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":0}]}}"#
        try Files.makeDirectories(f.dir.file("cache/results"))
        try Files.write(f.cacheFile, bytes(goCache))
        let cached = try #require(try f.runtime.cachedResult(list, attachment))
        #expect(cached.ips.first?.address.description == "10.1.0.5/24")
        let entry = try #require(f.runtime.cachedAttachments().first)
        #expect(entry.containerID == "ctr1" && entry.config == bytes(chain) && entry.cniArgs == CNIArgs([("IgnoreUnknown", "1")]))
        try f.runtime.del(list, attachment)
        #expect(try f.stdin("first", "DEL")["prevResult"] == parse(firstResult))
        #expect(!Files.exists(f.cacheFile))
    }

    @Test func readsTheLegacyCacheFormatAndConverts() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "0.4.0", "name": "net1", "plugins": [{"type": "first"}]}"#)
        try Files.makeDirectories(f.dir.file("cache/results"))
        try Files.write(f.cacheFile, bytes(firstResult))
        let cached = try #require(try f.runtime.cachedResult(list, attachment))
        #expect(cached.cniVersion == .v0_4_0)
        try f.runtime.check(list, attachment)
        #expect(try f.stdin("first", "CHECK")["prevResult"]?["ips"]?.arrayValue?.first?["version"] == "4")
    }

    // MARK: STATUS

    @Test func statusStopsAtTheFirstPluginNotReady() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.1.0", "name": "net1", "plugins": [{"type": "first"}, {"type": "notready"}, {"type": "second"}]}"#)
        #expect(throws: CNIError(.pluginNotAvailable, #"plugin type="notready" failed (status): no addresses left"#)) {
            try f.runtime.status(list)
        }
        #expect(try f.takeCalls() == ["STATUS first  ", "STATUS notready  "])
        #expect(try f.stdin("first", "STATUS", "") == parse(#"{"cniVersion": "1.1.0", "name": "net1", "type": "first"}"#))
        let env = try f.environment("first", "STATUS", "")
        #expect(env["CNI_CONTAINERID"] == "" && env["CNI_NETNS"] == "" && env["CNI_PATH"] == "\(f.dir.path)/empty:\(f.plugins)")

        let ready = try f.list(#"{"cniVersion": "1.1.0", "name": "net1", "plugins": [{"type": "first"}]}"#)
        try f.runtime.status(ready)
        let old = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "notready"}]}"#)
        try f.runtime.status(old)
        #expect(try f.takeCalls() == ["STATUS first  "])
    }

    // MARK: GC

    @Test func gcDeletesStaleAttachmentsThenCallsGC() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.1.0", "name": "net1", "plugins": [{"type": "first"}, {"type": "old"}]}"#)
        let other = try f.list(#"{"cniVersion": "1.1.0", "name": "net2", "plugins": [{"type": "first"}]}"#)
        var second = attachment
        second.containerID = "ctr2"
        var third = attachment
        third.containerID = "ctr3"
        _ = try f.runtime.add(list, attachment)
        _ = try f.runtime.add(list, second)
        _ = try f.runtime.add(other, third)
        _ = try f.takeCalls()

        try f.runtime.gc(list, validAttachments: [GCAttachment(containerID: "ctr1", ifName: "eth0")])
        #expect(
            try f.takeCalls() == [
                "DEL old ctr2 eth0", "DEL first ctr2 eth0",
                "VERSION first  dummy", "GC first  ", "VERSION old  dummy",
            ])
        // The stale attachment's DEL is made from its cache entry.
        #expect(try f.stdin("first", "DEL", "ctr2")["prevResult"] == parse(secondResult.replacingOccurrences("1.0.0", "1.1.0")))
        #expect(try f.stdin("first", "DEL", "ctr2")["runtimeConfig"] == nil)
        #expect(try f.environment("first", "DEL", "ctr2")["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=web")
        // GC gets the valid attachments under both keys libcni writes.
        let gc = try f.stdin("first", "GC", "")
        let valid = try parse(#"[{"containerID": "ctr1", "ifname": "eth0"}]"#)
        #expect(gc["cni.dev/valid-attachments"] == valid && gc["cni.dev/attachments"] == valid)
        #expect(gc["name"] == "net1" && gc["cniVersion"] == "1.1.0" && gc["prevResult"] == nil)

        #expect(f.runtime.cachedAttachments().map(\.containerID) == ["ctr1", "ctr3"])
    }

    @Test func gcReportsEveryFailure() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "failing"}]}"#)
        var second = attachment
        second.containerID = "ctr2"
        _ = try f.runtime.add(list, attachment)
        _ = try f.runtime.add(list, second)
        do {
            try f.runtime.gc(list, validAttachments: [])
            Issue.record("GC must fail")
        } catch {
            #expect(error.code == 107)
            #expect(error.msg.contains("stale attachment ctr1 eth0") && error.msg.contains("stale attachment ctr2 eth0"))
        }
    }

    @Test func gcDoesNothingWhenDisabled() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.1.0", "name": "net1", "disableGC": true, "plugins": [{"type": "first"}]}"#)
        _ = try f.runtime.add(list, attachment)
        _ = try f.takeCalls()
        try f.runtime.gc(list, validAttachments: [])
        #expect(try f.takeCalls().isEmpty)
        #expect(Files.exists(f.cacheFile))
    }

    @Test func gcBefore110OnlyDeletesStaleAttachments() throws {
        let f = try Fixture()
        let list = try f.list(#"{"cniVersion": "1.0.0", "name": "net1", "plugins": [{"type": "first"}]}"#)
        _ = try f.runtime.add(list, attachment)
        _ = try f.takeCalls()
        try f.runtime.gc(list, validAttachments: [])
        #expect(try f.takeCalls() == ["DEL first ctr1 eth0"])
    }

    // MARK: VERSION and validation

    @Test func versionOfAPlugin() throws {
        let f = try Fixture()
        #expect(try f.runtime.versionInfo(pluginType: "first") == VersionInfo(cniVersion: "1.1.0", supportedVersions: ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]))
        #expect(try f.stdin("first", "VERSION", "") == parse(#"{"cniVersion": "1.1.0"}"#))
        // A plugin from before VERSION existed.
        try f.plugin("ancient", #"VERSION) printf '%s' '{"code":4,"msg":"unknown CNI_COMMAND: VERSION"}'; exit 1 ;;"#)
        #expect(try f.runtime.versionInfo(pluginType: "ancient").supportedVersions == ["0.1.0"])
        #expect(throws: CNIError.self) { try f.runtime.versionInfo(pluginType: "nope") }
    }

    @Test func validateChecksPluginsAndCollectsCapabilities() throws {
        let f = try Fixture()
        let good = try f.list(chain)
        #expect(try f.runtime.validate(good) == ["ips", "portMappings"])
        let bad = try f.list(#"{"cniVersion": "1.1.0", "name": "net1", "plugins": [{"type": "old"}, {"type": "nope"}]}"#)
        do {
            _ = try f.runtime.validate(bad)
            Issue.record("validation must fail")
        } catch {
            #expect(error.msg.contains(#"plugin old does not support config version "1.1.0""#))
            #expect(error.msg.contains(#"failed to find plugin "nope""#))
        }
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

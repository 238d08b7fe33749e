import Addressing
import BerthSupport
import CNI
import Glibc
import JSON
import Namespaces
import TestSupport
import Testing

/// berth's host-local run as an executable: the reference's configuration and on-disk layout,
/// parallel ADDs, crashes, GC and STATUS.
@Suite struct HostLocalTests {
    let dir = try! TemporaryDirectory()
    /// host-local never opens the namespace, but the protocol requires CNI_NETNS for ADD.
    static let netns = "/run/netns/berth-test-unused"

    func config(_ ipam: String, version: String = "1.1.0", extra: String = "") -> String {
        let withDir = ipam.replacingFirst("{", with: #"{"dataDir": "\#(dir.path)", "#)
        return #"{"cniVersion": "\#(version)", "name": "hl-net", "type": "bridge", "ipam": \#(withDir)\#(extra)}"#
    }

    func call(_ command: String, _ config: String, id: String = "c1", args: String? = nil) throws -> PluginOutcome {
        let out = try Subprocess.run(
            Built.path("host-local"),
            environment: PluginCall(command: command, containerID: id, netns: Self.netns, args: args, config: config).environment,
            input: Array(config.utf8))
        return PluginOutcome(status: out.status, stdout: out.stdout, stderr: String(decoding: out.stderr, as: UTF8.self))
    }

    @Test func dualStackAddDelWithReferenceLayout() throws {
        let conf = config(#"{"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}], [{"subnet": "fd77::/64"}]], "routes": [{"dst": "0.0.0.0/0"}]}"#)
        let add = try call("ADD", conf)
        #expect(add.status == 0, "\(add)")
        let result = try CNIResult(parsing: try #require(add.json))
        #expect(result.ips.map(\.address.description) == ["10.77.0.2/24", "fd77::2/64"])
        #expect(result.ips.map { $0.gateway?.description } == ["10.77.0.1", "fd77::1"])
        #expect(result.routes.map(\.destination.description) == ["0.0.0.0/0"])
        #expect(try Files.readText("\(dir.path)/hl-net/10.77.0.2") == "c1\r\neth0")
        #expect(try Files.readText("\(dir.path)/hl-net/fd77::2") == "c1\r\neth0")

        let check = try call("CHECK", config(#"{"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}], [{"subnet": "fd77::/64"}]]}"#, extra: #", "prevResult": \#(add.text)"#))
        #expect(check.status == 0, "\(check)")
        for _ in 0..<2 { #expect(try call("DEL", conf).status == 0) }
        #expect(!Files.exists("\(dir.path)/hl-net/10.77.0.2"))
        #expect(try call("CHECK", conf).status != 0)
    }

    @Test func staticAddressesFromCNIArgsAndCapability() throws {
        let conf = config(#"{"type": "host-local", "subnet": "10.78.0.0/24"}"#)
        let viaArgs = try call("ADD", conf, id: "a", args: "IgnoreUnknown=1;IP=10.78.0.50;K8S_POD_NAME=x")
        #expect(try CNIResult(parsing: try #require(viaArgs.json)).ips.first?.address.description == "10.78.0.50/24")
        let capability = config(#"{"type": "host-local", "subnet": "10.78.0.0/24"}"#, extra: #", "runtimeConfig": {"ips": ["10.78.0.60/24"]}"#)
        let viaCap = try call("ADD", capability, id: "b")
        #expect(try CNIResult(parsing: try #require(viaCap.json)).ips.first?.address.description == "10.78.0.60/24")
        let taken = try call("ADD", conf, id: "c", args: "IP=10.78.0.50")
        #expect(taken.status != 0)
        #expect(taken.json?["msg"]?.stringValue?.contains("10.78.0.50") == true, "\(taken)")
        let unknown = try call("ADD", conf, id: "d", args: "FOO=1")
        #expect(unknown.errorCode == 4, "\(unknown)")
    }

    @Test(arguments: [
        #"{"type": "host-local", "subnet": "10.79.0.1/24"}"#,
        #"{"type": "host-local", "subnet": "10.79.0.0/24", "rangeStart": "10.80.0.1"}"#,
        #"{"type": "host-local", "ranges": [[{"subnet": "10.79.0.0/24"}], [{"subnet": "10.79.0.0/16"}]]}"#,
        #"{"type": "host-local", "subnet": "nonsense"}"#,
        #"{"type": "host-local"}"#,
    ])
    func invalidConfigurationIsCode7AndWritesNothing(_ ipam: String) throws {
        let out = try call("ADD", config(ipam))
        #expect(out.errorCode == 7, "\(out)")
        let written = Files.exists("\(dir.path)/hl-net") ? try Files.list("\(dir.path)/hl-net") : []
        #expect(written.allSatisfy { IPAddress($0) == nil }, "\(written)")
    }

    @Test func exhaustionFailsCleanlyAndStatusSaysSo() throws {
        let conf = config(#"{"type": "host-local", "subnet": "10.81.0.0/30"}"#)  // one usable address
        #expect(try call("STATUS", conf).status == 0)
        #expect(try call("ADD", conf, id: "one").status == 0)
        let full = try call("ADD", conf, id: "two")
        #expect(full.status != 0)
        #expect(full.json?["msg"]?.stringValue?.contains("no IP addresses available") == true, "\(full)")
        let status = try call("STATUS", conf)
        #expect(status.errorCode == 50, "\(status)")
    }

    @Test func partialFailureReleasesTheFirstRangeSet() throws {
        // The second range set is full, so the first one's address must be given back.
        let conf = config(#"{"type": "host-local", "ranges": [[{"subnet": "10.82.0.0/24"}], [{"subnet": "10.83.0.0/30"}]]}"#)
        #expect(try call("ADD", conf, id: "fill").status == 0)
        let failed = try call("ADD", conf, id: "victim")
        #expect(failed.status != 0)
        let holders = try Files.list("\(dir.path)/hl-net").compactMap { IPAddress($0) }
        #expect(holders.count == 2, "\(holders)")  // only "fill"'s two addresses
    }

    @Test func gcReleasesWhatNoValidAttachmentOwns() throws {
        let conf = config(#"{"type": "host-local", "subnet": "10.84.0.0/24"}"#)
        for id in ["keep", "drop1", "drop2"] { #expect(try call("ADD", conf, id: id).status == 0) }
        let gcConf = config(#"{"type": "host-local", "subnet": "10.84.0.0/24"}"#, extra: #", "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]"#)
        let gc = try call("GC", gcConf)
        #expect(gc.status == 0, "\(gc)")
        let left = try Files.list("\(dir.path)/hl-net").compactMap { IPAddress($0) }
        #expect(left.map(\.description) == ["10.84.0.2"])
    }

    @Test func switchesFromTheReferencePluginBothWays() throws {
        // The reference (1.1.1) speaks CNI up to 1.0.0.
        let conf = config(#"{"type": "host-local", "subnet": "10.85.0.0/24"}"#, version: "1.0.0")
        let env = { (command: String, id: String) in PluginCall(command: command, containerID: id, netns: Self.netns, config: conf).environment }
        // The reference allocates; berth continues round-robin after it and releases its entry.
        let ref = try Subprocess.run(Reference.path("host-local"), environment: env("ADD", "ref"), input: Array(conf.utf8))
        #expect(ref.status == 0)
        let ours = try call("ADD", conf, id: "ours")
        #expect(try CNIResult(parsing: try #require(ours.json)).ips.first?.address.description == "10.85.0.3/24")
        #expect(try call("DEL", conf, id: "ref").status == 0)
        #expect(!Files.exists("\(dir.path)/hl-net/10.85.0.2"))
        // And the reference releases what berth allocated.
        let refDel = try Subprocess.run(Reference.path("host-local"), environment: env("DEL", "ours"), input: Array(conf.utf8))
        #expect(refDel.status == 0)
        #expect(!Files.exists("\(dir.path)/hl-net/10.85.0.3"))
    }

    /// 32 ADDs at once on one network: 32 distinct addresses, files intact.
    @Test func parallelAddsGetDistinctAddresses() throws {
        let conf = config(#"{"type": "host-local", "subnet": "10.86.0.0/24"}"#)
        let outcomes = try runConcurrently((0..<32).map { i in
            (Built.path("host-local"), PluginCall(command: "ADD", containerID: "p\(i)", netns: Self.netns, config: conf).environment, conf)
        })
        #expect(outcomes.allSatisfy { $0.status == 0 }, "\(outcomes.filter { $0.status != 0 })")
        let addresses = try outcomes.map { try CNIResult(parsing: try JSON.parse($0.stdout)).ips[0].address.address }
        #expect(Set(addresses).count == 32)
        let files = try Files.list("\(dir.path)/hl-net").compactMap { IPAddress($0) }
        #expect(files.count == 32)
        for ip in files {
            let owner = try Files.readText("\(dir.path)/hl-net/\(ip)")
            #expect(owner.hasPrefix("p") && owner.hasSuffix("\r\neth0"), "\(owner)")
        }
    }

    /// ADDs killed with SIGKILL at random points never yield a duplicate address, and DEL or GC
    /// afterwards leaves nothing of the killed ones.
    @Test func killedAddsLeaveNoDuplicatesAndAreCleanable() throws {
        let conf = config(#"{"type": "host-local", "subnet": "10.87.0.0/24"}"#)
        var generator = SystemRandomNumberGenerator()
        var killed: [String] = [], survived: [(String, IPAddress)] = []
        for round in 0..<6 {
            var jobs: [(id: String, pid: Int32, output: String)] = []
            for i in 0..<8 {
                let id = "k\(round)-\(i)"
                let (pid, output) = try spawnPlugin(Built.path("host-local"), PluginCall(command: "ADD", containerID: id, netns: Self.netns, config: conf), dir: dir.path)
                jobs.append((id, pid, output))
            }
            usleep(UInt32.random(in: 0...4000, using: &generator))
            for (n, job) in jobs.enumerated() where n % 2 == 0 { kill(job.pid, SIGKILL) }
            for job in jobs {
                let status = try Subprocess.wait(job.pid)
                if status == 0, let result = try? CNIResult(parsing: try JSON.parse(try Files.read(job.output))) {
                    survived.append((job.id, result.ips[0].address.address))
                } else {
                    killed.append(job.id)
                }
            }
        }
        #expect(Set(survived.map(\.1)).count == survived.count, "duplicate address among \(survived)")
        // DEL every killed attachment (as a runtime must), then GC with the survivors as valid.
        for id in killed { #expect(try call("DEL", conf, id: id).status == 0) }
        let valid = survived.map { #"{"containerID": "\#($0.0)", "ifname": "eth0"}"# }.joined(separator: ",")
        #expect(try call("GC", config(#"{"type": "host-local", "subnet": "10.87.0.0/24"}"#, extra: #", "cni.dev/valid-attachments": [\#(valid)]"#)).status == 0)
        let files = Set(try Files.list("\(dir.path)/hl-net").compactMap { IPAddress($0) })
        #expect(files == Set(survived.map(\.1)))
    }
}

/// Starts a plugin with its config on stdin (from a file) and stdout to a file, optionally in a
/// namespace; returns the pid and the output file.
func spawnPlugin(_ exe: String, _ call: PluginCall, dir: String, in host: NetworkNamespace? = nil) throws -> (Int32, String) {
    let tag = "\(call.containerID)-\(UInt32.random(in: 0...UInt32.max))"
    let input = "\(dir)/in-\(tag)", output = "\(dir)/out-\(tag)"
    try Files.write(input, Array(call.config.utf8))
    let stdin = try FileDescriptor.open(input, O_RDONLY)
    let stdout = try FileDescriptor.open(output, O_WRONLY | O_CREAT | O_TRUNC)
    let devnull = try FileDescriptor.open("/dev/null", O_WRONLY)
    let pid = try Subprocess.spawn(
        exe, environment: call.environment, stdin: stdin.rawValue, stdout: stdout.rawValue, stderr: devnull.rawValue,
        netnsFD: host?.fd ?? -1)
    return (pid, output)
}

/// Runs several (executable, environment, stdin) jobs at the same time and waits for all.
func runConcurrently(_ jobs: [(String, [String: String], String)], in host: NetworkNamespace? = nil) throws -> [PluginOutcome] {
    let dir = try TemporaryDirectory()
    let started = try jobs.map { job in
        try spawnPlugin(job.0, PluginCall(command: job.1["CNI_COMMAND"] ?? "", containerID: job.1["CNI_CONTAINERID"] ?? "x", config: job.2)
            .with(environment: job.1), dir: dir.path, in: host)
    }
    return try started.map { pid, output in
        let status = try Subprocess.wait(pid)
        return PluginOutcome(status: status, stdout: try Files.read(output), stderr: "")
    }
}

extension PluginCall {
    /// This call with its environment replaced wholesale.
    func with(environment: [String: String]) -> PluginCall {
        var copy = self
        copy.overrideEnvironment = environment
        return copy
    }
}

extension String {
    func replacingFirst(_ target: Character, with replacement: String) -> String {
        guard let i = firstIndex(of: target) else { return self }
        return String(self[..<i]) + replacement + String(self[index(after: i)...])
    }
}

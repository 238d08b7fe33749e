import Addressing
import BerthSupport
import Firewall
import Glibc
import Namespaces
import Testing

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

func timed(_ body: () throws -> Void) throws -> Duration {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return start.duration(to: clock.now)
}

func summary(_ samples: [Duration]) -> String {
    let ms = samples.map(milliseconds).sorted()
    func at(_ q: Double) -> Double { ms[min(ms.count - 1, Int(Double(ms.count) * q))] }
    func f(_ v: Double) -> String { String(Int((v * 1000).rounded())) + " µs" }
    return "median \(f(at(0.5))), p90 \(f(at(0.9))), min \(f(ms[0])) (n=\(ms.count))"
}

/// Figures for the report, printed; nothing is asserted about speed (the machine is shared).
/// Debug builds: the Swift side (compiling batches, decoding listings) is several times faster
/// optimized; the kernel side is the same.
/// Run alone: swift test --skip-build --filter FirewallTimingTests
@Suite(.serialized) struct FirewallTimingTests {
    @Test func commitOfTheWholeRuleset() throws {
        var compile: [Duration] = [], commit: [Duration] = [], nftFile: [Duration] = []
        var listing = ""
        for _ in 0..<30 {
            let ns = try NetworkNamespace.createAnonymous()
            let socket = try FirewallSocket.open(in: ns)
            let batch = BerthRuleset.installation()
            compile.append(try timed { _ = try batch.compile() })
            commit.append(try timed { try socket.commit(batch) })
            if listing.isEmpty { listing = try nft(ns, "list", "ruleset").out }
        }
        // The same table through nft (a process per change, as netavark does), for comparison.
        let path = "/tmp/berth-firewall-timing-\(getpid()).nft"
        try Files.write(path, Array(listing.utf8))
        defer { try? Files.remove(path) }
        for _ in 0..<10 {
            let ns = try NetworkNamespace.createAnonymous()
            var status: Int32 = -1
            nftFile.append(try timed { status = try nft(ns, "-f", path).status })
            #expect(status == 0)
        }
        let messages = try BerthRuleset.installation().compile().messages.count
        print("berth ruleset, \(messages) messages: compile \(summary(compile)); commit incl. compile \(summary(commit)); nft -f \(summary(nftFile))")
    }

    @Test func addingOneElementDoesNotDependOnSetSize() throws {
        let berth = BerthRuleset.table
        var lines: [String] = []
        for size in [1, 1_000, 10_000] {
            let ns = try NetworkNamespace.createAnonymous()
            let socket = try FirewallSocket.open(in: ns)
            var fill = BerthRuleset.installation()
            let elements = (0..<size).map { (i: Int) -> Element in
                let address = IPv4Address(10, 88, UInt8(i / 250 % 250), UInt8(i % 250 + 2))
                let owner = Owner(network: "n", container: "c\(i)", ifname: "eth0")
                return Element(key: [.tcp, .integer(UInt64(1024 + i))], to: [.ipv4(address), 80], comment: owner.comment)
            }
            fill.add(elements: elements, to: BerthRuleset.portsV4)
            let fillTime = try timed { try socket.commit(fill) }
            var add: [Duration] = []
            for j in 0..<50 {
                var batch = Batch(berth)
                batch.add(elements: [Element(key: [.udp, .integer(UInt64(2000 + j))], to: [.ipv4(IPv4Address(10, 89, 0, 2)), 53], comment: "owner 0000000000000000")], to: BerthRuleset.portsV4, mode: .create)
                add.append(try timed { try socket.commit(batch) })
            }
            var count = 0
            let list = try timed { count = try socket.elements(of: BerthRuleset.portsV4, in: berth).count }
            #expect(count == size + 50)
            lines.append("ports_v4 holding \(size): add one element \(summary(add)); filling it took \(summary([fillTime])); listing all \(summary([list]))")
        }
        print(lines.joined(separator: "\n"))
    }
}

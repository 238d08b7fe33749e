import BerthSupport
import Glibc
import Namespaces
import Testing

@Suite struct NamespaceTests {
    @Test func anonymousNamespaceHasOnlyLoopbackAndCallerStaysHome() throws {
        let before = try NetworkNamespace.current().identity()
        let ns = try NetworkNamespace.createAnonymous()
        #expect(try ns.identity() != before)
        #expect(try NetworkNamespace.current().identity() == before)
        let out = try Subprocess.run("/usr/sbin/ip", arguments: ["-o", "link"], environment: [:], netnsFD: ns.fd)
        #expect(out.status == 0)
        let lines = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("lo:") == true)
    }

    @Test func sysctlIsPerNamespace() throws {
        let ns = try NetworkNamespace.createAnonymous()
        #expect(try ns.readSysctl("net/ipv4/ip_forward") == "0")
        try ns.writeSysctl("net/ipv4/ip_forward", "1")
        #expect(try ns.readSysctl("net/ipv4/ip_forward") == "1")
    }

    @Test func pinnedNamespaceIsVisibleToIpNetns() throws {
        let name = "berth-test-pin-\(getpid())"
        let ns = try NetworkNamespace.create(name: name)
        defer { try? NetworkNamespace.delete(name: name) }
        let out = try Subprocess.run("/usr/sbin/ip", arguments: ["netns", "list"], environment: [:])
        #expect(String(decoding: out.stdout, as: UTF8.self).contains(name))
        #expect(ns.path == "/run/netns/\(name)")
        try NetworkNamespace.delete(name: name)
        #expect(!Files.exists("/run/netns/\(name)"))
    }
}

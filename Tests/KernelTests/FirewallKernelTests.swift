import BerthSupport
import Firewall
import JSON
import Namespaces
import Testing

/// `nft` in the test's namespace: an observer independent of the Firewall module.
func nft(_ ns: NetworkNamespace, _ arguments: String...) throws -> (status: Int32, out: String, err: String) {
    let r = try Subprocess.run("/usr/sbin/nft", arguments: arguments, environment: [:], netnsFD: ns.fd)
    return (r.status, String(decoding: r.stdout, as: UTF8.self), String(decoding: r.stderr, as: UTF8.self))
}

@Suite struct FirewallKernelTests {
    @Test func smoke() throws {
        let ns = try NetworkNamespace.createAnonymous()
        let socket = try FirewallSocket.open(in: ns)
        try socket.commit(BerthRuleset.installation())
        let r = try nft(ns, "list", "ruleset")
        print(r.out, r.err)
    }
}

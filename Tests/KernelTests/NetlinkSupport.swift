import Addressing
import BerthSupport
import JSON
import Namespaces
import Netlink
import Testing

/// Runs `ip -j ARGS` inside a namespace: an observer independent of the code under test.
func ipJSON(_ namespace: NetworkNamespace, _ arguments: String...) throws -> [JSON] {
    let outcome = try Subprocess.run("/usr/sbin/ip", arguments: ["-j"] + arguments, environment: [:], netnsFD: namespace.fd)
    guard outcome.status == 0 else {
        throw SystemError("ip \(arguments.joined(separator: " "))", errno: 0, kernelMessage: String(decoding: outcome.stderr, as: UTF8.self))
    }
    // `ip -j` prints nothing at all for an empty result in some versions.
    if outcome.stdout.allSatisfy({ $0 == 0x0a || $0 == 0x20 }) { return [] }
    return try JSON.parse(outcome.stdout).arrayValue ?? []
}

/// The one object `ip -j ... show DEV` printed.
func ipObject(_ namespace: NetworkNamespace, _ arguments: String...) throws -> JSON {
    let outcome = try Subprocess.run("/usr/sbin/ip", arguments: ["-j"] + arguments, environment: [:], netnsFD: namespace.fd)
    let list = try JSON.parse(outcome.stdout).arrayValue ?? []
    try #require(list.count == 1, "ip -j \(arguments) printed \(list.count) objects")
    return list[0]
}

/// Runs another iproute2 tool (`bridge -j`) in a namespace.
func toolJSON(_ namespace: NetworkNamespace, _ tool: String, _ arguments: String...) throws -> [JSON] {
    let outcome = try Subprocess.run(tool, arguments: ["-j"] + arguments, environment: [:], netnsFD: namespace.fd)
    if outcome.stdout.allSatisfy({ $0 == 0x0a || $0 == 0x20 }) { return [] }
    return try JSON.parse(outcome.stdout).arrayValue ?? []
}

/// The addresses `ip -j addr show dev NAME` lists, as "local/prefixlen".
func ipAddresses(_ namespace: NetworkNamespace, _ device: String) throws -> Set<String> {
    let object = try ipObject(namespace, "addr", "show", "dev", device)
    return Set((object["addr_info"]?.arrayValue ?? []).compactMap { info in
        guard let local = info["local"]?.stringValue, let prefix = info["prefixlen"]?.intValue else { return nil }
        return "\(local)/\(prefix)"
    })
}

/// Expects a SystemError with the given errno and returns it for further checks.
@discardableResult
func expectSystemError(_ errno: Int32, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
    -> SystemError?
{
    do {
        try body()
        Issue.record("expected errno \(errno), got success", sourceLocation: sourceLocation)
    } catch let error as SystemError {
        #expect(error.errno == errno, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a SystemError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

func net(_ text: String) -> IPNetwork { IPNetwork(text)! }
func ip(_ text: String) -> IPAddress { IPAddress(text)! }

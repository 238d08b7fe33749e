import BerthSupport
import CNI
import Glibc
import JSON
import Synchronization
@_exported import TestSupport
import Testing

extension JSON {
    var text: String { compactString }
}

func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A plugin built from closures that records which operations ran.
final class ScriptedPlugin: CNIPlugin, Sendable {
    let supportedVersions: [CNIVersion]
    let about: String
    let onAdd: @Sendable (PluginRequest) throws -> CNIResult
    let onOther: @Sendable (PluginRequest) throws -> Void
    private let log = Mutex<[String]>([])
    private let attachments = Mutex<[GCAttachment]?>(nil)

    init(
        supportedVersions: [CNIVersion] = CNIVersion.all, about: String = "",
        onAdd: @escaping @Sendable (PluginRequest) throws -> CNIResult = { _ in sampleResult },
        onOther: @escaping @Sendable (PluginRequest) throws -> Void = { _ in }
    ) {
        self.supportedVersions = supportedVersions
        self.about = about
        self.onAdd = onAdd
        self.onOther = onOther
    }

    var calls: [String] { log.withLock { $0 } }
    var gcAttachments: [GCAttachment]? { attachments.withLock { $0 } }

    func add(_ request: PluginRequest) throws -> CNIResult {
        log.withLock { $0.append("ADD") }
        return try onAdd(request)
    }
    func del(_ request: PluginRequest) throws {
        log.withLock { $0.append("DEL") }
        try onOther(request)
    }
    func check(_ request: PluginRequest) throws {
        log.withLock { $0.append("CHECK") }
        try onOther(request)
    }
    func status(_ request: PluginRequest) throws {
        log.withLock { $0.append("STATUS") }
        try onOther(request)
    }
    func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {
        log.withLock { $0.append("GC") }
        attachments.withLock { $0 = validAttachments }
        try onOther(request)
    }
}

let sampleResult = CNIResult(
    cniVersion: .v1_0_0,
    interfaces: [CNIResult.Interface(name: "eth0", mac: "0a:58:0a:01:00:05", sandbox: "/run/netns/c1")],
    ips: [CNIResult.IPConfig(address: IPNetworkLiteral("10.1.0.5/24"), gateway: IPAddressLiteral("10.1.0.1"), interface: 0)],
    routes: [CNIResult.Route(destination: IPNetworkLiteral("0.0.0.0/0"))])

import Addressing

// Test literals: a bad literal is a test bug, so these trap.
func IPNetworkLiteral(_ text: String) -> IPNetwork { IPNetwork(text)! }
func IPAddressLiteral(_ text: String) -> IPAddress { IPAddress(text)! }

/// The environment of a well-formed invocation.
func cniEnvironment(
    _ command: String, containerID: String = "ctr1", netns: String = "/run/netns/c1", ifName: String = "eth0",
    path: String = "/opt/cni/bin", args: String? = nil
) -> [String: String] {
    var env = [
        "CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": netns, "CNI_IFNAME": ifName,
        "CNI_PATH": path,
    ]
    if let args { env["CNI_ARGS"] = args }
    return env
}

/// The error object a plugin printed.
struct PrintedError {
    let code: Int64
    let msg: String
    let details: String?
    let cniVersion: String?

    init(_ stdout: [UInt8]) throws {
        let value = try JSON.parse(stdout)
        code = try #require(value["code"]?.intValue)
        msg = try #require(value["msg"]?.stringValue)
        details = value["details"]?.stringValue
        cniVersion = value["cniVersion"]?.stringValue
    }
}

import BerthSupport
import Glibc
import Synchronization

/// A CNI operation (`CNI_COMMAND`).
public enum Command: String, Sendable, CaseIterable {
    case add = "ADD"
    case del = "DEL"
    case check = "CHECK"
    case status = "STATUS"
    case gc = "GC"
    case version = "VERSION"
}

/// Where a plugin's diagnostics go: the process's stderr, or a buffer (tests, PluginMain.run).
/// Delegated plugins' stderr is forwarded here too, as the specification asks.
public final class OutputSink: Sendable {
    private let buffer = Mutex<[UInt8]>([])
    private let fd: Int32?

    private init(fd: Int32?) { self.fd = fd }

    /// Writes straight to file descriptor 2.
    public static func standardError() -> OutputSink { OutputSink(fd: STDERR_FILENO) }
    /// Keeps what is written; read it with `collected`.
    public static func collecting() -> OutputSink { OutputSink(fd: nil) }

    public func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if let fd { writeAll(fd: fd, bytes) } else { buffer.withLock { $0 += bytes } }
    }

    public func write(_ text: String) { write(Array(text.utf8)) }

    /// One line, newline added.
    public func log(_ line: String) { write(line + "\n") }

    public var collected: [UInt8] { buffer.withLock { $0 } }
}

/// Everything a plugin receives for one invocation: the parameters from the environment, the
/// configuration from stdin, and the means to delegate and to log.
public struct PluginRequest: Sendable {
    public let command: Command
    public let containerID: String
    /// Empty when the runtime gave none (allowed for DEL, STATUS and GC).
    public let netns: String
    public let ifName: String
    /// `CNI_ARGS` as given; `cniArgs()` parses it.
    public let argsText: String
    /// `CNI_PATH`, split on ':'.
    public let path: [String]
    /// The configuration bytes exactly as received (what delegates get by default).
    public let stdin: [UInt8]
    public let config: NetworkConfig
    /// The configuration's version, already checked against the plugin's supported versions.
    public let version: CNIVersion
    /// The plugin's whole environment, which delegated plugins inherit.
    public let environment: [String: String]
    public let stderr: OutputSink

    public init(
        command: Command, containerID: String = "", netns: String = "", ifName: String = "", argsText: String = "",
        path: [String] = [], stdin: [UInt8], config: NetworkConfig, version: CNIVersion,
        environment: [String: String] = [:], stderr: OutputSink = .collecting()
    ) {
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifName = ifName
        self.argsText = argsText
        self.path = path
        self.stdin = stdin
        self.config = config
        self.version = version
        self.environment = environment
        self.stderr = stderr
    }

    /// `CNI_ARGS` parsed (errors are code 4 and name the pair).
    public func cniArgs() throws(CNIError) -> CNIArgs { try CNIArgs(parsing: argsText) }

    /// A CNI error for this invocation's failure, mapped as PluginMain maps it.
    public func cniError(_ error: any Error) -> CNIError {
        CNIError(mapping: error, context: ErrorContext(command: command, netns: netns))
    }
}

/// A CNI plugin: what it does for each operation. PluginMain does the protocol around it.
public protocol CNIPlugin {
    /// The specification versions the plugin accepts; every version this library knows unless
    /// the plugin says otherwise.
    var supportedVersions: [CNIVersion] { get }
    /// Printed on stderr when the plugin is run without CNI_COMMAND ("CNI plugin bridge v1").
    var about: String { get }

    /// Creates or adjusts the attachment and returns the result (printed in the configuration's
    /// version by PluginMain).
    func add(_ request: PluginRequest) throws -> CNIResult
    /// Removes what ADD made; must succeed when it is already gone.
    func del(_ request: PluginRequest) throws
    /// Confirms the attachment is as `request.config.prevResult` says.
    func check(_ request: PluginRequest) throws
    /// Reports readiness for ADD: return to say ready, throw code 50, 51 or 11 otherwise.
    func status(_ request: PluginRequest) throws
    /// Removes resources that belong to no attachment in `validAttachments`.
    func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws
}

extension CNIPlugin {
    public var supportedVersions: [CNIVersion] { CNIVersion.all }
    public var about: String { "" }
    public func status(_ request: PluginRequest) throws {}
    public func gc(_ request: PluginRequest, validAttachments: [GCAttachment]) throws {}
}

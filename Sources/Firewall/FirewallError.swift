import BerthSupport
import Glibc

/// Everything the Firewall module throws: what was attempted, the errno, and, when the kernel
/// rejected a message of a batch, which message (and which attribute of it) it rejected.
///
/// "add element to set ports_v4 (element 2: tcp . 8080): File exists (EEXIST)".
public struct FirewallError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was attempted: "add element to set ports_v4", "open netfilter socket".
    public var operation: String
    /// The part of the request the kernel pointed at, when it did ("element 2: tcp . 8080",
    /// "expression 3 (lookup): set").
    public var attribute: String?
    public var errno: Int32
    /// The kernel's extended-ACK text (nf_tables rarely sends any).
    public var kernelMessage: String?
    /// Index of the failing operation in `Batch.operations`; nil for errors outside a batch.
    public var operationIndex: Int?
    /// Further messages of the same batch that the kernel rejected too.
    public var alsoFailed: [FirewallError]

    public init(
        _ operation: String, attribute: String? = nil, errno: Int32, kernelMessage: String? = nil,
        operationIndex: Int? = nil, alsoFailed: [FirewallError] = []
    ) {
        self.operation = operation
        self.attribute = attribute
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.operationIndex = operationIndex
        self.alsoFailed = alsoFailed
    }

    /// A request that cannot be expressed (bad value, unknown set); nothing was sent.
    static func invalid(_ what: String) -> FirewallError {
        FirewallError(what, errno: EINVAL)
    }

    /// The calling thread's errno after a failed system call.
    static func system(_ operation: String) -> FirewallError {
        FirewallError(operation, errno: Glibc.errno)
    }

    public var description: String {
        var text = operation
        if let attribute { text += " (\(attribute))" }
        text += ": \(errnoDescription(errno))"
        if let kernelMessage, !kernelMessage.isEmpty { text += " (kernel: \(kernelMessage))" }
        if !alsoFailed.isEmpty {
            text += "; also failed: " + alsoFailed.map(\.description).joined(separator: "; ")
        }
        return text
    }
}

extension FirewallError {
    init(_ error: SystemError) {
        self.init(
            error.operation + (error.object.map { " \($0)" } ?? ""), errno: error.errno,
            kernelMessage: error.kernelMessage)
    }
}

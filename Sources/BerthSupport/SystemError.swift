import Glibc

/// A failed system call or kernel request: what was attempted, on what, and the errno the
/// kernel returned, plus the kernel's own words when it gave any (netlink extended ACK).
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public var operation: String
    public var object: String?
    public var errno: Int32
    public var kernelMessage: String?

    public init(_ operation: String, object: String? = nil, errno: Int32, kernelMessage: String? = nil) {
        self.operation = operation
        self.object = object
        self.errno = errno
        self.kernelMessage = kernelMessage
    }

    /// The error for the calling thread's current errno.
    public static func current(_ operation: String, object: String? = nil) -> SystemError {
        SystemError(operation, object: object, errno: Glibc.errno)
    }

    public var description: String {
        var text = operation
        if let object { text += " \(object)" }
        text += ": \(errnoDescription(errno))"
        if let kernelMessage, !kernelMessage.isEmpty { text += " (kernel: \(kernelMessage))" }
        return text
    }
}

/// "No such file or directory (ENOENT)".
public func errnoDescription(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    if let name = errnoNames[code] { return "\(text) (\(name))" }
    return "\(text) (errno \(code))"
}

// On Linux ENOTSUP is EOPNOTSUPP (and EWOULDBLOCK is EAGAIN): each value may appear once.
private let errnoNames: [Int32: String] = [
    EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF",
    EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST",
    ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EINVAL: "EINVAL", ENOSPC: "ENOSPC", ERANGE: "ERANGE",
    EOPNOTSUPP: "EOPNOTSUPP", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL",
    ENETUNREACH: "ENETUNREACH", ENOBUFS: "ENOBUFS", ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED",
    EHOSTUNREACH: "EHOSTUNREACH", ENOTEMPTY: "ENOTEMPTY", EMSGSIZE: "EMSGSIZE",
    EAFNOSUPPORT: "EAFNOSUPPORT", EPROTONOSUPPORT: "EPROTONOSUPPORT", ENOEXEC: "ENOEXEC",
    ELOOP: "ELOOP", ENAMETOOLONG: "ENAMETOOLONG", ENFILE: "ENFILE", EMFILE: "EMFILE", ECHILD: "ECHILD",
]

/// Retries a system call interrupted by a signal.
@inline(__always)
public func retryingOnInterrupt<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result >= 0 || Glibc.errno != EINTR { return result }
    }
}

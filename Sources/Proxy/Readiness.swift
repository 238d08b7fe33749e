import BerthSupport
import Glibc

/// docker-proxy's readiness protocol: whoever starts the proxy passes the write end of a pipe
/// as fd 3 and reads "0\n" once the proxy listens, or "1\n" and the error text if it failed
/// (the proxy then exits non-zero). Without an fd 3 the proxy just runs.
public struct Readiness: Sendable {
    private let fd: Int32?

    /// Must run before the process opens anything, or fd 3 could be a descriptor of its own.
    public static func inherited() -> Readiness {
        Readiness(fd: fcntl(3, F_GETFD) >= 0 ? 3 : nil)
    }

    public func ready() { report("0\n") }

    public func failed(_ message: String) { report("1\n\(message)") }

    private func report(_ text: String) {
        guard let fd else { return }
        writeAll(fd: fd, Array(text.utf8))
        close(fd)
    }
}

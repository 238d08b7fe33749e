import BerthSupport
import CBerth
import Glibc

/// Starting berth-dns in the background and knowing it listens before returning: the parent
/// starts the server (`--foreground`) in a new session with its stdout on a pipe, and waits
/// for the server's "ready" line (or its error, or the pipe closing).
public enum Daemon {
    static let readyLine = "berth-dns ready"

    /// Returns the exit status for the parent: 0 once the server is ready.
    public static func start(arguments: [String]) -> Int32 {
        let executable = Files.currentExecutable() ?? CommandLine.arguments[0]
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else {
            writeAll(fd: STDERR_FILENO, Array("berth-dns: pipe: \(errnoDescription(errno))\n".utf8))
            return 1
        }
        // The server logs to its log file itself; its stderr goes nowhere, so it never holds the
        // caller's stderr open (a runtime reading a plugin's stderr would wait for it forever).
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        do {
            _ = try Subprocess.spawn(
                executable, arguments: arguments, environment: processEnvironment(), stdin: null, stdout: fds[1],
                stderr: null, newSession: true)
        } catch {
            close(fds[0])
            close(fds[1])
            writeAll(fd: STDERR_FILENO, Array("berth-dns: \(error)\n".utf8))
            return 1
        }
        close(fds[1])
        let output = (try? readAll(fd: fds[0])) ?? []
        close(fds[0])
        let text = String(decoding: output, as: UTF8.self)
        if text.contains(readyLine) { return 0 }
        let message = text.isEmpty ? "the server exited before it was ready" : text
        writeAll(fd: STDERR_FILENO, Array("berth-dns: \(message)\n".utf8))
        return text.hasPrefix("berth-dns: no network") ? 0 : 1
    }

    /// Tells whoever started the server that it listens, then lets go of stdout.
    public static func reportReady() {
        writeAll(fd: STDOUT_FILENO, Array("\(readyLine)\n".utf8))
        detachStandardOutput()
    }

    public static func reportFailure(_ message: String) {
        Log.error(message)
        writeAll(fd: STDOUT_FILENO, Array("berth-dns: \(message)\n".utf8))
    }

    /// A pipe's reader may be gone: stdout goes to /dev/null from here on.
    private static func detachStandardOutput() {
        var st = stat()
        guard fstat(STDOUT_FILENO, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else { return }
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if null >= 0 {
            dup2(null, STDOUT_FILENO)
            close(null)
        }
    }
}

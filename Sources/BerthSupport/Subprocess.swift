import CBerth
import Glibc

/// Runs other programs (CNI plugins, IPAM delegates) the way a CNI runtime does: environment,
/// stdin, captured stdout/stderr, optionally inside another network namespace. The fork-to-exec
/// stage is C (CBerth/spawn.c) so it stays async-signal-safe.
public enum Subprocess {
    public struct Outcome: Sendable {
        /// Exit status, or 128 + signal number when killed by a signal.
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
    }

    /// Runs `path` to completion, writing `input` to its stdin.
    public static func run(
        _ path: String, arguments: [String] = [], environment: [String: String],
        input: [UInt8] = [], netnsFD: Int32 = -1
    ) throws -> Outcome {
        // A child that exits without reading its stdin must not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let stdinPipe = try makePipe(), stdoutPipe = try makePipe(), stderrPipe = try makePipe()
        let childEnds = [stdinPipe.read, stdoutPipe.write, stderrPipe.write]
        let pid: Int32
        do {
            pid = try spawn(
                path, arguments: arguments, environment: environment,
                stdin: childEnds[0], stdout: childEnds[1], stderr: childEnds[2], netnsFD: netnsFD)
        } catch {
            [stdinPipe.read, stdinPipe.write, stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write]
                .forEach { close($0) }
            throw error
        }
        // Close our copies of the child's ends now, or we would never see end-of-file.
        childEnds.forEach { close($0) }
        let (out, err) = pump(input: input, stdin: stdinPipe.write, stdout: stdoutPipe.read, stderr: stderrPipe.read)
        return Outcome(status: try wait(pid), stdout: out, stderr: err)
    }

    /// Starts `path` and returns its pid without waiting. `extraDescriptors` become the child's
    /// descriptors 3, 4, ... (a readiness pipe, a listening socket); nothing else is inherited
    /// unless it lacks O_CLOEXEC.
    public static func spawn(
        _ path: String, arguments: [String] = [], environment: [String: String],
        stdin: Int32 = -1, stdout: Int32 = -1, stderr: Int32 = -1, netnsFD: Int32 = -1, newSession: Bool = false,
        extraDescriptors: [Int32] = []
    ) throws -> Int32 {
        let argv = [path] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        return try withCStrings(argv) { cArgv in
            try withCStrings(envp) { cEnvp in
                try path.withCString { cPath in
                    try extraDescriptors.withUnsafeBufferPointer { extra in
                    var attr = berth_spawn_attr(
                        path: cPath, argv: cArgv, envp: cEnvp, stdin_fd: stdin, stdout_fd: stdout,
                        stderr_fd: stderr, netns_fd: netnsFD, new_session: newSession ? 1 : 0, cwd: nil,
                        extra_fds: extra.baseAddress, n_extra_fds: Int32(extra.count))
                    var pid: Int32 = 0
                    var step: UnsafePointer<CChar>? = nil
                    let rc = berth_spawn(&attr, &pid, &step)
                    guard rc == 0 else {
                        let what = step.map { String(cString: $0) } ?? "fork"
                        throw SystemError("spawn (\(what))", object: path, errno: -rc)
                    }
                    return pid
                    }
                }
            }
        }
    }

    /// Waits for a child and returns its exit status (128 + signal if it was killed).
    public static func wait(_ pid: Int32) throws -> Int32 {
        var status: Int32 = 0
        guard retryingOnInterrupt({ waitpid(pid, &status, 0) }) == pid else {
            throw SystemError.current("waitpid", object: String(pid))
        }
        let low = status & 0x7f
        return low == 0 ? (status >> 8) & 0xff : 128 + low
    }

    /// Finds an executable by name in a list of directories.
    public static func find(_ name: String, in directories: [String]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in directories where !dir.isEmpty {
            let candidate = dir.hasSuffix("/") ? dir + name : "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else { throw SystemError.current("pipe2") }
        return (fds[0], fds[1])
    }

    /// Feeds stdin and drains stdout and stderr together, so no side can block the other.
    /// Takes ownership of the three descriptors and closes each as soon as it is done.
    private static func pump(input: [UInt8], stdin: Int32, stdout: Int32, stderr: Int32) -> ([UInt8], [UInt8]) {
        var open: [Int32: Bool] = [stdin: true, stdout: true, stderr: true]
        var written = 0
        var out: [UInt8] = [], err: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func finish(_ fd: Int32) { close(fd); open[fd] = false }
        if input.isEmpty { finish(stdin) } else { _ = fcntl(stdin, F_SETFL, O_NONBLOCK) }
        while open.values.contains(true) {
            var fds: [pollfd] = []
            if open[stdin]! { fds.append(pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)) }
            for fd in [stdout, stderr] where open[fd]! { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if retryingOnInterrupt({ poll(&fds, nfds_t(fds.count), -1) }) < 0 { break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == stdin {
                    let n = input.withUnsafeBytes { write(stdin, $0.baseAddress! + written, input.count - written) }
                    if n > 0 { written += n }
                    if (n < 0 && errno != EAGAIN && errno != EINTR) || written == input.count { finish(stdin) }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if entry.fd == stdout { out += buffer[0..<n] } else { err += buffer[0..<n] }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    finish(entry.fd)
                }
            }
        }
        for (fd, isOpen) in open where isOpen { close(fd) }
        return (out, err)
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try (pointers + [nil]).withUnsafeBufferPointer { try body($0.baseAddress!) }
}

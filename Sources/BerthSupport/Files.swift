public import Glibc

/// Small file-system helpers over plain system calls.
public enum Files {
    public static func read(_ path: String) throws -> [UInt8] {
        try FileDescriptor.open(path, O_RDONLY).readAll()
    }

    public static func readText(_ path: String) throws -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Replaces `path` atomically: a reader sees the old content or the new, never a mix, and a
    /// killed process leaves one of the two (write a temporary file, rename it over). `durable`
    /// adds the fsyncs that make the same hold across a power loss, at a few milliseconds' cost.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, durable: Bool = true) throws {
        let directory = parent(of: path)
        let temporary = "\(path).tmp.\(getpid())"
        do {
            let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
            try fd.writeAll(bytes)
            guard !durable || fsync(fd.rawValue) == 0 else { throw SystemError.current("fsync", object: temporary) }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = SystemError.current("rename", object: path)
            unlink(temporary)
            throw error
        }
        if durable, let dir = try? FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY) { fsync(dir.rawValue) }
    }

    /// Writes a file in place (for /proc and /sys, where atomic replacement is impossible).
    public static func write(_ path: String, _ bytes: [UInt8], flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC) throws {
        try FileDescriptor.open(path, flags).writeAll(bytes)
    }

    /// Creates a directory and its missing parents.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let up = parent(of: path)
        if up != path && !up.isEmpty { try makeDirectories(up, mode: mode) }
        if mkdir(path, mode) != 0 && Glibc.errno != EEXIST {
            throw SystemError.current("mkdir", object: path)
        }
    }

    /// Removes a file; a file that is already gone is not an error.
    public static func remove(_ path: String) throws {
        if unlink(path) != 0 && Glibc.errno != ENOENT { throw SystemError.current("unlink", object: path) }
    }

    /// Names in a directory, without "." and "..".
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemError.current("opendir", object: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The running program's own path (/proc/self/exe resolved); nil if it cannot be read.
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// An exclusive advisory lock on a file (flock), held until released or the process dies, so a
/// crashed holder never blocks others.
public final class FileLock: @unchecked Sendable {
    private let fd: FileDescriptor

    /// Blocks until the lock on `path` is held; creates the file if needed.
    public init(path: String) throws {
        fd = try FileDescriptor.open(path, O_RDWR | O_CREAT, mode: 0o600)
        guard retryingOnInterrupt({ flock(fd.rawValue, LOCK_EX) }) == 0 else {
            throw SystemError.current("flock", object: path)
        }
    }

    deinit { flock(fd.rawValue, LOCK_UN) }
}

public import BerthSupport
import CBerth
import Glibc

/// A network namespace held open by a file descriptor. While the descriptor is open the
/// namespace lives, even if nothing else uses it.
public final class NetworkNamespace: @unchecked Sendable {
    public let descriptor: FileDescriptor
    /// A path another process can open to reach this namespace (a pin under /run/netns, the path
    /// it was opened from, or /proc/PID/fd/N for an anonymous one).
    public let path: String

    public var fd: Int32 { descriptor.rawValue }

    init(descriptor: FileDescriptor, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// The directory where `ip netns` keeps its named namespaces.
    public static let runDirectory = "/run/netns"

    /// Opens an existing namespace by path (/proc/PID/ns/net, a pin, /proc/PID/fd/N) and checks
    /// that it is one.
    public static func open(path: String) throws -> NetworkNamespace {
        let fd = try FileDescriptor.open(path, O_RDONLY)
        let type = berth_fs_type(fd.rawValue)
        guard type >= 0 else { throw SystemError.current("statfs", object: path) }
        // NSFS_MAGIC; old kernels exposed namespaces on procfs.
        guard type == 0x6e73_6673 || type == 0x9fa0 else {
            throw SystemError("open network namespace", object: "\(path) (not a namespace file)", errno: EINVAL)
        }
        return NetworkNamespace(descriptor: fd, path: path)
    }

    /// The calling thread's namespace.
    public static func current() throws -> NetworkNamespace {
        let fd = try FileDescriptor.open("/proc/thread-self/ns/net", O_RDONLY)
        return NetworkNamespace(descriptor: fd, path: "/proc/\(getpid())/fd/\(fd.rawValue)")
    }

    /// A new namespace that lives only as long as this object (no pin on disk). Other processes
    /// reach it through `path` (/proc/PID/fd/N) while this process holds it.
    public static func createAnonymous() throws -> NetworkNamespace {
        let fd = try NamespaceThread.runUnshared {
            try FileDescriptor.open("/proc/thread-self/ns/net", O_RDONLY)
        }
        return NetworkNamespace(descriptor: fd, path: "/proc/\(getpid())/fd/\(fd.rawValue)")
    }

    /// Creates a namespace pinned at /run/netns/NAME, visible to `ip netns`.
    public static func create(name: String) throws -> NetworkNamespace {
        try validate(name: name)
        try prepareRunDirectory()
        let pin = "\(runDirectory)/\(name)"
        let created = Glibc.open(pin, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard created >= 0 else { throw SystemError.current("create namespace pin", object: pin) }
        close(created)
        do {
            try NamespaceThread.runUnshared {
                guard mount("/proc/thread-self/ns/net", pin, "none", UInt(MS_BIND), nil) == 0 else {
                    throw SystemError.current("bind-mount namespace", object: pin)
                }
            }
        } catch {
            unlink(pin)
            throw error
        }
        return try open(path: pin)
    }

    /// Removes the pin of a named namespace; the namespace itself ends when its last user goes.
    /// A name that does not exist is not an error.
    public static func delete(name: String) throws {
        try validate(name: name)
        let pin = "\(runDirectory)/\(name)"
        if umount2(pin, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            throw SystemError.current("unmount namespace pin", object: pin)
        }
        try Files.remove(pin)
    }

    /// The (device, inode) pair that identifies a namespace.
    public func identity() throws -> NamespaceIdentity {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError.current("fstat", object: path) }
        return NamespaceIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Runs `body` on a dedicated thread inside this namespace (see NamespaceThread).
    public func run<T>(_ body: () throws -> T) throws -> T {
        try NamespaceThread.run(inNetworkNamespace: fd, body)
    }

    /// Writes a value under /proc/sys for this namespace, e.g. "net/ipv4/ip_forward".
    /// /proc/sys/net files act on the namespace of the thread that opens them.
    public func writeSysctl(_ key: String, _ value: String) throws {
        let path = "/proc/sys/\(key)"
        try run { try Files.write(path, Array(value.utf8), flags: O_WRONLY) }
    }

    public func readSysctl(_ key: String) throws -> String {
        let path = "/proc/sys/\(key)"
        let text = try run { try Files.readText(path) }
        return String(text.prefix(while: { $0 != "\n" }))
    }

    private static func validate(name: String) throws {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), name.utf8.count < 256 else {
            throw SystemError("namespace name", object: "'\(name)'", errno: EINVAL)
        }
    }

    /// /run/netns must be a shared mount point so pins propagate, as iproute2 arranges it.
    private static func prepareRunDirectory() throws {
        try Files.makeDirectories(runDirectory)
        if mount("", runDirectory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return }
        guard errno == EINVAL else { throw SystemError.current("make shared", object: runDirectory) }
        guard mount(runDirectory, runDirectory, "none", UInt(MS_BIND | MS_REC), nil) == 0 else {
            throw SystemError.current("bind-mount", object: runDirectory)
        }
        guard mount("", runDirectory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 else {
            throw SystemError.current("make shared", object: runDirectory)
        }
    }
}

/// Identifies a namespace: two descriptors refer to the same namespace when these match.
public struct NamespaceIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
}

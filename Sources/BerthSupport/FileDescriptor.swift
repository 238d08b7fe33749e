public import Glibc

/// Owns one open file descriptor and closes it when released.
public final class FileDescriptor: @unchecked Sendable {
    public let rawValue: Int32

    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    deinit { close(rawValue) }

    /// Opens a path (O_CLOEXEC is always added).
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> FileDescriptor {
        let fd = retryingOnInterrupt { Glibc.open(path, flags | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw SystemError.current("open", object: path) }
        return FileDescriptor(fd)
    }

    /// Reads until end of file.
    public func readAll() throws -> [UInt8] { try BerthSupport.readAll(fd: rawValue) }

    /// Writes every byte (retrying short writes).
    public func writeAll(_ bytes: some Collection<UInt8>) throws {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let n = array.withUnsafeBytes { buf in
                retryingOnInterrupt { write(rawValue, buf.baseAddress! + offset, buf.count - offset) }
            }
            if n < 0 { throw SystemError.current("write") }
            offset += n
        }
    }
}

/// Writes all bytes to a raw descriptor that this code does not own (stdout, stderr).
public func writeAll(fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { buf in
            retryingOnInterrupt { write(fd, buf.baseAddress! + offset, buf.count - offset) }
        }
        if n <= 0 { return }
        offset += n
    }
}

/// Reads a raw descriptor that this code does not own (stdin) to its end.
public func readAll(fd: Int32) throws -> [UInt8] {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = chunk.withUnsafeMutableBytes { buf in
            retryingOnInterrupt { read(fd, buf.baseAddress, buf.count) }
        }
        if n < 0 { throw SystemError.current("read") }
        if n == 0 { return result }
        result.append(contentsOf: chunk[0..<n])
    }
}

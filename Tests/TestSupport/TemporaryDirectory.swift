import BerthSupport
import Glibc
public import JSON

/// A directory under /tmp, removed with everything in it when the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        var template = Array("/tmp/berth-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError.current("mkdtemp") }
        path = String(cString: made)
    }

    deinit { Self.removeTree(path) }

    private static func removeTree(_ path: String) {
        if Files.isDirectory(path) {
            for name in (try? Files.list(path)) ?? [] { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func write(_ name: String, _ text: String, mode: UInt32 = 0o644) throws {
        try Files.write(file(name), Array(text.utf8))
        chmod(file(name), mode)
    }

    public func read(_ name: String) throws -> String { try Files.readText(file(name)) }

    public func json(_ name: String) throws -> JSON { try JSON.parse(try Files.read(file(name))) }
}


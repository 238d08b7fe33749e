import Glibc

/// Logging for executables whose stdout is a protocol: everything goes to stderr, and to a log
/// file when one is configured.
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug = 0, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["debug", "info", "warning", "error"][rawValue] }
    }

    nonisolated(unsafe) private static var threshold: Level = .warning
    nonisolated(unsafe) private static var fileDescriptor: Int32 = -1
    nonisolated(unsafe) private static var program = "berth"

    /// Call once at start-up, before any other thread exists.
    public static func configure(program: String, level: Level, file: String? = nil) {
        self.program = program
        threshold = level
        if let file { fileDescriptor = Glibc.open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640) }
    }

    public static func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }
    public static func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    public static func warning(_ message: @autoclosure () -> String) { emit(.warning, message) }
    public static func error(_ message: @autoclosure () -> String) { emit(.error, message) }

    private static func emit(_ level: Level, _ message: () -> String) {
        guard level >= threshold else { return }
        let line = Array("\(program) \(level.name): \(message())\n".utf8)
        writeAll(fd: STDERR_FILENO, line)
        if fileDescriptor >= 0 { writeAll(fd: fileDescriptor, line) }
    }
}

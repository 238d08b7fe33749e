import BerthSupport
import Glibc
import Synchronization

/// berth ships its plugins as one executable installed under each plugin's name (hard links or
/// symlinks): the name it is started as picks the plugin. When such a plugin delegates to
/// another plugin (bridge → host-local) and CNI_PATH resolves that plugin to this very
/// executable, the delegate runs in-process instead of being started again: the same code
/// would run, with the same environment and configuration, minus a process start. A
/// delegate found anywhere else (another vendor's host-local) is executed as usual.
public enum MulticallPlugins {
    private static let registry = Mutex<[String: any CNIPlugin & Sendable]>([:])

    /// Runs the plugin named by argv[0]. Started under another name, `--list` prints the
    /// plugins' names (what installers link); anything else explains and exits 2.
    public static func main(_ plugins: [String: any CNIPlugin & Sendable]) -> Never {
        registry.withLock { $0 = plugins }
        let name = Files.baseName(of: CommandLine.arguments.first ?? "")
        guard let plugin = plugins[name] else {
            if CommandLine.arguments.dropFirst().first == "--list" {
                writeAll(fd: STDOUT_FILENO, Array(plugins.keys.sorted().map { $0 + "\n" }.joined().utf8))
                exit(0)
            }
            writeAll(fd: STDERR_FILENO, Array("""
                berth's CNI plugins: install this executable under a plugin's name (\(plugins.keys.sorted().joined(separator: ", "))),
                as `make install` does; it was started as "\(name)".\n
                """.utf8))
            exit(2)
        }
        PluginMain.main(plugin)
    }

    /// The plugin to run in-process for a delegation to `type` found at `path`, if `path` is
    /// this executable.
    static func inProcess(_ type: String, at path: String) -> (any CNIPlugin & Sendable)? {
        guard let plugin = registry.withLock({ $0[type] }) else { return nil }
        var found = stat(), current = stat()
        guard stat(path, &found) == 0, stat("/proc/self/exe", &current) == 0 else { return nil }
        return found.st_dev == current.st_dev && found.st_ino == current.st_ino ? plugin : nil
    }
}

import BerthSupport
import Glibc

/// Runs a plugin executable the way the protocol does it, for runtimes and for delegating
/// plugins alike: environment and stdin in, stdout back, stderr forwarded, and a failure turned
/// back into the CNI error the plugin printed.
enum PluginExecutable {
    /// Finds `type` in `directories`; a missing plugin names the type and every directory.
    static func find(_ type: String, in directories: [String]) throws(CNIError) -> String {
        try CNINames.validatePluginType(type)
        guard !directories.isEmpty else {
            throw CNIError(.invalidEnvironmentVariables, "cannot find plugin \"\(type)\": no plugin directories given (CNI_PATH is empty)")
        }
        guard let path = Subprocess.find(type, in: directories) else {
            throw CNIError(
                .internalError, "failed to find plugin \"\(type)\" in path \(quotedList(directories))",
                details: "install the \(type) plugin in one of these directories")
        }
        return path
    }

    /// Runs the plugin at `path` and returns its stdout. A plugin that exits non-zero fails with
    /// its own error (code, msg and details as it printed them); one that printed no error JSON
    /// fails with its stderr or exit status.
    static func run(
        _ path: String, environment: [String: String], stdin: [UInt8], stderr: OutputSink
    ) throws(CNIError) -> [UInt8] {
        var outcome: Subprocess.Outcome? = nil
        // A plugin being written as we start it gives ETXTBSY: wait a little and retry, as the
        // reference runtime does.
        for attempt in 0..<6 {
            do {
                outcome = try Subprocess.run(path, environment: environment, input: stdin)
                break
            } catch let error as SystemError where error.errno == ETXTBSY && attempt < 5 {
                usleep(200_000)
            } catch {
                throw CNIError(.internalError, "failed to execute plugin \(path): \(error)")
            }
        }
        guard let outcome else { throw CNIError(.internalError, "failed to execute plugin \(path): text file busy") }
        stderr.write(outcome.stderr)
        guard outcome.status != 0 else { return outcome.stdout }
        if let error = CNIError(parsing: outcome.stdout) { throw error }
        let status = outcome.status > 128 ? "signal \(outcome.status - 128)" : "exit status \(outcome.status)"
        if !outcome.stdout.isEmpty {
            throw CNIError(
                .internalError, "plugin \(path) failed (\(status)) and its output is not a CNI error",
                details: String(decoding: outcome.stdout.prefix(2000), as: UTF8.self))
        }
        if !outcome.stderr.isEmpty {
            throw CNIError(
                .internalError, "plugin \(path) failed (\(status))",
                details: String(decoding: outcome.stderr.suffix(2000), as: UTF8.self))
        }
        throw CNIError(.internalError, "plugin \(path) failed (\(status)) with no error message")
    }

    /// A result printed by a plugin; one without `cniVersion` is in the configuration's version.
    static func parseResult(_ stdout: [UInt8], from path: String, configVersion: CNIVersion) throws(CNIError) -> CNIResult {
        do {
            return try CNIResult(parsing: stdout, defaultVersion: configVersion)
        } catch {
            throw CNIError(.decodingFailure, "invalid result from plugin \(path): \(error)")
        }
    }
}

// MARK: - Delegation (what the reference's pkg/invoke does for plugins)

extension PluginRequest {
    /// Runs the delegated plugin `type` (found in CNI_PATH) with this invocation's environment,
    /// `command` instead of its own, and `config` on stdin (by default the configuration this
    /// plugin received, as the specification asks). Returns the delegate's stdout; the
    /// delegate's errors come back with its own code and message.
    public func delegate(_ command: Command, type: String, config: [UInt8]? = nil) throws(CNIError) -> [UInt8] {
        let executable = try PluginExecutable.find(type, in: path)
        var environment = self.environment
        environment["CNI_COMMAND"] = command.rawValue
        if let plugin = MulticallPlugins.inProcess(type, at: executable) {
            let input = config ?? stdin
            let (code, stdout) = PluginMain.execute(plugin, environment: environment, readStdin: { input }, stderr: stderr)
            guard code == 0 else {
                throw CNIError(parsing: stdout) ?? CNIError(.internalError, "plugin \(type) failed with no error message")
            }
            return stdout
        }
        return try PluginExecutable.run(executable, environment: environment, stdin: config ?? stdin, stderr: stderr)
    }

    /// ADD through a delegate (an IPAM plugin): its result, in any version it printed.
    public func delegateAdd(type: String, config: [UInt8]? = nil) throws(CNIError) -> CNIResult {
        let stdout = try delegate(.add, type: type, config: config)
        return try PluginExecutable.parseResult(stdout, from: type, configVersion: version)
    }

    public func delegateDel(type: String, config: [UInt8]? = nil) throws(CNIError) {
        _ = try delegate(.del, type: type, config: config)
    }

    public func delegateCheck(type: String, config: [UInt8]? = nil) throws(CNIError) {
        _ = try delegate(.check, type: type, config: config)
    }
}

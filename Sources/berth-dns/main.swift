// berth-dns: the embedded resolver, run in aardvark-dns's place. See docs/dns.md.
import BerthSupport
import DNS
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
let command: BerthDNSCommand
do {
    command = try BerthDNSCommand(arguments: arguments)
} catch {
    writeAll(fd: STDERR_FILENO, Array("berth-dns: \(error)\n\(BerthDNSCommand.usage)\n".utf8))
    exit(2)
}
if command.action == .version {
    writeAll(fd: STDOUT_FILENO, Array("berth-dns 0.1.0 (aardvark-dns compatible)\n".utf8))
    exit(0)
}
let environmentLevel = processEnvironment()["RUST_LOG"].flatMap(BerthDNSCommand.level)
Log.configure(program: "berth-dns", level: environmentLevel ?? command.logLevel, file: command.logFile)

if !command.foreground {
    // Like aardvark-dns: the command returns once the server listens; the server itself runs
    // on in its own session.
    exit(Daemon.start(arguments: arguments + ["--foreground"]))
}

signal(SIGPIPE, SIG_IGN)
do {
    let server = try DNSServer(options: command.options)
    server.onReady = { Daemon.reportReady() }
    guard try server.start() else {
        Daemon.reportFailure("no network to serve in \(command.options.configDirectory)")
        exit(0)
    }
    try server.run()
    exit(0)
} catch {
    Daemon.reportFailure("\(error)")
    exit(1)
}

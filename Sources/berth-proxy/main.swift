import BerthSupport
import Glibc
import Proxy

// berth-proxy: docker-proxy's command line and readiness protocol, many mappings per process.
// Everything it does lives in the Proxy library; see docs/proxy.md.
let readiness = Readiness.inherited()  // before any descriptor of our own can take fd 3
signal(SIGPIPE, SIG_IGN)

func fail(_ message: String, status: Int32) -> Never {
    readiness.failed(message)
    writeAll(fd: STDERR_FILENO, Array("berth-proxy: \(message)\n".utf8))
    exit(status)
}

let options: ProxyOptions
do {
    options = try ProxyOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    fail(error.description, status: 2)
}
if options.help {
    print(ProxyOptions.usage)
    exit(0)
}
Log.configure(program: "berth-proxy", level: options.logLevel)

let server: ProxyGroup
do {
    server = try ProxyGroup(options: options, descriptorLimit: raiseDescriptorLimit())
    try server.start(listenFD: options.useListenFD ? 4 : nil)
} catch let error as ProxyError {
    fail(error.description, status: 1)
} catch {
    fail("\(error)", status: 1)
}
readiness.ready()
do {
    try server.run()
} catch {
    Log.error("\(error)")
    exit(1)
}
exit(0)

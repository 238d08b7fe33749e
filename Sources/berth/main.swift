import BerthSupport
import CNI
import Glibc

// berth: the runtime's command line. Today it offers `berth cni`; the container and network
// commands build on the same libraries.
let arguments = Array(CommandLine.arguments.dropFirst())
let usage = "usage: berth cni ... (berth cni --help)"

do {
    switch arguments.first {
    case "cni" where arguments.count > 1 && arguments[1] != "--help":
        exit(try CNITool.run(Array(arguments.dropFirst())))
    case "cni":
        print(CNITool.usage)
    case "--help", "-h", nil:
        print(usage)
    default:
        throw UsageError("unknown command \(arguments[0])")
    }
} catch let error as CNIError {
    // The plugin's own code travels with its message, as a runtime would log it.
    writeAll(fd: 2, Array("berth: \(error) (CNI error code \(error.code))\n".utf8))
    exit(1)
} catch let error as UsageError {
    writeAll(fd: 2, Array("berth: \(error)\n\(usage)\n".utf8))
    exit(2)
} catch {
    writeAll(fd: 2, Array("berth: \(error)\n".utf8))
    exit(1)
}

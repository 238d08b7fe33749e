import BerthSupport
import CNI
import Namespaces
import Glibc

/// The container's network namespace as a plugin meets it: opened from CNI_NETNS, with a clear
/// CNI error when it is missing or not a namespace.
enum Sandbox {
    /// Opens CNI_NETNS for ADD and CHECK: a missing namespace is an unknown container (code 3).
    static func open(_ request: PluginRequest) throws -> NetworkNamespace {
        guard !request.netns.isEmpty else {
            throw CNIError(.invalidEnvironmentVariables, "CNI_NETNS is empty", details: "\(request.command.rawValue) needs the container's network namespace")
        }
        do {
            return try NetworkNamespace.open(path: request.netns)
        } catch let error as SystemError where error.errno == ENOENT {
            throw CNIError(.unknownContainer, "network namespace \(request.netns) does not exist", details: error.description)
        } catch let error as SystemError where error.errno == EINVAL {
            throw CNIError(.invalidEnvironmentVariables, "CNI_NETNS \(request.netns) is not a network namespace", details: error.description)
        }
    }

    /// Opens CNI_NETNS for DEL: nil when there is none or it is already gone (DEL must still
    /// succeed then).
    static func openIfPresent(_ request: PluginRequest) throws -> NetworkNamespace? {
        guard !request.netns.isEmpty else { return nil }
        do {
            return try NetworkNamespace.open(path: request.netns)
        } catch let error as SystemError where error.errno == ENOENT || error.errno == EINVAL {
            return nil
        }
    }
}

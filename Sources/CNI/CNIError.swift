public import JSON
import BerthSupport
import Glibc

/// The error a plugin prints on stdout (and a runtime reads back): a well-known code, a short
/// message and optional details.
public struct CNIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An error code. 0–99 are reserved by the specification; plugins use 100 and up.
    public struct Code: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
        public var rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(integerLiteral value: Int) { rawValue = value }
        public var description: String { String(rawValue) }

        public static let incompatibleVersion: Code = 1
        public static let unsupportedField: Code = 2
        public static let unknownContainer: Code = 3
        public static let invalidEnvironmentVariables: Code = 4
        public static let ioFailure: Code = 5
        public static let decodingFailure: Code = 6
        public static let invalidNetworkConfig: Code = 7
        public static let tryAgainLater: Code = 11
        /// STATUS: the plugin cannot serve ADD requests now.
        public static let pluginNotAvailable: Code = 50
        /// STATUS: the plugin cannot serve ADD requests, and existing containers may have
        /// limited connectivity.
        public static let pluginNotAvailableLimitedConnectivity: Code = 51
        public static let internalError: Code = 999
    }

    public var code: Code
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    /// "msg; details", as the reference library prints an error.
    public var description: String { details.isEmpty ? msg : "\(msg); \(details)" }

    /// The error object: `{cniVersion, code, msg, details}`; `cniVersion` only when the
    /// configuration's version is known, `details` only when there are any.
    public func json(cniVersion: String?) -> JSON {
        var object = JSONObject()
        if let cniVersion { object["cniVersion"] = .string(cniVersion) }
        object["code"] = .int(Int64(code.rawValue))
        object["msg"] = .string(msg)
        if !details.isEmpty { object["details"] = .string(details) }
        return .object(object)
    }

    /// Reads an error object printed by a plugin; nil when the text is not one.
    public init?(parsing bytes: [UInt8]) {
        guard let value = try? JSON.parse(bytes), let fields = try? JSONFields(value),
            let code = try? fields.int("code"), let msg = try? fields.string("msg")
        else { return nil }
        self.init(Code(rawValue: Int(truncatingIfNeeded: code)), msg, details: (try? fields.string("details")) ?? "")
    }
}

/// What the error mapping needs to know about the invocation that failed.
public struct ErrorContext: Sendable {
    public var command: Command?
    public var netns: String

    public init(command: Command? = nil, netns: String = "") {
        self.command = command
        self.netns = netns
    }
}

extension CNIError {
    /// The one mapping from any error to a CNI error:
    /// - a CNIError passes through unchanged;
    /// - JSONSyntaxError is a decoding failure (6);
    /// - JSONFieldError is an invalid network configuration (7) whose message names the field;
    /// - SystemError keeps its text; a missing namespace on ADD or CHECK is an unknown
    ///   container (3), EIO an I/O failure (5), anything else internal (999);
    /// - anything else is internal (999).
    public init(mapping error: any Error, context: ErrorContext = ErrorContext()) {
        switch error {
        case let error as CNIError:
            self = error
        case let error as JSONSyntaxError:
            self.init(.decodingFailure, "invalid JSON: \(error)")
        case let error as JSONFieldError:
            self.init(.invalidNetworkConfig, "invalid network configuration: \(error)")
        case let error as SystemError:
            if error.errno == ENOENT, !context.netns.isEmpty, error.object == context.netns,
                context.command == .add || context.command == .check
            {
                self.init(.unknownContainer, "network namespace \(context.netns) does not exist", details: error.description)
            } else if error.errno == EIO {
                self.init(.ioFailure, error.description)
            } else {
                self.init(.internalError, error.description)
            }
        default:
            self.init(.internalError, String(describing: error))
        }
    }
}

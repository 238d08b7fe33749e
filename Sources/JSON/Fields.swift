/// A field of a configuration had the wrong type or a missing value. `path` names it the way a
/// user would find it in their file: `ipam.ranges[0][1].subnet`.
public struct JSONFieldError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

/// Typed, path-aware access to the members of a JSON object. Absent and null members read as nil,
/// like Go's encoding/json; a member of the wrong type is an error naming the field.
public struct JSONFields: Sendable {
    public let object: JSONObject
    public let path: String

    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// Reads the document itself; it must be an object.
    public init(_ value: JSON, path: String = "") throws(JSONFieldError) {
        guard case .object(let o) = value else {
            throw JSONFieldError(path: path.isEmpty ? "configuration" : path, problem: "expected an object, found \(value.kindName)")
        }
        self.init(o, path: path)
    }

    public func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func present(_ key: String) -> JSON? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    private func mismatch(_ key: String, _ expected: String, _ found: JSON) -> JSONFieldError {
        JSONFieldError(path: fieldPath(key), problem: "expected \(expected), found \(found.kindName)")
    }

    public func has(_ key: String) -> Bool { present(key) != nil }
    public func raw(_ key: String) -> JSON? { present(key) }

    public func string(_ key: String) throws(JSONFieldError) -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.stringValue else { throw mismatch(key, "a string", v) }
        return s
    }

    public func requiredString(_ key: String) throws(JSONFieldError) -> String {
        guard let s = try string(key), !s.isEmpty else {
            throw JSONFieldError(path: fieldPath(key), problem: "is required")
        }
        return s
    }

    public func bool(_ key: String) throws(JSONFieldError) -> Bool? {
        guard let v = present(key) else { return nil }
        guard let b = v.boolValue else { throw mismatch(key, "true or false", v) }
        return b
    }

    public func int(_ key: String, in range: ClosedRange<Int64>? = nil) throws(JSONFieldError) -> Int64? {
        guard let v = present(key) else { return nil }
        guard let i = v.intValue else { throw mismatch(key, "an integer", v) }
        if let range, !range.contains(i) {
            throw JSONFieldError(path: fieldPath(key), problem: "\(i) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    public func array(_ key: String) throws(JSONFieldError) -> [JSON]? {
        guard let v = present(key) else { return nil }
        guard let a = v.arrayValue else { throw mismatch(key, "an array", v) }
        return a
    }

    public func strings(_ key: String) throws(JSONFieldError) -> [String]? {
        guard let items = try array(key) else { return nil }
        var result: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else {
                throw JSONFieldError(path: "\(fieldPath(key))[\(i)]", problem: "expected a string, found \(item.kindName)")
            }
            result.append(s)
        }
        return result
    }

    public func object(_ key: String) throws(JSONFieldError) -> JSONFields? {
        guard let v = present(key) else { return nil }
        guard let o = v.objectValue else { throw mismatch(key, "an object", v) }
        return JSONFields(o, path: fieldPath(key))
    }

    /// The members of an array of objects, each with its indexed path.
    public func objects(_ key: String) throws(JSONFieldError) -> [JSONFields]? {
        guard let items = try array(key) else { return nil }
        var result: [JSONFields] = []
        for (i, item) in items.enumerated() {
            result.append(try JSONFields(item, path: "\(fieldPath(key))[\(i)]"))
        }
        return result
    }
}

/// A JSON document. Objects keep their keys in order so output is stable and readable; numbers
/// keep integers exact.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var arrayValue: [JSON]? { if case .array(let v) = self { v } else { nil } }
    public var objectValue: JSONObject? { if case .object(let v) = self { v } else { nil } }
    public var isNull: Bool { self == .null }

    /// Integers, and doubles that hold an integer exactly.
    public var intValue: Int64? {
        switch self {
        case .int(let v): v
        case .double(let v) where v.rounded() == v && abs(v) < 9.2e18: Int64(v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    /// The member `key` of an object; nil for absent keys and for non-objects.
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// How the value is named in error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A JSON object with ordered keys. Setting an existing key replaces it in place; parsing keeps
/// the last of duplicate keys, as Go's encoding/json does.
public struct JSONObject: Equatable, Sendable, Sequence {
    public private(set) var entries: [(key: String, value: JSON)]

    public init() { entries = [] }
    public init(_ entries: [(String, JSON)]) {
        self.entries = []
        for (k, v) in entries { self[k] = v }
    }

    public subscript(key: String) -> JSON? {
        get { entries.first(where: { $0.key == key })?.value }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSON)]> { entries.makeIterator() }

    /// Equal when the same keys map to equal values, whatever the order.
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.entries.count == b.entries.count && a.entries.allSatisfy { b[$0.key] == $0.value }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) { self.init(elements) }
}

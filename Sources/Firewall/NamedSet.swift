import CNftnl

/// Set flags a caller chooses; NFT_SET_MAP and NFT_SET_CONCAT follow from the definition.
public struct SetFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Contents fixed once the set is bound to a rule (fill it in the batch that creates it).
    public static let constant = SetFlags(rawValue: UInt32(NFT_SET_CONSTANT.rawValue))
    /// Elements are ranges (`keyEnd`).
    public static let interval = SetFlags(rawValue: UInt32(NFT_SET_INTERVAL.rawValue))
    /// Elements may expire (`timeout`).
    public static let timeout = SetFlags(rawValue: UInt32(NFT_SET_TIMEOUT.rawValue))
}

/// What a map's elements map to.
public enum MapData: Hashable, Sendable {
    /// Values: one type, or a concatenation such as `ipv4_addr . inet_service`.
    case values([DataType])
    case verdict
}

/// A named set or map in berth's table: `set own_v4 { type ipv4_addr . ifname; }`.
public struct SetDefinition: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// The key: one type, or several for a concatenation.
    public var key: [DataType]
    /// nil for a set; the data type for a map.
    public var data: MapData?
    public var flags: SetFlags
    /// Default timeout of elements (requires `.timeout`).
    public var timeout: Duration?
    public var comment: String?

    public init(
        _ name: String, key: [DataType], data: MapData? = nil, flags: SetFlags = [], timeout: Duration? = nil,
        comment: String? = nil
    ) {
        self.name = name
        self.key = key
        self.data = data
        self.flags = flags
        self.timeout = timeout
        self.comment = comment
    }

    public static func set(_ name: String, _ key: DataType..., flags: SetFlags = []) -> SetDefinition {
        SetDefinition(name, key: key, flags: flags)
    }

    public static func map(_ name: String, key: [DataType], data: MapData, flags: SetFlags = []) -> SetDefinition {
        SetDefinition(name, key: key, data: data, flags: flags)
    }

    public var isMap: Bool { data != nil }
    /// A single-field interval set keeps each range as two kernel elements (start, end + 1);
    /// a concatenated one keeps one element with a key end.
    var usesIntervalEndElements: Bool { flags.contains(.interval) && key.count == 1 }

    var kernelFlags: UInt32 {
        var f = flags.rawValue
        if data != nil { f |= UInt32(NFT_SET_MAP.rawValue) }
        if flags.contains(.interval) && key.count > 1 { f |= UInt32(NFT_SET_CONCAT.rawValue) }
        return f
    }

    public var description: String {
        var text = "\(isMap ? "map" : "set") \(name) { type \(Concatenation.describe(key))"
        switch data {
        case .values(let types): text += " : \(Concatenation.describe(types))"
        case .verdict: text += " : verdict"
        case nil: break
        }
        return text + "; }"
    }
}

/// What a map element maps to.
public enum ElementData: Hashable, Sendable {
    case values([Value])
    case verdict(Verdict)
}

/// A set or map element. Its comment (userdata) names the owner so that DEL and GC remove
/// exactly their own elements.
public struct Element: Hashable, Sendable, CustomStringConvertible {
    /// One value per key member.
    public var key: [Value]
    /// Interval sets: the last key of the range (inclusive); nil for a single key.
    public var keyEnd: [Value]?
    public var data: ElementData?
    public var comment: String?
    /// Per-element timeout (sets with `.timeout`).
    public var timeout: Duration?
    /// Time left before the element expires (listing only; ignored when adding).
    public var expiration: Duration?

    public init(
        _ key: [Value], keyEnd: [Value]? = nil, data: ElementData? = nil, comment: String? = nil,
        timeout: Duration? = nil
    ) {
        self.key = key
        self.keyEnd = keyEnd
        self.data = data
        self.comment = comment
        self.timeout = timeout
        self.expiration = nil
    }

    /// A set element: `Element(.ipv4(a), .string("berth0"), comment: owner)`.
    public init(_ key: Value..., comment: String? = nil) {
        self.init(key, comment: comment)
    }

    /// A map element: `Element(key: [.tcp, 8080], to: [.ipv4(a), 80], comment: owner)`.
    public init(key: [Value], to data: [Value], comment: String? = nil) {
        self.init(key, data: .values(data), comment: comment)
    }

    public var description: String {
        var text = Concatenation.describe(key)
        if let keyEnd { text += "-" + Concatenation.describe(keyEnd) }
        switch data {
        case .values(let v): text += " : " + Concatenation.describe(v)
        case .verdict(let v): text += " : \(v)"
        case nil: break
        }
        if let comment { text += " comment \"\(comment)\"" }
        return text
    }

    /// The key as nft writes it for `set` ("tcp . 8080", "10.0.0.0-10.0.0.255").
    func describeKey(in set: SetDefinition) -> String {
        var text = Concatenation.describe(key, as: set.key)
        if let keyEnd { text += "-" + Concatenation.describe(keyEnd, as: set.key) }
        return text
    }

    /// The element as nft writes it in `set`: `tcp . 8080 : 10.0.0.2 . 80 comment "…"`.
    public func description(in set: SetDefinition) -> String {
        var text = describeKey(in: set)
        switch (data, set.data) {
        case (.values(let values), .values(let types)?): text += " : " + Concatenation.describe(values, as: types)
        case (.verdict(let verdict), _): text += " : \(verdict)"
        default: break
        }
        if let comment { text += " comment \"\(comment)\"" }
        return text
    }
}

public import JSON

/// A CNI specification version ("1.0.0"). Only the three-part numeric form is a version: the
/// protocol compares versions as strings when it checks support, so "1.0" is not "1.0.0".
public struct CNIVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// "X.Y.Z" with decimal parts; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 6, part.utf8.allSatisfy({ (48...57).contains($0) }),
                let n = Int(part)
            else { return nil }
            numbers.append(n)
        }
        self.init(numbers[0], numbers[1], numbers[2])
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (a: CNIVersion, b: CNIVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    public static let v0_1_0 = CNIVersion(0, 1, 0)
    public static let v0_2_0 = CNIVersion(0, 2, 0)
    public static let v0_3_0 = CNIVersion(0, 3, 0)
    public static let v0_3_1 = CNIVersion(0, 3, 1)
    public static let v0_4_0 = CNIVersion(0, 4, 0)
    public static let v1_0_0 = CNIVersion(1, 0, 0)
    public static let v1_1_0 = CNIVersion(1, 1, 0)

    /// Every specification version this library reads and writes, oldest first.
    public static let all: [CNIVersion] = [v0_1_0, v0_2_0, v0_3_0, v0_3_1, v0_4_0, v1_0_0, v1_1_0]
    public static let latest = v1_1_0

    /// What a configuration or result without `cniVersion` means (as the reference library decides).
    public static let implied = v0_1_0

    public var isKnown: Bool { CNIVersion.all.contains(self) }
    /// CHECK, and prevResult on DEL, exist from 0.4.0.
    public var supportsCheck: Bool { self >= .v0_4_0 }
    /// STATUS and GC exist from 1.1.0.
    public var supportsStatusAndGC: Bool { self >= .v1_1_0 }
}

/// A plugin's answer to VERSION.
public struct VersionInfo: Equatable, Sendable {
    public var cniVersion: String
    public var supportedVersions: [String]

    public init(cniVersion: String = CNIVersion.latest.description, supportedVersions: [String]) {
        self.cniVersion = cniVersion
        self.supportedVersions = supportedVersions
    }

    public init(supporting versions: [CNIVersion]) {
        self.init(supportedVersions: versions.map(\.description))
    }

    public func supports(_ version: String) -> Bool { supportedVersions.contains(version) }

    public var json: JSON {
        ["cniVersion": .string(cniVersion), "supportedVersions": .array(supportedVersions.map(JSON.string))]
    }

    /// Decodes a plugin's VERSION output. A plugin that reports only `"cniVersion": "0.2.0"`
    /// predates `supportedVersions` and supports 0.1.0 and 0.2.0.
    public init(decoding bytes: [UInt8]) throws(CNIError) {
        let version: String?
        let supported: [String]
        do {
            let fields = try JSONFields(try JSON.parse(bytes))
            version = try fields.string("cniVersion")
            supported = try fields.strings("supportedVersions") ?? []
        } catch {
            throw CNIError(.decodingFailure, "decoding version info: \(error)")
        }
        guard let version, !version.isEmpty else {
            throw CNIError(.decodingFailure, "decoding version info: missing field cniVersion")
        }
        if !supported.isEmpty {
            self.init(cniVersion: version, supportedVersions: supported)
        } else if version == "0.2.0" {
            self.init(cniVersion: version, supportedVersions: ["0.1.0", "0.2.0"])
        } else {
            throw CNIError(.decodingFailure, "decoding version info: missing field supportedVersions")
        }
    }
}

/// Go's %q formatting of a string list, which error details use: ["0.1.0" "0.2.0"].
func quotedList(_ items: [String]) -> String {
    "[" + items.map { JSON.string($0).compactString }.joined(separator: " ") + "]"
}

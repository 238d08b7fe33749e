/// Why an address could not be allocated or released.
public struct IPAMError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The configuration is wrong (bad subnet, range outside it, overlaps...).
        case invalidConfiguration
        /// Every address of a range set is taken.
        case exhausted
        /// A specific address was asked for and cannot be given.
        case unavailable
        /// The on-disk store failed.
        case storage
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

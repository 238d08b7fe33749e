import BerthSupport
import CMnl
import Glibc

// Netlink message encoding and decoding, free of I/O so it can be tested without privileges.
//
// Layout (all integers in host byte order, everything 4-byte aligned):
//   struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid }   16 bytes
//   family header   (ifinfomsg 16, ifaddrmsg 8, rtmsg 12 bytes)
//   attributes      { u16 len; u16 type; payload; padding to 4 }

/// A request ready to send: the complete message bytes, port id 0 (the kernel fills it in).
/// The socket sets the sequence number just before sending.
public struct NetlinkRequest: Equatable, Sendable {
    public private(set) var bytes: [UInt8]

    /// A message built elsewhere: a complete nlmsghdr and payload. The length field is set
    /// from the byte count.
    public init(bytes: [UInt8]) {
        precondition(bytes.count >= 16, "a netlink message has a 16-byte header")
        self.bytes = bytes
        store(UInt32(bytes.count), at: 0)
    }

    public var type: UInt16 { load(bytes[...], at: 4)! }

    public var flags: UInt16 {
        get { load(bytes[...], at: 6)! }
        set { store(newValue, at: 6) }
    }

    public var sequence: UInt32 {
        get { load(bytes[...], at: 8)! }
        set { store(newValue, at: 8) }
    }

    private mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + $0.count, with: $0) }
    }

    /// The same request with another sequence number.
    public func with(sequence: UInt32) -> NetlinkRequest {
        var copy = self
        copy.sequence = sequence
        return copy
    }
}

/// Builds one netlink message. Nested attributes are written by `nest`, which patches the
/// length of the enclosing attribute when its body returns.
struct MessageWriter {
    private(set) var bytes: [UInt8] = []

    init(type: some BinaryInteger, flags: some BinaryInteger) {
        bytes.reserveCapacity(128)
        append(UInt32(0))  // length, patched by `request`
        append(UInt16(truncatingIfNeeded: type))
        append(UInt16(truncatingIfNeeded: flags))
        append(UInt32(0))  // sequence, set by the socket
        append(UInt32(0))  // port id: 0 means the kernel
    }

    /// Appends a fixed-size value in host byte order (family headers).
    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ type: some BinaryInteger, _ payload: [UInt8]) {
        // Payloads are short (names are validated, addresses fixed-size): this cannot overflow.
        append(UInt16(4 + payload.count))
        append(UInt16(truncatingIfNeeded: type))
        bytes += payload
        alignToFour()
    }

    mutating func put(_ type: some BinaryInteger, u8 value: UInt8) { put(type, [value]) }
    mutating func put(_ type: some BinaryInteger, u32 value: UInt32) {
        put(type, withUnsafeBytes(of: value) { Array($0) })
    }
    /// A NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING policies accept.
    mutating func put(_ type: some BinaryInteger, string: String) { put(type, Array(string.utf8) + [0]) }

    /// A nested attribute; `type` may carry NLA_F_NESTED where the kernel insists on it.
    mutating func nest(_ type: some BinaryInteger, _ body: (inout MessageWriter) -> Void) {
        let start = bytes.count
        append(UInt16(0))
        append(UInt16(truncatingIfNeeded: type))
        body(&self)
        let length = UInt16(bytes.count - start)
        withUnsafeBytes(of: length) { bytes.replaceSubrange(start..<start + 2, with: $0) }
    }

    private mutating func alignToFour() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// The finished message.
    func request() -> NetlinkRequest {
        NetlinkRequest(bytes: bytes)
    }
}

/// One message received from the kernel.
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    /// Everything after the 16-byte header.
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// Splits one received datagram into its messages. Throws EBADMSG for a truncated or
    /// inconsistent message rather than reading past it.
    public static func split(_ datagram: ArraySlice<UInt8>) throws -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= 16 {
            let length = Int(load(datagram, at: offset - datagram.startIndex) as UInt32? ?? 0)
            guard length >= 16, length <= datagram.endIndex - offset else {
                throw SystemError("parse netlink reply", object: "message of length \(length)", errno: EBADMSG)
            }
            let header = datagram[offset..<offset + 16]
            messages.append(
                NetlinkMessage(
                    type: load(header, at: 4)!, flags: load(header, at: 6)!, sequence: load(header, at: 8)!,
                    portID: load(header, at: 12)!, payload: Array(datagram[offset + 16..<offset + length])))
            offset += (length + 3) & ~3
        }
        return messages
    }
}

/// The attributes of a message (or of a nested attribute), in the order the kernel sent them.
/// Lookups return the first attribute of a type; malformed trailing bytes are ignored, as the
/// kernel's own parsers do.
struct Attributes {
    private(set) var entries: [(type: UInt16, value: ArraySlice<UInt8>)] = []

    init(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(load(bytes, at: offset - bytes.startIndex) as UInt16? ?? 0)
            guard length >= 4, length <= bytes.endIndex - offset else { break }
            let rawType: UInt16 = load(bytes, at: offset + 2 - bytes.startIndex)!
            // Strip NLA_F_NESTED and NLA_F_NET_BYTEORDER.
            entries.append((rawType & 0x3fff, bytes[offset + 4..<offset + length]))
            offset += (length + 3) & ~3
        }
    }

    /// Attributes following a fixed-size family header in a message payload.
    init(payload: [UInt8], after headerSize: Int) {
        self.init(payload.count >= headerSize ? payload[headerSize...] : [])
    }

    func bytes(_ type: some BinaryInteger) -> ArraySlice<UInt8>? {
        let wanted = UInt16(truncatingIfNeeded: type)
        return entries.first(where: { $0.type == wanted })?.value
    }

    func u8(_ type: some BinaryInteger) -> UInt8? { bytes(type).flatMap { load($0, at: 0) } }
    func u32(_ type: some BinaryInteger) -> UInt32? { bytes(type).flatMap { load($0, at: 0) } }
    func i32(_ type: some BinaryInteger) -> Int32? { bytes(type).flatMap { load($0, at: 0) } }

    /// A string attribute, up to its terminating NUL (if any).
    func string(_ type: some BinaryInteger) -> String? {
        bytes(type).map { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    func nested(_ type: some BinaryInteger) -> Attributes? { bytes(type).map { Attributes($0) } }
}

/// Reads a host-order integer at `offset` bytes into `bytes`, or nil if it does not fit.
func load<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, at offset: Int) -> T? {
    guard offset >= 0, bytes.count - offset >= MemoryLayout<T>.size else { return nil }
    return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
}

/// What an NLMSG_ERROR (or a failed NLMSG_DONE) says: the errno, and with NETLINK_EXT_ACK the
/// kernel's explanation and the offset of the offending attribute in the request.
public struct NetlinkAcknowledgement: Equatable, Sendable {
    /// 0 for success, otherwise a positive errno.
    public var errno: Int32
    public var message: String?
    public var attributeOffset: UInt32?

    /// Parses the payload of an NLMSG_ERROR message.
    public init?(errorPayload payload: [UInt8], flags: UInt16) {
        guard let code: Int32 = load(payload[...], at: 0) else { return nil }
        errno = -code
        // struct nlmsgerr { int error; struct nlmsghdr msg; } then, unless the kernel capped it
        // (NETLINK_CAP_ACK), the rest of the request, then the extended-ack TLVs.
        var tlvs = 4 + 16
        if flags & UInt16(NLM_F_CAPPED) == 0, let requestLength: UInt32 = load(payload[...], at: 4) {
            tlvs = 4 + ((Int(requestLength) + 3) & ~3)
        }
        readExtendedAck(payload, from: tlvs, flags: flags)
    }

    /// Parses the payload of an NLMSG_DONE message that ends a dump: an int, then TLVs.
    public init?(donePayload payload: [UInt8], flags: UInt16) {
        guard let code: Int32 = load(payload[...], at: 0) else { return nil }
        errno = -code
        readExtendedAck(payload, from: 4, flags: flags)
    }

    private mutating func readExtendedAck(_ payload: [UInt8], from offset: Int, flags: UInt16) {
        guard flags & UInt16(NLM_F_ACK_TLVS) != 0 else { return }
        let tlvs = Attributes(payload: payload, after: offset)
        message = tlvs.string(NLMSGERR_ATTR_MSG.rawValue)
        attributeOffset = tlvs.u32(NLMSGERR_ATTR_OFFS.rawValue)
    }
}

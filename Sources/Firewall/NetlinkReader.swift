/// Reading netlink messages and nf_tables attributes from bytes. nf_tables puts integers in
/// network byte order; netlink headers and error TLVs are in host order.
struct NetlinkMessage {
    static let error: UInt16 = 2  // NLMSG_ERROR
    static let done: UInt16 = 3  // NLMSG_DONE
    static let headerLength = 16
    /// nlmsghdr plus struct nfgenmsg.
    static let nfnetlinkHeaderLength = 20

    let type: UInt16
    let flags: UInt16
    let sequence: UInt32
    /// The whole message, header included, indexed from 0.
    let bytes: [UInt8]

    /// The nf_tables message type (NFT_MSG_*), without the subsystem.
    var nftType: UInt16 { type & 0xff }

    /// The messages in one datagram.
    static func split(_ data: ArraySlice<UInt8>) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = data.startIndex
        while data.endIndex - offset >= headerLength {
            let length = Int(hostU32(data, offset))
            guard length >= headerLength, offset + length <= data.endIndex else { break }
            messages.append(
                NetlinkMessage(
                    type: hostU16(data, offset + 4), flags: hostU16(data, offset + 6), sequence: hostU32(data, offset + 8),
                    bytes: Array(data[offset..<(offset + length)])))
            offset += (length + 3) & ~3
        }
        return messages
    }

    /// The nf_tables attributes after the nfgenmsg header.
    var attributes: Attributes { Attributes(bytes, from: Self.nfnetlinkHeaderLength, to: bytes.count) }

    /// For NLMSG_ERROR: the errno (positive; 0 for an ack) and the extended ACK.
    var acknowledgement: Acknowledgement? {
        guard type == Self.error, bytes.count >= Self.headerLength + 4 + Self.headerLength else { return nil }
        let code = Int32(bitPattern: Self.hostU32(bytes[...], Self.headerLength))
        let original = Self.headerLength + 4
        let originalLength = Int(Self.hostU32(bytes[...], original))
        let originalSequence = Self.hostU32(bytes[...], original + 8)
        var ack = Acknowledgement(sequence: originalSequence, errno: -code)
        if flags & NetlinkFlags.ackTLVs != 0 {
            let tlvStart = flags & NetlinkFlags.capped != 0 ? original + Self.headerLength : original + ((originalLength + 3) & ~3)
            for tlv in Attributes(bytes, from: tlvStart, to: bytes.count, hostOrder: true) {
                switch tlv.type {
                case 1: ack.kernelMessage = tlv.string  // NLMSGERR_ATTR_MSG
                case 2: ack.offset = tlv.u32  // NLMSGERR_ATTR_OFFS
                default: break
                }
            }
        }
        return ack
    }

    static func hostU32(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    static func hostU16(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
}

/// An error or acknowledgement from the kernel.
struct Acknowledgement: Equatable {
    /// The sequence number of the request it answers.
    var sequence: UInt32
    var errno: Int32
    var kernelMessage: String? = nil
    /// Byte offset, from the start of the request's header, of the attribute the kernel rejected.
    var offset: UInt32? = nil
}

/// One attribute: type (flags removed), and where its payload lies in the message.
struct Attribute {
    let type: UInt16
    /// Offset of the attribute header within the message.
    let start: Int
    /// The attribute's full extent (header and payload, unpadded).
    let end: Int
    /// The whole message (shared, not copied).
    let message: [UInt8]
    let hostOrder: Bool

    var payload: ArraySlice<UInt8> { message[(start + 4)..<end] }

    func contains(_ offset: Int) -> Bool { offset >= start && offset < end }

    var bytes: [UInt8] { Array(payload) }
    var string: String { String(decoding: payload.prefix(while: { $0 != 0 }), as: UTF8.self) }
    var u8: UInt8 { payload.first ?? 0 }

    var u32: UInt32 {
        guard payload.count >= 4 else { return 0 }
        let i = payload.startIndex
        return hostOrder
            ? NetlinkMessage.hostU32(payload, i)
            : UInt32(payload[i]) << 24 | UInt32(payload[i + 1]) << 16 | UInt32(payload[i + 2]) << 8 | UInt32(payload[i + 3])
    }

    var u64: UInt64 {
        guard payload.count >= 8 else { return UInt64(u32) }
        return payload.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The attributes nested inside this one.
    var nested: Attributes { Attributes(message, from: start + 4, to: end) }
}

/// A run of attributes; iterating yields each one.
struct Attributes: Sequence {
    let bytes: [UInt8]
    let from: Int
    let to: Int
    var hostOrder = false

    init(_ bytes: [UInt8], from: Int, to: Int, hostOrder: Bool = false) {
        self.bytes = bytes
        self.from = from
        self.to = Swift.min(to, bytes.count)
        self.hostOrder = hostOrder
    }

    func makeIterator() -> AnyIterator<Attribute> {
        var offset = from
        let bytes = self.bytes, end = to, hostOrder = self.hostOrder
        return AnyIterator {
            guard end - offset >= 4 else { return nil }
            let length = Int(NetlinkMessage.hostU16(bytes[...], offset))
            let type = NetlinkMessage.hostU16(bytes[...], offset + 2) & 0x3fff  // without NLA_F_NESTED, NLA_F_NET_BYTEORDER
            guard length >= 4, offset + length <= end else { return nil }
            let attribute = Attribute(type: type, start: offset, end: offset + length, message: bytes, hostOrder: hostOrder)
            offset += (length + 3) & ~3
            return attribute
        }
    }

    subscript(type: UInt16) -> Attribute? { first { $0.type == type } }
    func all(_ type: UInt16) -> [Attribute] { filter { $0.type == type } }
}

import CNftnl

/// A chain as the kernel lists it.
public struct ListedChain: Hashable, Sendable {
    public var chain: Chain
    public var handle: UInt64
}

/// A rule as the kernel lists it: its handle (for deletion), its comment, its expressions.
public struct ListedRule: Hashable, Sendable {
    public var chain: String
    public var handle: UInt64
    public var comment: String?
    public var expressions: [Expression]
}

/// A set or map as the kernel lists it; key and data types recovered from nft's type numbers.
public struct ListedSet: Hashable, Sendable {
    public var definition: SetDefinition
    public var handle: UInt64
}

/// Decoding of dump replies (NEWCHAIN, NEWRULE, NEWSET, NEWSETELEM messages).
enum Decode {
    static func chain(_ message: NetlinkMessage) -> ListedChain? {
        let a = message.attributes
        guard let name = a[attr(NFTA_CHAIN_NAME)]?.string else { return nil }
        var chain = Chain(name)
        if let hook = a[attr(NFTA_CHAIN_HOOK)]?.nested, let number = hook[attr(NFTA_HOOK_HOOKNUM)]?.u32,
            let h = Hook(rawValue: number)
        {
            chain.base = BaseChain(
                type: ChainType(rawValue: a[attr(NFTA_CHAIN_TYPE)]?.string ?? "") ?? .filter, hook: h,
                priority: Priority(rawValue: Int32(bitPattern: hook[attr(NFTA_HOOK_PRIORITY)]?.u32 ?? 0)),
                policy: Policy(rawValue: a[attr(NFTA_CHAIN_POLICY)]?.u32 ?? 1) ?? .accept)
        }
        return ListedChain(chain: chain, handle: a[attr(NFTA_CHAIN_HANDLE)]?.u64 ?? 0)
    }

    static func rule(_ message: NetlinkMessage) -> ListedRule? {
        let a = message.attributes
        guard let chain = a[attr(NFTA_RULE_CHAIN)]?.string else { return nil }
        let userdata = Userdata.parse(a[attr(NFTA_RULE_USERDATA)]?.bytes ?? [])
        let expressions = (a[attr(NFTA_RULE_EXPRESSIONS)]?.nested.map { $0 } ?? []).map(expression)
        return ListedRule(
            chain: chain, handle: a[attr(NFTA_RULE_HANDLE)]?.u64 ?? 0,
            comment: Userdata.string(userdata[Userdata.commentType]), expressions: expressions)
    }

    static func set(_ message: NetlinkMessage) -> ListedSet? {
        let a = message.attributes
        guard let name = a[attr(NFTA_SET_NAME)]?.string else { return nil }
        let flags = a[attr(NFTA_SET_FLAGS)]?.u32 ?? 0
        let fieldLengths =
            a[attr(NFTA_SET_DESC)]?.nested[attr(NFTA_SET_DESC_CONCAT)]?.nested.compactMap {
                $0.nested[attr(NFTA_SET_FIELD_LEN)].map { Int($0.u32) }
            } ?? []
        let key = DataType.members(
            id: a[attr(NFTA_SET_KEY_TYPE)]?.u32 ?? 0, length: Int(a[attr(NFTA_SET_KEY_LEN)]?.u32 ?? 0),
            fieldLengths: fieldLengths)
        var data: MapData? = nil
        if flags & UInt32(NFT_SET_MAP.rawValue) != 0 {
            let type = a[attr(NFTA_SET_DATA_TYPE)]?.u32 ?? 0
            data =
                type == NFT_DATA_VERDICT.rawValue
                ? .verdict : .values(DataType.members(id: type, length: Int(a[attr(NFTA_SET_DATA_LEN)]?.u32 ?? 0)))
        }
        let userdata = Userdata.parse(a[attr(NFTA_SET_USERDATA)]?.bytes ?? [])
        let chosen = SetFlags(rawValue: flags).intersection([.constant, .interval, .timeout])
        let definition = SetDefinition(
            name, key: key, data: data, flags: chosen,
            timeout: a[attr(NFTA_SET_TIMEOUT)].map { .milliseconds(Int64($0.u64)) },
            comment: Userdata.string(userdata[Userdata.setComment]))
        return ListedSet(definition: definition, handle: a[attr(NFTA_SET_HANDLE)]?.u64 ?? 0)
    }

    /// Kernel elements of one or more dump messages, as the model's elements.
    static func elements(_ messages: [NetlinkMessage], of set: SetDefinition) -> [Element] {
        var raw: [(key: [UInt8], end: Bool, element: Element)] = []
        for message in messages {
            guard let list = message.attributes[attr(NFTA_SET_ELEM_LIST_ELEMENTS)] else { continue }
            for item in list.nested {
                let a = item.nested
                let key = a[attr(NFTA_SET_ELEM_KEY)]?.nested[attr(NFTA_DATA_VALUE)]?.bytes ?? []
                var element = Element(Concatenation.decode(key, as: set.key))
                if let end = a[attr(NFTA_SET_ELEM_KEY_END)]?.nested[attr(NFTA_DATA_VALUE)]?.bytes, end != key {
                    element.keyEnd = Concatenation.decode(end, as: set.key)
                }
                if let data = a[attr(NFTA_SET_ELEM_DATA)]?.nested {
                    if let value = data[attr(NFTA_DATA_VALUE)]?.bytes, case .values(let types) = set.data {
                        element.data = .values(Concatenation.decode(value, as: types))
                    } else if let verdict = data[attr(NFTA_DATA_VERDICT)].flatMap(Self.verdict) {
                        element.data = .verdict(verdict)
                    }
                }
                element.comment = Userdata.string(Userdata.parse(a[attr(NFTA_SET_ELEM_USERDATA)]?.bytes ?? [])[Userdata.commentType])
                element.timeout = a[attr(NFTA_SET_ELEM_TIMEOUT)].map { .milliseconds(Int64($0.u64)) }
                element.expiration = a[attr(NFTA_SET_ELEM_EXPIRATION)].map { .milliseconds(Int64($0.u64)) }
                let flags = a[attr(NFTA_SET_ELEM_FLAGS)]?.u32 ?? 0
                raw.append((key, flags & UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue) != 0, element))
            }
        }
        guard set.usesIntervalEndElements else { return raw.map(\.element) }
        return pairIntervals(raw, byteOrder: set.key[0].byteOrder, type: set.key[0])
    }

    /// A single-field interval set lists starts and ends (first key after the range) separately.
    private static func pairIntervals(
        _ raw: [(key: [UInt8], end: Bool, element: Element)], byteOrder: DataType.ByteOrder, type: DataType
    ) -> [Element] {
        func numeric(_ key: [UInt8]) -> [UInt8] { byteOrder == .bigEndian ? key : key.reversed() }
        let sorted = raw.sorted { numeric($0.key).lexicographicallyPrecedes(numeric($1.key)) }
        var result: [Element] = []
        for (i, item) in sorted.enumerated() where !item.end {
            var element = item.element
            let last: [UInt8]
            if i + 1 < sorted.count, sorted[i + 1].end {
                last = decrement(sorted[i + 1].key, byteOrder: byteOrder)
            } else {
                last = [UInt8](repeating: 0xff, count: item.key.count)
            }
            if last != item.key { element.keyEnd = Concatenation.decode(last, as: [type]) }
            result.append(element)
        }
        return result
    }

    private static func decrement(_ bytes: [UInt8], byteOrder: DataType.ByteOrder) -> [UInt8] {
        var out = bytes
        for i in byteOrder == .bigEndian ? Array(out.indices.reversed()) : Array(out.indices) {
            if out[i] == 0 {
                out[i] = 0xff
            } else {
                out[i] -= 1
                break
            }
        }
        return out
    }

    static func verdict(_ attribute: Attribute) -> Verdict? {
        let v = attribute.nested
        guard let code = v[attr(NFTA_VERDICT_CODE)]?.u32 else { return nil }
        return Verdict(code: Int32(bitPattern: code), chain: v[attr(NFTA_VERDICT_CHAIN)]?.string)
    }

    /// One NFTA_LIST_ELEM of a rule's expressions.
    static func expression(_ item: Attribute) -> Expression {
        let outer = item.nested
        let name = outer[attr(NFTA_EXPR_NAME)]?.string ?? "?"
        let a = outer[attr(NFTA_EXPR_DATA)]?.nested ?? Attributes([], from: 0, to: 0)
        func u32(_ t: UInt32) -> UInt32 { a[UInt16(t)]?.u32 ?? 0 }
        func reg(_ t: UInt32) -> Register? { a[UInt16(t)].flatMap { Register(netlinkValue: $0.u32) } }
        func value(_ t: UInt32) -> [UInt8] { a[UInt16(t)]?.nested[attr(NFTA_DATA_VALUE)]?.bytes ?? [] }
        switch name {
        case "meta":
            let key = MetaKey(rawValue: u32(NFTA_META_KEY.rawValue))
            if let d = reg(NFTA_META_DREG.rawValue) { return .meta(key, into: d) }
            if let s = reg(NFTA_META_SREG.rawValue) { return .setMeta(key, from: s) }
        case "payload":
            if let d = reg(NFTA_PAYLOAD_DREG.rawValue), let base = PayloadBase(rawValue: u32(NFTA_PAYLOAD_BASE.rawValue)) {
                return .payload(base, offset: u32(NFTA_PAYLOAD_OFFSET.rawValue), length: u32(NFTA_PAYLOAD_LEN.rawValue), into: d)
            }
        case "cmp":
            if let s = reg(NFTA_CMP_SREG.rawValue), let op = CompareOp(rawValue: u32(NFTA_CMP_OP.rawValue)) {
                return .compare(s, op, value(NFTA_CMP_DATA.rawValue))
            }
        case "bitwise":
            if let s = reg(NFTA_BITWISE_SREG.rawValue), let d = reg(NFTA_BITWISE_DREG.rawValue), u32(NFTA_BITWISE_OP.rawValue) == 0 {
                return .bitwise(s, into: d, mask: value(NFTA_BITWISE_MASK.rawValue), xor: value(NFTA_BITWISE_XOR.rawValue))
            }
        case "lookup":
            if let s = reg(NFTA_LOOKUP_SREG.rawValue), let set = a[attr(NFTA_LOOKUP_SET)]?.string {
                let invert = u32(NFTA_LOOKUP_FLAGS.rawValue) & UInt32(NFT_LOOKUP_F_INV.rawValue) != 0
                return .lookup(set: set, from: s, into: reg(NFTA_LOOKUP_DREG.rawValue), invert: invert)
            }
        case "immediate":
            let data = a[attr(NFTA_IMMEDIATE_DATA)]?.nested
            if let v = data?[attr(NFTA_DATA_VERDICT)].flatMap(verdict) { return .verdict(v) }
            if let bytes = data?[attr(NFTA_DATA_VALUE)]?.bytes, let d = reg(NFTA_IMMEDIATE_DREG.rawValue) {
                return .immediate(bytes, into: d)
            }
        case "ct":
            if let d = reg(NFTA_CT_DREG.rawValue) {
                let direction = a[attr(NFTA_CT_DIRECTION)].flatMap { CtDirection(rawValue: $0.u8) }
                return .ct(CtKey(rawValue: u32(NFTA_CT_KEY.rawValue)), direction: direction, into: d)
            }
        case "nat":
            if let type = NatType(rawValue: u32(NFTA_NAT_TYPE.rawValue)), let family = NatFamily(rawValue: u32(NFTA_NAT_FAMILY.rawValue)) {
                // The kernel lists what it implies: max registers equal to the min ones, and
                // the flags that say registers are present. Listed without them, a rule reads
                // back as it was written.
                let address = reg(NFTA_NAT_REG_ADDR_MIN.rawValue), port = reg(NFTA_NAT_REG_PROTO_MIN.rawValue)
                let addressMax = reg(NFTA_NAT_REG_ADDR_MAX.rawValue), portMax = reg(NFTA_NAT_REG_PROTO_MAX.rawValue)
                var flags = u32(NFTA_NAT_FLAGS.rawValue)
                if address != nil { flags &= ~UInt32(NF_NAT_RANGE_MAP_IPS) }
                if port != nil { flags &= ~UInt32(NF_NAT_RANGE_PROTO_SPECIFIED) }
                return .nat(
                    type, family: family, address: address, addressMax: addressMax == address ? nil : addressMax,
                    port: port, portMax: portMax == port ? nil : portMax, flags: flags)
            }
        case "masq":
            return .masquerade(
                flags: u32(NFTA_MASQ_FLAGS.rawValue), port: reg(NFTA_MASQ_REG_PROTO_MIN.rawValue),
                portMax: reg(NFTA_MASQ_REG_PROTO_MAX.rawValue))
        case "redir":
            return .redirect(
                flags: u32(NFTA_REDIR_FLAGS.rawValue), port: reg(NFTA_REDIR_REG_PROTO_MIN.rawValue),
                portMax: reg(NFTA_REDIR_REG_PROTO_MAX.rawValue))
        case "counter":
            return .counter(
                Counter(packets: a[attr(NFTA_COUNTER_PACKETS)]?.u64 ?? 0, bytes: a[attr(NFTA_COUNTER_BYTES)]?.u64 ?? 0))
        case "fib":
            if let d = reg(NFTA_FIB_DREG.rawValue), let result = FibResult(rawValue: u32(NFTA_FIB_RESULT.rawValue)) {
                return .fib(FibFlags(rawValue: u32(NFTA_FIB_FLAGS.rawValue)), result: result, into: d)
            }
        case "notrack":
            return .notrack
        default:
            break
        }
        return .other(name)
    }
}

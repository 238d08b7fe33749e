import CNftnl

/// libnftnl attribute numbers are C enums that import either as Int constants (anonymous
/// enums) or as RawRepresentable structs (named ones); the setters take UInt16.
@inline(__always) func attr(_ value: Int) -> UInt16 { UInt16(truncatingIfNeeded: value) }
@inline(__always) func attr<E: RawRepresentable>(_ value: E) -> UInt16 where E.RawValue: BinaryInteger {
    UInt16(truncatingIfNeeded: value.rawValue)
}

/// Userdata TLVs (libnftnl's udata format: type byte, length byte, value).
enum Userdata {
    /// nft's comment TLV type on tables, chains, rules and elements; sets use type 7.
    static let commentType: UInt8 = 0
    static let setKeyByteOrder: UInt8 = 0
    static let setDataByteOrder: UInt8 = 1
    static let setComment: UInt8 = 7
    static let maxComment = 127

    static func put(_ type: UInt8, _ value: [UInt8], into out: inout [UInt8]) {
        out += [type, UInt8(value.count)] + value
    }

    static func comment(_ text: String) throws(FirewallError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count <= maxComment, !utf8.contains(0) else {
            throw .invalid("comment \"\(text)\" is longer than \(maxComment) bytes or contains NUL")
        }
        return utf8 + [0]
    }

    static func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// The TLVs of a userdata blob.
    static func parse(_ bytes: [UInt8]) -> [UInt8: [UInt8]] {
        var result: [UInt8: [UInt8]] = [:]
        var i = 0
        while i + 2 <= bytes.count {
            let type = bytes[i], length = Int(bytes[i + 1])
            guard i + 2 + length <= bytes.count else { break }
            result[type] = Array(bytes[(i + 2)..<(i + 2 + length)])
            i += 2 + length
        }
        return result
    }

    static func string(_ value: [UInt8]?) -> String? {
        value.map { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
}

func setBytes(_ bytes: [UInt8], _ body: (UnsafeRawPointer, UInt32) -> Void) {
    bytes.withUnsafeBytes { body($0.baseAddress!, UInt32($0.count)) }
}

/// Builds libnftnl objects from the model. The caller frees what it gets.
enum LibnftnlObjects {
    static func table(_ table: Table) throws(FirewallError) -> OpaquePointer {
        guard let t = nftnl_table_alloc() else { throw .system("nftnl_table_alloc") }
        nftnl_table_set_str(t, attr(NFTNL_TABLE_NAME), table.name)
        nftnl_table_set_u32(t, attr(NFTNL_TABLE_FLAGS), 0)
        return t
    }

    static func chain(_ chain: Chain, in table: Table) throws(FirewallError) -> OpaquePointer {
        guard let c = nftnl_chain_alloc() else { throw .system("nftnl_chain_alloc") }
        nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TABLE), table.name)
        nftnl_chain_set_str(c, attr(NFTNL_CHAIN_NAME), chain.name)
        if let base = chain.base {
            nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TYPE), base.type.rawValue)
            nftnl_chain_set_u32(c, attr(NFTNL_CHAIN_HOOKNUM), base.hook.rawValue)
            nftnl_chain_set_s32(c, attr(NFTNL_CHAIN_PRIO), base.priority.rawValue)
            nftnl_chain_set_u32(c, attr(NFTNL_CHAIN_POLICY), base.policy.rawValue)
        }
        return c
    }

    static func set(_ set: SetDefinition, in table: Table, id: UInt32?) throws(FirewallError) -> OpaquePointer {
        guard !set.key.isEmpty else { throw .invalid("set \(set.name) has no key type") }
        let s = try setReference(set.name, in: table, id: id)
        nftnl_set_set_u32(s, attr(NFTNL_SET_FLAGS), set.kernelFlags)
        nftnl_set_set_u32(s, attr(NFTNL_SET_KEY_TYPE), DataType.concatenationID(set.key))
        nftnl_set_set_u32(s, attr(NFTNL_SET_KEY_LEN), UInt32(Concatenation.length(set.key)))
        var userdata: [UInt8] = []
        Userdata.put(Userdata.setKeyByteOrder, Userdata.u32(set.key.count == 1 ? set.key[0].byteOrder.rawValue : 0), into: &userdata)
        switch set.data {
        case .values(let types):
            guard !types.isEmpty else { throw .invalid("map \(set.name) has no data type") }
            nftnl_set_set_u32(s, attr(NFTNL_SET_DATA_TYPE), DataType.concatenationID(types))
            nftnl_set_set_u32(s, attr(NFTNL_SET_DATA_LEN), UInt32(Concatenation.length(types)))
            Userdata.put(Userdata.setDataByteOrder, Userdata.u32(types.count == 1 ? types[0].byteOrder.rawValue : 0), into: &userdata)
        case .verdict:
            nftnl_set_set_u32(s, attr(NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT.rawValue)
            nftnl_set_set_u32(s, attr(NFTNL_SET_DATA_LEN), 0)
            Userdata.put(Userdata.setDataByteOrder, Userdata.u32(0), into: &userdata)
        case nil:
            break
        }
        if let timeout = set.timeout {
            guard set.flags.contains(.timeout) else { throw .invalid("set \(set.name) has a timeout but not the timeout flag") }
            nftnl_set_set_u64(s, attr(NFTNL_SET_TIMEOUT), milliseconds(timeout))
        }
        if set.flags.contains(.interval) && set.key.count > 1 {
            // The pipapo backend needs each field's length.
            setBytes(set.key.map { UInt8($0.length) }) { nftnl_set_set_data(s, attr(NFTNL_SET_DESC_CONCAT), $0, $1) }
        }
        if let comment = set.comment { Userdata.put(Userdata.setComment, try Userdata.comment(comment), into: &userdata) }
        setBytes(userdata) { nftnl_set_set_data(s, attr(NFTNL_SET_USERDATA), $0, $1) }
        return s
    }

    /// A set object carrying only what names it (for element lists and deletions).
    static func setReference(_ name: String, in table: Table, id: UInt32?) throws(FirewallError) -> OpaquePointer {
        guard let s = nftnl_set_alloc() else { throw .system("nftnl_set_alloc") }
        nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), table.name)
        nftnl_set_set_str(s, attr(NFTNL_SET_NAME), name)
        if let id { nftnl_set_set_u32(s, attr(NFTNL_SET_ID), id) }
        return s
    }

    /// A rule object naming a chain, and a rule if `handle` is given (flush, delete).
    static func rule(in table: Table, chain: String, handle: UInt64? = nil) throws(FirewallError) -> OpaquePointer {
        guard let r = nftnl_rule_alloc() else { throw .system("nftnl_rule_alloc") }
        nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), table.name)
        nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), chain)
        if let handle { nftnl_rule_set_u64(r, attr(NFTNL_RULE_HANDLE), handle) }
        return r
    }

    static func rule(_ rule: Rule, in table: Table, setIDs: [String: UInt32]) throws(FirewallError) -> OpaquePointer {
        let expressions = try rule.expressions(family: table.family)
        let r = try self.rule(in: table, chain: rule.chain)
        for (i, expression) in expressions.enumerated() {
            guard let e = LibnftnlExpressions.make(expression, setIDs: setIDs) else {
                nftnl_rule_free(r)
                throw .invalid("expression \(i) (\(expression.name)) cannot be encoded")
            }
            nftnl_rule_add_expr(r, e)
        }
        if let comment = rule.comment {
            var userdata: [UInt8] = []
            do {
                Userdata.put(Userdata.commentType, try Userdata.comment(comment), into: &userdata)
            } catch {
                nftnl_rule_free(r)
                throw error
            }
            setBytes(userdata) { nftnl_rule_set_data(r, attr(NFTNL_RULE_USERDATA), $0, $1) }
        }
        return r
    }
}

func milliseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000_000
}

/// One element as the kernel stores it.
struct KernelElement {
    var key: [UInt8]
    var keyEnd: [UInt8]? = nil
    var data: [UInt8]? = nil
    var verdict: Verdict? = nil
    var flags: UInt32 = 0
    var timeout: UInt64? = nil
    var userdata: [UInt8]? = nil

    var sizeEstimate: Int {
        64 + key.count + (keyEnd?.count ?? 0) + (data?.count ?? 0) + (verdict?.chain?.utf8.count ?? 0)
            + (userdata?.count ?? 0)
    }

    /// The element's kernel form: a single-field interval becomes a start element and an
    /// end element holding the first key after the range (none if the range reaches the top).
    static func encode(_ element: Element, of set: SetDefinition, forDeletion: Bool) throws(FirewallError) -> [KernelElement] {
        var start = KernelElement(key: try Concatenation.encode(element.key, as: set.key))
        if !forDeletion {
            switch (set.data, element.data) {
            case (.values(let types), .values(let values)?): start.data = try Concatenation.encode(values, as: types)
            case (.verdict, .verdict(let verdict)?): start.verdict = verdict
            case (nil, nil): break
            case (nil, _?): throw .invalid("set \(set.name) is not a map")
            case (_?, nil): throw .invalid("map \(set.name) needs data")
            default: throw .invalid("data does not match map \(set.name)")
            }
            if let comment = element.comment {
                var userdata: [UInt8] = []
                Userdata.put(Userdata.commentType, try Userdata.comment(comment), into: &userdata)
                start.userdata = userdata
            }
            if let timeout = element.timeout {
                guard set.flags.contains(.timeout) else { throw .invalid("set \(set.name) has no timeout flag") }
                start.timeout = milliseconds(timeout)
            }
        }
        guard set.flags.contains(.interval) else {
            guard element.keyEnd == nil else { throw .invalid("set \(set.name) is not an interval set") }
            return [start]
        }
        let last = try element.keyEnd.map { v throws(FirewallError) in try Concatenation.encode(v, as: set.key) } ?? start.key
        guard set.usesIntervalEndElements else {
            start.keyEnd = last
            return [start]
        }
        guard let next = increment(last, byteOrder: set.key[0].byteOrder) else { return [start] }
        return [start, KernelElement(key: next, flags: UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue))]
    }

    /// The key plus one, or nil when it was the largest.
    static func increment(_ bytes: [UInt8], byteOrder: DataType.ByteOrder) -> [UInt8]? {
        var out = bytes
        let order = byteOrder == .bigEndian ? Array(out.indices.reversed()) : Array(out.indices)
        for i in order {
            if out[i] == 0xff {
                out[i] = 0
            } else {
                out[i] += 1
                return out
            }
        }
        return nil
    }

    /// A libnftnl element; ownership passes to the set it is added to.
    func libnftnlObject() -> OpaquePointer {
        let e = nftnl_set_elem_alloc()!
        setBytes(key) { nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0, $1) }
        if let keyEnd { setBytes(keyEnd) { nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY_END), $0, $1) } }
        if let data { setBytes(data) { nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_DATA), $0, $1) } }
        if let verdict {
            nftnl_set_elem_set_u32(e, attr(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain { nftnl_set_elem_set_str(e, attr(NFTNL_SET_ELEM_CHAIN), chain) }
        }
        if flags != 0 { nftnl_set_elem_set_u32(e, attr(NFTNL_SET_ELEM_FLAGS), flags) }
        if let timeout { nftnl_set_elem_set_u64(e, attr(NFTNL_SET_ELEM_TIMEOUT), timeout) }
        if let userdata { setBytes(userdata) { nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_USERDATA), $0, $1) } }
        return e
    }
}

/// Expressions as libnftnl objects.
enum LibnftnlExpressions {
    static func make(_ expression: Expression, setIDs: [String: UInt32]) -> OpaquePointer? {
        guard let e = nftnl_expr_alloc(expression.name) else { return nil }
        func u32(_ a: Int, _ v: UInt32) { nftnl_expr_set_u32(e, attr(a), v) }
        func reg(_ a: Int, _ r: Register?) { if let r { u32(a, r.netlinkValue) } }
        func data(_ a: Int, _ bytes: [UInt8]) { setBytes(bytes) { nftnl_expr_set(e, attr(a), $0, $1) } }
        switch expression {
        case .meta(let key, let register):
            u32(NFTNL_EXPR_META_KEY, key.rawValue)
            reg(NFTNL_EXPR_META_DREG, register)
        case .setMeta(let key, let register):
            u32(NFTNL_EXPR_META_KEY, key.rawValue)
            reg(NFTNL_EXPR_META_SREG, register)
        case .payload(let base, let offset, let length, let register):
            reg(NFTNL_EXPR_PAYLOAD_DREG, register)
            u32(NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            u32(NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            u32(NFTNL_EXPR_PAYLOAD_LEN, length)
        case .compare(let register, let op, let value):
            reg(NFTNL_EXPR_CMP_SREG, register)
            u32(NFTNL_EXPR_CMP_OP, op.rawValue)
            data(NFTNL_EXPR_CMP_DATA, value)
        case .bitwise(let source, let destination, let mask, let xor):
            reg(NFTNL_EXPR_BITWISE_SREG, source)
            reg(NFTNL_EXPR_BITWISE_DREG, destination)
            u32(NFTNL_EXPR_BITWISE_LEN, UInt32(mask.count))
            data(NFTNL_EXPR_BITWISE_MASK, mask)
            data(NFTNL_EXPR_BITWISE_XOR, xor)
        case .lookup(let set, let source, let destination, let invert):
            reg(NFTNL_EXPR_LOOKUP_SREG, source)
            reg(NFTNL_EXPR_LOOKUP_DREG, destination)
            nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOOKUP_SET), set)
            if let id = setIDs[set] { u32(NFTNL_EXPR_LOOKUP_SET_ID, id) }
            if invert { u32(NFTNL_EXPR_LOOKUP_FLAGS, UInt32(NFT_LOOKUP_F_INV.rawValue)) }
        case .verdict(let verdict):
            reg(NFTNL_EXPR_IMM_DREG, .verdict)
            u32(NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain { nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), chain) }
        case .immediate(let value, let register):
            reg(NFTNL_EXPR_IMM_DREG, register)
            data(NFTNL_EXPR_IMM_DATA, value)
        case .ct(let key, let direction, let register):
            reg(NFTNL_EXPR_CT_DREG, register)
            u32(NFTNL_EXPR_CT_KEY, key.rawValue)
            if let direction { nftnl_expr_set_u8(e, attr(NFTNL_EXPR_CT_DIR), direction.rawValue) }
        case .nat(let type, let family, let address, let addressMax, let port, let portMax, let flags):
            u32(NFTNL_EXPR_NAT_TYPE, type.rawValue)
            u32(NFTNL_EXPR_NAT_FAMILY, family.rawValue)
            reg(NFTNL_EXPR_NAT_REG_ADDR_MIN, address)
            reg(NFTNL_EXPR_NAT_REG_ADDR_MAX, addressMax)
            reg(NFTNL_EXPR_NAT_REG_PROTO_MIN, port)
            reg(NFTNL_EXPR_NAT_REG_PROTO_MAX, portMax)
            if flags != 0 { u32(NFTNL_EXPR_NAT_FLAGS, flags) }
        case .masquerade(let flags, let port, let portMax):
            if flags != 0 { u32(NFTNL_EXPR_MASQ_FLAGS, flags) }
            reg(NFTNL_EXPR_MASQ_REG_PROTO_MIN, port)
            reg(NFTNL_EXPR_MASQ_REG_PROTO_MAX, portMax)
        case .redirect(let flags, let port, let portMax):
            reg(NFTNL_EXPR_REDIR_REG_PROTO_MIN, port)
            reg(NFTNL_EXPR_REDIR_REG_PROTO_MAX, portMax)
            if flags != 0 { u32(NFTNL_EXPR_REDIR_FLAGS, flags) }
        case .counter, .notrack:
            break
        case .fib(let flags, let result, let register):
            reg(NFTNL_EXPR_FIB_DREG, register)
            u32(NFTNL_EXPR_FIB_RESULT, result.rawValue)
            u32(NFTNL_EXPR_FIB_FLAGS, flags.rawValue)
        case .other:
            nftnl_expr_free(e)
            return nil
        }
        return e
    }
}

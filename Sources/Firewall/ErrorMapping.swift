import CNftnl

extension CompiledBatch {
    /// The error for the kernel's rejections of this batch: the first rejected message, with
    /// the others in `alsoFailed`. nf_tables sends errno and an attribute offset, never text, so
    /// the message is found by sequence number and the attribute by walking the message.
    func error(for acknowledgements: [Acknowledgement]) -> FirewallError {
        var errors = acknowledgements.map(error(for:))
        var first = errors.removeFirst()
        first.alsoFailed = errors
        return first
    }

    func error(for ack: Acknowledgement) -> FirewallError {
        guard let message = message(sequence: ack.sequence) else {
            // The kernel answered the batch itself (begin/end), e.g. when the commit failed.
            return FirewallError(
                "commit \(operations.count) changes to table \(table)", errno: ack.errno, kernelMessage: ack.kernelMessage)
        }
        let operation = operations[message.operationIndex]
        var attribute: String? = nil
        if let offset = ack.offset {
            attribute = AttributeNames.describe(
                offset: Int(offset), in: Array(bytes(of: message)), operation: operation,
                elementIndices: message.elementIndices)
        }
        return FirewallError(
            operation.summary(in: table), attribute: attribute, errno: ack.errno, kernelMessage: ack.kernelMessage,
            operationIndex: message.operationIndex)
    }
}

/// Names of nf_tables attributes, to say which part of a message the kernel rejected.
enum AttributeNames {
    static let table = [1: "name", 2: "flags", 6: "userdata"]
    static let chain = [1: "table", 2: "handle", 3: "name", 4: "hook", 5: "policy", 7: "type", 10: "flags", 12: "userdata"]
    static let hook = [1: "hook", 2: "priority", 3: "device"]
    static let rule = [1: "table", 2: "chain", 3: "handle", 4: "expressions", 6: "position", 7: "userdata"]
    static let set = [
        1: "table", 2: "name", 3: "flags", 4: "key type", 5: "key length", 6: "data type", 7: "data length", 8: "policy",
        9: "description", 10: "id", 11: "timeout", 12: "gc interval", 13: "userdata",
    ]
    static let elementList = [1: "table", 2: "set", 3: "elements", 4: "set id"]
    static let element = [1: "key", 2: "data", 3: "flags", 4: "timeout", 5: "expiration", 6: "userdata", 10: "key end"]
    static let expressionData: [String: [Int: String]] = [
        "meta": [1: "dreg", 2: "key", 3: "sreg"],
        "payload": [1: "dreg", 2: "base", 3: "offset", 4: "len", 5: "sreg"],
        "cmp": [1: "sreg", 2: "op", 3: "data"],
        "bitwise": [1: "sreg", 2: "dreg", 3: "len", 4: "mask", 5: "xor", 6: "op", 7: "data"],
        "lookup": [1: "set", 2: "sreg", 3: "dreg", 4: "set id", 5: "flags"],
        "immediate": [1: "dreg", 2: "data"],
        "ct": [1: "dreg", 2: "key", 3: "direction", 4: "sreg"],
        "nat": [1: "type", 2: "family", 3: "address register", 4: "address max register", 5: "port register", 6: "port max register", 7: "flags"],
        "masq": [1: "flags", 2: "port register", 3: "port max register"],
        "redir": [1: "port register", 2: "port max register", 3: "flags"],
        "fib": [1: "dreg", 2: "result", 3: "flags"],
        "counter": [1: "bytes", 2: "packets"],
    ]

    static func name(_ table: [Int: String], _ type: UInt16) -> String { table[Int(type)] ?? "attribute \(type)" }

    /// "expression 3 of 5 (lookup): set", "element tcp . 8080: key".
    static func describe(offset: Int, in bytes: [UInt8], operation: Batch.Operation, elementIndices: [Int]) -> String? {
        guard let message = NetlinkMessage.split(bytes[...]).first else { return nil }
        guard let top = message.attributes.first(where: { $0.contains(offset) }) else { return nil }
        switch NetlinkMessageKind(message.nftType) {
        case .table: return name(table, top.type)
        case .chain:
            guard top.type == attr(NFTA_CHAIN_HOOK), let inner = top.nested.first(where: { $0.contains(offset) }) else {
                return name(chain, top.type)
            }
            return "hook " + name(hook, inner.type)
        case .set: return name(set, top.type)
        case .rule:
            guard top.type == attr(NFTA_RULE_EXPRESSIONS) else { return name(rule, top.type) }
            let list = Array(top.nested)
            guard let index = list.firstIndex(where: { $0.contains(offset) }) else { return "expressions" }
            let parts = list[index].nested
            let expressionName = parts[attr(NFTA_EXPR_NAME)]?.string ?? "?"
            var text = "expression \(index + 1) of \(list.count) (\(expressionName))"
            if let data = parts[attr(NFTA_EXPR_DATA)], data.contains(offset), offset > data.start {
                if let inner = data.nested.first(where: { $0.contains(offset) }) {
                    text += ": " + name(expressionData[expressionName] ?? [:], inner.type)
                }
            }
            return text
        case .elements:
            guard top.type == attr(NFTA_SET_ELEM_LIST_ELEMENTS) else { return name(elementList, top.type) }
            let list = Array(top.nested)
            guard let index = list.firstIndex(where: { $0.contains(offset) }) else { return "elements" }
            var text = "element \(index + 1)"
            if index < elementIndices.count, let (set, elements) = operation.elements {
                text = "element " + elements[elementIndices[index]].describeKey(in: set)
            }
            if let inner = list[index].nested.first(where: { $0.contains(offset) }) {
                text += ": " + name(element, inner.type)
            }
            return text
        case .other:
            return "attribute \(top.type)"
        }
    }
}

/// Which family of nf_tables messages a type belongs to.
enum NetlinkMessageKind {
    case table, chain, rule, set, elements, other

    init(_ type: UInt16) {
        switch Int(type) {
        case Int(NFT_MSG_NEWTABLE.rawValue), Int(NFT_MSG_GETTABLE.rawValue), Int(NFT_MSG_DELTABLE.rawValue), MessageType.destroyTable:
            self = .table
        case Int(NFT_MSG_NEWCHAIN.rawValue), Int(NFT_MSG_GETCHAIN.rawValue), Int(NFT_MSG_DELCHAIN.rawValue), MessageType.destroyChain:
            self = .chain
        case Int(NFT_MSG_NEWRULE.rawValue), Int(NFT_MSG_GETRULE.rawValue), Int(NFT_MSG_DELRULE.rawValue), MessageType.destroyRule:
            self = .rule
        case Int(NFT_MSG_NEWSET.rawValue), Int(NFT_MSG_GETSET.rawValue), Int(NFT_MSG_DELSET.rawValue), MessageType.destroySet:
            self = .set
        case Int(NFT_MSG_NEWSETELEM.rawValue), Int(NFT_MSG_GETSETELEM.rawValue), Int(NFT_MSG_DELSETELEM.rawValue),
            MessageType.destroySetElement:
            self = .elements
        default:
            self = .other
        }
    }
}

extension Batch.Operation {
    var elements: (SetDefinition, [Element])? {
        switch self {
        case .addElements(let set, let elements, _), .deleteElements(let set, let elements, _): (set, elements)
        default: nil
        }
    }
}

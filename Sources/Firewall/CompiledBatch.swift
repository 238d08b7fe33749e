import CBerth
import CNftnl
import Glibc

/// A batch as bytes: NFNL_MSG_BATCH_BEGIN, one message per operation (element lists split into
/// messages of at most ~32 KiB), NFNL_MSG_BATCH_END. Sent with one sendmsg, applied atomically.
public struct CompiledBatch: Sendable {
    /// One nf_tables message of the batch and where it came from.
    public struct Message: Sendable {
        public let sequence: UInt32
        /// Where the message lies in `bytes`.
        public let range: Range<Int>
        /// Index into `Batch.operations`.
        public let operationIndex: Int
        /// For element messages: the operation's element behind each kernel element, in order
        /// (a single-field interval is two kernel elements).
        let elementIndices: [Int]
    }

    public let table: Table
    public let operations: [Batch.Operation]
    public let bytes: [UInt8]
    public let messages: [Message]
    public let beginSequence: UInt32
    public let endSequence: UInt32

    /// The bytes of one message.
    public func bytes(of message: Message) -> ArraySlice<UInt8> { bytes[message.range] }

    public func message(sequence: UInt32) -> Message? {
        guard sequence > beginSequence, sequence < endSequence else { return nil }
        let index = Int(sequence - beginSequence - 1)
        return index < messages.count ? messages[index] : nil
    }
}

extension Batch {
    /// Builds the batch's messages with libnftnl. Sequence numbers run from `sequence` (the
    /// batch begin) upwards.
    public func compile(sequence: UInt32 = 1) throws(FirewallError) -> CompiledBatch {
        var writer = BatchWriter(table: table, sequence: sequence)
        // Sets created in this batch are referred to by ID as well as by name, as nft does.
        var nextSetID: UInt32 = 1
        for operation in operations {
            if case .addSet(let set, _) = operation, writer.setIDs[set.name] == nil {
                writer.setIDs[set.name] = nextSetID
                nextSetID += 1
            }
        }
        writer.begin(generation: generation)
        for (index, operation) in operations.enumerated() {
            do {
                try writer.write(operation, index: index)
            } catch {
                throw FirewallError(
                    "\(operation.summary(in: table)): \(error.operation)", errno: error.errno, operationIndex: index)
            }
        }
        writer.end()
        return CompiledBatch(
            table: table, operations: operations, bytes: writer.bytes, messages: writer.messages,
            beginSequence: sequence, endSequence: writer.sequence)
    }
}

/// Most bytes of elements put into one message (an attribute's length is 16 bits).
private let elementBytesPerMessage = 32 * 1024
/// Room for one message; no single message the writer builds comes near it.
private let scratchSize = 128 * 1024

private struct BatchWriter {
    let table: Table
    var sequence: UInt32
    var setIDs: [String: UInt32] = [:]
    var bytes: [UInt8] = []
    var messages: [CompiledBatch.Message] = []
    var scratch = [UInt8](repeating: 0, count: scratchSize)

    init(table: Table, sequence: UInt32) {
        self.table = table
        self.sequence = sequence
    }

    mutating func begin(generation: UInt32?) {
        let seq = sequence
        append { buffer in
            let header = nftnl_batch_begin(buffer, seq)
            if let generation, let header { mnl_attr_put_u32(header, UInt16(NFNL_BATCH_GENID.rawValue), generation.bigEndian) }
            return header
        }
        sequence += 1
    }

    mutating func end() {
        let seq = sequence
        append { buffer in nftnl_batch_end(buffer, seq) }
    }

    /// Appends the message `build` writes into the scratch buffer.
    private mutating func append(_ build: (UnsafeMutablePointer<CChar>) -> UnsafeMutablePointer<nlmsghdr>?) {
        bytes += buildMessage(in: &scratch, build)
    }

    /// Writes one nf_tables message; `payload` adds the attributes.
    private mutating func message(
        _ type: Int, flags: UInt16, operation: Int, elements: [Int] = [],
        _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void
    ) {
        let start = bytes.count
        let seq = sequence
        let family = UInt16(table.family.rawValue)
        append { buffer in
            let header = nftnl_nlmsg_build_hdr(buffer, UInt16(type), family, flags, seq)!
            payload(header)
            return header
        }
        messages.append(.init(sequence: seq, range: start..<bytes.count, operationIndex: operation, elementIndices: elements))
        sequence += 1
    }

    mutating func write(_ operation: Batch.Operation, index: Int) throws(FirewallError) {
        let create = NetlinkFlags.create
        let exclusive = NetlinkFlags.create | NetlinkFlags.exclusive
        switch operation {
        case .addTable(let mode):
            let object = try LibnftnlObjects.table(table)
            defer { nftnl_table_free(object) }
            // nft sends "add table" without NLM_F_CREATE; the kernel creates tables either way.
            message(Int(NFT_MSG_NEWTABLE.rawValue), flags: mode == .create ? exclusive : 0, operation: index) {
                nftnl_table_nlmsg_build_payload($0, object)
            }
        case .deleteTable(let absence):
            let object = try LibnftnlObjects.table(table)
            defer { nftnl_table_free(object) }
            message(absence == .fail ? Int(NFT_MSG_DELTABLE.rawValue) : MessageType.destroyTable, flags: 0, operation: index) {
                nftnl_table_nlmsg_build_payload($0, object)
            }
        case .addChain(let chain, let mode):
            let object = try LibnftnlObjects.chain(chain, in: table)
            defer { nftnl_chain_free(object) }
            message(Int(NFT_MSG_NEWCHAIN.rawValue), flags: mode == .create ? exclusive : create, operation: index) {
                nftnl_chain_nlmsg_build_payload($0, object)
            }
        case .deleteChain(let name, let absence):
            let object = try LibnftnlObjects.chain(Chain(name), in: table)
            defer { nftnl_chain_free(object) }
            message(absence == .fail ? Int(NFT_MSG_DELCHAIN.rawValue) : MessageType.destroyChain, flags: 0, operation: index) {
                nftnl_chain_nlmsg_build_payload($0, object)
            }
        case .flushChain(let name):
            let object = try LibnftnlObjects.rule(in: table, chain: name)
            defer { nftnl_rule_free(object) }
            message(Int(NFT_MSG_DELRULE.rawValue), flags: 0, operation: index) { nftnl_rule_nlmsg_build_payload($0, object) }
        case .addSet(let set, let mode):
            let object = try LibnftnlObjects.set(set, in: table, id: setIDs[set.name])
            defer { nftnl_set_free(object) }
            message(Int(NFT_MSG_NEWSET.rawValue), flags: mode == .create ? exclusive : create, operation: index) {
                nftnl_set_nlmsg_build_payload($0, object)
            }
        case .deleteSet(let name, let absence):
            let object = try LibnftnlObjects.setReference(name, in: table, id: nil)
            defer { nftnl_set_free(object) }
            message(absence == .fail ? Int(NFT_MSG_DELSET.rawValue) : MessageType.destroySet, flags: 0, operation: index) {
                nftnl_set_nlmsg_build_payload($0, object)
            }
        case .flushSet(let name):
            let object = try LibnftnlObjects.setReference(name, in: table, id: setIDs[name])
            defer { nftnl_set_free(object) }
            message(Int(NFT_MSG_DELSETELEM.rawValue), flags: 0, operation: index) {
                nftnl_set_elems_nlmsg_build_payload($0, object)
            }
        case .addElements(let set, let elements, let mode):
            try writeElements(
                Int(NFT_MSG_NEWSETELEM.rawValue), flags: mode == .create ? exclusive : create, set: set,
                elements: elements, forDeletion: false, operation: index)
        case .deleteElements(let set, let elements, let absence):
            try writeElements(
                absence == .fail ? Int(NFT_MSG_DELSETELEM.rawValue) : MessageType.destroySetElement, flags: 0, set: set,
                elements: elements, forDeletion: true, operation: index)
        case .addRule(let rule), .insertRule(let rule):
            let object = try LibnftnlObjects.rule(rule, in: table, setIDs: setIDs)
            defer { nftnl_rule_free(object) }
            let append = if case .addRule = operation { NetlinkFlags.append } else { UInt16(0) }
            message(Int(NFT_MSG_NEWRULE.rawValue), flags: create | append, operation: index) {
                nftnl_rule_nlmsg_build_payload($0, object)
            }
        case .deleteRule(let chain, let handle, let absence):
            let object = try LibnftnlObjects.rule(in: table, chain: chain, handle: handle)
            defer { nftnl_rule_free(object) }
            message(absence == .fail ? Int(NFT_MSG_DELRULE.rawValue) : MessageType.destroyRule, flags: 0, operation: index) {
                nftnl_rule_nlmsg_build_payload($0, object)
            }
        }
    }

    /// Element lists, split so that no message's element attribute nears 64 KiB.
    private mutating func writeElements(
        _ type: Int, flags: UInt16, set: SetDefinition, elements: [Element], forDeletion: Bool, operation: Int
    ) throws(FirewallError) {
        var kernelElements: [(owner: Int, element: KernelElement)] = []
        for (i, element) in elements.enumerated() {
            let encoded: [KernelElement]
            do {
                encoded = try KernelElement.encode(element, of: set, forDeletion: forDeletion)
            } catch {
                throw FirewallError("element \(i) (\(element)): \(error.operation)", errno: error.errno)
            }
            kernelElements += encoded.map { (i, $0) }
        }
        var start = 0
        while start < kernelElements.count {
            var end = start
            var size = 0
            while end < kernelElements.count && (end == start || size + kernelElements[end].element.sizeEstimate <= elementBytesPerMessage) {
                size += kernelElements[end].element.sizeEstimate
                end += 1
            }
            let chunk = kernelElements[start..<end]
            let object = try LibnftnlObjects.setReference(set.name, in: table, id: setIDs[set.name])
            defer { nftnl_set_free(object) }
            for item in chunk { nftnl_set_elem_add(object, item.element.libnftnlObject()) }
            message(type, flags: flags, operation: operation, elements: chunk.map(\.owner)) {
                nftnl_set_elems_nlmsg_build_payload($0, object)
            }
            start = end
        }
    }
}

/// Runs `build` on `scratch` (which must be large enough for the message) and returns the
/// message it wrote.
func buildMessage(
    in scratch: inout [UInt8], _ build: (UnsafeMutablePointer<CChar>) -> UnsafeMutablePointer<nlmsghdr>?
) -> ArraySlice<UInt8> {
    let length = scratch.withUnsafeMutableBytes { raw -> Int in
        let buffer = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
        guard build(buffer) != nil else { return 0 }
        return Int(raw.load(as: UInt32.self))  // nlmsg_len
    }
    precondition(length <= scratch.count, "nf_tables message overran its buffer")
    let message = scratch[0..<length]
    // libmnl leaves some padding bytes as it finds them: start every message on zeros so that
    // a batch's bytes do not depend on the messages before.
    scratch.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, length) }
    return message
}

/// A single request outside a batch (a dump or a get): header, then what `payload` adds.
func buildRequest(
    _ type: UInt32, family: UInt8, flags: UInt16, sequence: UInt32, _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in }
) -> [UInt8] {
    var scratch = [UInt8](repeating: 0, count: 4096)
    return Array(
        buildMessage(in: &scratch) { buffer in
            let header = nftnl_nlmsg_build_hdr(buffer, UInt16(type), UInt16(family), flags, sequence)!
            payload(header)
            return header
        })
}

/// Netlink header flags (NLM_F_*).
enum NetlinkFlags {
    static let dump: UInt16 = 0x300
    static let exclusive: UInt16 = 0x200
    static let create: UInt16 = 0x400
    static let append: UInt16 = 0x800
    /// In error messages: the request was cut to its header; TLVs follow.
    static let capped: UInt16 = 0x100
    static let ackTLVs: UInt16 = 0x200
}

/// nf_tables message types newer than this machine's uapi header (Linux 6.3).
enum MessageType {
    static let destroyTable = 26
    static let destroyChain = 27
    static let destroyRule = 28
    static let destroySet = 29
    static let destroySetElement = 30
}

/// Changes to one table, committed atomically: the kernel applies all of them or none.
///
///     var batch = Batch(berth)
///     batch.add(elements: [Element(key: [.tcp, 8080], to: [.ipv4(a), 80], comment: owner)], to: portsV4, mode: .create)
///     try socket.commit(batch)
public struct Batch: Sendable {
    /// How additions treat an object that already exists.
    public enum Mode: Sendable, Hashable {
        /// Succeed and leave it (idempotent).
        case add
        /// Fail with EEXIST (NLM_F_EXCL).
        case create
    }

    /// How deletions treat an object that does not exist.
    public enum Absence: Sendable, Hashable {
        /// Fail with ENOENT.
        case fail
        /// Succeed (NFT_MSG_DESTROY*, Linux 6.3 and later).
        case ignore
    }

    public enum Operation: Sendable, Hashable {
        case addTable(Mode)
        case deleteTable(Absence)
        case addChain(Chain, Mode)
        case deleteChain(String, Absence)
        /// Removes every rule of the chain.
        case flushChain(String)
        case addSet(SetDefinition, Mode)
        case deleteSet(String, Absence)
        /// Removes every element of the set.
        case flushSet(String)
        case addElements(SetDefinition, [Element], Mode)
        case deleteElements(SetDefinition, [Element], Absence)
        /// Appends a rule to its chain.
        case addRule(Rule)
        /// Inserts a rule at the top of its chain.
        case insertRule(Rule)
        case deleteRule(chain: String, handle: UInt64, Absence)
    }

    public let table: Table
    public private(set) var operations: [Operation] = []
    /// When set, the kernel applies the batch only if the ruleset is still at this generation
    /// (FirewallSocket.generation()), and otherwise rejects it with ERESTART: for batches built
    /// from a listing (DEL, GC), so they never act on a ruleset that changed meanwhile.
    public var generation: UInt32? = nil

    public init(_ table: Table) { self.table = table }

    public var isEmpty: Bool { operations.isEmpty }

    public mutating func append(_ operation: Operation) { operations.append(operation) }

    public mutating func addTable(mode: Mode = .add) { operations.append(.addTable(mode)) }
    public mutating func deleteTable(ifAbsent: Absence = .fail) { operations.append(.deleteTable(ifAbsent)) }
    public mutating func add(_ chain: Chain, mode: Mode = .add) { operations.append(.addChain(chain, mode)) }
    public mutating func deleteChain(_ name: String, ifAbsent: Absence = .fail) { operations.append(.deleteChain(name, ifAbsent)) }
    public mutating func flush(chain: String) { operations.append(.flushChain(chain)) }
    public mutating func add(_ set: SetDefinition, mode: Mode = .add) { operations.append(.addSet(set, mode)) }
    public mutating func deleteSet(_ name: String, ifAbsent: Absence = .fail) { operations.append(.deleteSet(name, ifAbsent)) }
    public mutating func flush(set: String) { operations.append(.flushSet(set)) }
    public mutating func add(_ rule: Rule) { operations.append(.addRule(rule)) }
    public mutating func insert(_ rule: Rule) { operations.append(.insertRule(rule)) }

    public mutating func add(elements: [Element], to set: SetDefinition, mode: Mode = .add) {
        guard !elements.isEmpty else { return }
        operations.append(.addElements(set, elements, mode))
    }

    /// Adds elements, replacing any with the same key (its data and comment with them): the
    /// way for ADD to take over an address a dead attachment left behind.
    public mutating func replace(elements: [Element], in set: SetDefinition) {
        delete(elements: elements, from: set, ifAbsent: .ignore)
        add(elements: elements, to: set, mode: .create)
    }

    /// Deletes elements by key (data and comments do not matter).
    public mutating func delete(elements: [Element], from set: SetDefinition, ifAbsent: Absence = .fail) {
        guard !elements.isEmpty else { return }
        operations.append(.deleteElements(set, elements, ifAbsent))
    }

    public mutating func deleteRule(handle: UInt64, in chain: String, ifAbsent: Absence = .fail) {
        operations.append(.deleteRule(chain: chain, handle: handle, ifAbsent))
    }
}

extension Batch.Operation {
    /// How errors name the operation: "add element to set ports_v4".
    func summary(in table: Table) -> String {
        switch self {
        case .addTable(let mode): "\(mode == .create ? "create" : "add") table \(table)"
        case .deleteTable: "delete table \(table)"
        case .addChain(let chain, let mode): "\(mode == .create ? "create" : "add") chain \(chain.name)"
        case .deleteChain(let name, _): "delete chain \(name)"
        case .flushChain(let name): "flush chain \(name)"
        case .addSet(let set, let mode): "\(mode == .create ? "create" : "add") \(set.isMap ? "map" : "set") \(set.name)"
        case .deleteSet(let name, _): "delete set \(name)"
        case .flushSet(let name): "flush set \(name)"
        case .addElements(let set, _, let mode):
            "\(mode == .create ? "create" : "add") element to \(set.isMap ? "map" : "set") \(set.name)"
        case .deleteElements(let set, _, _): "delete element from \(set.isMap ? "map" : "set") \(set.name)"
        case .addRule(let rule), .insertRule(let rule):
            "add rule to chain \(rule.chain)" + (rule.comment.map { " (comment \"\($0)\")" } ?? "")
        case .deleteRule(let chain, let handle, _): "delete rule handle \(handle) from chain \(chain)"
        }
    }
}

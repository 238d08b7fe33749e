public import Namespaces
import BerthSupport
import CBerth
import CNftnl
import Glibc
import Synchronization

/// A NETLINK_NETFILTER socket: commits batches and lists berth's table. The socket stays bound
/// to the namespace it was opened in and may then be used from any thread (calls are
/// serialized). Every wait for the kernel is bounded by `timeout` (SO_RCVTIMEO).
public final class FirewallSocket: Sendable {
    private let connection: Mutex<Connection>

    /// Opens a socket in the calling thread's network namespace.
    public init(timeout: Duration = .seconds(5)) throws(FirewallError) {
        connection = Mutex(try Connection(timeout: timeout))
    }

    /// Opens a socket inside `namespace`, on a short-lived thread (see NamespaceThread); the
    /// calling thread never changes namespace.
    public static func open(in namespace: NetworkNamespace, timeout: Duration = .seconds(5)) throws(FirewallError)
        -> FirewallSocket
    {
        do {
            return try namespace.run { try FirewallSocket(timeout: timeout) }
        } catch let error as FirewallError {
            throw error
        } catch let error as SystemError {
            throw FirewallError(error)
        } catch {
            throw FirewallError("open netfilter socket in \(namespace.path)", errno: EIO, kernelMessage: "\(error)")
        }
    }

    /// Sends the batch and waits until the kernel has applied it. Throws the first message the
    /// kernel rejected (mapped back to its operation), in which case nothing changed.
    public func commit(_ batch: Batch) throws(FirewallError) {
        guard !batch.isEmpty else { return }
        try connection.withLock { (c: inout Connection) throws(FirewallError) in try c.commit(batch) }
    }

    /// Commits the batch `build` makes, making it again while the kernel answers ERESTART
    /// (the ruleset changed between the listing `build` did and the commit).
    public func commit(attempts: Int = 5, _ build: () throws(FirewallError) -> Batch) throws(FirewallError) {
        var attempt = 1
        while true {
            do throws(FirewallError) {
                return try commit(build())
            } catch where error.errno == ERESTART && attempt < attempts {
                attempt += 1
            }
        }
    }

    /// The ruleset's generation: it changes with every committed batch (see Batch.generation).
    public func generation() throws(FirewallError) -> UInt32 {
        let replies = try connection.withLock { (c: inout Connection) throws(FirewallError) in
            let seq = c.takeSequence()
            let request = buildRequest(NFT_MSG_GETGEN.rawValue, family: 0, flags: 0, sequence: seq)
            return try c.exchange(request, sequence: seq, operation: "get ruleset generation")
        }
        guard let id = replies.first?.attributes[attr(NFTA_GEN_ID)]?.u32 else {
            throw FirewallError("get ruleset generation: no generation in the answer", errno: EPROTO)
        }
        return id
    }

    public func tableExists(_ table: Table) throws(FirewallError) -> Bool {
        let t = try LibnftnlObjects.table(table)
        defer { nftnl_table_free(t) }
        do throws(FirewallError) {
            return try !request(NFT_MSG_GETTABLE.rawValue, table, flags: 0, "get table \(table)") {
                nftnl_table_nlmsg_build_payload($0, t)
            }.isEmpty
        } catch where error.errno == ENOENT {
            return false
        }
    }

    /// The chains of `table` (none when the table does not exist: dumps filter, they do not fail).
    public func chains(in table: Table) throws(FirewallError) -> [ListedChain] {
        let c = try LibnftnlObjects.chain(Chain(""), in: table)
        defer { nftnl_chain_free(c) }
        nftnl_chain_unset(c, attr(NFTNL_CHAIN_NAME))
        return try request(NFT_MSG_GETCHAIN.rawValue, table, flags: NetlinkFlags.dump, "list chains of table \(table)") {
            nftnl_chain_nlmsg_build_payload($0, c)
        }.compactMap(Decode.chain)
    }

    /// The rules of one chain, in order, with handles and comments.
    public func rules(in table: Table, chain: String) throws(FirewallError) -> [ListedRule] {
        let r = try LibnftnlObjects.rule(in: table, chain: chain)
        defer { nftnl_rule_free(r) }
        return try request(NFT_MSG_GETRULE.rawValue, table, flags: NetlinkFlags.dump, "list rules of chain \(chain)") {
            nftnl_rule_nlmsg_build_payload($0, r)
        }.compactMap(Decode.rule).filter { $0.chain == chain }
    }

    /// The sets and maps of `table`.
    public func sets(in table: Table) throws(FirewallError) -> [ListedSet] {
        let s = try LibnftnlObjects.setReference("", in: table, id: nil)
        defer { nftnl_set_free(s) }
        nftnl_set_unset(s, attr(NFTNL_SET_NAME))
        return try request(NFT_MSG_GETSET.rawValue, table, flags: NetlinkFlags.dump, "list sets of table \(table)") {
            nftnl_set_nlmsg_build_payload($0, s)
        }.compactMap(Decode.set)
    }

    /// The elements of a set, decoded with the set's types; intervals come back as ranges.
    public func elements(of set: SetDefinition, in table: Table) throws(FirewallError) -> [Element] {
        let s = try LibnftnlObjects.setReference(set.name, in: table, id: nil)
        defer { nftnl_set_free(s) }
        let messages = try request(NFT_MSG_GETSETELEM.rawValue, table, flags: NetlinkFlags.dump, "list elements of set \(set.name)") {
            nftnl_set_elems_nlmsg_build_payload($0, s)
        }
        return Decode.elements(messages, of: set)
    }

    /// The one element of `set` with this key, or nil: a single lookup, whatever the set's size
    /// (for DEL and CHECK, which know their keys).
    public func element(_ key: [Value], of set: SetDefinition, in table: Table) throws(FirewallError) -> Element? {
        let s = try LibnftnlObjects.setReference(set.name, in: table, id: nil)
        defer { nftnl_set_free(s) }
        let encoded = try Concatenation.encode(key, as: set.key)
        let e = nftnl_set_elem_alloc()!
        setBytes(encoded) { nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0, $1) }
        nftnl_set_elem_add(s, e)
        do throws(FirewallError) {
            let messages = try request(NFT_MSG_GETSETELEM.rawValue, table, flags: 0, "get element of set \(set.name)") {
                nftnl_set_elems_nlmsg_build_payload($0, s)
            }
            return Decode.elements(messages, of: set).first
        } catch where error.errno == ENOENT {
            return nil
        }
    }

    /// Sends one request, made by `build` for the sequence number it is given, and returns the
    /// replies: up to NLMSG_DONE for a dump, else the single reply or acknowledgement. For the
    /// other netfilter subsystems on this socket (conntrack).
    func exchange(_ operation: String, _ build: (_ sequence: UInt32) -> [UInt8]) throws(FirewallError) -> [NetlinkMessage] {
        try connection.withLock { (c: inout Connection) throws(FirewallError) in
            let seq = c.takeSequence()
            return try c.exchange(build(seq), sequence: seq, operation: operation)
        }
    }

    /// Sends one get or dump request and returns the replies.
    private func request(
        _ type: UInt32, _ table: Table, flags: UInt16, _ operation: String, _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void
    ) throws(FirewallError) -> [NetlinkMessage] {
        try connection.withLock { (c: inout Connection) throws(FirewallError) in
            let seq = c.takeSequence()
            let request = buildRequest(type, family: table.family.rawValue, flags: flags, sequence: seq, payload)
            return try c.exchange(request, sequence: seq, operation: operation)
        }
    }
}

/// The socket and its state; only used under the lock.
private struct Connection: ~Copyable {
    let socket: OpaquePointer
    var sequence: UInt32 = 1
    var buffer = [UInt8](repeating: 0, count: 128 * 1024)
    var sendBufferSize: Int

    init(timeout: Duration) throws(FirewallError) {
        guard let socket = mnl_socket_open(NETLINK_NETFILTER) else { throw .system("open netfilter socket") }
        let fd = mnl_socket_get_fd(socket)
        var one: Int32 = 1
        let (seconds, attoseconds) = timeout.components
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        var sndbuf: Int32 = 0
        var length = socklen_t(4)
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0,
            // Extended ACKs carry the offset of the attribute the kernel rejected; capped ACKs
            // do not echo whole requests back.
            mnl_socket_setsockopt(socket, NETLINK_EXT_ACK, &one, 4) == 0,
            mnl_socket_setsockopt(socket, NETLINK_CAP_ACK, &one, 4) == 0,
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0,
            getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &length) == 0
        else {
            let error = FirewallError.system("set up netfilter socket")
            mnl_socket_close(socket)
            throw error
        }
        self.socket = socket
        sendBufferSize = Int(sndbuf)
    }

    deinit { mnl_socket_close(socket) }

    mutating func takeSequence(_ count: UInt32 = 1) -> UInt32 {
        defer { sequence &+= count }
        return sequence
    }

    func send(_ bytes: [UInt8], operation: String) throws(FirewallError) {
        let sent = bytes.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        guard sent == bytes.count else { throw .system("\(operation): send") }
    }

    /// The next datagram's messages.
    mutating func receive(operation: String) throws(FirewallError) -> [NetlinkMessage] {
        let count = buffer.withUnsafeMutableBytes { mnl_socket_recvfrom(socket, $0.baseAddress, $0.count) }
        guard count >= 0 else {
            let code = errno
            throw FirewallError(
                "\(operation): receive", errno: code == EAGAIN ? ETIMEDOUT : code,
                kernelMessage: code == EAGAIN ? "no answer from the kernel" : nil)
        }
        return NetlinkMessage.split(buffer[0..<count])
    }

    /// Room in the socket's send buffer for one datagram of `size` bytes (a large batch).
    mutating func ensureSendBuffer(_ size: Int) {
        guard size + 4096 > sendBufferSize else { return }
        var wanted = Int32(size * 2)
        let fd = mnl_socket_get_fd(socket)
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &wanted, 4) == 0
            || setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &wanted, 4) == 0
        {
            sendBufferSize = Int(wanted)
        }
    }

    /// Sends a batch, then a GETGEN request. The kernel processes the batch within sendmsg and
    /// queues an error for every rejected message before it reads the GETGEN, so the GETGEN's
    /// answer marks the end of the batch's answers: no error before it means success.
    mutating func commit(_ batch: Batch) throws(FirewallError) {
        let compiled = try batch.compile(sequence: sequence)
        sequence = compiled.endSequence &+ 1
        let marker = takeSequence()
        let operation = "commit \(batch.operations.count) changes to table \(batch.table)"
        ensureSendBuffer(compiled.bytes.count)
        try send(compiled.bytes, operation: operation)
        try send(buildRequest(NFT_MSG_GETGEN.rawValue, family: 0, flags: 0, sequence: marker), operation: operation)
        var rejected: [Acknowledgement] = []
        var done = false
        while !done {
            let messages: [NetlinkMessage]
            do {
                messages = try receive(operation: operation)
            } catch where error.errno == ENOBUFS && !rejected.isEmpty {
                break  // so many errors that some were dropped; the batch failed
            }
            for message in messages {
                if message.sequence == marker {
                    done = true
                } else if (compiled.beginSequence...compiled.endSequence).contains(message.sequence),
                    let ack = message.acknowledgement, ack.errno != 0
                {
                    rejected.append(ack)
                }
            }
        }
        if !rejected.isEmpty { throw compiled.error(for: rejected) }
    }

    /// Sends a get or dump request and collects the replies up to NLMSG_DONE (for a dump) or
    /// the single reply (for a get).
    mutating func exchange(_ request: [UInt8], sequence: UInt32, operation: String) throws(FirewallError) -> [NetlinkMessage] {
        try send(request, operation: operation)
        let isDump = NetlinkMessage.hostU16(request[...], 6) & NetlinkFlags.dump == NetlinkFlags.dump
        var replies: [NetlinkMessage] = []
        while true {
            for message in try receive(operation: operation) where message.sequence == sequence {
                if let ack = message.acknowledgement {
                    if ack.errno != 0 { throw FirewallError(operation, errno: ack.errno, kernelMessage: ack.kernelMessage) }
                    // The answer to a request with NLM_F_ACK that returns nothing else.
                    if !isDump { return replies }
                    continue
                }
                if message.type == NetlinkMessage.done {
                    if message.bytes.count >= 20 {
                        let code = Int32(bitPattern: NetlinkMessage.hostU32(message.bytes[...], 16))
                        if code < 0 { throw FirewallError(operation, errno: -code) }
                    }
                    return replies
                }
                replies.append(message)
                if !isDump { return replies }
            }
        }
    }
}

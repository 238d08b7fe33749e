import BerthSupport
import CMnl
import Glibc
import Synchronization

/// A netlink socket (libmnl) bound to the network namespace of the thread that created it. It
/// stays bound there and can be used from any thread; requests are serialized.
///
/// Every request asks for an acknowledgement, and the reply is read here rather than by
/// mnl_cb_run so that the kernel's extended-ACK text reaches the error. Replies are matched by
/// sequence number: anything else (a late reply to a request that timed out) is skipped.
public final class NetlinkSocket: @unchecked Sendable {
    private let handle: OpaquePointer
    public let portID: UInt32
    private let state: Mutex<State>

    private struct State {
        var sequence: UInt32
        /// Large enough for the biggest dump datagram the kernel builds (32 KiB).
        var buffer = [UInt8](repeating: 0, count: 65536)
    }

    /// How many times a dump is restarted when the kernel reports it was interrupted by a change.
    static let dumpAttempts = 10

    /// Opens a socket for `netlinkProtocol` (NETLINK_ROUTE, ...) in the calling thread's network
    /// namespace. Waits for a reply at most `timeout` (zero: forever), then fails with ETIMEDOUT.
    public init(protocol netlinkProtocol: Int32, timeout: Duration = .seconds(5)) throws {
        guard let handle = mnl_socket_open2(netlinkProtocol, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw SystemError.current("open netlink socket", object: "protocol \(netlinkProtocol)")
        }
        self.handle = handle
        do {
            guard mnl_socket_bind(handle, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
                throw SystemError.current("bind netlink socket")
            }
            // Keep acks short (no copy of the request) and have the kernel say why it refused.
            // Best effort: kernels before 4.12 lack them, and acks are parsed either way.
            var one: Int32 = 1
            for option in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
                _ = mnl_socket_setsockopt(handle, option, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            let (seconds, attoseconds) = timeout.components
            var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
            guard setsockopt(mnl_socket_get_fd(handle), SOL_SOCKET, SO_RCVTIMEO, &limit,
                             socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw SystemError.current("set netlink receive timeout")
            }
        } catch {
            mnl_socket_close(handle)
            throw error
        }
        portID = mnl_socket_get_portid(handle)
        // Any start works (replies are matched by port id too); the clock, as iproute2 does,
        // makes sequences from different runs easy to tell apart in traces.
        state = Mutex(State(sequence: UInt32(truncatingIfNeeded: time(nil))))
    }

    deinit { mnl_socket_close(handle) }

    /// Sends a request (NLM_F_ACK is added) and returns the messages that came before the
    /// acknowledgement (the object a GET asked for; nothing for most changes). A negative
    /// acknowledgement throws a SystemError with the errno and the kernel's message; the caller
    /// fills in the operation and object.
    public func request(_ request: NetlinkRequest) throws -> [NetlinkMessage] {
        var message = request
        message.flags |= UInt16(NLM_F_ACK)
        return try state.withLock { state in
            try exchange(message, state: &state, dump: false).messages
        }
    }

    /// Sends a dump request (NLM_F_DUMP is added) and returns every message of the reply,
    /// restarting the dump if the kernel says a change interrupted it (NLM_F_DUMP_INTR).
    public func dump(_ request: NetlinkRequest) throws -> [NetlinkMessage] {
        var message = request
        message.flags |= UInt16(NLM_F_DUMP)
        return try state.withLock { state in
            for _ in 0..<Self.dumpAttempts {
                let reply = try exchange(message, state: &state, dump: true)
                if !reply.interrupted { return reply.messages }
            }
            throw SystemError("netlink dump", errno: EINTR, kernelMessage: "dump kept being interrupted by changes")
        }
    }

    private func exchange(_ request: NetlinkRequest, state: inout State, dump: Bool) throws
        -> (messages: [NetlinkMessage], interrupted: Bool)
    {
        state.sequence &+= 1
        let message = request.with(sequence: state.sequence)
        let sent = message.bytes.withUnsafeBytes { mnl_socket_sendto(handle, $0.baseAddress, $0.count) }
        guard sent == message.bytes.count else {
            throw sent < 0 ? SystemError.current("send netlink request") : SystemError("send netlink request", errno: EMSGSIZE)
        }
        var reply = ReplyCollector(sequence: state.sequence, portID: portID, isDump: dump)
        while true {
            let received = state.buffer.withUnsafeMutableBytes { buffer in
                retryingOnInterrupt { mnl_socket_recvfrom(handle, buffer.baseAddress, buffer.count) }
            }
            if received < 0 {
                let code = Glibc.errno
                throw SystemError("receive netlink reply", errno: code == EAGAIN ? ETIMEDOUT : code)
            }
            if try reply.consume(state.buffer[0..<received]) { return (reply.messages, reply.interrupted) }
        }
    }
}

/// Follows the reply to one request across datagrams: skips messages that answer something
/// else (a late reply to a request that timed out), collects the data messages, ends at the
/// acknowledgement (or at NLMSG_DONE for a dump), and throws the kernel's error.
public struct ReplyCollector: Sendable {
    public let sequence: UInt32
    public let portID: UInt32
    public let isDump: Bool
    public private(set) var messages: [NetlinkMessage] = []
    /// A dump message carried NLM_F_DUMP_INTR: the kernel's data changed while it was dumping.
    public private(set) var interrupted = false

    public init(sequence: UInt32, portID: UInt32, isDump: Bool) {
        self.sequence = sequence
        self.portID = portID
        self.isDump = isDump
    }

    /// Takes one received datagram; returns true when the reply is complete.
    public mutating func consume(_ datagram: ArraySlice<UInt8>) throws -> Bool {
        for reply in try NetlinkMessage.split(datagram) {
            guard reply.sequence == sequence, reply.portID == portID || reply.portID == 0 else { continue }
            switch Int32(reply.type) {
            case NLMSG_NOOP:
                continue
            case NLMSG_ERROR:
                guard let ack = NetlinkAcknowledgement(errorPayload: reply.payload, flags: reply.flags) else {
                    throw SystemError("parse netlink acknowledgement", errno: EBADMSG)
                }
                if ack.errno != 0 { throw ack.error }
                return true
            case NLMSG_DONE:
                if let ack = NetlinkAcknowledgement(donePayload: reply.payload, flags: reply.flags), ack.errno != 0 {
                    throw ack.error
                }
                if isDump { return true }
            case NLMSG_OVERRUN:
                throw SystemError("receive netlink reply", errno: ENOBUFS)
            default:
                if reply.flags & UInt16(NLM_F_DUMP_INTR) != 0 { interrupted = true }
                messages.append(reply)
            }
        }
        return false
    }
}

extension NetlinkAcknowledgement {
    /// The error to throw; the request's owner renames the operation and names the object.
    var error: SystemError {
        SystemError("netlink request", errno: errno, kernelMessage: message)
    }
}

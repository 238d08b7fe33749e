import BerthSupport
import Glibc
import Reactor

/// A UDP mapping: datagrams from each client go out through that client's own connected socket
/// toward the container (its flow), so replies come back on it and are sent to the client from
/// the listening socket. Flows idle in both directions for `--udp-timeout` are closed.
final class UDPListener {
    let mapping: Mapping
    let fd: Int32
    private unowned let server: ProxyServer
    private var flows: [SocketAddress: UDPFlow] = [:]

    init(mapping: Mapping, fd: Int32, server: ProxyServer) throws {
        self.mapping = mapping
        self.fd = fd
        self.server = server
        try server.loop.register(fd, for: .readable) { [unowned self] _ in self.receiveFromClients() }
    }

    var flowCount: Int { flows.count }

    /// Closes the listener and every flow (replies could no longer reach their clients).
    func close() {
        for flow in flows.values { remove(flow) }
        server.loop.unregister(fd)
        Glibc.close(fd)
    }

    private func receiveFromClients() {
        let buffer = server.datagramBuffer
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length)
                }
            }
            if n < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN, or an error queued by ICMP: nothing more to read now
            }
            guard let client = withUnsafeBytes(of: &storage, { SocketAddress(storage: $0.baseAddress!) }) else { continue }
            guard let flow = flows[client] ?? openFlow(for: client) else { continue }
            flow.lastActive = monotonicNanoseconds()
            // A full socket buffer drops the datagram, as the network would.
            _ = send(flow.fd, buffer.baseAddress, n, 0)
        }
    }

    private func openFlow(for client: SocketAddress) -> UDPFlow? {
        guard server.admitFlow() else { return nil }
        let socket: Int32
        do throws(SystemError) {
            socket = try Sockets.connect(to: mapping.container, proto: .udp)
        } catch {
            server.backendFailed(error.errno, mapping: mapping, peer: client)
            return nil
        }
        let flow = UDPFlow(fd: socket, client: client)
        do {
            try server.loop.register(socket, for: .readable) { [unowned self, unowned flow] _ in self.receiveReplies(flow) }
        } catch {
            Glibc.close(socket)
            return nil
        }
        flows[client] = flow
        server.flowOpened()
        return flow
    }

    private func receiveReplies(_ flow: UDPFlow) {
        let buffer = server.datagramBuffer
        for _ in 0..<64 {
            let n = recv(flow.fd, buffer.baseAddress, buffer.count, 0)
            if n < 0 {
                if errno == EINTR { continue }
                // ECONNREFUSED: the container's port is closed (ICMP port unreachable).
                if errno != EAGAIN { remove(flow) }
                return
            }
            flow.lastActive = monotonicNanoseconds()
            _ = flow.client.withSockaddr { sendto(fd, buffer.baseAddress, n, 0, $0, $1) }
        }
    }

    /// Closes flows without traffic since `deadline` (monotonic nanoseconds).
    func expire(idleSince deadline: UInt64) {
        for flow in flows.values where flow.lastActive < deadline { remove(flow) }
    }

    private func remove(_ flow: UDPFlow) {
        guard flows.removeValue(forKey: flow.client) != nil else { return }
        server.loop.unregister(flow.fd)
        Glibc.close(flow.fd)
        server.flowClosed()
    }
}

/// One UDP client's connected socket toward the container.
final class UDPFlow {
    let fd: Int32
    let client: SocketAddress
    var lastActive: UInt64 = 0

    init(fd: Int32, client: SocketAddress) {
        self.fd = fd
        self.client = client
    }
}

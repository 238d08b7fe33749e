import Reactor
import Glibc
import Testing

@Suite struct EventLoopTests {
    @Test func readinessTimersAndStop() throws {
        let loop = try EventLoop()
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var received: [UInt8] = []
        var order: [String] = []
        try loop.register(fds[1], for: .readable) { _ in
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = read(fds[1], &buffer, 16)
            received += buffer[0..<max(n, 0)]
        }
        let cancelled = loop.schedule(after: .milliseconds(5)) { order.append("cancelled") }
        loop.cancel(cancelled)
        loop.schedule(after: .milliseconds(20)) { order.append("late"); loop.stop() }
        loop.schedule(after: .milliseconds(1)) {
            order.append("early")
            _ = write(fds[0], "hi", 2)
        }
        try loop.run()
        #expect(order == ["early", "late"])
        #expect(received == Array("hi".utf8))
        loop.unregister(fds[1])
        #expect(loop.registeredCount == 1)  // the wake-up eventfd
    }
}

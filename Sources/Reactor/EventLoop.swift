import BerthSupport
import CBerth
import Glibc

/// A single-threaded epoll reactor for berth's servers (berth-dns, berth-proxy): descriptors
/// with readiness handlers, timers and signals, all run on the thread that calls `run()`.
/// Not thread-safe by design; the only cross-thread call is `wake()`.
public final class EventLoop {
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        /// Peer closed its writing side (EPOLLRDHUP).
        public static let peerClosed = Events(rawValue: EPOLLRDHUP.rawValue)
        public static let hangup = Events(rawValue: EPOLLHUP.rawValue)
        public static let error = Events(rawValue: EPOLLERR.rawValue)
    }

    public typealias Handler = (Events) -> Void
    public struct TimerID: Hashable, Sendable { let value: UInt64 }

    private let epoll: Int32
    private var handlers: [Int32: Handler] = [:]
    private var timers = TimerHeap()
    private var cancelledTimers = Set<UInt64>()
    private var nextTimer: UInt64 = 1
    private var running = false
    private let wakeFD: Int32
    private var signalFD: Int32 = -1
    private var signalHandler: ((Int32) -> Void)?

    public init() throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SystemError.current("epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { throw SystemError.current("eventfd") }
        try register(wakeFD, for: .readable) { [wakeFD] _ in
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
    }

    deinit {
        close(epoll)
        close(wakeFD)
        if signalFD >= 0 { close(signalFD) }
    }

    // MARK: Descriptors

    /// Calls `handler` whenever `fd` is ready for `events` (level-triggered unless `edge`).
    public func register(_ fd: Int32, for events: Events, edge: Bool = false, handler: @escaping Handler) throws {
        var event = epoll_event()
        event.events = events.rawValue | (edge ? EPOLLET.rawValue : 0)
        event.data.fd = fd
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw SystemError.current("epoll_ctl add", object: "fd \(fd)")
        }
        handlers[fd] = handler
    }

    /// Changes which events `fd` is watched for.
    public func modify(_ fd: Int32, for events: Events, edge: Bool = false) throws {
        var event = epoll_event()
        event.events = events.rawValue | (edge ? EPOLLET.rawValue : 0)
        event.data.fd = fd
        guard epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) == 0 else {
            throw SystemError.current("epoll_ctl mod", object: "fd \(fd)")
        }
    }

    /// Stops watching `fd` (call before closing it).
    public func unregister(_ fd: Int32) {
        epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        handlers[fd] = nil
    }

    /// Drops the handler of a descriptor the caller closes next, without EPOLL_CTL_DEL: closing
    /// the last reference removes it from epoll anyway (one system call fewer per connection).
    /// Only for descriptors that were never duplicated.
    public func forget(_ fd: Int32) {
        handlers[fd] = nil
    }

    public var registeredCount: Int { handlers.count }

    // MARK: Timers

    /// Runs `handler` once after `delay`.
    @discardableResult
    public func schedule(after delay: Duration, _ handler: @escaping () -> Void) -> TimerID {
        let id = nextTimer
        nextTimer += 1
        timers.push(deadline: monotonicNanoseconds() + delay.nanoseconds, id: id, handler: handler)
        return TimerID(value: id)
    }

    public func cancel(_ timer: TimerID) { cancelledTimers.insert(timer.value) }

    // MARK: Signals

    /// Delivers `signals` to `handler` on the loop (they are blocked for the calling thread).
    public func onSignals(_ signals: [Int32], _ handler: @escaping (Int32) -> Void) throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in signals { sigaddset(&mask, s) }
        guard pthread_sigmask(SIG_BLOCK, &mask, nil) == 0 else { throw SystemError.current("pthread_sigmask") }
        signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard signalFD >= 0 else { throw SystemError.current("signalfd") }
        signalHandler = handler
        try register(signalFD, for: .readable) { [unowned self] _ in
            var info = signalfd_siginfo()
            while read(self.signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
                self.signalHandler?(Int32(info.ssi_signo))
            }
        }
    }

    // MARK: Running

    /// Runs until `stop()` is called from a handler.
    public func run() throws {
        running = true
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while running {
            let timeout = nextTimeoutMilliseconds()
            let n = epoll_wait(epoll, &events, Int32(events.count), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.current("epoll_wait")
            }
            for i in 0..<Int(n) where running {
                let fd = events[i].data.fd
                // A handler may have unregistered a later descriptor in this batch.
                guard let handler = handlers[fd] else { continue }
                handler(Events(rawValue: events[i].events))
            }
            if running { fireDueTimers() }
        }
    }

    public func stop() { running = false }

    /// Interrupts a blocked `run()` from any thread (its handlers then run as usual).
    public func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        while let top = timers.peek, cancelledTimers.contains(top.id) {
            cancelledTimers.remove(top.id)
            _ = timers.pop()
        }
        guard let deadline = timers.peek?.deadline else { return -1 }
        let now = monotonicNanoseconds()
        if deadline <= now { return 0 }
        return Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    private func fireDueTimers() {
        let now = monotonicNanoseconds()
        while let top = timers.peek, top.deadline <= now {
            let timer = timers.pop()!
            if cancelledTimers.remove(timer.id) != nil { continue }
            timer.handler()
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations count as zero).
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
    }
}

/// A binary min-heap of timers ordered by deadline.
private struct TimerHeap {
    struct Entry {
        let deadline: UInt64
        let id: UInt64
        let handler: () -> Void
    }
    private var items: [Entry] = []

    var peek: Entry? { items.first }

    mutating func push(deadline: UInt64, id: UInt64, handler: @escaping () -> Void) {
        items.append(Entry(deadline: deadline, id: id, handler: handler))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].deadline <= items[i].deadline { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count && items[l].deadline < items[smallest].deadline { smallest = l }
            if r < items.count && items[r].deadline < items[smallest].deadline { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}

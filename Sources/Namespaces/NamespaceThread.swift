import BerthSupport
import CBerth
import Glibc

/// Runs work inside another network namespace on a dedicated, short-lived pthread.
///
/// setns(2) changes only the calling thread, and threads inherit their creator's namespace. So
/// entering a namespace on a Swift concurrency or Dispatch thread would move unrelated work (and
/// every worker the pool creates from it) into the container. Instead a fresh pthread enters the
/// namespace, runs `body`, switches back, and exits. `body` must make plain system calls only:
/// no Task, no Dispatch, no continuation resumes, no logging through async machinery.
/// Sockets opened in `body` stay bound to the namespace and can be used from any thread.
public enum NamespaceThread {
    /// Runs `body` on a new thread inside the network namespace `namespaceFD`.
    public static func run<T>(inNetworkNamespace namespaceFD: Int32, _ body: () throws -> T) throws -> T {
        var outcome: Result<T, any Error>? = nil
        try withoutActuallyEscaping(body) { body in
            try runOnNewThread(namespaceFD: namespaceFD) {
                outcome = Result { try body() }
            }
        }
        return try outcome!.get()
    }

    /// Runs `body` on a new thread that first unshares its network namespace; returns what body
    /// returned. Used to create namespaces without touching the caller's thread.
    public static func runUnshared<T>(_ body: () throws -> T) throws -> T {
        var outcome: Result<T, any Error>? = nil
        try withoutActuallyEscaping(body) { body in
            try runOnNewThread(namespaceFD: unshareRequest) {
                outcome = Result { try body() }
            }
        }
        return try outcome!.get()
    }
}

/// Sentinel namespace fd meaning "unshare a new network namespace" instead of setns.
private let unshareRequest: Int32 = -2

/// What the thread needs; passed through pthread_create's context pointer.
private final class ThreadJob {
    let namespaceFD: Int32
    let work: () -> Void
    var failure: SystemError?
    init(namespaceFD: Int32, work: @escaping () -> Void) {
        self.namespaceFD = namespaceFD
        self.work = work
    }
}

/// Non-generic on purpose: swift-frontend 6.3.1 crashes on a generic function that hands
/// pthread_create a closure mentioning the generic type.
private func runOnNewThread(namespaceFD: Int32, _ work: @escaping () -> Void) throws {
    let job = ThreadJob(namespaceFD: namespaceFD, work: work)
    let context = Unmanaged.passRetained(job).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let job = Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue()
        threadMain(job)
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<ThreadJob>.fromOpaque(context).release()
        throw SystemError("pthread_create", errno: rc)
    }
    pthread_join(thread, nil)
    if let failure = job.failure { throw failure }
}

private func threadMain(_ job: ThreadJob) {
    // Remember where this thread started so it can switch back before it ends.
    let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
    guard home >= 0 else {
        job.failure = .current("open", object: "/proc/thread-self/ns/net")
        return
    }
    defer { close(home) }
    if job.namespaceFD == unshareRequest {
        guard berth_unshare(berth_clone_newnet()) == 0 else {
            job.failure = .current("unshare", object: "network namespace")
            return
        }
    } else if berth_setns(job.namespaceFD, berth_clone_newnet()) != 0 {
        job.failure = .current("setns", object: "network namespace fd \(job.namespaceFD)")
        return
    }
    job.work()
    // The thread exits right after; switching back is belt and braces so that nothing this
    // thread might still run (thread-local destructors) runs in the container's namespace.
    _ = berth_setns(home, berth_clone_newnet())
}

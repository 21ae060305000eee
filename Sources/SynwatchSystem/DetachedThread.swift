#if canImport(Glibc)
import Glibc
#endif

extension SystemCall {
    /// Runs `body` on a new detached thread named `name`, for work that blocks in system calls (a capture loop, a
    /// hook's wait) and so must not hold one of Swift concurrency's few threads. Foundation's `Thread` does the same
    /// but links all of Foundation.
    ///
    /// Wraps `pthread_create(3)` and `pthread_setname_np(3)`, which keeps the first 15 bytes of the name (for `ps`,
    /// `top` and backtraces).
    /// - Throws: `SystemCallError` naming `pthread_create`, such as `EAGAIN` when the process has too many threads.
    public static func detachThread(named name: String, _ body: @escaping @Sendable () -> Void) throws(SystemCallError)
    {
        let job = Unmanaged.passRetained(ThreadJob(name: name, body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, CInt(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let created = pthread_create(
            &thread,
            &attributes,
            { context in
                let job = Unmanaged<ThreadJob>.fromOpaque(context!).takeRetainedValue()
                if let setName = setThreadName {
                    let name = job.name.utf8.prefix(15).map { CChar(bitPattern: $0) } + [0]
                    _ = setName(pthread_self(), name)
                }
                job.body()
                return nil
            },
            job
        )
        guard created == 0 else {
            Unmanaged<ThreadJob>.fromOpaque(job).release()
            throw SystemCallError(call: "pthread_create", errno: created)
        }
    }
}

/// `pthread_setname_np`, looked up at run time: Glibc's module does not export it (it needs `_GNU_SOURCE`).
private let setThreadName = dlsym(nil, "pthread_setname_np").map {
    unsafeBitCast($0, to: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> CInt).self)
}

/// What a new thread runs, handed over through `pthread_create`'s context pointer.
private final class ThreadJob: Sendable {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

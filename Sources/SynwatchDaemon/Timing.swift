import AsyncAlgorithms
import Dispatch
import ServiceLifecycle

/// Runs `body` every `interval` of the continuous clock, the first time one interval from now, until graceful
/// shutdown begins or the task is cancelled. The ticks keep their pace: a late one does not shift the next.
func repeating(every interval: Duration, _ body: () async -> Void) async {
    for await _ in AsyncTimerSequence(interval: interval, clock: .continuous).cancelOnGracefulShutdown() {
        // A tick already due when shutdown began can win the sequence's race against the shutdown's notice.
        if Task.isShuttingDownGracefully { break }
        await body()
    }
}

/// Runs work that may block in a system call (procfs, netlink, NSS, libpcap) on a thread of Dispatch's own, so the
/// cooperative pool's few threads stay free for the tasks.
func blocking<T: Sendable, Failure: Error>(
    on queue: DispatchQueue,
    _ work: @escaping @Sendable () throws(Failure) -> T
) async throws(Failure) -> T {
    let result: Result<T, Failure> = await withCheckedContinuation { continuation in
        queue.async { continuation.resume(returning: Result { () throws(Failure) in try work() }) }
    }
    return try result.get()
}

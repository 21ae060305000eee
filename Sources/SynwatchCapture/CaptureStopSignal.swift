@preconcurrency import Glibc
import Synchronization

/// Asks a `LiveCapture` running on another thread to stop: its current `readFrames` returns at once, and every
/// later call returns `nil`.
///
/// An atomic flag lets a capture busy with traffic see the request between two batches without a system call;
/// a pipe (Glibc's module does not export `eventfd`) wakes it out of `poll()` when it waits for traffic. Once
/// raised, the signal stays raised: its byte is never read. One signal can serve a capture and the captures
/// reopened from it, so a stop requested during a retry still holds.
public final class CaptureStopSignal: Sendable {
    private let raised = Atomic<Bool>(false)
    /// The pipe's read end, readable once the signal is raised.
    let descriptor: Int32
    private let writeDescriptor: Int32

    /// A signal not yet raised.
    ///
    /// Wraps `pipe(2)` and `fcntl(2)` (both ends close-on-exec, the write end non-blocking).
    /// - Throws: `SystemCallError` naming `pipe` or `fcntl`, when the process is out of descriptors.
    public init() throws(SystemCallError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SystemCallError(call: "pipe", errno: errno) }
        guard fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0,
            fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0
        else {
            let error = SystemCallError(call: "fcntl", errno: errno)
            close(ends[0])
            close(ends[1])
            throw error
        }
        (descriptor, writeDescriptor) = (ends[0], ends[1])
    }

    deinit {
        close(descriptor)
        close(writeDescriptor)
    }

    /// Whether `stop()` has been called.
    public var isRaised: Bool {
        raised.load(ordering: .acquiring)
    }

    /// Raises the signal; safe from any thread, and more than once.
    ///
    /// Wraps `write(2)` of one byte to the pipe, retried on `EINTR`; a full pipe (`EAGAIN`, after thousands of
    /// calls) is already readable, so it needs nothing more.
    public func stop() {
        raised.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        while write(writeDescriptor, &byte, 1) < 0 && errno == EINTR {}
    }
}

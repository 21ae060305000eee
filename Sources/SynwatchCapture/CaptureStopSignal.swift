import Synchronization
import SynwatchSystem
import SystemPackage

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
    let descriptor: FileDescriptor
    private let writeDescriptor: FileDescriptor

    /// A signal not yet raised.
    ///
    /// Wraps `pipe2(2)`: both ends close-on-exec and non-blocking (the read end is only polled, never read).
    /// - Throws: `SystemCallError` naming `pipe`, when the process is out of descriptors.
    public init() throws(SystemCallError) {
        (descriptor, writeDescriptor) = try SystemCall.named("pipe") {
            try FileDescriptor.pipe(options: [.closeOnExec, .nonBlocking])
        }
    }

    deinit {
        try? descriptor.close()
        try? writeDescriptor.close()
    }

    /// Whether `stop()` has been called.
    public var isRaised: Bool {
        raised.load(ordering: .acquiring)
    }

    /// Raises the signal; safe from any thread, and more than once.
    ///
    /// Wraps `write(2)` of one byte to the pipe, retried on `EINTR` by swift-system; a full pipe (`EAGAIN`, after
    /// thousands of calls) is already readable, so it needs nothing more.
    public func stop() {
        raised.store(true, ordering: .releasing)
        _ = try? writeDescriptor.writeAll(CollectionOfOne(UInt8(1)))
    }
}

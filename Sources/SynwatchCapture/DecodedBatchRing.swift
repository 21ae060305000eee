import Dispatch
import SynwatchEngine

/// Frames decoded on a reading thread, handed in order to the engine's thread in batches round a ring of buffers.
///
/// Two semaphores hand each buffer over, so the threads meet once per batch, never per frame: one fills
/// (`startFilling`, `finishFilling`), the other takes (`take`, `release`), each in ring order. Each batch carries a
/// `Note` from the reading thread (where reading stands, why it stopped).
public final class DecodedBatchRing<Note: Sendable>: @unchecked Sendable {
    /// One buffer: the reading thread's from `startFilling` to `finishFilling`, the engine thread's from `take` to
    /// `release`.
    public final class Batch: @unchecked Sendable {
        public let frames: UnsafeMutablePointer<DecodedFrame>
        public let capacity: Int
        /// Frames filled in.
        public var count = 0
        public var note: Note

        init(capacity: Int, note: Note) {
            self.capacity = capacity
            self.note = note
            frames = .allocate(capacity: capacity)
            frames.initialize(repeating: DecodedFrame.empty, count: capacity)
        }

        deinit { frames.deallocate() }

        /// Calls `read` with a body that decodes each frame it is given into the batch with `decoder`, from the
        /// start, and returns what `read` returns; `read` must give at most `capacity` frames.
        @inline(__always)
        public func fill(
            with decoder: FrameDecoder,
            _ read: (_ body: (Frame) -> Void) throws(CaptureError) -> Int?
        ) throws(CaptureError) -> Int? {
            // A local count, not the property: a class property's accesses would be checked per frame.
            let frames = self.frames
            let capacity = self.capacity
            var filled = 0
            defer { count = filled }
            return try read { frame in
                precondition(filled < capacity, "a read gave more frames than the batch holds")
                frames[filled] = decoder.decode(frame)
                filled &+= 1
            }
        }
    }

    private let batches: [Batch]
    private let filled = DispatchSemaphore(value: 0)
    private let emptied: DispatchSemaphore
    /// Touched by the reading thread only.
    private var nextToFill = 0
    /// Touched by the engine's thread only.
    private var nextToTake = 0

    /// - Parameters:
    ///   - batchSize: frames per batch.
    ///   - depth: batches in the ring: how far reading may run ahead of the engine.
    ///   - note: what each batch's note holds before it is first filled.
    public init(batchSize: Int, depth: Int, note: Note) {
        batches = (0..<max(2, depth)).map { _ in Batch(capacity: max(1, batchSize), note: note) }
        emptied = DispatchSemaphore.starting(at: batches.count)
    }

    /// The reading thread's next batch, emptied, once the engine's thread is done with it.
    public func startFilling() -> Batch {
        emptied.wait()
        let batch = batches[nextToFill]
        batch.count = 0
        return batch
    }

    /// Hands the batch from `startFilling` to the engine's thread.
    public func finishFilling() {
        nextToFill = (nextToFill + 1) % batches.count
        filled.signal()
    }

    /// The engine thread's next batch, once it is filled.
    public func take() -> Batch {
        filled.wait()
        return batches[nextToTake]
    }

    /// The engine thread's next batch, or nil when none was filled within `timeout`.
    public func take(timeout: Duration) -> Batch? {
        let nanoseconds =
            Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        guard filled.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
        return batches[nextToTake]
    }

    /// The engine thread's next batch if it is filled, without waiting.
    func tryTake() -> Batch? {
        filled.wait(timeout: .now()) == .success ? batches[nextToTake] : nil
    }

    /// Gives the batch from `take` back to the reading thread.
    public func release() {
        nextToTake = (nextToTake + 1) % batches.count
        emptied.signal()
    }
}

extension DispatchSemaphore {
    /// A semaphore holding `value`, created at 0: libdispatch traps when one is released below the value it was
    /// created with, which a ring given up part-way (a batch still being filled or taken) leaves.
    static func starting(at value: Int) -> DispatchSemaphore {
        let semaphore = DispatchSemaphore(value: 0)
        for _ in 0..<value { semaphore.signal() }
        return semaphore
    }
}

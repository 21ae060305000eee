import Dispatch
import SynwatchEngine
import SynwatchSystem

/// Reads captures on a thread of its own and decodes every frame there, while the caller's thread runs the engine
/// over the decoded frames in capture order (`synwatch analyze --threads 2`).
///
/// The engine's work and its events are exactly those of `Engine.process(_:)` on one thread: only decoding moves.
/// Batches of decoded frames go round a ring of `depth` buffers, handed over by two semaphores, so the two threads
/// meet once per batch, never per frame.
public final class DecodingReader: @unchecked Sendable {
    private let source: CaptureFileSequence
    private let batches: [DecodedBatch]
    private let batchSize: Int
    /// Signalled by the reading thread for each batch it filled, by the engine's for each one it has done with.
    private let filled = DispatchSemaphore(value: 0)
    private let emptied: DispatchSemaphore

    /// Takes over `source`: it must not be used elsewhere until `run` returns.
    public init(_ source: CaptureFileSequence, batchSize: Int = 4096, depth: Int = 4) {
        self.source = source
        self.batchSize = max(1, batchSize)
        batches = (0..<max(2, depth)).map { _ in DecodedBatch(capacity: max(1, batchSize)) }
        emptied = DispatchSemaphore(value: batches.count)
    }

    /// Reads every capture to its end and feeds each frame to `engine`; after each batch, calls `afterBatch` on
    /// this thread with how far reading has got (for events and progress).
    /// - Throws: the `CaptureError` that stopped reading, once the frames read before it have been fed.
    ///   `SystemCallError` when no thread could be started; nothing was read then.
    public func run(into engine: Engine, afterBatch: (CaptureProgress) -> Void) throws {
        try SystemCall.detachThread(named: "synwatch-read") { self.readAndDecode() }
        var next = 0
        while true {
            filled.wait()
            let batch = batches[next]
            let frames = batch.frames
            for index in 0..<batch.count { engine.process(decoded: frames + index) }
            let ended = batch.ended
            let error = batch.error
            let progress = batch.progress
            emptied.signal()
            afterBatch(progress)
            if ended {
                if let error { throw error }
                return
            }
            next = (next + 1) % batches.count
        }
    }

    /// The reading thread: fills batches in turn until the captures end or fail.
    private func readAndDecode() {
        var next = 0
        while true {
            emptied.wait()
            let batch = batches[next]
            let frames = batch.frames
            var count = 0
            do {
                let delivered = try source.readFrames(upTo: batchSize) { frame in
                    frames[count] = DecodedFrame(frame)
                    count += 1
                }
                batch.ended = delivered == nil
            } catch {
                batch.error = error
                batch.ended = true
            }
            batch.count = count
            batch.progress = source.progress
            let ended = batch.ended
            filled.signal()
            if ended { return }
            next = (next + 1) % batches.count
        }
    }
}

/// One buffer of the ring: owned by the reading thread from `emptied` to `filled`, by the engine's thread after.
private final class DecodedBatch {
    let frames: UnsafeMutablePointer<DecodedFrame>
    var count = 0
    var ended = false
    var error: CaptureError?
    var progress = CaptureProgress(inputIndex: 0, inputCount: 0, framesRead: 0, bytesConsumed: nil, totalBytes: nil)

    init(capacity: Int) {
        frames = .allocate(capacity: capacity)
        frames.initialize(repeating: DecodedFrame.empty, count: capacity)
    }

    deinit { frames.deallocate() }
}

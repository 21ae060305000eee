import SynwatchEngine
import SynwatchSystem

/// Reads captures on a thread of its own and decodes every frame there, while the caller's thread runs the engine
/// over the decoded frames in capture order (`synwatch analyze --threads 2`).
///
/// The engine's work and its events are exactly those of `Engine.process(_:)` on one thread: only decoding moves.
public final class DecodingReader: @unchecked Sendable {  // `source` is used by the reading thread only
    /// Where reading stood when a batch was filled.
    struct Note: Sendable {
        var ended = false
        var error: CaptureError?
        var progress = CaptureProgress(inputIndex: 0, inputCount: 0, framesRead: 0, bytesConsumed: nil, totalBytes: nil)
    }

    private let source: CaptureFileSequence
    private let ring: DecodedBatchRing<Note>

    /// Takes over `source`: it must not be used elsewhere until `run` returns.
    public init(_ source: CaptureFileSequence, batchSize: Int = 4096, depth: Int = 4) {
        self.source = source
        ring = DecodedBatchRing(batchSize: batchSize, depth: depth, note: Note())
    }

    /// Reads every capture to its end and feeds each frame to `engine`; after each batch, calls `afterBatch` on
    /// this thread with how far reading has got (for events and progress).
    /// - Throws: the `CaptureError` that stopped reading, once the frames read before it have been fed.
    ///   `SystemCallError` when no thread could be started; nothing was read then.
    public func run(into engine: Engine, afterBatch: (CaptureProgress) -> Void) throws {
        let decoder = engine.frameDecoder
        try SystemCall.detachThread(named: "synwatch-read") { self.readAndDecode(with: decoder) }
        while true {
            let batch = ring.take()
            engine.process(decoded: batch.frames, count: batch.count)
            let note = batch.note
            ring.release()
            afterBatch(note.progress)
            if note.ended {
                if let error = note.error { throw error }
                return
            }
        }
    }

    /// The reading thread: fills batches in turn until the captures end or fail.
    private func readAndDecode(with decoder: FrameDecoder) {
        while true {
            let batch = ring.startFilling()
            var note = Note()
            do {
                note.ended =
                    try batch.fill(with: decoder) { body throws(CaptureError) in
                        try source.readFrames(upTo: batch.capacity, body)
                    }
                    == nil
            } catch {
                note.error = error
                note.ended = true
            }
            note.progress = source.progress
            batch.note = note
            ring.finishFilling()
            if note.ended { return }
        }
    }
}

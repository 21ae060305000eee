import Dispatch
import SynwatchEngine
import SynwatchSystem

/// Reads captures and decodes every frame on threads of their own, while the caller's thread runs the engine over
/// the decoded frames in capture order (`synwatch analyze --threads N`: N − 1 decoding threads).
///
/// Several decoding threads take turns reading a batch (a mapped file's records are walked in place, which is cheap
/// beside decoding them), then decode their batches side by side; the engine takes the batches in the order they
/// were read. Frames that libpcap reads (a pipe, a format the mapped readers leave to it) are valid only while it
/// hands them over: those are decoded during the turn. The engine's work and its events are exactly those of
/// `Engine.process(_:)` on one thread, for any number of decoding threads: only decoding moves.
public final class DecodingReader: @unchecked Sendable {  // shared state is handed over by the semaphores below
    /// Where reading stood when a batch was filled.
    struct Note: Sendable {
        var ended = false
        var error: CaptureError?
        var progress = CaptureProgress(inputIndex: 0, inputCount: 0, framesRead: 0, bytesConsumed: nil, totalBytes: nil)
    }

    /// One batch of the ring: a decoding thread's from `emptied` to `filled`, the engine's from `filled` to `emptied`.
    final class Slot: @unchecked Sendable {
        let batch: DecodedBatchRing<Note>.Batch
        /// Frames read during a turn and decoded after it (several decoding threads only).
        let pending: UnsafeMutablePointer<Frame>?
        /// The reader whose mapping the pending frames point into, kept open until the engine is done with them,
        /// and where they end in it: the pages before are given back then.
        var reader: CaptureFileReader?
        var readEnd = 0
        /// The engine's `thinned` when it gave the slot back, for the decoder that fills it next.
        var thinned: [SampledService] = []
        let filled = DispatchSemaphore(value: 0)
        let emptied = DispatchSemaphore.starting(at: 1)

        init(batchSize: Int, decodesAfterTurn: Bool) {
            batch = DecodedBatchRing<Note>.Batch(capacity: batchSize, note: Note())
            pending = decodesAfterTurn ? .allocate(capacity: batchSize) : nil
        }

        deinit { pending?.deallocate() }
    }

    private let source: CaptureFileSequence
    private let slots: [Slot]
    /// The decoding threads' turns to read, one after the other in a circle.
    private let turns: [DispatchSemaphore]
    /// Read and written only by the thread whose turn it is.
    private var nextBatch = 0
    private var sourceEnded = false

    /// Takes over `source`: it must not be used elsewhere until `run` returns.
    /// - Parameter decoders: decoding threads, at least 1.
    public init(_ source: CaptureFileSequence, decoders: Int = 1, batchSize: Int = 4096) {
        self.source = source
        let decoders = max(1, decoders)
        // Pages a turn has read may still be decoding: the engine's thread gives them back, in order, once done.
        source.defersPageRelease = decoders > 1
        // Each thread may hold a batch being decoded while the engine works through as many.
        slots = (0..<max(4, 2 * decoders + 2)).map { _ in
            Slot(batchSize: max(1, batchSize), decodesAfterTurn: decoders > 1)
        }
        turns = (0..<decoders).map { DispatchSemaphore.starting(at: $0 == 0 ? 1 : 0) }
    }

    /// Reads every capture to its end and feeds each frame to `engine`; after each batch, calls `afterBatch` on
    /// this thread with how far reading has got (for events and progress).
    /// - Throws: the `CaptureError` that stopped reading, once the frames read before it have been fed.
    ///   `SystemCallError` when a thread could not be started; nothing was fed to the engine then.
    public func run(into engine: Engine, afterBatch: (CaptureProgress) -> Void) throws {
        let decoder = engine.frameDecoder
        for index in turns.indices {
            let name = turns.count == 1 ? "synwatch-read" : "synwatch-read\(index + 1)"
            try SystemCall.detachThread(named: name) { self.decode(turn: index, with: decoder) }
        }
        var next = 0
        while true {
            let slot = slots[next % slots.count]
            next += 1
            slot.filled.wait()
            engine.process(decoded: slot.batch.frames, count: slot.batch.count)
            let note = slot.batch.note
            slot.reader?.releasePages(before: slot.readEnd)
            slot.reader = nil
            slot.thinned = engine.thinned
            slot.emptied.signal()
            afterBatch(note.progress)
            if note.ended {
                if let error = note.error { throw error }
                return
            }
        }
    }

    /// A decoding thread: at each of its turns it reads the next batch into the next slot, hands the turn on, then
    /// decodes what it read, until the captures end or fail.
    private func decode(turn index: Int, with decoder: FrameDecoder) {
        var decoder = decoder
        let nextTurn = turns[(index + 1) % turns.count]
        while true {
            turns[index].wait()
            guard !sourceEnded else {
                nextTurn.signal()
                return
            }
            let slot = slots[nextBatch % slots.count]
            nextBatch += 1
            slot.emptied.wait()
            if decoder.thinned != slot.thinned { decoder.thinned = slot.thinned }
            let batch = slot.batch
            let pending = slot.pending
            var held = 0
            // A batch comes from one capture: whether its frames outlive the read is known at its first frame.
            var holds: Bool?
            var note = Note()
            do {
                note.ended =
                    try batch.fill(with: decoder) { decode throws(CaptureError) in
                        // One decoding thread decodes as it reads.
                        guard let pending else { return try source.readFrames(upTo: batch.capacity, decode) }
                        return try source.readFrames(upTo: batch.capacity) { frame in
                            if holds == nil { holds = source.currentReader?.method != .libpcap }
                            if holds == true {
                                pending[held] = frame
                                held &+= 1
                            } else {
                                decode(frame)
                            }
                        }
                    } == nil
            } catch {
                note.error = error
                note.ended = true
            }
            note.progress = source.progress
            slot.reader = held > 0 ? source.currentReader : nil
            slot.readEnd = slot.reader?.bytesConsumed ?? 0
            sourceEnded = note.ended
            nextTurn.signal()
            // Held frames fill the batch alone: `fill` decoded none.
            if let pending { for frame in 0..<held { batch.frames[frame] = decoder.decode(pending[frame]) } }
            if held > 0 { batch.count = held }
            batch.note = note
            slot.filled.signal()
            if note.ended { return }
        }
    }
}

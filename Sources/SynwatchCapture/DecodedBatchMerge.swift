import SynwatchEngine

/// What a reading shard tells with each batch that the merge needs: how far its capture time has come.
public protocol ShardNote: Sendable {
    /// Capture time that every frame the shard still gives is at least (its ring was drained then), or nil when
    /// only the batch's last frame says so.
    var settledTime: Int64? { get }
    /// The shard's last batch: it gives no more.
    var isLast: Bool { get }
}

/// The batches of several reading shards, one ring each, merged into one stream in capture-time order.
///
/// Each shard reads its own share of the flows, in order. A frame goes to the engine once no shard can still give
/// one earlier by more than `tolerance`: every other shard has a batch at hand whose next frame is no earlier, or
/// has said that all it still gives is later (`ShardNote.settledTime`), or has ended. So the engine sees the
/// frames in the order of their capture times, to within the tolerance, whatever the number of shards, and one
/// shard is one ring read in order. A shard with nothing at hand holds the others back until its next read
/// returns, which the reading threads bound by the engine's step.
///
/// The tolerance lets a run of one shard's frames go at once: shards' frames interleave one by one at high rates,
/// and choosing the next shard for every frame raised the engine thread's CPU by a third or more (`SYNWATCH_SHARDS=2
/// scripts/benchmark-live`: 55 → 72–78 ms per million packets).
public final class DecodedBatchMerge<Note: ShardNote>: @unchecked Sendable {  // each ring has one filler
    /// The shards' rings: shard `i` fills `rings[i]`.
    public let rings: [DecodedBatchRing<Note>]

    /// Where a shard stands: the frames of its batch at hand still to go, and how far its capture time has come.
    private struct Head {
        /// The next frame and the batch's end; nil when no batch is at hand.
        var next: UnsafeMutablePointer<DecodedFrame>?
        var end: UnsafeMutablePointer<DecodedFrame>?
        /// The capture time every frame the shard gives after its batch at hand is at least (`Int64.max` once it
        /// ended).
        var watermark = Int64.min

        /// The earliest capture time the shard may still give.
        var time: Int64 {
            guard let next, next != end else { return watermark }
            return next.pointee.time
        }
    }

    // The engine thread's. Raw memory, walked once per frame: no reference counting or exclusivity checks there.
    private let heads: UnsafeMutablePointer<Head>
    private let shards: Int
    /// How much earlier than frames already handed over a frame may still come, in nanoseconds.
    public let tolerance: Int64
    /// The batches at hand, held from `take` to `release`.
    private var batches: [DecodedBatchRing<Note>.Batch?]

    /// - Parameters:
    ///   - shards: reading shards, at least one.
    ///   - batchSize: frames per batch.
    ///   - depth: batches each shard may read ahead.
    ///   - note: what each batch's note holds before it is first filled.
    ///   - tolerance: how much earlier than frames already handed over a frame may still come, in nanoseconds.
    public init(shards: Int, batchSize: Int, depth: Int, note: Note, tolerance: Int64 = 0) {
        self.shards = max(1, shards)
        self.tolerance = max(0, tolerance)
        rings = (0..<self.shards).map { _ in DecodedBatchRing(batchSize: batchSize, depth: depth, note: note) }
        heads = .allocate(capacity: self.shards)
        heads.initialize(repeating: Head(), count: self.shards)
        batches = Array(repeating: nil, count: self.shards)
    }

    deinit { heads.deallocate() }

    /// Whether every shard gave its last batch.
    public var hasEnded: Bool { (0..<shards).allSatisfy { heads[$0].next == nil && heads[$0].watermark == .max } }

    /// Capture time that no frame still to come is earlier than, over every shard.
    public var settledTime: Int64 { (0..<shards).reduce(Int64.max) { min($0, heads[$1].time) } }

    /// Hands `run` the frames that may go now, a run of one batch's frames at a time in capture-time order, until
    /// a batch is done (then `done` is given its shard and note, and the batch goes back to its ring) or a shard
    /// with nothing at hand holds the rest back.
    /// - Returns: whether anything went; false when the caller should `wait`.
    @discardableResult
    public func feed(
        _ run: (UnsafeMutablePointer<DecodedFrame>, Int) -> Void,
        done: (_ shard: Int, Note) -> Void
    ) -> Bool {
        let heads = self.heads
        let shards = self.shards
        for shard in 0..<shards where heads[shard].next == nil && heads[shard].watermark != .max {
            if let batch = rings[shard].tryTake() { hold(batch, of: shard) }
        }
        var fed = false
        while true {
            // The shard with the earliest next frame; one whose batch is used up (or empty) is done first.
            var earliest = -1
            var earliestTime = Int64.max
            for shard in 0..<shards {
                guard let next = heads[shard].next else { continue }
                if next == heads[shard].end {
                    finish(shard, done: done)
                    return true
                }
                if earliest < 0 || next.pointee.time < earliestTime {
                    (earliest, earliestTime) = (shard, next.pointee.time)
                }
            }
            guard earliest >= 0 else { return fed }
            var bound = Int64.max
            for shard in 0..<shards where shard != earliest { bound = min(bound, heads[shard].time) }
            bound = bound > Int64.max - tolerance ? bound : bound + tolerance
            // Another shard may still give an earlier frame: its next batch must come first.
            guard earliestTime <= bound else { return fed }
            let start = heads[earliest].next!
            let end = heads[earliest].end!
            var stop = start + 1
            while stop < end && stop.pointee.time <= bound { stop += 1 }
            run(start, stop - start)
            heads[earliest].next = stop
            fed = true
        }
    }

    /// Waits, at most `timeout`, for the next batch of the shard that holds the others back: of the shards with
    /// nothing at hand, the one whose capture time stands earliest.
    public func wait(timeout: Duration) {
        var holding: Int?
        for shard in 0..<shards where heads[shard].next == nil && heads[shard].watermark != .max {
            if holding.map({ heads[shard].watermark < heads[$0].watermark }) ?? true { holding = shard }
        }
        guard let shard = holding, let batch = rings[shard].take(timeout: timeout) else { return }
        hold(batch, of: shard)
    }

    private func hold(_ batch: DecodedBatchRing<Note>.Batch, of shard: Int) {
        batches[shard] = batch
        heads[shard].next = batch.frames
        heads[shard].end = batch.frames + batch.count
    }

    private func finish(_ shard: Int, done: (Int, Note) -> Void) {
        let batch = batches[shard]!
        let note = batch.note
        var watermark = heads[shard].watermark
        if note.isLast {
            watermark = .max
        } else {
            if batch.count > 0 { watermark = max(watermark, batch.frames[batch.count - 1].time) }
            watermark = max(watermark, note.settledTime ?? .min)
        }
        heads[shard] = Head(watermark: watermark)
        batches[shard] = nil
        rings[shard].release()
        done(shard, note)
    }
}

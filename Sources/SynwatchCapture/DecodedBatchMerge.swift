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
/// an earlier one: every other shard has a batch at hand whose next frame is no earlier, or has said that all it
/// still gives is later (`ShardNote.settledTime`), or has ended. So the engine sees the frames in the order of
/// their capture times whatever the number of shards, and one shard is one ring read in order. A shard with
/// nothing at hand holds the others back until its next read returns, which the reading threads bound by the
/// engine's step.
public final class DecodedBatchMerge<Note: ShardNote>: @unchecked Sendable {  // each ring has one filler
    /// The shards' rings: shard `i` fills `rings[i]`.
    public let rings: [DecodedBatchRing<Note>]

    // The engine thread's.
    private var open: [DecodedBatchRing<Note>.Batch?]
    private var cursor: [Int]
    /// Per shard, the capture time every frame it still gives is at least (`Int64.max` once it ended).
    private var watermark: [Int64]

    /// - Parameters:
    ///   - shards: reading shards, at least one.
    ///   - batchSize: frames per batch.
    ///   - depth: batches each shard may read ahead.
    ///   - note: what each batch's note holds before it is first filled.
    public init(shards: Int, batchSize: Int, depth: Int, note: Note) {
        let shards = max(1, shards)
        rings = (0..<shards).map { _ in DecodedBatchRing(batchSize: batchSize, depth: depth, note: note) }
        open = Array(repeating: nil, count: shards)
        cursor = Array(repeating: 0, count: shards)
        watermark = Array(repeating: .min, count: shards)
    }

    /// Whether every shard gave its last batch.
    public var hasEnded: Bool { watermark.allSatisfy { $0 == .max } && open.allSatisfy { $0 == nil } }

    /// Capture time that no frame still to come is earlier than, over every shard.
    public var settledTime: Int64 {
        var earliest = Int64.max
        for shard in open.indices { earliest = min(earliest, nextTime(shard)) }
        return earliest
    }

    /// Hands `run` the frames that may go now, a run of one batch's frames at a time in capture-time order, until
    /// a batch is done (then `done` is given its shard and note, and the batch goes back to its ring) or a shard
    /// with nothing at hand holds the rest back.
    /// - Returns: whether anything went; false when the caller should `wait`.
    @discardableResult
    public func feed(
        _ run: (UnsafeMutablePointer<DecodedFrame>, Int) -> Void,
        done: (_ shard: Int, Note) -> Void
    ) -> Bool {
        for shard in open.indices where open[shard] == nil && watermark[shard] != .max {
            open[shard] = rings[shard].tryTake()
            cursor[shard] = 0
        }
        var fed = false
        while true {
            // The shard with the earliest next frame; one whose batch is used up (or empty) is done first.
            var next: Int?
            var nextFrame = Int64.max
            for shard in open.indices {
                guard let batch = open[shard] else { continue }
                if cursor[shard] == batch.count {
                    finish(shard, done: done)
                    return true
                }
                let time = batch.frames[cursor[shard]].time
                if next == nil || time < nextFrame { (next, nextFrame) = (shard, time) }
            }
            guard let shard = next else { return fed }
            var bound = Int64.max
            for other in open.indices where other != shard { bound = min(bound, nextTime(other)) }
            // Another shard may still give an earlier frame: its next batch must come first.
            guard nextFrame <= bound else { return fed }
            let batch = open[shard]!
            let start = cursor[shard]
            var end = start + 1
            while end < batch.count && batch.frames[end].time <= bound { end += 1 }
            run(batch.frames + start, end - start)
            cursor[shard] = end
            fed = true
        }
    }

    /// Waits, at most `timeout`, for the next batch of the shard that holds the others back: of the shards with
    /// nothing at hand, the one whose capture time stands earliest.
    public func wait(timeout: Duration) {
        var holding: Int?
        for shard in open.indices where open[shard] == nil && watermark[shard] != .max {
            if holding == nil || watermark[shard] < watermark[holding!] { holding = shard }
        }
        guard let shard = holding, let batch = rings[shard].take(timeout: timeout) else { return }
        open[shard] = batch
        cursor[shard] = 0
    }

    /// The earliest capture time `shard` may still give: its next frame at hand, else its watermark.
    private func nextTime(_ shard: Int) -> Int64 {
        guard let batch = open[shard] else { return watermark[shard] }
        return cursor[shard] < batch.count ? batch.frames[cursor[shard]].time : watermark[shard]
    }

    private func finish(_ shard: Int, done: (Int, Note) -> Void) {
        let batch = open[shard]!
        let note = batch.note
        if note.isLast {
            watermark[shard] = .max
        } else {
            let last = batch.count > 0 ? batch.frames[batch.count - 1].time : watermark[shard]
            watermark[shard] = max(watermark[shard], last, note.settledTime ?? .min)
        }
        open[shard] = nil
        rings[shard].release()
        done(shard, note)
    }
}

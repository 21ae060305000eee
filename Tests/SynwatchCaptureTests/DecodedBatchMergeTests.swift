import Synchronization
import SynwatchCapture
import SynwatchEngine
import SynwatchSystem
import Testing

/// What a test shard tells with a batch.
private struct TestNote: ShardNote {
    var settledTime: Int64?
    var isLast = false
}

/// Fills the next batch of `ring` with frames at `times` and the note.
private func fill(
    _ ring: DecodedBatchRing<TestNote>,
    times: [Int64],
    settled: Int64? = nil,
    last: Bool = false,
    decoder: FrameDecoder
) {
    let batch = ring.startFilling()
    let bytes: [UInt8] = [0x45, 0]
    bytes.withUnsafeBytes { raw in
        _ = try? batch.fill(with: decoder) { body in
            for time in times {
                body(Frame(time: Timestamp(nanoseconds: time), linkType: .rawIP, bytes: raw, wireLength: 40))
            }
            return times.count
        }
    }
    batch.note = TestNote(settledTime: settled, isLast: last)
    ring.finishFilling()
}

/// The merge of reading shards' batches into capture-time order.
@Suite struct DecodedBatchMergeTests {
    @Test("A shard with nothing at hand holds the others' later frames back until it says how far it has come")
    func holdsBack() throws {
        let decoder = try Engine().frameDecoder
        let merge = DecodedBatchMerge(shards: 2, batchSize: 8, depth: 2, note: TestNote())
        var fed = [Int64]()
        var notes = [Int]()
        let run = { (frames: UnsafeMutablePointer<DecodedFrame>, count: Int) in
            fed += (0..<count).map { frames[$0].time }
        }
        fill(merge.rings[0], times: [10, 20, 30], decoder: decoder)
        #expect(!merge.feed(run) { shard, _ in notes.append(shard) })
        #expect(fed.isEmpty)
        // Shard 1 read nothing, and says every frame it still gives is from 25 on.
        fill(merge.rings[1], times: [], settled: 25, decoder: decoder)
        while merge.feed(run, done: { shard, _ in notes.append(shard) }) {}
        #expect(fed == [10, 20])
        #expect(notes == [1])
        #expect(merge.settledTime == 25)
        fill(merge.rings[1], times: [22, 27, 40], decoder: decoder)
        while merge.feed(run, done: { shard, _ in notes.append(shard) }) {}
        #expect(fed == [10, 20, 22, 27, 30])
        #expect(notes == [1, 0])
        fill(merge.rings[0], times: [], last: true, decoder: decoder)
        fill(merge.rings[1], times: [], last: true, decoder: decoder)
        while merge.feed(run, done: { shard, _ in notes.append(shard) }) {}
        #expect(fed == [10, 20, 22, 27, 30, 40])
        // Shard 0's last note frees frame 40.
        #expect(notes == [1, 0, 0, 1, 1])
        #expect(merge.hasEnded)
    }

    @Test(
        "Three shards read on threads of their own come out as one stream in capture-time order, every frame once",
        arguments: [0, 20] as [Int64]
    )
    func threeShards(tolerance: Int64) throws {
        let decoder = try Engine().frameDecoder
        let merge = DecodedBatchMerge(shards: 3, batchSize: 16, depth: 3, note: TestNote(), tolerance: tolerance)
        let batches = 400
        let produced = Atomic<Int>(0)
        for shard in 0..<3 {
            try SystemCall.detachThread(named: "merge test \(shard)") {
                var generator = SystemRandomNumberGenerator()
                var time = Int64(shard)
                for number in 0..<batches {
                    let count = Int.random(in: 0...16, using: &generator)
                    let times = (0..<count).map { _ in
                        time += Int64.random(in: 1...9, using: &generator)
                        return time
                    }
                    produced.add(count, ordering: .relaxed)
                    // A short read drained the ring: nothing still to come is earlier than the read's end.
                    let drained = count < 16
                    if drained { time += Int64.random(in: 0...5, using: &generator) }
                    fill(
                        merge.rings[shard],
                        times: times,
                        settled: drained ? time : nil,
                        last: number == batches - 1,
                        decoder: decoder
                    )
                }
            }
        }
        var fed = [Int64]()
        var lastNotes = 0
        let end = ContinuousClock.now + .seconds(30)
        while !merge.hasEnded && ContinuousClock.now < end {
            let went = merge.feed({ frames, count in fed += (0..<count).map { frames[$0].time } }) { _, note in
                if note.isLast { lastNotes += 1 }
            }
            if !went { merge.wait(timeout: .milliseconds(100)) }
        }
        #expect(merge.hasEnded)
        #expect(lastNotes == 3)
        #expect(fed.count == produced.load(ordering: .relaxed))
        // Never earlier than a frame handed over before it by more than the tolerance.
        var latest = fed.first ?? 0
        var worst: Int64 = 0
        for time in fed {
            worst = max(worst, latest - time)
            latest = max(latest, time)
        }
        #expect(worst <= tolerance)
        if tolerance > 0 { #expect(worst > 0, "runs went at once, out of order within the tolerance") }
    }
}

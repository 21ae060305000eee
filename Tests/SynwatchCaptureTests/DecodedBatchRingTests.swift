import Synchronization
import SynwatchCapture
import SynwatchEngine
import SynwatchSystem
import Testing

/// The hand-over of decoded frames between a reading thread and the engine's.
@Suite struct DecodedBatchRingTests {
    @Test("Batches arrive whole and in order while the reader runs ahead by at most the ring's depth")
    func inOrder() throws {
        let ring = DecodedBatchRing(batchSize: 5, depth: 3, note: 0)
        let decoder = try Engine().frameDecoder
        let batches = 2_000
        let filled = Atomic<Int>(0)
        // Each frame's capture time is its number in the stream: frame n of batch b is b * 5 + n.
        try SystemCall.detachThread(named: "ring test") {
            let bytes: [UInt8] = [0x45, 0]
            bytes.withUnsafeBytes { raw in
                for number in 0..<batches {
                    let batch = ring.startFilling()
                    let count = number % 6  // from empty batches to full ones
                    _ = try? batch.fill(with: decoder) { body in
                        for index in 0..<count {
                            let time = Timestamp(nanoseconds: Int64(number * 5 + index))
                            body(Frame(time: time, linkType: .rawIP, bytes: raw, wireLength: 40))
                        }
                        return count
                    }
                    batch.note = number
                    filled.add(1, ordering: .relaxed)
                    ring.finishFilling()
                }
            }
        }
        for number in 0..<batches {
            let batch = try #require(ring.take(timeout: .seconds(10)))
            #expect(batch.note == number)
            #expect(batch.count == number % 6)
            let times = (0..<batch.count).map { batch.frames[$0].time }
            #expect(times == (0..<batch.count).map { Int64(number * 5 + $0) })
            // The bytes were decoded on the reading thread (a truncated IPv4 header), not kept.
            #expect((0..<batch.count).allSatisfy { batch.frames[$0].outcome == .truncatedIPHeader })
            #expect(filled.load(ordering: .relaxed) <= number + 3)
            ring.release()
        }
        #expect(ring.take(timeout: .milliseconds(20)) == nil)
    }

    @Test("Taking waits at most its time-out when nothing was filled")
    func timeOut() {
        let ring = DecodedBatchRing(batchSize: 1, depth: 2, note: ())
        let clock = ContinuousClock()
        let start = clock.now
        #expect(ring.take(timeout: .milliseconds(50)) == nil)
        #expect(clock.now - start >= .milliseconds(45))
    }

    @Test("A ring given up part-way, a batch still filled or taken, is released without a trap")
    func releasedPartWay() {
        // libdispatch traps on a semaphore released with less than it was created with: a daemon that stops
        // between a reader's `startFilling` and the engine's `release` leaves one so.
        var ring: DecodedBatchRing<Int>? = DecodedBatchRing(batchSize: 1, depth: 2, note: 0)
        _ = ring?.startFilling()
        ring?.finishFilling()
        _ = ring?.startFilling()
        #expect(ring?.take(timeout: .milliseconds(10)) != nil)
        ring = nil
    }
}

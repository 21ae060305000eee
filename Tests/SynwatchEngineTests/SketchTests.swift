import Testing

@testable import SynwatchEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The approximate structures against exact counts, over items hashed as the engine hashes them.
@Suite("Sketches")
struct SketchTests {
    let hasher = KeyedHasher(seed: EngineConfiguration().hashSeed)

    /// Distinct sources as a flood brings them: runs of consecutive IPv4 addresses (the hardest
    /// input for a weak hash) or random IPv6 ones.
    func sources(_ count: Int, trial: Int, random: inout SeededRandom) -> [IPAddress] {
        if trial % 2 == 0 {
            let base = UInt32.random(in: 0..<(UInt32.max - UInt32(count)), using: &random)
            return (0..<UInt32(count)).map { IPAddress(ipv4: base + $0) }
        }
        var unique = Set<IPAddress>()
        var result = [IPAddress]()
        while result.count < count {
            let address = IPAddress(high: 0x2001_0DB8_0000_0000 | random.next() >> 32, low: random.next())
            if unique.insert(address).inserted { result.append(address) }
        }
        return result
    }

    func estimate(_ sketch: HyperLogLog, of items: [IPAddress]) -> Int {
        var registers = [UInt8](repeating: 0, count: sketch.registerCount)
        return registers.withUnsafeMutableBufferPointer { buffer in
            for item in items { sketch.add(hasher.hash(item), to: buffer.baseAddress!) }
            return sketch.estimate(buffer.baseAddress!)
        }
    }

    /// p = 9 has a standard error of 1.04/√512 ≈ 4.6%: no estimate may be off by more than 15%
    /// (3.3 standard errors), and over all trials the errors must average out near zero.
    @Test
    func hyperLogLogStaysWithinItsErrorBound() {
        let sketch = HyperLogLog(precision: 9)
        var random = SeededRandom(seed: 0x4C4C)
        var errors = [Double]()
        for count in [200, 500, 1_000, 1_300, 1_600, 2_000, 2_600, 3_500, 5_000, 10_000, 30_000, 100_000] {
            for trial in 0..<(count >= 30_000 ? 4 : 10) {
                let estimated = estimate(sketch, of: sources(count, trial: trial, random: &random))
                let error = Double(estimated - count) / Double(count)
                #expect(abs(error) <= 0.15, "\(count) distinct estimated as \(estimated)")
                errors.append(error)
            }
        }
        let mean = errors.reduce(0, +) / Double(errors.count)
        let rms = (errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot()
        #expect(abs(mean) <= 0.015, "mean relative error \(mean)")
        #expect(rms <= 0.065, "root mean square relative error \(rms)")
    }

    /// Up to a hundred the estimate comes from linear counting and is nearly exact.
    @Test
    func hyperLogLogCountsSmallSetsNearlyExactly() {
        let sketch = HyperLogLog(precision: 9)
        var random = SeededRandom(seed: 0x5A11)
        #expect(estimate(sketch, of: []) == 0)
        for count in 1...100 {
            for trial in 0..<6 {
                let estimated = estimate(sketch, of: sources(count, trial: trial, random: &random))
                let allowed = count < 4 ? 0 : 1 + count / 10
                #expect(abs(estimated - count) <= allowed, "\(count) distinct estimated as \(estimated)")
            }
        }
    }

    /// The engine counts distinct sources over two epochs as the union of two sketches.
    @Test
    func hyperLogLogUnionCountsTheOverlapOnce() {
        let sketch = HyperLogLog(precision: 9)
        let items = (0..<10_000).map { IPAddress(ipv4: 0xC612_0000 + UInt32($0)) }
        var first = [UInt8](repeating: 0, count: sketch.registerCount)
        var second = [UInt8](repeating: 0, count: sketch.registerCount)
        let union = first.withUnsafeMutableBufferPointer { a in
            second.withUnsafeMutableBufferPointer { b in
                for item in items[..<6_000] { sketch.add(hasher.hash(item), to: a.baseAddress!) }
                for item in items[4_000...] { sketch.add(hasher.hash(item), to: b.baseAddress!) }
                // Adding again changes nothing.
                for item in items[4_000..<6_000] { sketch.add(hasher.hash(item), to: a.baseAddress!) }
                return sketch.estimate(a.baseAddress!, b.baseAddress!)
            }
        }
        #expect(abs(union - 10_000) <= 1_500, "union estimated as \(union)")
    }

    /// Clients counted level by level (`LeveledHyperLogLog`), each level with 128 registers: unsampled, the
    /// estimate is the sum of eight, whose standard error is 1.04/√128 × √(Σ share²) ≈ 5.3 %.
    func leveledEstimate(of batches: [(clients: [IPAddress], shift: UInt8)]) -> Int {
        let sketch = LeveledHyperLogLog(precisionPerLevel: 7)
        let sampling = ClientSampling(seed: EngineConfiguration().hashSeed)
        var registers = [UInt8](repeating: 0, count: sketch.registerCount)
        return registers.withUnsafeMutableBufferPointer { buffer in
            for (clients, shift) in batches {
                for client in clients where sampling.keeps(client, shift: shift) {
                    sketch.add(hasher.hash(client), level: sampling.level(of: client), to: buffer.baseAddress!)
                }
            }
            return sketch.estimate(shift: batches.map(\.shift).max() ?? 0, buffer.baseAddress!)
        }
    }

    @Test
    func leveledHyperLogLogStaysWithinItsErrorBoundUnsampled() {
        var random = SeededRandom(seed: 0x1E7E)
        var errors = [Double]()
        for count in [1, 2, 3, 10, 50, 100, 200, 1_000, 2_000, 5_000, 10_000, 30_000, 100_000] {
            for trial in 0..<(count >= 30_000 ? 4 : 10) {
                let estimated = leveledEstimate(of: [(sources(count, trial: trial, random: &random), 0)])
                let error = Double(estimated - count) / Double(count)
                #expect(abs(error) <= (count < 100 ? 0.1 : 0.18), "\(count) distinct estimated as \(estimated)")
                errors.append(error)
            }
        }
        let mean = errors.reduce(0, +) / Double(errors.count)
        let rms = (errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot()
        #expect(abs(mean) <= 0.02, "mean relative error \(mean)")
        #expect(rms <= 0.07, "root mean square relative error \(rms)")
    }

    /// Sources that repeat while sampling steps up or down are each counted once. (Counted as 2^shift stand-ins at the
    /// shift of the moment, these read 1.9 times their number.) At shift 5 a client in 32 is kept: the estimate's
    /// sampling error (1.8 %) and its three levels' (5.6 %) stay far inside 20 %.
    @Test(arguments: [[0, 3, 5], [2, 4, 5], [5, 1]] as [[UInt8]])
    func leveledHyperLogLogCountsRepeatingSourcesOnceAcrossShifts(shifts: [UInt8]) {
        var random = SeededRandom(seed: 0x5EED)
        for trial in 0..<4 {
            let clients = sources(100_000, trial: trial, random: &random)
            let estimated = leveledEstimate(of: shifts.map { (clients, $0) })
            #expect(abs(Double(estimated) / 100_000 - 1) <= 0.2, "shifts \(shifts): 100,000 read as \(estimated)")
        }
    }

    /// A client is kept at every shift up to its level, and at none above.
    @Test
    func aClientsLevelIsTheHighestShiftThatKeepsIt() {
        let sampling = ClientSampling(seed: EngineConfiguration().hashSeed)
        var random = SeededRandom(seed: 0x1E7E1)
        for trial in 0..<2 {
            for client in sources(20_000, trial: trial, random: &random) {
                let level = sampling.level(of: client)
                for shift in 0...ClientSampling.maximumShift {
                    #expect(sampling.keeps(client, shift: shift) == (shift <= level), "\(client) at \(shift)")
                }
            }
        }
    }

    /// A source sample keeps the sources with the smallest hashes, however often each comes back: 50 clients that
    /// come back 200 times each among 20,000 sources seen once hold their share of it (0.25 %), where they hold a
    /// third of the heavy hitters' counters, their share of the SYNs. A client that completes stays, marked, and
    /// opens no place to the next source.
    @Test
    func sourceSampleIsUniformOverDistinctSources() {
        let k = 16
        var entries = [SampledSource](repeating: .empty, count: k)
        var heavy = [TopEntry](repeating: .empty, count: k)
        let clients = (0..<50).map { v4(198, 18, 16, UInt8($0)) }
        var random = SeededRandom(seed: 0x5A3)
        let once = sources(20_000, trial: 0, random: &random)
        entries.withUnsafeMutableBufferPointer { buffer in
            heavy.withUnsafeMutableBufferPointer { top in
                for (index, source) in once.enumerated() {
                    SourceSample.add(source, hash: hasher.hash(source), to: buffer.baseAddress!, k: k)
                    SpaceSaving.add(source, to: top.baseAddress!, k: k)
                    guard index % 2 == 0 else { continue }
                    let client = clients[index / 2 % clients.count]
                    SourceSample.add(client, hash: hasher.hash(client), to: buffer.baseAddress!, k: k)
                    SpaceSaving.add(client, to: top.baseAddress!, k: k)
                }
            }
        }
        let all = (once + clients).map { (address: $0, hash: hasher.hash($0)) }.sorted { $0.hash < $1.hash }
        #expect(entries.map(\.address) == all.prefix(k).map(\.address))
        #expect(entries.filter { clients.contains($0.address) }.count <= 2)
        #expect(heavy.filter { clients.contains($0.address) }.count >= k / 4)

        let first = entries[0]
        let largest = entries[k - 1].hash
        entries.withUnsafeMutableBufferPointer { buffer in
            SourceSample.markCompleted(first.address, hash: first.hash, in: buffer.baseAddress!, k: k)
            // A source hashed above the largest kept stays out, completed place or not.
            let late = (0..<64).map { IPAddress(ipv4: 0xC613_FF00 + UInt32($0)) }.first { hasher.hash($0) > largest }!
            SourceSample.add(late, hash: hasher.hash(late), to: buffer.baseAddress!, k: k)
        }
        #expect(entries[0].address == first.address && entries[0].completed)
        #expect(entries.filter(\.completed).count == 1 && entries[k - 1].hash == largest)
    }

    /// Space-Saving with k counters holds every item of frequency f above n/k with a counter between
    /// f and f + n/k; the counters add up to the stream length. Reports give the certain part of a
    /// counter (less what it inherited), between f - n/k and f, so every such item is reported.
    @Test
    func spaceSavingFindsEveryFrequentItem() {
        var random = SeededRandom(seed: 0x5555)
        for _ in 0..<60 {
            let k = [4, 8, 16].randomElement(using: &random)!
            let length = Int.random(in: 2_000...20_000, using: &random)
            var stream = [IPAddress]()
            var frequency = [IPAddress: Int]()
            for heavy in 0..<Int.random(in: 1..<k, using: &random) {
                let address = v4(198, 18, 1, UInt8(heavy))
                let share = Double.random(in: 1.05...1.6, using: &random) / Double(k)
                let count = Int(share * Double(length))
                guard stream.count + count <= length else { break }
                stream += repeatElement(address, count: count)
                frequency[address] = count
            }
            while stream.count < length {
                let noise = IPAddress(ipv4: 0xC613_0000 + UInt32.random(in: 0..<50_000, using: &random))
                stream.append(noise)
                frequency[noise, default: 0] += 1
            }
            stream.shuffle(using: &random)

            var entries = [TopEntry](repeating: .empty, count: k)
            let top = entries.withUnsafeMutableBufferPointer { buffer in
                for address in stream { SpaceSaving.add(address, to: buffer.baseAddress!, k: k) }
                return SpaceSaving.top(k, of: [buffer.baseAddress!], k: k)
            }
            #expect(entries.reduce(0) { $0 + Int($1.count) } == length)
            let counters = Dictionary(uniqueKeysWithValues: entries.map { ($0.address, Int($0.count)) })
            let certain = Dictionary(uniqueKeysWithValues: top.map { ($0.address, $0.halfOpen) })
            for (address, count) in frequency where count * k > length {
                let context: Comment = "\(address) seen \(count) of \(length) times, k = \(k)"
                let counter = counters[address] ?? 0
                #expect(counter >= count && counter <= count + length / k, context)
                let reported = certain[address] ?? 0
                #expect(reported <= count && reported >= count - length / k && reported > 0, context)
            }
            for (address, reported) in certain {
                #expect(reported <= frequency[address, default: 0], "\(address) reported \(reported)")
            }
            #expect(top.map(\.halfOpen) == top.map(\.halfOpen).sorted(by: >))
        }
    }

    /// Counts go back down as attempts close; a counter at zero is free for a newcomer, and only
    /// counts of two or more certain attempts are reported.
    @Test
    func spaceSavingTakesBackClosedAttempts() {
        let a = v4(198, 18, 0, 1), b = v4(198, 18, 0, 2), c = v4(198, 18, 0, 3), d = v4(198, 18, 0, 4)
        var entries = [TopEntry](repeating: .empty, count: 2)
        entries.withUnsafeMutableBufferPointer { buffer in
            let sketch = buffer.baseAddress!
            func add(_ address: IPAddress, times: Int) {
                for _ in 0..<times { SpaceSaving.add(address, to: sketch, k: 2) }
            }
            add(a, times: 5)
            add(b, times: 2)
            SpaceSaving.remove(a, from: sketch, k: 2)
            SpaceSaving.remove(a, from: sketch, k: 2)
            SpaceSaving.remove(c, from: sketch, k: 2)
            #expect(
                SpaceSaving.top(5, of: [sketch], k: 2) == [
                    SourceCount(address: a, halfOpen: 3), SourceCount(address: b, halfOpen: 2),
                ]
            )
            SpaceSaving.remove(b, from: sketch, k: 2)
            #expect(SpaceSaving.top(5, of: [sketch], k: 2) == [SourceCount(address: a, halfOpen: 3)])
            SpaceSaving.remove(b, from: sketch, k: 2)
            add(c, times: 2)
            #expect(
                SpaceSaving.top(5, of: [sketch], k: 2) == [
                    SourceCount(address: a, halfOpen: 3), SourceCount(address: c, halfOpen: 2),
                ]
            )
            // d takes over c's counter: what it inherits is not certain, its own three SYNs are.
            add(d, times: 1)
            #expect(SpaceSaving.top(5, of: [sketch], k: 2) == [SourceCount(address: a, halfOpen: 3)])
            add(d, times: 2)
            #expect(
                SpaceSaving.top(5, of: [sketch], k: 2) == [
                    SourceCount(address: a, halfOpen: 3), SourceCount(address: d, halfOpen: 3),
                ]
            )
        }
    }

    /// The top sources of two epochs add up per address; equal counts list the lower address first.
    @Test
    func spaceSavingMergesEpochs() {
        let a = v4(198, 18, 0, 1), b = v4(198, 18, 0, 2), c = v4(198, 18, 0, 3)
        var first = [TopEntry](repeating: .empty, count: 4)
        var second = [TopEntry](repeating: .empty, count: 4)
        first.withUnsafeMutableBufferPointer { one in
            second.withUnsafeMutableBufferPointer { two in
                for (address, times) in [(a, 3), (b, 2), (c, 4)] {
                    for _ in 0..<times { SpaceSaving.add(address, to: one.baseAddress!, k: 4) }
                }
                for (address, times) in [(b, 5), (c, 1)] {
                    for _ in 0..<times { SpaceSaving.add(address, to: two.baseAddress!, k: 4) }
                }
                #expect(
                    SpaceSaving.top(2, of: [one.baseAddress!, two.baseAddress!], k: 4) == [
                        SourceCount(address: b, halfOpen: 7), SourceCount(address: c, halfOpen: 5),
                    ]
                )
                #expect(
                    SpaceSaving.top(3, of: [one.baseAddress!, two.baseAddress!], k: 4).last
                        == SourceCount(
                            address: a,
                            halfOpen: 3
                        )
                )
            }
        }
    }

    /// A 64-bit linear counter up to 200 items: the bits left clear must be what n uniform throws
    /// into 64 bins leave (mean m(1 − 1/m)ⁿ, within 3.5 standard deviations each time and on
    /// average), and the estimate must be the linear-counting one for those bits.
    @Test
    func linearCounterStaysWithinItsBounds() {
        var random = SeededRandom(seed: 0x1C)
        let m = 64.0
        for count in stride(from: 0, through: 200, by: 5) {
            let n = Double(count)
            let mean = m * pow(1 - 1 / m, n)
            let variance = m * (m - 1) * pow(1 - 2 / m, n) + mean - mean * mean
            let deviation = variance.squareRoot()
            let trials = 40
            var totalClear = 0.0
            for trial in 0..<trials {
                var word: UInt64 = 0
                for address in sources(count, trial: trial, random: &random) {
                    LinearCounter.add(hasher.hash(address), to: &word)
                }
                let clear = Double(64 - word.nonzeroBitCount)
                totalClear += clear
                #expect(abs(clear - mean) <= 3.5 * deviation + 0.5, "\(count) items left \(clear) bits clear")
                let expected = Int((m * log(m / max(1, clear))).rounded())
                #expect(LinearCounter.estimate(word) == expected)
            }
            let averageClear = totalClear / Double(trials)
            #expect(
                abs(averageClear - mean) <= 3.5 * deviation / Double(trials).squareRoot() + 0.1,
                "\(count) items left \(averageClear) bits clear on average, not \(mean)"
            )
        }
        #expect(LinearCounter.estimate(0) == 0)
        #expect(LinearCounter.estimate(0b1 | 0b10) == 2)
        #expect(LinearCounter.estimate(UInt64.max >> 32) == 44)
        #expect(LinearCounter.estimate(.max) == 266)
    }

    /// Near-exact while the word is sparse: 20 items, as many as a scan needs, within a few.
    @Test
    func linearCounterIsCloseForAFewDozen() {
        var random = SeededRandom(seed: 0x2C)
        var errors = 0
        for trial in 0..<200 {
            var word: UInt64 = 0
            for address in sources(20, trial: trial, random: &random) {
                LinearCounter.add(hasher.hash(address), to: &word)
            }
            errors += abs(LinearCounter.estimate(word) - 20)
            #expect(abs(LinearCounter.estimate(word) - 20) <= 8)
        }
        #expect(Double(errors) / 200 <= 2.5)
    }

    @Test(arguments: [2, 20, 50, 100])
    func linearCounterBitsNeededIsTheFewest(_ count: Int) {
        let bits = LinearCounter.bitsNeeded(for: count, of: 64)
        #expect(LinearCounter.estimate(bitsSet: bits, of: 64) >= count)
        #expect(LinearCounter.estimate(bitsSet: bits - 1, of: 64) < count)
    }
}

/// The completion-delay histogram behind the learnt grace.
@Suite("Delay histogram")
struct DelayHistogramTests {
    @Test("The median's bucket edge, nothing before enough handshakes, and a path that changed is learnt anew")
    func medianAndDecay() {
        let counts = UnsafeMutablePointer<UInt16>.allocate(capacity: DelayHistogram.storage)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: DelayHistogram.storage)
        for _ in 0..<(DelayHistogram.minimumSamples - 1) { DelayHistogram.add(40 * millisecond, to: counts) }
        #expect(DelayHistogram.upperBound(quantile: 0.5, of: counts) == nil)
        DelayHistogram.add(40 * millisecond, to: counts)
        // 40 ms lies in [32, 64) ms.
        #expect(DelayHistogram.upperBound(quantile: 0.5, of: counts) == 64 * millisecond)
        #expect(DelayHistogram.upperBound(quantile: 0.5, of: counts).map { $0 >= 40 * millisecond } == true)
        // Under 1 ms, and the longest bucket holds everything beyond.
        for _ in 0..<100 { DelayHistogram.add(200_000, to: counts) }
        #expect(DelayHistogram.upperBound(quantile: 0.5, of: counts) == millisecond)
        // A path that became slow: after a few thousand handshakes the old ones are forgotten.
        for _ in 0..<4_000 { DelayHistogram.add(300 * millisecond, to: counts) }
        #expect(DelayHistogram.upperBound(quantile: 0.5, of: counts) == 512 * millisecond)
        #expect(Int(counts[DelayHistogram.buckets]) < DelayHistogram.decayAt)
        var total = 0
        for index in 0..<DelayHistogram.buckets { total += Int(counts[index]) }
        #expect(total == Int(counts[DelayHistogram.buckets]), "the kept total is the buckets' sum")
    }
}

/// The range a flood's sampled sources were drawn from (`DetectorInputs.poolSize`).
@Suite("Pool size")
struct PoolSizeTests {
    /// 16 sources drawn from 198.19.0.0/16, maybe with a few clients of anywhere among them.
    func samples(seed: UInt64, strays: Int) -> [IPAddress] {
        var random = SeededRandom(seed: seed)
        let drawn = (0..<(16 - strays)).map { _ in IPAddress(ipv4: 0xC613_0000 | UInt32(random.next() & 0xFFFF)) }
        let clients = (0..<strays).map { _ in IPAddress(ipv4: UInt32(truncatingIfNeeded: random.next())) }
        return drawn + clients
    }

    /// Within a factor of two of 65,536 for 200 draws of each, with up to a quarter of strays. (A draw whose end
    /// sample lies 6 typical gaps from the rest is measured without it, and may read a little lower.)
    @Test(arguments: [0, 2, 4])
    func estimatesTheRange(strays: Int) throws {
        var estimates: [Double] = []
        for seed in 0..<200 {
            estimates.append(try #require(DetectorInputs.poolSize(of: samples(seed: UInt64(seed), strays: strays))))
        }
        #expect(estimates.allSatisfy { $0 > 0.45 * 65_536 && $0 < 131_072 }, "\(estimates.sorted())")
        let median = estimates.sorted()[100]
        #expect(median > 0.8 * 65_536 && median < 1.2 * 65_536, "\(median)")
    }

    /// A client just outside the pool, as a lab's clients next to its spoofed range are, is left out of its span.
    @Test
    func aClientNextToThePoolStretchesNothing() throws {
        var estimates: [Double] = []
        for seed in 0..<200 {
            var drawn = samples(seed: UInt64(seed), strays: 1).dropLast()
            drawn.append(v4(198, 18, 28, 135))
            estimates.append(try #require(DetectorInputs.poolSize(of: Array(drawn))))
        }
        #expect(estimates.sorted()[190] < 1.3 * 65_536, "\(estimates.sorted())")
    }

    /// A pool of three /16s far apart (say, the private ranges): about three times 65,536.
    @Test
    func addsTheRangesOfAPoolOfSeveralPrefixes() throws {
        let prefixes: [UInt32] = [0x0A00_0000, 0xAC10_0000, 0xC0A8_0000]
        var estimates: [Double] = []
        for seed in 0..<200 {
            var random = SeededRandom(seed: UInt64(seed))
            let drawn = (0..<16).map { index in
                IPAddress(ipv4: prefixes[index % 3] | UInt32(random.next() & 0xFFFF))
            }
            estimates.append(try #require(DetectorInputs.poolSize(of: drawn)))
        }
        let median = estimates.sorted()[100]
        #expect(median > 0.7 * 196_608 && median < 1.3 * 196_608, "\(median)")
        #expect(estimates.allSatisfy { $0 < 4 * 196_608 }, "\(estimates.sorted())")
    }

    @Test
    func scatteredSourcesAreNoPool() throws {
        var random = SeededRandom(seed: 3)
        let scattered = (0..<16).map { _ in IPAddress(ipv4: UInt32(truncatingIfNeeded: random.next())) }
        #expect(try #require(DetectorInputs.poolSize(of: scattered)) > 100_000_000)
        let v6 = (0..<16).map { _ in IPAddress(high: random.next(), low: random.next()) }
        #expect(DetectorInputs.poolSize(of: v6) == .infinity)
        #expect(DetectorInputs.poolSize(of: Array(scattered.prefix(7))) == nil)
    }
}

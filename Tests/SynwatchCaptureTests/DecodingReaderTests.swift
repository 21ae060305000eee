import SynwatchCapture
import SynwatchEngine
import SynwatchTrafficGen
import Testing

/// Decoding on other threads, as `synwatch analyze --threads N` does: the engine must end in the same state, with
/// the same events, as when it decodes every frame itself.
@Suite struct DecodingReaderTests {
    /// What an engine ended with.
    struct Result: Equatable {
        var events: [Event]
        var statistics: EngineStatistics
        var framesRead: Int
    }

    /// Floods over a service's clients in three files read one after the other: a pcap and a pcapng, mapped and read
    /// as one sequence (a file that ends is closed while its last frames may still be decoding), then a pcap that
    /// libpcap reads, whose frames are valid only while it hands them over.
    static func captures(in directory: TemporaryDirectory) throws -> [(inputs: [CaptureInput], mapped: Bool)] {
        func part(_ index: Int64) -> Scenario {
            Scenario(seed: 91 + UInt64(index), duration: 6, startTime: 1_735_689_600 + 6 * index)
                .background(Background(rate: 300, clientCount: 600))
                .flood(Flood(.randomSource, rate: 1500, start: 2, duration: 3))
        }
        let first = directory.path("first.pcap")
        try part(0).write(to: first)
        let second = directory.path("second.pcapng")
        try part(1).write(to: second, format: .pcapng, precision: .nanoseconds)
        let third = directory.path("third.pcap")
        try part(2).write(to: third)
        return [([.file(first), .file(second)], true), ([.file(third)], false)]
    }

    static func analyse(_ sequences: [(inputs: [CaptureInput], mapped: Bool)], decoders: Int?) throws -> Result {
        let engine = try Engine()
        var events = [Event]()
        var framesRead = 0
        for (inputs, mapped) in sequences {
            let source = try CaptureFileSequence(inputs, allowsMapping: mapped)
            if let decoders {
                // Small batches: many turns, and batches that end part-way through a file.
                var reported = 0
                try DecodingReader(source, decoders: decoders, batchSize: 61).run(into: engine) { progress in
                    events += engine.takeEvents()
                    reported = progress.framesRead
                }
                #expect(reported == source.progress.framesRead)
            } else {
                try source.forEachFrame(engine.process)
            }
            framesRead += source.progress.framesRead
            events += engine.takeEvents()
        }
        engine.finish()
        return Result(events: events + engine.takeEvents(), statistics: engine.statistics, framesRead: framesRead)
    }

    @Test("Any number of decoding threads gives the engine's own events and counts", arguments: [1, 2, 3, 5])
    func sameAsDecodingInTheEngine(decoders: Int) throws {
        let directory = TemporaryDirectory()
        let sequences = try Self.captures(in: directory)
        let alone = try Self.analyse(sequences, decoders: nil)
        #expect(alone.events.contains { $0.type == .attackStart })
        #expect(try Self.analyse(sequences, decoders: decoders) == alone)
    }

    @Test("SYNs a decoder leaves unhashed, expecting them thinned out, change nothing when the engine keeps them")
    func unhashedSynsAreHashedByTheEngine() throws {
        let directory = TemporaryDirectory()
        let capture = directory.path("storm.pcap")
        let victim = try #require(IPAddress("198.18.0.10"))
        try Scenario(seed: 95, duration: 5)
            .background(Background(rate: 300, clientCount: 600))
            .flood(Flood(.randomSource, victim: Endpoint("198.18.0.10", 80), rate: 20_000, start: 1, duration: 3))
            .write(to: capture)
        let sequence = [(inputs: [CaptureInput.file(capture)], mapped: true)]
        let alone = try Self.analyse(sequence, decoders: nil)
        // The storm was thinned by client: decoders given the engine's list skip most of its SYNs.
        #expect(alone.statistics.thinnedOut > 0)
        #expect(try Self.analyse(sequence, decoders: 2) == alone)

        // A decoder whose list is wrong from the first frame: the service thinned before the engine thinned it,
        // and at another shift.
        let engine = try Engine()
        var decoder = engine.frameDecoder
        decoder.thinned = [SampledService(address: victim, port: 80, shift: 3)]
        let frames = UnsafeMutablePointer<DecodedFrame>.allocate(capacity: 500)
        defer { frames.deallocate() }
        var events = [Event]()
        let reader = try CaptureFileReader(.file(capture))
        var filled = 0
        while let count = try reader.readFrames(
            upTo: 500,
            { frame in
                frames[filled] = decoder.decode(frame)
                filled += 1
            }
        ) {
            engine.process(decoded: frames, count: count)
            filled = 0
            events += engine.takeEvents()
        }
        engine.finish()
        #expect(events + engine.takeEvents() == alone.events)
        #expect(engine.statistics == alone.statistics)
    }
}

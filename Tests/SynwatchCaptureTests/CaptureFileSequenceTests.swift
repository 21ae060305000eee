import SynwatchCapture
import SynwatchEngine
import Testing

/// Several captures read in a row, as `synwatch analyze a.pcap b.pcapng c.pcap` does.
@Suite struct CaptureFileSequenceTests {
    @Test("Frames come in the order of the inputs, a batch never spans two, progress reaches the total")
    func readsInOrder() throws {
        var generator = SeededRandom(seed: 41)
        var first = ClassicFixture()
        first.records = randomRecords(count: 123, maximumSize: 100, using: &generator)
        let second = PcapngFixture(
            nanosecond: true,
            linkType: 276,
            packets: PcapngTests.randomPackets(count: 57, seed: 3, nanosecond: true)
        )
        var third = ClassicFixture(bigEndian: true, nanosecond: true, linkTypeField: 101)
        third.records = randomRecords(count: 80, maximumSize: 100, using: &generator)
        let directory = TemporaryDirectory()
        let paths = [
            directory.write("1.pcap", first.bytes), directory.write("2.pcapng", second.bytes),
            directory.write("3.pcap", third.bytes),
        ]
        let total = first.bytes.count + second.bytes.count + third.bytes.count

        let sequence = try CaptureFileSequence(paths.map(CaptureInput.file))
        #expect(
            sequence.progress
                == CaptureProgress(
                    inputIndex: 0,
                    inputCount: 3,
                    framesRead: 0,
                    bytesConsumed: 0,
                    totalBytes: total
                )
        )
        var frames = [ReadFrame]()
        var batches = [(input: CaptureInput, method: CaptureFileReader.Method, frames: [ReadFrame])]()
        var lastProgress = sequence.progress
        while true {
            var batch = [ReadFrame]()
            guard try sequence.readFrames(upTo: 50, { batch.append(ReadFrame($0)) }) != nil else { break }
            let reader = try #require(sequence.currentReader)
            batches.append((reader.input, reader.method, batch))
            frames += batch
            let progress = sequence.progress
            #expect(progress.framesRead == frames.count)
            #expect(progress.bytesConsumed! >= lastProgress.bytesConsumed!)
            lastProgress = progress
        }
        let expected =
            first.expectedFrames(.ethernet) + second.expectedFrames(.linuxCooked2)
            + third.expectedFrames(.raw)
        #expect(frames == expected)
        #expect(batches.map(\.frames.count) == [50, 50, 23, 50, 7, 50, 30])
        #expect(batches.map(\.input) == [0, 0, 0, 1, 1, 2, 2].map { CaptureInput.file(paths[$0]) })
        #expect(batches.map(\.method) == [.mapped, .mapped, .mapped, .mappedPcapng, .mappedPcapng, .mapped, .mapped])
        #expect(
            sequence.progress
                == CaptureProgress(
                    inputIndex: 2,
                    inputCount: 3,
                    framesRead: 260,
                    bytesConsumed: total,
                    totalBytes: total
                )
        )
        #expect(sequence.progress.fraction == 1)
        #expect(try sequence.readFrames(upTo: 50) { _ in } == nil)
    }

    @Test("A missing file anywhere in the list fails before anything is read")
    func missingFileFailsFirst() throws {
        let directory = TemporaryDirectory()
        let present = directory.write("present.pcap", ClassicFixture().bytes)
        let absent = "\(directory.path)/absent.pcap"
        let error = #expect(throws: CaptureError.self) {
            try CaptureFileSequence([.file(present), .file(absent)])
        }
        #expect(error?.reason == .fileNotFound)
        #expect(error?.input == .file(absent))
    }

    @Test("An error in the second file names it and counts that file's frames")
    func errorNamesTheFile() throws {
        var generator = SeededRandom(seed: 42)
        var fixture = ClassicFixture()
        fixture.records = randomRecords(count: 10, maximumSize: 50, using: &generator)
        let directory = TemporaryDirectory()
        let good = directory.write("good.pcap", fixture.bytes)
        let cut = directory.write("cut.pcap", fixture.bytes.dropLast())
        let sequence = try CaptureFileSequence([.file(good), .file(cut)])
        var count = 0
        let error = #expect(throws: CaptureError.self) { try sequence.forEachFrame { _ in count += 1 } }
        #expect(error?.input == .file(cut))
        #expect(error?.reason == .truncated(framesRead: 9))
        #expect(count == 19)
    }
}

@preconcurrency import Glibc
import SynwatchCapture
import SynwatchEngine
import Testing

/// `-` reads standard input through libpcap; these tests put a pipe or a file on descriptor 0 for a moment.
@Suite(.serialized) struct StandardInputTests {
    /// Runs `body` with `descriptor` as standard input (taking it over), then puts the original back.
    func withStandardInput<Result>(_ descriptor: Int32, _ body: () throws -> Result) throws -> Result {
        let saved = dup(STDIN_FILENO)
        try #require(saved >= 0)
        dup2(descriptor, STDIN_FILENO)
        close(descriptor)
        defer {
            dup2(saved, STDIN_FILENO)
            close(saved)
            clearerr(stdin)
        }
        return try body()
    }

    @Test("A pipe: pcap and pcapng, size unknown")
    func pipe() throws {
        var generator = SeededRandom(seed: 31)
        var classic = ClassicFixture(bigEndian: true, nanosecond: true)
        classic.records = randomRecords(count: 100, maximumSize: 200, using: &generator)
        let pcapng = PcapngFixture(packets: PcapngTests.randomPackets(count: 30, seed: 2, nanosecond: false))
        let cases: [([UInt8], [ReadFrame])] = [
            (classic.bytes, classic.expectedFrames(.ethernet)), (pcapng.bytes, pcapng.expectedFrames(.ethernet)),
        ]
        for (bytes, expected) in cases {
            #expect(bytes.count < 60_000, "must fit the pipe's buffer: the test writes it all before reading")
            var ends: [Int32] = [0, 0]
            try #require(Glibc.pipe(&ends) == 0)
            let written = bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
            close(ends[1])
            #expect(written == bytes.count)
            let (outcome, totalBytes, bytesConsumed) = try withStandardInput(ends[0]) {
                let reader = try CaptureFileReader(CaptureInput(argument: "-"))
                var frames = [ReadFrame]()
                try reader.forEachFrame { frames.append(ReadFrame($0)) }
                return (ReadOutcome(method: reader.method, frames: frames), reader.totalBytes, reader.bytesConsumed)
            }
            #expect(outcome.method == .libpcap)
            #expect(outcome.frames == expected)
            #expect(totalBytes == nil && bytesConsumed == nil)
        }
    }

    @Test("A redirected file: read through libpcap, size known")
    func redirectedFile() throws {
        var generator = SeededRandom(seed: 32)
        var fixture = ClassicFixture()
        fixture.records = randomRecords(count: 2000, maximumSize: 300, using: &generator)
        let directory = TemporaryDirectory()
        let bytes = fixture.bytes
        let path = directory.write("stdin.pcap", bytes)
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        let (outcome, totalBytes, bytesConsumed) = try withStandardInput(descriptor) {
            let reader = try CaptureFileReader(.standardInput)
            var frames = [ReadFrame]()
            try reader.forEachFrame { frames.append(ReadFrame($0)) }
            return (ReadOutcome(method: reader.method, frames: frames), reader.totalBytes, reader.bytesConsumed)
        }
        #expect(outcome.method == .libpcap)
        #expect(outcome.frames == fixture.expectedFrames(.ethernet))
        #expect(totalBytes == bytes.count && bytesConsumed == bytes.count)
    }

    @Test("Text on standard input is not a capture file")
    func textOnStandardInput() throws {
        var ends: [Int32] = [0, 0]
        try #require(Glibc.pipe(&ends) == 0)
        _ = "hello\n".withCString { write(ends[1], $0, 6) }
        close(ends[1])
        let error = try withStandardInput(ends[0]) {
            #expect(throws: CaptureError.self) { try CaptureFileReader(.standardInput) }
        }
        #expect(error?.reason == .notACaptureFile)
        #expect(
            error?.description == "standard input: not a pcap or pcapng capture file "
                + "(pcap_fopen_offline_with_tstamp_precision: unknown file format)"
        )
    }
}

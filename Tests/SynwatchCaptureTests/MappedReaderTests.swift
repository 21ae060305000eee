import SynwatchCapture
import SynwatchEngine
import Testing

/// The memory-mapped reader against libpcap (`pcap_next_ex`) and against the fixtures' own model.
@Suite struct MappedReaderTests {
    /// File `LINKTYPE_` values the engine decodes, and the link type libpcap reports for each.
    static let linkTypes: [(file: UInt32, linkType: LinkType)] = [
        (0, .bsdLoopback), (1, .ethernet), (101, .raw), (108, .openBSDLoopback), (113, .linuxCooked),
        (228, .ipv4), (229, .ipv6), (276, .linuxCooked2), (239, .nflog), (9, .ppp),
    ]

    @Test("Hand-written files in both byte orders, µs and ns, random sizes and snap lengths", arguments: 0..<40)
    func handWrittenFilesMatchLibpcap(seed: UInt64) throws {
        var generator = SeededRandom(seed: seed)
        let (fileValue, linkType) = Self.linkTypes[Int(seed) % Self.linkTypes.count]
        var fixture = ClassicFixture()
        fixture.bigEndian = seed % 2 == 1
        fixture.nanosecond = seed % 4 >= 2
        // Snap lengths that cut some records, and 0 or oversized ones that libpcap replaces by its maximum.
        fixture.snapLength = [0, 64, 200, 1514, 65_535, 262_144, 1 << 30][Int(seed / 4) % 7]
        fixture.linkTypeField = fileValue | (seed % 5 == 0 ? 0x0400_0000 : 0)  // sometimes FCS bits
        fixture.records = randomRecords(
            count: .random(in: 0...200, using: &generator),
            maximumSize: 1600,
            using: &generator
        )
        let directory = TemporaryDirectory()
        let path = directory.write("fixture.pcap", fixture.bytes)

        let mapped = try readAll(.file(path))
        let libpcap = try readAll(.file(path), allowsMapping: false)
        // libpcap rewrites CAN pseudo-headers in byte-swapped Linux cooked files, so those stay with libpcap.
        let swappedCooked = fixture.bigEndian && (fileValue == 113 || fileValue == 276)
        #expect(mapped.method == (swappedCooked ? .libpcap : .mapped))
        #expect(libpcap.method == .libpcap)
        #expect(mapped.error == nil && libpcap.error == nil)
        #expect(libpcap.frames == fixture.expectedFrames(linkType))
        #expect(mapped.frames == libpcap.frames)
    }

    /// NFLOG is at an even index above, so always little-endian there; libpcap rewrites swapped TLV headers.
    @Test("A byte-swapped NFLOG file stays with libpcap")
    func swappedNFLOGStaysWithLibpcap() throws {
        var generator = SeededRandom(seed: 11)
        let fixture = ClassicFixture(
            bigEndian: true,
            linkTypeField: 239,
            records: randomRecords(count: 5, maximumSize: 100, using: &generator)
        )
        let directory = TemporaryDirectory()
        let path = directory.write("nflog.pcap", fixture.bytes)
        let outcome = try readAll(.file(path))
        #expect(outcome.method == .libpcap)
        #expect(outcome.frames.count == 5)
        #expect(outcome.frames.allSatisfy { $0.linkType == .nflog })
    }

    @Test("Files written by pcap_dump, µs and ns", arguments: [false, true])
    func pcapDumpFilesMatchLibpcap(nanosecond: Bool) throws {
        var generator = SeededRandom(seed: nanosecond ? 7 : 8)
        let records = randomRecords(count: 500, maximumSize: 9000, using: &generator)
        let directory = TemporaryDirectory()
        let path = directory.path("dump.pcap")
        writeWithPcapDump(path, dataLinkType: 1, snapLength: 262_144, nanosecond: nanosecond, records: records)

        let mapped = try readAll(.file(path))
        let libpcap = try readAll(.file(path), allowsMapping: false)
        #expect(mapped.method == .mapped)
        #expect(libpcap.frames.count == 500)
        #expect(mapped.frames == libpcap.frames)
        #expect(libpcap.frames == ClassicFixture(nanosecond: nanosecond, records: records).expectedFrames(.ethernet))
    }

    @Test("Raw IP written as DLT_RAW 12 is stored as LINKTYPE_RAW 101 and read back as .raw by both readers")
    func rawIPIsRenumbered() throws {
        var generator = SeededRandom(seed: 3)
        let records = randomRecords(count: 20, maximumSize: 100, using: &generator)
        let directory = TemporaryDirectory()
        let path = directory.path("raw.pcap")
        writeWithPcapDump(path, dataLinkType: 12, snapLength: 65_535, nanosecond: false, records: records)
        #expect(directory.read(path)[20] == 101)

        let mapped = try readAll(.file(path))
        let libpcap = try readAll(.file(path), allowsMapping: false)
        #expect(mapped.method == .mapped)
        #expect(mapped.frames.allSatisfy { $0.linkType == .raw })
        #expect(mapped.frames == libpcap.frames)
    }

    @Test("Records at libpcap's maximum length, and longer than the snap length but not the maximum")
    func largestRecords() throws {
        var generator = SeededRandom(seed: 11)
        var fixture = ClassicFixture(snapLength: 1000)
        fixture.records = randomRecords(count: 3, maximumSize: 10, using: &generator)
        fixture.records[1].data = (0..<262_144).map { UInt8(truncatingIfNeeded: $0) }
        let directory = TemporaryDirectory()
        let path = directory.write("large.pcap", fixture.bytes)

        let mapped = try readAll(.file(path))
        let libpcap = try readAll(.file(path), allowsMapping: false)
        #expect(mapped.method == .mapped)
        #expect(mapped.frames[1].bytes.count == 1000)
        #expect(mapped.frames == libpcap.frames)
        #expect(mapped.frames == fixture.expectedFrames(.ethernet))
    }

    @Test("A file cut at every byte of its last records: truncated after the complete ones, never a crash")
    func truncatedAtEveryByte() throws {
        var generator = SeededRandom(seed: 5)
        var fixture = ClassicFixture(bigEndian: false)
        fixture.records = randomRecords(count: 6, maximumSize: 40, using: &generator)
        let whole = fixture.bytes
        var boundaries = [24]
        for record in fixture.records { boundaries.append(boundaries.last! + 16 + record.data.count) }
        let directory = TemporaryDirectory()
        let path = directory.path("cut.pcap")
        for length in boundaries[3]...whole.count {
            _ = directory.write("cut.pcap", Array(whole[..<length]))
            let complete = boundaries.lastIndex { $0 <= length }!
            let mapped = try readAll(.file(path))
            let libpcap = try readAll(.file(path), allowsMapping: false)
            #expect(mapped.method == .mapped)
            #expect(mapped.frames == libpcap.frames)
            #expect(mapped.frames.count == complete)
            if boundaries.contains(length) {
                #expect(mapped.error == nil && libpcap.error == nil)
            } else {
                #expect(mapped.error?.reason == .truncated(framesRead: complete))
                #expect(libpcap.error?.reason == .truncated(framesRead: complete))
                #expect(mapped.error?.description.contains("cut.pcap: truncated after \(complete) frames") == true)
            }
        }
    }

    @Test("A captured length above libpcap's maximum is a read error after the good frames, in both readers")
    func impossibleCapturedLength() throws {
        var generator = SeededRandom(seed: 9)
        var fixture = ClassicFixture(bigEndian: true)
        fixture.records = randomRecords(count: 4, maximumSize: 60, using: &generator)
        var bytes = fixture.bytes
        let third = 24 + 16 * 2 + fixture.records[0].data.count + fixture.records[1].data.count
        bytes.replaceSubrange((third + 8)..<(third + 12), with: [0x00, 0x04, 0x00, 0x01])  // 262145, big-endian
        let directory = TemporaryDirectory()
        let path = directory.write("bogus.pcap", bytes)

        let mapped = try readAll(.file(path))
        let libpcap = try readAll(.file(path), allowsMapping: false)
        #expect(mapped.method == .mapped)
        #expect(mapped.frames == libpcap.frames)
        #expect(mapped.error?.reason == .readFailed(framesRead: 2))
        #expect(libpcap.error?.reason == .readFailed(framesRead: 2))
        #expect(libpcap.error?.call == "pcap_next_ex")
        #expect(libpcap.error?.message.contains("invalid packet capture length 262145") == true)
    }

    @Test("After an error or the end, further reads repeat the outcome")
    func outcomeIsSticky() throws {
        var fixture = ClassicFixture()
        fixture.records = [FixtureRecord(seconds: 1, fraction: 2, data: [1, 2, 3], wireLength: 3)]
        let directory = TemporaryDirectory()
        let complete = directory.write("one.pcap", fixture.bytes)
        let cut = directory.write("cut.pcap", fixture.bytes.dropLast())
        for allowsMapping in [true, false] {
            let reader = try CaptureFileReader(.file(complete), allowsMapping: allowsMapping)
            #expect(try reader.readFrames(upTo: 10) { _ in } == 1)
            #expect(try reader.readFrames(upTo: 10) { _ in } == nil)
            #expect(try reader.readFrames(upTo: 10) { _ in } == nil)
            #expect(reader.framesRead == 1)

            let truncated = try CaptureFileReader(.file(cut), allowsMapping: allowsMapping)
            for _ in 0..<2 {
                #expect(throws: CaptureError.self) { _ = try truncated.readFrames(upTo: 10) { _ in } }
            }
        }
    }

    @Test("Old versions and modified formats go to libpcap, pcapng to its own mapped reader")
    func otherFormatsFallBackToLibpcap() throws {
        var generator = SeededRandom(seed: 21)
        var old = ClassicFixture(versionMinor: 3)
        old.records = randomRecords(count: 10, maximumSize: 60, using: &generator)
        var kuznetzov = old.bytes
        kuznetzov.replaceSubrange(0..<4, with: [0x34, 0xCD, 0xB2, 0xA1])
        let directory = TemporaryDirectory()
        let versionPath = directory.write("v23.pcap", old.bytes)
        let modifiedPath = directory.write("kuznetzov.pcap", kuznetzov)
        let pcapng = PcapngFixture(packets: [.init(timestamp: 1, data: [1], wireLength: 1)])
        let pcapngPath = directory.write("file.pcapng", pcapng.bytes)

        let version = try readAll(.file(versionPath))
        #expect(version.method == .libpcap)
        #expect(version.frames == old.expectedFrames(.ethernet))
        #expect(try CaptureFileReader(.file(modifiedPath)).method == .libpcap)
        #expect(try CaptureFileReader(.file(pcapngPath)).method == .mappedPcapng)
    }

    @Test("Progress: bytes consumed grow to the file size, in both readers")
    func progressReachesFileSize() throws {
        var generator = SeededRandom(seed: 13)
        var fixture = ClassicFixture()
        fixture.records = randomRecords(count: 3000, maximumSize: 100, using: &generator)
        let directory = TemporaryDirectory()
        let bytes = fixture.bytes
        let path = directory.write("progress.pcap", bytes)
        for allowsMapping in [true, false] {
            let reader = try CaptureFileReader(.file(path), allowsMapping: allowsMapping)
            #expect(reader.totalBytes == bytes.count)
            var last = try #require(reader.bytesConsumed)
            #expect(last == 24)
            while try reader.readFrames(upTo: 100, { _ in }) != nil {
                let consumed = try #require(reader.bytesConsumed)
                #expect(consumed >= last && consumed <= bytes.count)
                last = consumed
            }
            #expect(reader.bytesConsumed == bytes.count)
            #expect(reader.framesRead == 3000)
        }
    }
}

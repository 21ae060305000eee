import SynwatchCapture
import SynwatchEngine
import Testing

/// pcapng read by the mapped reader and by libpcap, from hand-built blocks.
@Suite struct PcapngTests {
    static func randomPackets(count: Int, seed: UInt64, nanosecond: Bool) -> [PcapngFixture.Packet] {
        var generator = SeededRandom(seed: seed)
        let unitsPerSecond: UInt64 = nanosecond ? 1_000_000_000 : 1_000_000
        var timestamp = 1_700_000_000 * unitsPerSecond
        return (0..<count).map { _ in
            timestamp += .random(in: 0...unitsPerSecond, using: &generator)
            let size = Int.random(in: 0...1500, using: &generator)
            return PcapngFixture.Packet(
                timestamp: timestamp,
                data: (0..<size).map { _ in .random(in: 0...255, using: &generator) },
                wireLength: UInt32(size) + .random(in: 0...100, using: &generator)
            )
        }
    }

    @Test(
        "Both byte orders, µs and ns resolution, several link types",
        arguments: [false, true],
        [(UInt16(1), LinkType.ethernet), (101, .raw), (113, .linuxCooked), (276, .linuxCooked2)]
    )
    func readsPcapng(bigEndian: Bool, linkType: (file: UInt16, type: LinkType)) throws {
        for nanosecond in [false, true] {
            let fixture = PcapngFixture(
                bigEndian: bigEndian,
                nanosecond: nanosecond,
                linkType: linkType.file,
                packets: Self.randomPackets(count: 150, seed: UInt64(linkType.file), nanosecond: nanosecond)
            )
            let directory = TemporaryDirectory()
            let path = directory.write("fixture.pcapng", fixture.bytes)
            let outcome = try readAll(.file(path))
            let libpcap = try readAll(.file(path), allowsMapping: false)
            #expect(outcome.method == .mappedPcapng)
            #expect(libpcap.method == .libpcap)
            #expect(outcome.error == nil && libpcap.error == nil)
            #expect(outcome.frames == fixture.expectedFrames(linkType.type))
            #expect(libpcap.frames == outcome.frames)
        }
    }

    @Test("A pcapng file cut inside a block is truncated after the complete packets")
    func truncatedPcapng() throws {
        let fixture = PcapngFixture(packets: Self.randomPackets(count: 5, seed: 1, nanosecond: false))
        let bytes = fixture.bytes
        let directory = TemporaryDirectory()
        let path = directory.write("cut.pcapng", Array(bytes.dropLast(10)))
        for (allowsMapping, call) in [(true, "mapped read"), (false, "pcap_next_ex")] {
            let outcome = try readAll(.file(path), allowsMapping: allowsMapping)
            #expect(outcome.frames == Array(fixture.expectedFrames(.ethernet).prefix(4)))
            #expect(outcome.error?.reason == .truncated(framesRead: 4))
            #expect(outcome.error?.call == call)
        }
    }

    @Test("A pcapng interface of a link type the engine does not decode")
    func unsupportedLinkType() throws {
        let directory = TemporaryDirectory()
        let packets = Self.randomPackets(count: 2, seed: 5, nanosecond: false)
        let path = directory.write("wifi.pcapng", PcapngFixture(linkType: 127, packets: packets).bytes)
        for allowsMapping in [true, false] {
            let error = #expect(throws: CaptureError.self) {
                try CaptureFileReader(.file(path), allowsMapping: allowsMapping)
            }
            #expect(error?.reason == .unsupportedLinkType(DataLinkType(rawValue: 127)))
            #expect(error?.description.contains("IEEE802_11_RADIO (127)") == true)
        }
    }
}

/// pcapng blocks written one by one, each section in its own byte order, for what `PcapngFixture` cannot say.
struct PcapngBuilder {
    var bytes = [UInt8]()
    private var bigEndian = false

    private mutating func put(_ value: some FixedWidthInteger, into block: inout [UInt8]) {
        withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { block += $0 }
    }

    mutating func block(_ type: UInt32, _ body: [UInt8]) {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        var block = [UInt8]()
        put(type, into: &block)
        put(UInt32(12 + padded.count), into: &block)
        block += padded
        put(UInt32(12 + padded.count), into: &block)
        bytes += block
    }

    /// A Section Header block: byte-order magic, version 1.0, unknown section length.
    mutating func section(bigEndian: Bool) {
        self.bigEndian = bigEndian
        var body = [UInt8]()
        put(UInt32(0x1A2B_3C4D), into: &body)
        put(UInt16(1), into: &body)
        put(UInt16(0), into: &body)
        body += [UInt8](repeating: 0xFF, count: 8)
        block(0x0A0D_0D0A, body)
    }

    /// An Interface Description block with an optional `if_tsresol` and `if_tsoffset`.
    mutating func interface(_ linkType: UInt16, snapLength: UInt32, resolution: UInt8? = nil, offset: Int64? = nil) {
        var body = [UInt8]()
        put(linkType, into: &body)
        put(UInt16(0), into: &body)
        put(snapLength, into: &body)
        if let resolution {
            put(UInt16(9), into: &body)
            put(UInt16(1), into: &body)
            body += [resolution, 0, 0, 0]
        }
        if let offset {
            put(UInt16(14), into: &body)
            put(UInt16(8), into: &body)
            put(offset, into: &body)
        }
        put(UInt32(0), into: &body)  // opt_endofopt
        block(1, body)
    }

    /// An Enhanced Packet block, or with `obsolete` the old Packet block with a 16-bit interface id and drops.
    mutating func packet(interface: UInt32, units: UInt64, data: [UInt8], wireLength: UInt32, obsolete: Bool = false) {
        var body = [UInt8]()
        if obsolete {
            put(UInt16(interface), into: &body)
            put(UInt16(0), into: &body)
        } else {
            put(interface, into: &body)
        }
        put(UInt32(units >> 32), into: &body)
        put(UInt32(truncatingIfNeeded: units), into: &body)
        put(UInt32(data.count), into: &body)
        put(wireLength, into: &body)
        block(obsolete ? 2 : 6, body + data)
    }

    /// A Simple Packet block: interface 0, the original length, data cut to the block.
    mutating func simplePacket(data: [UInt8], wireLength: UInt32) {
        var body = [UInt8]()
        put(wireLength, into: &body)
        block(3, body + data)
    }
}

/// The project's own pcapng reader where libpcap refuses: interfaces of different link types and snap lengths.
@Suite struct MixedInterfacePcapngTests {
    static func data(_ count: Int, _ first: UInt8) -> [UInt8] { (0..<count).map { first &+ UInt8($0) } }

    @Test("Each frame carries its interface's link type, snap length and time resolution, across sections")
    func mixedInterfaces() throws {
        var file = PcapngBuilder()
        file.section(bigEndian: false)
        file.interface(1, snapLength: 65_535)  // Ethernet, µs
        file.interface(113, snapLength: 8, resolution: 9)  // Linux cooked v1, ns, cuts frames to 8 bytes
        file.interface(127, snapLength: 0)  // radiotap: not decoded, its frames skipped
        file.block(0x0000_0BAD, [1, 2, 3, 4])  // a custom block, skipped
        file.packet(interface: 0, units: 1_700_000_000_123_456, data: Self.data(20, 0), wireLength: 60)
        file.packet(interface: 1, units: 1_700_000_001_000_000_007, data: Self.data(12, 50), wireLength: 12)
        file.packet(interface: 2, units: 5, data: Self.data(30, 0), wireLength: 30)
        file.packet(interface: 0, units: 1_700_000_002_000_001, data: Self.data(3, 9), wireLength: 3, obsolete: true)
        file.simplePacket(data: Self.data(7, 1), wireLength: 9)
        // A second section in the other byte order with its own interfaces: ids start again at 0.
        file.section(bigEndian: true)
        file.interface(239, snapLength: 262_144, resolution: 0x80 | 10, offset: 1_000)  // NFLOG, 1/1024 s
        file.interface(9, snapLength: 4, resolution: 3)  // PPP, ms
        file.packet(interface: 0, units: 1536, data: Self.data(16, 100), wireLength: 16)
        file.packet(interface: 1, units: 1_700_000_003_250, data: Self.data(6, 200), wireLength: 6)
        let directory = TemporaryDirectory()
        let path = directory.write("mixed.pcapng", file.bytes)

        let reader = try CaptureFileReader(.file(path))
        #expect(reader.method == .mappedPcapng)
        #expect(reader.linkType == .ethernet)
        var frames = [ReadFrame]()
        try reader.forEachFrame { frames.append(ReadFrame($0)) }
        #expect(
            frames == [
                ReadFrame(
                    nanoseconds: 1_700_000_000_123_456_000,
                    linkType: .ethernet,
                    bytes: Self.data(20, 0),
                    wireLength: 60
                ),
                ReadFrame(
                    nanoseconds: 1_700_000_001_000_000_007,
                    linkType: .linuxCooked,
                    bytes: Self.data(8, 50),
                    wireLength: 12
                ),
                ReadFrame(
                    nanoseconds: 1_700_000_002_000_001_000,
                    linkType: .ethernet,
                    bytes: Self.data(3, 9),
                    wireLength: 3
                ),
                // A simple packet's captured length is the block's: its padding counts while the original is longer.
                ReadFrame(nanoseconds: 0, linkType: .ethernet, bytes: Self.data(7, 1) + [0], wireLength: 9),
                ReadFrame(nanoseconds: 1_001_500_000_000, linkType: .nflog, bytes: Self.data(16, 100), wireLength: 16),
                ReadFrame(
                    nanoseconds: 1_700_000_003_250_000_000,
                    linkType: .ppp,
                    bytes: Self.data(4, 200),
                    wireLength: 6
                ),
            ]
        )
        #expect(reader.framesSkipped == 1)
        #expect(reader.bytesConsumed == file.bytes.count)

        // libpcap refuses the same file at its second interface.
        let libpcap = try readAll(.file(path), allowsMapping: false)
        #expect(libpcap.error?.reason == .readFailed(framesRead: 0))
    }

    @Test("A first interface the engine does not decode is no refusal when a later one is")
    func firstDecodableInterface() throws {
        var file = PcapngBuilder()
        file.section(bigEndian: true)
        file.interface(127, snapLength: 0)
        file.interface(276, snapLength: 0)
        file.packet(interface: 1, units: 1, data: Self.data(20, 0), wireLength: 20)
        let directory = TemporaryDirectory()
        let outcome = try readAll(.file(directory.write("later.pcapng", file.bytes)))
        #expect(outcome.method == .mappedPcapng)
        #expect(outcome.error == nil)
        #expect(outcome.frames.map(\.linkType) == [.linuxCooked2])
    }

    @Test("Damaged blocks are read errors after the frames before them")
    func damagedBlocks() throws {
        var start = PcapngBuilder()
        start.section(bigEndian: false)
        start.interface(1, snapLength: 0)
        start.packet(interface: 0, units: 1, data: Self.data(20, 0), wireLength: 20)
        var undescribed = start
        undescribed.packet(interface: 3, units: 2, data: Self.data(20, 0), wireLength: 20)
        var oversized = start
        oversized.packet(interface: 0, units: 2, data: Self.data(20, 0), wireLength: 20)
        // Each of these blocks is 52 bytes; the captured length, at byte 20, claims more than the block holds.
        oversized.bytes[oversized.bytes.count - 52 + 20] = 0xFF
        var trailer = start
        trailer.packet(interface: 0, units: 2, data: Self.data(20, 0), wireLength: 20)
        trailer.bytes[trailer.bytes.count - 4] = 48
        var badLength = start
        badLength.packet(interface: 0, units: 2, data: Self.data(20, 0), wireLength: 20)
        badLength.bytes[badLength.bytes.count - 52 + 4] = 50
        let directory = TemporaryDirectory()
        for (name, file) in [
            ("undescribed", undescribed), ("oversized", oversized), ("trailer", trailer),
            ("length", badLength),
        ] {
            let outcome = try readAll(.file(directory.write("\(name).pcapng", file.bytes)))
            #expect(outcome.method == .mappedPcapng, "\(name)")
            #expect(outcome.frames.count == 1, "\(name)")
            #expect(outcome.error?.reason == .readFailed(framesRead: 1), "\(name)")
            #expect(outcome.error?.call == "mapped read", "\(name)")
        }
    }

    @Test("A file cut at every byte: truncated or a read error after the complete frames, never a crash")
    func cutEverywhere() throws {
        var file = PcapngBuilder()
        file.section(bigEndian: false)
        file.interface(1, snapLength: 0, resolution: 9)
        for index in 0..<3 {
            file.packet(interface: 0, units: UInt64(index), data: Self.data(10 + index, 0), wireLength: 30)
        }
        let directory = TemporaryDirectory()
        // Each packet block is 44 bytes.
        let packetsStart = file.bytes.count - 3 * 44
        for length in 1..<file.bytes.count {
            let path = directory.write("cut-\(length).pcapng", Array(file.bytes.prefix(length)))
            // Cut inside the header blocks: libpcap refuses the file.
            guard let outcome = try? readAll(.file(path)) else {
                #expect(length < packetsStart, "\(length) bytes")
                continue
            }
            let complete = max(0, length - packetsStart) / 44
            #expect(outcome.frames.count == complete, "\(length) bytes")
            let atBoundary = length >= packetsStart && (length - packetsStart) % 44 == 0
            #expect((outcome.error == nil) == atBoundary, "\(length) bytes")
        }
    }
}

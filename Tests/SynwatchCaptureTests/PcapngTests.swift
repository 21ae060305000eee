import SynwatchCapture
import SynwatchEngine
import Testing

/// pcapng read through libpcap, from hand-built blocks.
@Suite struct PcapngTests {
    static func randomPackets(count: Int, seed: UInt64, nanosecond: Bool) -> [PcapngFixture.Packet] {
        var generator = SeededGenerator(seed: seed)
        let unitsPerSecond: UInt64 = nanosecond ? 1_000_000_000 : 1_000_000
        var timestamp = 1_700_000_000 * unitsPerSecond
        return (0..<count).map { _ in
            timestamp += .random(in: 0...unitsPerSecond, using: &generator)
            let size = Int.random(in: 0...1500, using: &generator)
            return PcapngFixture.Packet(
                timestamp: timestamp, data: (0..<size).map { _ in .random(in: 0...255, using: &generator) },
                wireLength: UInt32(size) + .random(in: 0...100, using: &generator))
        }
    }

    @Test(
        "Both byte orders, µs and ns resolution, several link types",
        arguments: [false, true],
        [(UInt16(1), LinkType.ethernet), (101, .raw), (113, .linuxCooked), (276, .linuxCooked2)])
    func readsPcapng(bigEndian: Bool, linkType: (file: UInt16, type: LinkType)) throws {
        for nanosecond in [false, true] {
            let fixture = PcapngFixture(
                bigEndian: bigEndian, nanosecond: nanosecond, linkType: linkType.file,
                packets: Self.randomPackets(count: 150, seed: UInt64(linkType.file), nanosecond: nanosecond))
            let directory = TemporaryDirectory()
            let path = directory.write("fixture.pcapng", fixture.bytes)
            let outcome = try readAll(.file(path))
            #expect(outcome.method == .libpcap)
            #expect(outcome.error == nil)
            #expect(outcome.frames == fixture.expectedFrames(linkType.type))
        }
    }

    @Test("A pcapng file cut inside a block is truncated after the complete packets")
    func truncatedPcapng() throws {
        let fixture = PcapngFixture(packets: Self.randomPackets(count: 5, seed: 1, nanosecond: false))
        let bytes = fixture.bytes
        let directory = TemporaryDirectory()
        let path = directory.write("cut.pcapng", Array(bytes.dropLast(10)))
        let outcome = try readAll(.file(path))
        #expect(outcome.frames == Array(fixture.expectedFrames(.ethernet).prefix(4)))
        #expect(outcome.error?.reason == .truncated(framesRead: 4))
        #expect(outcome.error?.call == "pcap_next_ex")
    }

    @Test("A pcapng interface of a link type the engine does not decode")
    func unsupportedLinkType() throws {
        let directory = TemporaryDirectory()
        let path = directory.write("wifi.pcapng", PcapngFixture(linkType: 127).bytes)
        let error = #expect(throws: CaptureError.self) { try CaptureFileReader(.file(path)) }
        #expect(error?.reason == .unsupportedLinkType(DataLinkType(rawValue: 127)))
        #expect(error?.description.contains("IEEE802_11_RADIO (127)") == true)
    }
}

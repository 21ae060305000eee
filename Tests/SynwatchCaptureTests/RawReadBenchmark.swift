@preconcurrency import Glibc
import CPcap
import SynwatchCapture
import Testing

#if DEBUG
private let isReleaseBuild = false
#else
private let isReleaseBuild = true
#endif

/// Raw read speed on 4 million 74-byte Ethernet/IPv4/TCP SYN frames: libpcap against the mapped reader.
///
/// The file is written, then evicted from the page cache and read once before measuring, as a capture on disk
/// would be: pages fresh from `write` sit in small folios that cost the mapped reader about a third of its speed.
/// Off by default (it writes 296 MB to /tmp and takes a few seconds); run it in a release build:
///
///     SYNWATCH_CAPTURE_BENCHMARK=1 swift test -c release --scratch-path .build-capture --filter RawReadBenchmark
@Suite struct RawReadBenchmark {
    static let frameCount = 4_000_000

    @Test(
        "Mapped reader at least 4 times as fast as pcap_next_ex",
        .enabled(if: getenv("SYNWATCH_CAPTURE_BENCHMARK") != nil, "set SYNWATCH_CAPTURE_BENCHMARK=1 to run"),
        .enabled(if: isReleaseBuild, "benchmark release builds only"))
    func mappedReaderOutrunsLibpcap() throws {
        var template = Array("/tmp/synwatch-syn-4m-XXXXXX.pcap".utf8CString)
        let descriptor = mkstemps(&template, 5)
        try #require(descriptor >= 0)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        Self.writeSynCapture(path)
        fsync(descriptor)
        posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
        close(descriptor)

        var best = [RawReadMeasurement.Method: RawReadMeasurement]()
        for round in 0..<4 {
            for method in RawReadMeasurement.Method.allCases {
                let measurement = try RawReadMeasurement.measure(path, method: method)
                #expect(measurement.frames == Self.frameCount && measurement.bytes == Self.frameCount * 74)
                // Round 0 brings the file back from disk.
                if round > 0 && measurement.framesPerSecond > best[method]?.framesPerSecond ?? 0 {
                    best[method] = measurement
                }
            }
        }
        let reference = try #require(best[.pcapNextEx])
        let mapped = try #require(best[.captureFileReader])
        for method in RawReadMeasurement.Method.allCases { print(best[method]!) }
        let ratio = mapped.framesPerSecond / reference.framesPerSecond
        print("mapped / pcap_next_ex: \((ratio * 10).rounded() / 10)x")
        #expect(mapped.readerMethod == .mapped)
        #expect(ratio >= 4)
    }

    /// Writes `frameCount` SYNs to 198.19.0.1:80 from sources across 198.18.0.0/15, 1 µs apart, with `pcap_dump`.
    static func writeSynCapture(_ path: String) {
        var frame: [UInt8] = [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,  // Ethernet
            0x45, 0x00, 0x00, 0x3C, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,  // IPv4, checksum at 24
            198, 18, 0, 0, 198, 19, 0, 1,  // source (varies), destination
            0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ports, sequence, ack
            0xA0, 0x02, 0xFA, 0xF0, 0x00, 0x00, 0x00, 0x00,  // header length 40, SYN, window, checksum
            0x02, 0x04, 0x05, 0xB4, 0x04, 0x02, 0x08, 0x0A, 0x00, 0x00, 0x00, 0x00,  // MSS, SACK, timestamps
            0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,  // window scale
        ]
        precondition(frame.count == 74)
        let dead = pcap_open_dead(DLT_EN10MB, 262_144)!
        defer { pcap_close(dead) }
        let dumper = pcap_dump_open(dead, path)!
        defer { pcap_dump_close(dumper) }
        let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
        var generator = SeededGenerator(seed: 74)
        var header = pcap_pkthdr()
        header.caplen = 74
        header.len = 74
        for index in 0..<frameCount {
            let source = 0xC612_0000 | UInt32(truncatingIfNeeded: generator.next() & 0x1_FFFF)  // 198.18.0.0/15
            withUnsafeBytes(of: source.bigEndian) { frame.replaceSubrange(26..<30, with: $0) }
            withUnsafeBytes(of: UInt16.random(in: 1024...65535, using: &generator).bigEndian) {
                frame.replaceSubrange(34..<36, with: $0)
            }
            withUnsafeBytes(of: UInt32.random(in: 0...UInt32.max, using: &generator).bigEndian) {
                frame.replaceSubrange(38..<42, with: $0)
            }
            frame[24] = 0
            frame[25] = 0
            var sum: UInt32 = 0
            for offset in stride(from: 14, to: 34, by: 2) {
                sum += UInt32(frame[offset]) << 8 | UInt32(frame[offset + 1])
            }
            sum = (sum & 0xFFFF) + (sum >> 16)
            sum = (sum & 0xFFFF) + (sum >> 16)
            frame[24] = UInt8(~sum >> 8 & 0xFF)
            frame[25] = UInt8(~sum & 0xFF)
            header.ts.tv_sec = 1_700_000_000 + index / 1_000_000
            header.ts.tv_usec = index % 1_000_000
            frame.withUnsafeBufferPointer { pcap_dump(user, &header, $0.baseAddress!) }
        }
    }
}

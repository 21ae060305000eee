import CPcap
@preconcurrency import Glibc
import SynwatchCapture
import SynwatchEngine
import SynwatchTrafficGen

/// A frame as read back, copied out of the reader's buffer so sequences can be compared.
struct ReadFrame: Equatable, CustomStringConvertible {
    var nanoseconds: Int64
    var linkType: LinkType
    var bytes: [UInt8]
    var wireLength: Int

    init(_ frame: Frame) {
        nanoseconds = frame.time.nanoseconds
        linkType = frame.linkType
        bytes = Array(frame.bytes)
        wireLength = frame.wireLength
    }

    init(nanoseconds: Int64, linkType: LinkType, bytes: [UInt8], wireLength: Int) {
        self.nanoseconds = nanoseconds
        self.linkType = linkType
        self.bytes = bytes
        self.wireLength = wireLength
    }

    var description: String { "\(nanoseconds) \(linkType) \(bytes.count)/\(wireLength) bytes" }
}

/// Everything one reader delivered: its method, its frames, and the error that stopped it early, if any.
struct ReadOutcome {
    var method: CaptureFileReader.Method
    var frames: [ReadFrame]
    var error: CaptureError?
}

/// Opens `input` and reads it to the end in batches of `batch` (odd, to cross record boundaries unevenly).
func readAll(_ input: CaptureInput, allowsMapping: Bool = true, batch: Int = 7) throws(CaptureError) -> ReadOutcome {
    let reader = try CaptureFileReader(input, allowsMapping: allowsMapping)
    var frames = [ReadFrame]()
    do {
        while try reader.readFrames(upTo: batch, { frames.append(ReadFrame($0)) }) != nil {}
        return ReadOutcome(method: reader.method, frames: frames, error: nil)
    } catch {
        return ReadOutcome(method: reader.method, frames: frames, error: error)
    }
}

/// The traffic generator's seeded random, so every fixture is the same on every run; named here alone, as the
/// traffic generator's other types would meet the capture module's in the files that do not import it.
typealias SeededRandom = SynwatchTrafficGen.SeededRandom

/// One record of a classic pcap fixture, with its header fields as stored in the file.
struct FixtureRecord {
    var seconds: UInt32
    /// Microseconds or nanoseconds, as the file's magic says.
    var fraction: UInt32
    var data: [UInt8]
    var wireLength: UInt32
}

/// A classic pcap file described field by field, written by hand in either byte order.
struct ClassicFixture {
    var bigEndian = false
    var nanosecond = false
    var versionMinor: UInt16 = 4
    var snapLength: UInt32 = 262_144
    /// The header's link-type field: a `LINKTYPE_` value, possibly with FCS bits above it.
    var linkTypeField: UInt32 = 1
    var records: [FixtureRecord] = []

    var bytes: [UInt8] {
        var out = [UInt8]()
        func put32(_ value: UInt32) {
            withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { out += $0 }
        }
        func put16(_ value: UInt16) {
            withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { out += $0 }
        }
        put32(nanosecond ? 0xA1B2_3C4D : 0xA1B2_C3D4)
        put16(2)
        put16(versionMinor)
        put32(0)
        put32(0)
        put32(snapLength)
        put32(linkTypeField)
        for record in records {
            put32(record.seconds)
            put32(record.fraction)
            put32(UInt32(record.data.count))
            put32(record.wireLength)
            out += record.data
        }
        return out
    }

    /// The frames libpcap 1.10 gives for these records on a little-endian host: 32-bit time fields signed in a
    /// little-endian file and unsigned in a big-endian one (libpcap's byte swap), µs scaled to ns, captured lengths
    /// above the (adjusted) snapshot length cut to it.
    func expectedFrames(_ linkType: LinkType) -> [ReadFrame] {
        let snapshot = snapLength == 0 || snapLength > 262_144 ? 262_144 : Int(snapLength)
        return records.map { record in
            let (seconds, fraction) =
                bigEndian
                ? (Int64(record.seconds), Int64(record.fraction))
                : (Int64(Int32(bitPattern: record.seconds)), Int64(Int32(bitPattern: record.fraction)))
            let nanoseconds = seconds * 1_000_000_000 + fraction * (nanosecond ? 1 : 1000)
            return ReadFrame(
                nanoseconds: nanoseconds,
                linkType: linkType,
                bytes: Array(record.data.prefix(snapshot)),
                wireLength: Int(record.wireLength)
            )
        }
    }
}

/// Random records: sizes from 0 to `maximumSize`, time fields over the whole 32-bit range.
func randomRecords(count: Int, maximumSize: Int, using generator: inout SeededRandom) -> [FixtureRecord] {
    (0..<count).map { _ in
        let size = Int.random(in: 0...maximumSize, using: &generator)
        let data = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return FixtureRecord(
            seconds: .random(in: 0...UInt32.max, using: &generator),
            fraction: .random(in: 0...UInt32.max, using: &generator),
            data: data,
            wireLength: UInt32(size) + UInt32.random(in: 0...1500, using: &generator)
        )
    }
}

/// Writes `records` with libpcap's own writer: `pcap_open_dead_with_tstamp_precision`, `pcap_dump_open`, `pcap_dump`.
func writeWithPcapDump(
    _ path: String,
    dataLinkType: Int32,
    snapLength: Int32,
    nanosecond: Bool,
    records: [FixtureRecord]
) {
    let precision = UInt32(nanosecond ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO)
    let dead = pcap_open_dead_with_tstamp_precision(dataLinkType, snapLength, precision)!
    defer { pcap_close(dead) }
    guard let dumper = pcap_dump_open(dead, path) else {
        fatalError("pcap_dump_open: \(String(cString: pcap_geterr(dead)))")
    }
    defer { pcap_dump_close(dumper) }
    let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
    for record in records {
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(Int32(bitPattern: record.seconds))
        header.ts.tv_usec = Int(Int32(bitPattern: record.fraction))
        header.caplen = UInt32(record.data.count)
        header.len = record.wireLength
        record.data.withUnsafeBufferPointer { pcap_dump(user, &header, $0.baseAddress ?? UnsafePointer(user)) }
    }
}

/// A pcapng file: one section, one interface, enhanced packet blocks, in either byte order.
struct PcapngFixture {
    struct Packet {
        /// In units of the interface's resolution (µs, or ns with `nanosecond`).
        var timestamp: UInt64
        var data: [UInt8]
        var wireLength: UInt32
    }

    var bigEndian = false
    var nanosecond = false
    var linkType: UInt16 = 1
    var snapLength: UInt32 = 262_144
    var packets: [Packet] = []

    var bytes: [UInt8] {
        var out = [UInt8]()
        func put32(_ value: UInt32, into block: inout [UInt8]) {
            withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { block += $0 }
        }
        func put16(_ value: UInt16, into block: inout [UInt8]) {
            withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { block += $0 }
        }
        func block(_ type: UInt32, _ body: [UInt8]) {
            let length = UInt32(12 + body.count)
            put32(type, into: &out)
            put32(length, into: &out)
            out += body
            put32(length, into: &out)
        }
        var section = [UInt8]()
        put32(0x1A2B_3C4D, into: &section)
        put16(1, into: &section)
        put16(0, into: &section)
        section += [UInt8](repeating: 0xFF, count: 8)  // section length: unknown
        block(0x0A0D_0D0A, section)
        var interface = [UInt8]()
        put16(linkType, into: &interface)
        put16(0, into: &interface)
        put32(snapLength, into: &interface)
        if nanosecond {
            put16(9, into: &interface)  // if_tsresol
            put16(1, into: &interface)
            interface += [9, 0, 0, 0]
            put32(0, into: &interface)  // opt_endofopt
        }
        block(1, interface)
        for packet in packets {
            var enhanced = [UInt8]()
            put32(0, into: &enhanced)
            put32(UInt32(packet.timestamp >> 32), into: &enhanced)
            put32(UInt32(truncatingIfNeeded: packet.timestamp), into: &enhanced)
            put32(UInt32(packet.data.count), into: &enhanced)
            put32(packet.wireLength, into: &enhanced)
            enhanced += packet.data
            enhanced += [UInt8](repeating: 0, count: (4 - packet.data.count % 4) % 4)
            block(6, enhanced)
        }
        return out
    }

    func expectedFrames(_ linkType: LinkType) -> [ReadFrame] {
        packets.map {
            ReadFrame(
                nanoseconds: Int64($0.timestamp) * (nanosecond ? 1 : 1000),
                linkType: linkType,
                bytes: $0.data,
                wireLength: Int($0.wireLength)
            )
        }
    }
}

/// A fresh directory under /tmp for one test's files, removed with everything in it when released.
final class TemporaryDirectory {
    let path: String
    private var files = [String]()

    init() {
        var template = Array("/tmp/synwatch-capture-tests-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { fatalError("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: created)
    }

    deinit {
        for file in files { unlink(file) }
        rmdir(path)
    }

    /// A path in the directory, to be removed with it.
    func path(_ name: String) -> String {
        let file = "\(path)/\(name)"
        files.append(file)
        return file
    }

    /// Writes `bytes` to a new file in the directory and returns its path.
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = path(name)
        guard let stream = fopen(file, "wb") else { fatalError("fopen \(file): \(String(cString: strerror(errno)))") }
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, stream) }
        fclose(stream)
        return file
    }

    /// The contents of a file in the directory.
    func read(_ file: String) -> [UInt8] {
        guard let stream = fopen(file, "rb") else { fatalError("fopen \(file): \(String(cString: strerror(errno)))") }
        defer { fclose(stream) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBufferPointer { fread($0.baseAddress, 1, $0.count, stream) }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }
}

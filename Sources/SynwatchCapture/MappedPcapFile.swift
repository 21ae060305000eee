@preconcurrency import Glibc
import SynwatchEngine

/// The 24-byte header of a classic pcap file whose records the mapped reader can walk exactly as libpcap would.
///
/// Anything else is left to libpcap: pcapng, the modified formats (Kuznetzov, Navtel), versions before 2.4
/// (whose length fields may be swapped), link types the engine does not decode or that libpcap renumbers other
/// than `LINKTYPE_RAW`, and byte-swapped Linux cooked and NFLOG captures (whose headers libpcap rewrites).
struct ClassicPcapHeader {
    static let size = 24
    static let recordHeaderSize = 16
    /// libpcap's `MAXIMUM_SNAPLEN`, its bound on any record of these link types (`max_snaplen_for_dlt`).
    static let maximumCaptureLength = 262_144

    /// The file was written in the other byte order.
    let isByteSwapped: Bool
    /// Record time stamps are seconds and nanoseconds (magic `a1b23c4d`), not microseconds (`a1b2c3d4`).
    let isNanosecond: Bool
    let linkType: LinkType
    /// The header's snapshot length as libpcap adjusts it (`pcap_adjust_snapshot`): 0 or too large means the maximum.
    let snapshotLength: Int

    /// Reads the header, or returns `nil` when the mapped reader must not take the file.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        let magic = bytes.loadUnaligned(as: UInt32.self)
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D: isByteSwapped = false
        case 0xD4C3_B2A1, 0x4D3C_B2A1: isByteSwapped = true
        default: return nil
        }
        isNanosecond = magic == 0xA1B2_3C4D || magic == 0x4D3C_B2A1
        let swapped = isByteSwapped
        func field<Value: FixedWidthInteger>(_ offset: Int, _: Value.Type) -> Value {
            let value = bytes.loadUnaligned(fromByteOffset: offset, as: Value.self)
            return swapped ? value.byteSwapped : value
        }
        guard field(4, UInt16.self) == 2, field(6, UInt16.self) == 4 else { return nil }
        // LT_LINKTYPE: the upper 6 bits carry FCS information, not the type.
        guard let linkType = Self.linkType(forFileValue: field(20, UInt32.self) & 0x03FF_FFFF) else { return nil }
        // libpcap rewrites these in a swapped file: cooked CAN pseudo-headers, NFLOG TLV lengths and types.
        if swapped && (linkType == .linuxCooked || linkType == .linuxCooked2 || linkType == .nflog) { return nil }
        self.linkType = linkType
        let snapshot = Int(field(16, UInt32.self))
        snapshotLength = snapshot == 0 || snapshot > Self.maximumCaptureLength ? Self.maximumCaptureLength : snapshot
    }

    /// The `DLT_` value libpcap's `linktype_to_dlt` gives for a file's `LINKTYPE_` value, for the types decoded here.
    static func linkType(forFileValue value: UInt32) -> LinkType? {
        switch value {
        case 101: .raw  // LINKTYPE_RAW is DLT_RAW, 12 on Linux
        case 0, 1, 9, 108, 113, 228, 229, 239, 276: LinkType(rawValue: Int32(value))
        default: nil
        }
    }
}

/// A classic pcap file mapped read-only into memory, its records walked in place.
///
/// Produces exactly the frames libpcap 1.10's `pcap_next_ex` would with nanosecond precision: 32-bit seconds and
/// fraction (microseconds scaled by 1000), signed in a file of this host's byte order and unsigned in a swapped one,
/// captured lengths above the snapshot length cut to it, lengths above libpcap's maximum rejected.
/// The file must not shrink while mapped (that would raise SIGBUS).
final class MappedPcapFile {
    /// Why a batch stopped before its limit.
    enum Stop {
        case endOfFile
        /// The file ends inside a record.
        case truncated(String)
        /// A record header holds an impossible captured length.
        case invalidRecord(String)
    }

    let header: ClassicPcapHeader
    private let mapping: UnsafeRawBufferPointer
    /// Byte offset of the next record.
    private(set) var offset = ClassicPcapHeader.size
    /// Pages before this offset were given back to the kernel.
    private var releasedUpTo = 0
    /// Whether reading gives back the pages it has passed; if not, whoever is done with the frames calls `release`.
    var releasesAsRead = true

    /// Takes ownership of `mapping` (unmapped on release), whose first bytes hold `header`.
    init(mapping: UnsafeRawBufferPointer, header: ClassicPcapHeader) {
        self.mapping = mapping
        self.header = header
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping.baseAddress), mapping.count)
    }

    /// The file's size in bytes.
    var size: Int { mapping.count }

    /// Hands up to `limit` frames to `body`; the count delivered, and why it stopped short if it did.
    func readFrames(upTo limit: Int, _ body: (Frame) -> Void) -> (count: Int, stop: Stop?) {
        let base = mapping.baseAddress!
        let end = mapping.count
        let swapped = header.isByteSwapped
        let fractionScale: Int64 = header.isNanosecond ? 1 : 1000
        let snapshot = header.snapshotLength
        let linkType = header.linkType
        var offset = self.offset
        var count = 0
        defer {
            self.offset = offset
            if releasesAsRead { release(before: offset) }
        }
        while count < limit {
            let remaining = end - offset
            if remaining < ClassicPcapHeader.recordHeaderSize {
                if remaining == 0 { return (count, .endOfFile) }
                return (count, .truncated("record header at byte \(offset) has \(remaining) of 16 bytes"))
            }
            let record = base + offset
            var seconds = record.loadUnaligned(as: UInt32.self)
            var fraction = record.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            var captured = record.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            var wire = record.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
            if swapped {
                seconds = seconds.byteSwapped
                fraction = fraction.byteSwapped
                captured = captured.byteSwapped
                wire = wire.byteSwapped
            }
            let length = Int(captured)
            guard length <= ClassicPcapHeader.maximumCaptureLength else {
                let message =
                    "record at byte \(offset): captured length \(length) exceeds the maximum "
                    + "\(ClassicPcapHeader.maximumCaptureLength)"
                return (count, .invalidRecord(message))
            }
            guard length <= remaining - ClassicPcapHeader.recordHeaderSize else {
                let available = remaining - ClassicPcapHeader.recordHeaderSize
                return (count, .truncated("record at byte \(offset) has \(available) of \(length) captured bytes"))
            }
            // libpcap reads the time fields as signed 32-bit, but its byte swap yields them unsigned.
            let (wholeSeconds, fractionUnits) =
                swapped
                ? (Int64(seconds), Int64(fraction))
                : (Int64(Int32(bitPattern: seconds)), Int64(Int32(bitPattern: fraction)))
            let nanoseconds = wholeSeconds &* 1_000_000_000 &+ fractionUnits &* fractionScale
            let bytes = UnsafeRawBufferPointer(
                start: record + ClassicPcapHeader.recordHeaderSize,
                count: min(length, snapshot)
            )
            let time = Timestamp(nanoseconds: nanoseconds)
            body(Frame(time: time, linkType: linkType, bytes: bytes, wireLength: Int(wire)))
            offset += ClassicPcapHeader.recordHeaderSize + length
            count += 1
        }
        return (count, nil)
    }
}

extension MappedPcapFile {
    /// Gives back the pages before `offset`, whose frames are done with.
    func release(before offset: Int) { releasePages(of: mapping, before: offset, releasedUpTo: &releasedUpTo) }
}

/// Read pages are given back in steps of this size, so a large capture costs no more resident memory.
let mappedReleaseStep = 4 << 20

/// Drops the pages of `mapping` before `offset` from this process's resident set (`madvise(MADV_DONTNEED)`; they
/// stay in the page cache). Mapped file pages count in the resident size: without this, reading a 1 GB capture
/// would make the process look 1 GB large.
func releasePages(of mapping: UnsafeRawBufferPointer, before offset: Int, releasedUpTo: inout Int) {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    let end = offset / pageSize * pageSize
    guard end - releasedUpTo >= mappedReleaseStep else { return }
    let start = UnsafeMutableRawPointer(mutating: mapping.baseAddress! + releasedUpTo)
    // A hint: when it fails the pages simply stay resident.
    _ = madvise(start, end - releasedUpTo, MADV_DONTNEED)
    releasedUpTo = end
}

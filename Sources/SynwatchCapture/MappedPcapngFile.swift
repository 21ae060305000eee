@preconcurrency import Glibc
import SynwatchEngine

/// A pcapng file mapped read-only into memory, its blocks walked in place.
///
/// Unlike libpcap 1.10, which refuses a file whose interfaces differ in link type or snapshot length, every
/// interface keeps its own link type, snapshot length and time resolution, and each frame carries its
/// interface's link type. Reads Section Header blocks in either byte order (several sections, each with its
/// own interfaces), Interface Description blocks with `if_tsresol` and `if_tsoffset`, and Enhanced, Simple and
/// obsolete Packet blocks; other blocks are skipped. Frames of interfaces whose link type the engine does not
/// decode are skipped and counted. The file must not shrink while mapped (that would raise SIGBUS).
final class MappedPcapngFile {
    typealias Stop = MappedPcapFile.Stop

    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    /// One Interface Description block, as its packets need it.
    struct Interface {
        /// `nil` when the engine does not decode the interface's link type: its frames are skipped.
        var linkType: LinkType?
        var dataLinkType: DataLinkType
        var snapshotLength: Int
        /// Time stamp units per second (`if_tsresol`; microseconds by default).
        var unitsPerSecond: UInt64 = 1_000_000
        /// Seconds added to every time stamp (`if_tsoffset`).
        var offsetSeconds: Int64 = 0
    }

    /// The link type of the first interface the engine decodes, else of the first interface, among those
    /// described before the first packet.
    let dataLinkType: DataLinkType
    private let mapping: UnsafeRawBufferPointer
    private let ownsMapping: Bool
    /// Byte offset of the next block.
    private(set) var offset = 0
    /// Frames skipped because their interface's link type is not decoded.
    private(set) var framesSkipped = 0
    private var releasedUpTo = 0
    /// Whether reading gives back the pages it has passed; if not, whoever is done with the frames calls `release`.
    var releasesAsRead = true
    /// The current section's byte order differs from this host's.
    private var swapped = false
    /// The current section's interfaces, by interface id.
    private var interfaces = [Interface]()

    /// Whether `prefix`, a file's first bytes, starts a pcapng Section Header block.
    static func isPcapng(_ prefix: UnsafeRawBufferPointer) -> Bool {
        guard prefix.count >= 12, prefix.loadUnaligned(as: UInt32.self) == sectionHeaderType else { return false }
        let magic = prefix.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        return magic == byteOrderMagic || magic == byteOrderMagic.byteSwapped
    }

    /// The link type the file's first interfaces give it, or `nil` when this reader must not take the file:
    /// a damaged start, or no interface before the first packet (libpcap then says what is wrong).
    static func dataLinkType(of mapping: UnsafeRawBufferPointer) -> DataLinkType? {
        let probe = MappedPcapngFile(mapping: mapping, dataLinkType: DataLinkType(rawValue: 0), ownsMapping: false)
        while true {
            switch probe.nextBlock() {
            case .block(let type, let length):
                guard probe.readControlBlock(type: type) == nil else { return nil }
                if type == 2 || type == 3 || type == 6 { return probe.firstDataLinkType }
                probe.offset += length
            case .stop(.endOfFile):
                return probe.firstDataLinkType
            case .stop:
                return nil
            }
        }
    }

    /// The first interface's link type that the engine decodes, else the first interface's.
    private var firstDataLinkType: DataLinkType? {
        (interfaces.first { $0.linkType != nil } ?? interfaces.first)?.dataLinkType
    }

    /// Reads `mapping`, whose start `dataLinkType(of:)` accepted, and unmaps it on release if `ownsMapping`.
    init(mapping: UnsafeRawBufferPointer, dataLinkType: DataLinkType, ownsMapping: Bool = true) {
        self.mapping = mapping
        self.dataLinkType = dataLinkType
        self.ownsMapping = ownsMapping
    }

    /// Gives back the pages before `offset`, whose frames are done with.
    func release(before offset: Int) { releasePages(of: mapping, before: offset, releasedUpTo: &releasedUpTo) }

    deinit {
        if ownsMapping { munmap(UnsafeMutableRawPointer(mutating: mapping.baseAddress), mapping.count) }
    }

    /// The file's size in bytes.
    var size: Int { mapping.count }

    private func u16(_ at: Int) -> UInt16 {
        let value = mapping.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return swapped ? value.byteSwapped : value
    }

    private func u32(_ at: Int) -> UInt32 {
        let value = mapping.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swapped ? value.byteSwapped : value
    }

    private enum Next {
        /// A whole block of `type` and `length` bytes at `offset`, its section's byte order set.
        case block(type: UInt32, length: Int)
        case stop(Stop)
    }

    /// Checks the block at `offset`: complete, lengths agreeing, a multiple of 4.
    private func nextBlock() -> Next {
        let remaining = mapping.count - offset
        if remaining == 0 { return .stop(.endOfFile) }
        guard remaining >= 12 else {
            return .stop(.truncated("block header at byte \(offset) has \(remaining) of 12 bytes"))
        }
        let type = mapping.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        if type == Self.sectionHeaderType {
            // A new section may change the byte order: its magic tells.
            let magic = mapping.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            guard magic == Self.byteOrderMagic || magic == Self.byteOrderMagic.byteSwapped else {
                return .stop(.invalidRecord("section header at byte \(offset) has no byte-order magic"))
            }
            swapped = magic != Self.byteOrderMagic
        }
        let length = Int(u32(offset + 4))
        guard length >= 12, length % 4 == 0 else {
            return .stop(.invalidRecord("block at byte \(offset) has a length of \(length)"))
        }
        guard length <= remaining else {
            return .stop(.truncated("block at byte \(offset) has \(remaining) of \(length) bytes"))
        }
        guard Int(u32(offset + length - 4)) == length else {
            return .stop(.invalidRecord("block at byte \(offset): lengths in header and trailer differ"))
        }
        return .block(type: swapped ? type.byteSwapped : type, length: length)
    }

    /// Reads a section header or interface description at `offset`; other blocks are left alone.
    /// - Returns: why the block is invalid, or `nil`.
    private func readControlBlock(type: UInt32) -> Stop? {
        let length = Int(u32(offset + 4))
        switch type {
        case Self.sectionHeaderType:
            guard length >= 28 else { return .invalidRecord("section header at byte \(offset) is too short") }
            guard u16(offset + 12) == 1 else {
                return .invalidRecord("section at byte \(offset) has pcapng version \(u16(offset + 12))")
            }
            interfaces.removeAll(keepingCapacity: true)
        case 1:
            guard length >= 20 else { return .invalidRecord("interface description at byte \(offset) is too short") }
            let value = u16(offset + 8)
            let linkType = ClassicPcapHeader.linkType(forFileValue: UInt32(value))
            let snapshot = Int(u32(offset + 12))
            var interface = Interface(
                linkType: linkType,
                dataLinkType: DataLinkType(rawValue: linkType?.rawValue ?? Int32(value)),
                snapshotLength: snapshot == 0 || snapshot > ClassicPcapHeader.maximumCaptureLength
                    ? ClassicPcapHeader.maximumCaptureLength : snapshot
            )
            // Options: code, length, value padded to 4 bytes, up to opt_endofopt or the trailer.
            var option = offset + 16
            let end = offset + length - 4
            while option + 4 <= end {
                let code = u16(option)
                let size = Int(u16(option + 2))
                if code == 0 { break }
                guard option + 4 + size <= end else {
                    return .invalidRecord("interface description at byte \(offset) has an option past its end")
                }
                if code == 9 && size == 1 {
                    let resolution = mapping[option + 4]
                    // The high bit chooses powers of 2 over powers of 10; the units per second must fit 64 bits.
                    let exponent = Int(resolution & 0x7F)
                    let binary = resolution & 0x80 != 0
                    guard exponent <= (binary ? 63 : 19) else {
                        return .invalidRecord("interface description at byte \(offset) has if_tsresol \(resolution)")
                    }
                    interface.unitsPerSecond =
                        binary
                        ? 1 << UInt64(exponent) : (0..<exponent).reduce(1) { value, _ in value * 10 }
                } else if code == 14 && size == 8 {
                    // if_tsoffset: one 64-bit integer in the section's order, unlike the time stamps' two halves.
                    let value = mapping.loadUnaligned(fromByteOffset: option + 4, as: Int64.self)
                    interface.offsetSeconds = swapped ? value.byteSwapped : value
                }
                option += 4 + (size + 3) & ~3
            }
            interfaces.append(interface)
        default:
            break
        }
        return nil
    }

    /// Nanoseconds since the epoch of a time stamp of `units` in `interface`'s resolution.
    private static func nanoseconds(_ units: UInt64, _ interface: Interface) -> Int64 {
        let perSecond = interface.unitsPerSecond
        let seconds = Int64(truncatingIfNeeded: units / perSecond) &+ interface.offsetSeconds
        let fraction = units % perSecond
        let scaled: UInt64
        if perSecond == 1_000_000_000 {
            scaled = fraction
        } else {
            // fraction × 10⁹ may exceed 64 bits for resolutions finer than a nanosecond.
            let product = fraction.multipliedFullWidth(by: 1_000_000_000)
            scaled = perSecond.dividingFullWidth((product.high, product.low)).quotient
        }
        return seconds &* 1_000_000_000 &+ Int64(scaled)
    }

    /// Hands up to `limit` frames to `body`; the count delivered, and why it stopped short if it did.
    func readFrames(upTo limit: Int, _ body: (Frame) -> Void) -> (count: Int, stop: Stop?) {
        let base = mapping.baseAddress!
        var count = 0
        defer { if releasesAsRead { release(before: offset) } }
        while count < limit {
            let type: UInt32
            let length: Int
            switch nextBlock() {
            case .stop(let stop): return (count, stop)
            case .block(let blockType, let blockLength): (type, length) = (blockType, blockLength)
            }
            let block = offset
            // Where the packet's fields start, and its interface id and time stamp when the block has them.
            var interfaceID = 0
            var units: UInt64 = 0
            var captured: Int
            var wire: Int
            var data: Int
            switch type {
            case 6:  // Enhanced Packet: interface, time stamp high and low, captured and original length
                guard length >= 32 else { return (count, .invalidRecord("packet block at byte \(block) is too short")) }
                interfaceID = Int(u32(block + 8))
                units = UInt64(u32(block + 12)) << 32 | UInt64(u32(block + 16))
                captured = Int(u32(block + 20))
                wire = Int(u32(block + 24))
                data = block + 28
            case 2:  // obsolete Packet: 16-bit interface and drop count, then as Enhanced
                guard length >= 32 else { return (count, .invalidRecord("packet block at byte \(block) is too short")) }
                interfaceID = Int(u16(block + 8))
                units = UInt64(u32(block + 12)) << 32 | UInt64(u32(block + 16))
                captured = Int(u32(block + 20))
                wire = Int(u32(block + 24))
                data = block + 28
            case 3:  // Simple Packet: interface 0, no time stamp, captured length implied by the block
                guard length >= 16 else { return (count, .invalidRecord("packet block at byte \(block) is too short")) }
                wire = Int(u32(block + 8))
                data = block + 12
                captured = min(wire, length - 16)
            default:
                if let stop = readControlBlock(type: type) { return (count, stop) }
                offset += length
                continue
            }
            guard interfaceID < interfaces.count else {
                let message = "packet block at byte \(block) names interface \(interfaceID), which is not described"
                return (count, .invalidRecord(message))
            }
            guard captured <= block + length - 4 - data else {
                let message = "packet block at byte \(block): captured length \(captured) exceeds the block"
                return (count, .invalidRecord(message))
            }
            offset += length
            let interface = interfaces[interfaceID]
            guard let linkType = interface.linkType else {
                framesSkipped += 1
                continue
            }
            let bytes = UnsafeRawBufferPointer(start: base + data, count: min(captured, interface.snapshotLength))
            body(
                Frame(
                    time: Timestamp(nanoseconds: Self.nanoseconds(units, interface)),
                    linkType: linkType,
                    bytes: bytes,
                    wireLength: wire
                )
            )
            count += 1
        }
        return (count, nil)
    }
}

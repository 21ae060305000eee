#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The container format of a capture file.
public enum CaptureFormat: String, Sendable, CaseIterable, Codable {
    /// Classic libpcap format, little-endian.
    case pcap
    /// pcapng: one section header, one interface description, enhanced packet blocks.
    case pcapng
}

/// The resolution of the timestamps stored in a capture file.
public enum TimestampPrecision: String, Sendable, CaseIterable, Codable {
    /// Microseconds: pcap magic 0xa1b2c3d4, pcapng `if_tsresol` 6.
    case microseconds = "us"
    /// Nanoseconds: pcap magic 0xa1b23c4d, pcapng `if_tsresol` 9.
    case nanoseconds = "ns"
}

/// An error of the traffic generator.
public enum TrafficGenError: Error, CustomStringConvertible, Equatable {
    /// A system call failed; carries the call, the path and `errno`.
    case system(call: String, path: String, errno: Int32)
    /// The scenario or the capture options are inconsistent.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .system(let call, let path, let code): "\(call)(\(path)) failed: \(String(cString: strerror(code)))"
        case .invalidConfiguration(let message): message
        }
    }
}

/// Writes frames to a pcap or pcapng file through a large reusable buffer.
///
/// Records are laid out in the buffer in place and written with one `write(2)` per few megabytes, so the
/// per-packet cost is a few stores and no allocation. Not thread-safe: one writer belongs to one task.
public final class CaptureWriter {
    public let format: CaptureFormat
    public let precision: TimestampPrecision
    public let linkType: LinkLayer
    /// The number of frames written so far.
    public private(set) var packetCount = 0

    private let path: String
    private var descriptor: Int32
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 4 << 20
    private var used = 0

    /// The largest frame a record may hold; larger frames are a programming error.
    static let maximumFrameLength = 65_535 + 64
    private static let snapLength: UInt32 = 262_144

    /// Creates (or truncates) the file at `path` and writes the file header.
    ///
    /// - Parameters:
    ///   - path: the capture file to write.
    ///   - format: pcap or pcapng.
    ///   - precision: microsecond or nanosecond timestamps.
    ///   - linkType: the link-layer framing of the frames that will be appended.
    /// - Throws: `TrafficGenError.system` naming `open` or `write`.
    public init(
        path: String,
        format: CaptureFormat = .pcap,
        precision: TimestampPrecision = .microseconds,
        linkType: LinkLayer = .ethernet
    ) throws {
        self.path = path
        self.format = format
        self.precision = precision
        self.linkType = linkType
        // Opened before anything needs cleaning up: a throw before full initialization skips deinit.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TrafficGenError.system(call: "open", path: path, errno: errno) }
        self.descriptor = descriptor
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        writeFileHeader()
    }

    deinit {
        if descriptor >= 0 {
            try? flush()
            _ = closeDescriptor(descriptor)
        }
        buffer.deallocate()
    }

    /// Appends one frame captured at `nanoseconds` since the epoch.
    ///
    /// - Parameters:
    ///   - frame: the frame's bytes, starting with the link-layer header of `linkType`.
    ///   - nanoseconds: the capture time; truncated to microseconds when `precision` is `.microseconds`.
    /// - Throws: `TrafficGenError.system` when flushing the buffer fails.
    public func append(_ frame: UnsafeRawBufferPointer, at nanoseconds: Int64) throws {
        let target = try reserveRecord(at: nanoseconds, length: frame.count)
        if let base = frame.baseAddress { target.copyMemory(from: base, byteCount: frame.count) }
    }

    /// Appends one frame given as bytes; see `append(_:at:)`.
    public func append(_ frame: [UInt8], at nanoseconds: Int64) throws {
        try frame.withUnsafeBytes { try append($0, at: nanoseconds) }
    }

    /// Writes everything buffered and closes the file.
    ///
    /// - Throws: `TrafficGenError.system` naming `write` or `close`.
    public func close() throws {
        guard descriptor >= 0 else { return }
        try flush()
        let result = closeDescriptor(descriptor)
        descriptor = -1
        if result != 0 { throw TrafficGenError.system(call: "close", path: path, errno: errno) }
    }

    /// Writes a record header for a frame of `length` bytes and returns where the frame's bytes go.
    ///
    /// The caller must store exactly `length` bytes there before the next call.
    func reserveRecord(at nanoseconds: Int64, length: Int) throws -> UnsafeMutableRawPointer {
        precondition(length <= Self.maximumFrameLength && nanoseconds >= 0, "frame too long or time before 1970")
        if capacity - used < length + 40 { try flush() }
        let record = buffer + used
        let units = precision == .microseconds ? nanoseconds / 1000 : nanoseconds
        packetCount += 1
        switch format {
        case .pcap:
            let perSecond: Int64 = precision == .microseconds ? 1_000_000 : 1_000_000_000
            record.storeLE32(UInt32(truncatingIfNeeded: units / perSecond), at: 0)
            record.storeLE32(UInt32(truncatingIfNeeded: units % perSecond), at: 4)
            record.storeLE32(UInt32(length), at: 8)
            record.storeLE32(UInt32(length), at: 12)
            used += 16 + length
            return record + 16
        case .pcapng:
            let padded = (length + 3) & ~3
            let total = UInt32(32 + padded)
            record.storeLE32(6, at: 0)  // enhanced packet block
            record.storeLE32(total, at: 4)
            record.storeLE32(0, at: 8)  // interface id
            record.storeLE32(UInt32(truncatingIfNeeded: units >> 32), at: 12)
            record.storeLE32(UInt32(truncatingIfNeeded: units), at: 16)
            record.storeLE32(UInt32(length), at: 20)
            record.storeLE32(UInt32(length), at: 24)
            if padded > length { (record + 28 + length).initializeMemory(as: UInt8.self, repeating: 0, count: 4) }
            record.storeLE32(total, at: 28 + padded)
            used += Int(total)
            return record + 28
        }
    }

    private func writeFileHeader() {
        let header = buffer
        switch format {
        case .pcap:
            header.storeLE32(precision == .microseconds ? 0xA1B2_C3D4 : 0xA1B2_3C4D, at: 0)
            header.storeLE16(2, at: 4)
            header.storeLE16(4, at: 6)
            header.storeLE32(0, at: 8)  // thiszone
            header.storeLE32(0, at: 12)  // sigfigs
            header.storeLE32(Self.snapLength, at: 16)
            header.storeLE32(UInt32(linkType.linkTypeNumber), at: 20)
            used = 24
        case .pcapng:
            // Section header block: byte-order magic, version 1.0, unknown section length, no options.
            header.storeLE32(0x0A0D_0D0A, at: 0)
            header.storeLE32(28, at: 4)
            header.storeLE32(0x1A2B_3C4D, at: 8)
            header.storeLE16(1, at: 12)
            header.storeLE16(0, at: 14)
            header.storeLE32(0xFFFF_FFFF, at: 16)
            header.storeLE32(0xFFFF_FFFF, at: 20)
            header.storeLE32(28, at: 24)
            // Interface description block with if_tsresol (code 9) and the end-of-options marker.
            let idb = header + 28
            idb.storeLE32(1, at: 0)
            idb.storeLE32(32, at: 4)
            idb.storeLE16(linkType.linkTypeNumber, at: 8)
            idb.storeLE16(0, at: 10)
            idb.storeLE32(Self.snapLength, at: 12)
            idb.storeLE16(9, at: 16)
            idb.storeLE16(1, at: 18)
            idb.storeLE32(precision == .microseconds ? 6 : 9, at: 20)  // value byte, then 3 bytes of padding
            idb.storeLE32(0, at: 24)
            idb.storeLE32(32, at: 28)
            used = 60
        }
    }

    private func flush() throws {
        var offset = 0
        while offset < used {
            let written = write(descriptor, buffer + offset, used - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw TrafficGenError.system(call: "write", path: path, errno: errno)
            }
            offset += written
        }
        used = 0
    }
}

/// `close(2)` under a name that the writer's own `close()` does not shadow.
private func closeDescriptor(_ descriptor: Int32) -> Int32 { close(descriptor) }

extension UnsafeMutableRawPointer {
    @inline(__always)
    func storeLE16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    func storeLE32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inline(__always)
    func storeBE16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    func storeBE32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inline(__always)
    func storeBE64(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    @inline(__always)
    func storeByte(_ value: UInt8, at offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }
}

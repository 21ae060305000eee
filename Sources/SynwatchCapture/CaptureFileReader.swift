@preconcurrency import CPcap
@preconcurrency import Glibc
import SynwatchEngine
import SynwatchSystem
import SystemPackage

/// Reads one capture file (pcap or pcapng, or standard input) frame by frame, with nanosecond time stamps.
///
/// Opening chooses the method: a regular classic pcap file of a link type the engine decodes is memory-mapped
/// and its records walked in place (`Method.mapped`, several times faster); a regular pcapng file is mapped
/// and its blocks walked by this module's own reader (`Method.mappedPcapng`), which unlike libpcap takes
/// interfaces of different link types and snapshot lengths; everything else, standard input included, goes
/// through libpcap's `pcap_next_ex` (`Method.libpcap`). All deliver the same frames where libpcap reads the
/// file. Frames point into the mapping or libpcap's buffer: nothing is copied or allocated per frame.
public final class CaptureFileReader: FrameSource {
    /// How the frames are read.
    public enum Method: String, Sendable, CustomStringConvertible {
        /// The file is memory-mapped and its classic pcap records walked in place.
        case mapped
        /// The file is memory-mapped and its pcapng blocks walked in place, each interface with its link type.
        case mappedPcapng
        /// libpcap reads the file (`pcap_next_ex`).
        case libpcap

        public var description: String {
            switch self {
            case .mapped: "memory-mapped"
            case .mappedPcapng: "memory-mapped pcapng"
            case .libpcap: "libpcap"
            }
        }
    }

    private enum Backend {
        case mapped(MappedPcapFile)
        case mappedPcapng(MappedPcapngFile)
        case libpcap(PcapHandle)
    }

    /// The input being read.
    public let input: CaptureInput
    /// The method chosen when the file was opened.
    public let method: Method
    /// The link-layer type of the frames; in a pcapng file with several interfaces, that of the first one the
    /// engine decodes (each frame carries its own).
    public let linkType: LinkType
    /// The input's size in bytes, or `nil` when unknown (a pipe).
    public let totalBytes: Int?
    /// Frames delivered so far.
    public private(set) var framesRead = 0
    /// Frames not delivered because their pcapng interface has a link type the engine does not decode.
    public var framesSkipped: Int {
        if case .mappedPcapng(let file) = backend { file.framesSkipped } else { 0 }
    }

    private enum State {
        case reading
        case ended
        /// Later reads throw the same error again.
        case failed(CaptureError)
    }

    private let backend: Backend
    private var state = State.reading

    /// Opens a capture for reading.
    ///
    /// - Parameters:
    ///   - input: a file path, or standard input.
    ///   - allowsMapping: `false` reads even classic pcap files through libpcap (for a file that may shrink
    ///     while it is read, which would kill a mapped reader with SIGBUS).
    /// - Throws: `CaptureError` with reason `fileNotFound`, `unreadable` (also for an interface),
    ///   `notACaptureFile` or `unsupportedLinkType`.
    public init(_ input: CaptureInput, allowsMapping: Bool = true) throws(CaptureError) {
        self.input = input
        switch input {
        case .standardInput:
            backend = .libpcap(try Self.openLibpcap(stream: stdin, input: input))
            var info = stat()
            totalBytes = fstat(STDIN_FILENO, &info) == 0 && info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : nil
        case .file(let path):
            (backend, totalBytes) = try Self.open(path: path, input: input, allowsMapping: allowsMapping)
        case .interface:
            throw CaptureError(.unreadable, input: input, call: "open", message: "an interface is read by LiveCapture")
        }
        let dataLinkType: DataLinkType
        switch backend {
        case .mapped(let file):
            method = .mapped
            dataLinkType = DataLinkType(rawValue: file.header.linkType.rawValue)
        case .mappedPcapng(let file):
            method = .mappedPcapng
            dataLinkType = file.dataLinkType
        case .libpcap(let handle):
            method = .libpcap
            dataLinkType = handle.dataLinkType
        }
        guard let linkType = dataLinkType.linkType else {
            throw CaptureError(
                .unsupportedLinkType(dataLinkType),
                input: input,
                call: "pcap_datalink",
                message: "link-layer type \(dataLinkType) is not decoded"
            )
        }
        self.linkType = linkType
    }

    /// Leaves giving back a mapped file's read pages to `releasePages(before:)`, instead of the read: frames decoded
    /// on other threads after the read still point into them.
    func deferPageRelease() {
        switch backend {
        case .mapped(let file): file.releasesAsRead = false
        case .mappedPcapng(let file): file.releasesAsRead = false
        case .libpcap: break
        }
    }

    /// Gives back the mapped pages before byte `offset` (a `bytesConsumed`), whose frames are done with.
    func releasePages(before offset: Int) {
        switch backend {
        case .mapped(let file): file.release(before: offset)
        case .mappedPcapng(let file): file.release(before: offset)
        case .libpcap: break
        }
    }

    /// Bytes of the input consumed so far, or `nil` when unknown (a pipe).
    public var bytesConsumed: Int? {
        switch backend {
        case .mapped(let file):
            return file.offset
        case .mappedPcapng(let file):
            return file.offset
        case .libpcap(let handle):
            guard let offset = handle.streamOffset else { return nil }
            return totalBytes.map { min(offset, $0) } ?? offset
        }
    }

    public func readFrames(upTo limit: Int, _ body: (Frame) -> Void) throws(CaptureError) -> Int? {
        switch state {
        case .reading: break
        case .ended: return nil
        case .failed(let error): throw error
        }
        let count: Int
        let failure: CaptureError?
        switch backend {
        case .mapped(let file):
            (count, failure) = readMapped(file.readFrames(upTo: limit, body))
        case .mappedPcapng(let file):
            (count, failure) = readMapped(file.readFrames(upTo: limit, body))
        case .libpcap(let handle):
            (count, failure) = readLibpcap(handle, upTo: limit, body)
        }
        if let failure {
            state = .failed(failure)
            throw failure
        }
        if count == 0, case .ended = state { return nil }
        return count
    }

    /// Counts a mapped reader's batch and turns why it stopped into an error, if it was one.
    private func readMapped(_ batch: (count: Int, stop: MappedPcapFile.Stop?)) -> (Int, CaptureError?) {
        let (count, stop) = batch
        framesRead += count
        switch stop {
        case nil:
            return (count, nil)
        case .endOfFile:
            state = .ended
            return (count, nil)
        case .truncated(let message):
            return (
                count,
                CaptureError(
                    .truncated(framesRead: framesRead),
                    input: input,
                    call: "mapped read",
                    message: message
                )
            )
        case .invalidRecord(let message):
            return (
                count,
                CaptureError(
                    .readFailed(framesRead: framesRead),
                    input: input,
                    call: "mapped read",
                    message: message
                )
            )
        }
    }

    private func readLibpcap(_ handle: PcapHandle, upTo limit: Int, _ body: (Frame) -> Void) -> (Int, CaptureError?) {
        var count = 0
        defer { framesRead += count }
        do {
            while count < limit {
                guard let (header, data) = try handle.nextPacket() else {
                    state = .ended
                    break
                }
                let bytes = UnsafeRawBufferPointer(start: data, count: Int(header.caplen))
                body(
                    Frame(
                        time: handle.timestamp(of: header),
                        linkType: linkType,
                        bytes: bytes,
                        wireLength: Int(header.len)
                    )
                )
                count += 1
            }
            return (count, nil)
        } catch {
            return (count, error.readFailure(input: input, framesRead: framesRead + count))
        }
    }

    /// Opens a file, mapping it when it is a classic pcap file the mapped reader takes, or a pcapng file.
    private static func open(
        path: String,
        input: CaptureInput,
        allowsMapping: Bool
    ) throws(CaptureError) -> (Backend, Int?) {
        func failure(_ error: SystemCallError) -> CaptureError {
            CaptureError(
                error.errno == .noSuchFileOrDirectory ? .fileNotFound : .unreadable,
                input: input,
                call: error.call,
                message: error.message
            )
        }
        func attempt<Value: ~Copyable>(_ body: () throws(SystemCallError) -> Value) throws(CaptureError) -> Value {
            do {
                return try body()
            } catch {
                throw failure(error)
            }
        }
        let file = try attempt { () throws(SystemCallError) in try ReadOnlyFile(path: path) }
        let status = try attempt { () throws(SystemCallError) in try file.status() }
        if status.isDirectory {
            throw failure(SystemCallError(call: "open", errno: EISDIR))
        }
        if status.isRegular && allowsMapping {
            let prefix = try attempt { () throws(SystemCallError) in try file.readPrefix(upTo: ClassicPcapHeader.size) }
            // A failed mapping (an odd file system) is no reason to fail: libpcap reads the file instead.
            if let header = prefix.withUnsafeBytes({ ClassicPcapHeader($0) }),
                let mapping = try? file.mapReadOnly(size: status.size)
            {
                return (.mapped(MappedPcapFile(mapping: mapping, header: header)), status.size)
            }
            if prefix.withUnsafeBytes({ MappedPcapngFile.isPcapng($0) }),
                let mapping = try? file.mapReadOnly(size: status.size)
            {
                if let dataLinkType = MappedPcapngFile.dataLinkType(of: mapping) {
                    return (.mappedPcapng(MappedPcapngFile(mapping: mapping, dataLinkType: dataLinkType)), status.size)
                }
                munmap(UnsafeMutableRawPointer(mutating: mapping.baseAddress), mapping.count)
            }
        }
        let descriptor = file.take()
        guard let stream = fdopen(descriptor, "rb") else {
            let error = SystemCallError(call: "fdopen", errno: errno)
            close(descriptor)
            throw failure(error)
        }
        do {
            return (.libpcap(try openLibpcap(stream: stream, input: input)), status.isRegular ? status.size : nil)
        } catch {
            fclose(stream)
            throw error
        }
    }

    private static func openLibpcap(
        stream: UnsafeMutablePointer<FILE>,
        input: CaptureInput
    ) throws(CaptureError)
        -> PcapHandle
    {
        do {
            return try PcapHandle.openOffline(file: stream, precision: .nanoseconds)
        } catch {
            throw CaptureError(.notACaptureFile, input: input, call: error.call, message: error.message)
        }
    }
}

@available(*, unavailable, message: "a reader belongs to the task that reads it")
extension CaptureFileReader: Sendable {}

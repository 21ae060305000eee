import CPcap
import SynwatchEngine

/// How fast a capture file can be read when frames are only counted: the ceiling any engine run is compared with.
public struct RawReadMeasurement: Sendable, CustomStringConvertible {
    /// The reading loop measured.
    public enum Method: String, Sendable, CaseIterable {
        /// libpcap's `pcap_next_ex` in a loop: the reference.
        case pcapNextEx = "pcap_next_ex"
        /// libpcap's `pcap_dispatch` with a C callback, in batches of 4096.
        case pcapDispatch = "pcap_dispatch"
        /// `CaptureFileReader`, memory-mapped when the file allows it, as the engine is fed.
        case captureFileReader = "CaptureFileReader"
    }

    /// The loop measured.
    public var method: Method
    /// For `captureFileReader`, the reader's own method (`mapped` or `libpcap`).
    public var readerMethod: CaptureFileReader.Method?
    /// Frames counted.
    public var frames: Int
    /// Captured bytes counted.
    public var bytes: Int
    /// Time spent reading, after the file was opened.
    public var duration: Duration

    /// Frames read per second.
    public var framesPerSecond: Double {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds > 0 ? Double(frames) / seconds : 0
    }

    public var description: String {
        let name = readerMethod.map { "\(method.rawValue) (\($0))" } ?? method.rawValue
        let rate = (framesPerSecond / 1e6 * 100).rounded() / 100
        return "\(name): \(frames) frames, \(bytes) bytes in \(duration): \(rate) M frames/s"
    }

    /// Reads every frame of the file at `path` with `method`, counting frames and captured bytes.
    ///
    /// - Throws: `CaptureError` if the file cannot be opened or read to its end.
    public static func measure(_ path: String, method: Method) throws(CaptureError) -> RawReadMeasurement {
        let input = CaptureInput.file(path)
        var frames = 0
        var bytes = 0
        let clock = ContinuousClock()
        switch method {
        case .pcapNextEx, .pcapDispatch:
            let handle: PcapHandle
            do {
                handle = try PcapHandle.openOffline(path: path, precision: .nanoseconds)
            } catch {
                throw CaptureError(.notACaptureFile, input: input, call: error.call, message: error.message)
            }
            let start = clock.now
            do {
                if method == .pcapNextEx {
                    while let (header, _) = try handle.nextPacket() {
                        frames += 1
                        bytes += Int(header.caplen)
                    }
                } else {
                    (frames, bytes) = try countByDispatch(handle)
                }
            } catch {
                throw error.readFailure(input: input, framesRead: frames)
            }
            return RawReadMeasurement(method: method, frames: frames, bytes: bytes, duration: clock.now - start)
        case .captureFileReader:
            let reader = try CaptureFileReader(input)
            let start = clock.now
            try reader.forEachFrame { frame in
                frames += 1
                bytes += frame.bytes.count
            }
            return RawReadMeasurement(
                method: method,
                readerMethod: reader.method,
                frames: frames,
                bytes: bytes,
                duration: clock.now - start
            )
        }
    }

    private static func countByDispatch(_ handle: PcapHandle) throws(PcapError) -> (frames: Int, bytes: Int) {
        final class Counts {
            var frames = 0
            var bytes = 0
        }
        let counts = Counts()
        let callback: pcap_handler = { context, header, _ in
            let counts = Unmanaged<Counts>.fromOpaque(context!).takeUnretainedValue()
            counts.frames += 1
            counts.bytes += Int(header!.pointee.caplen)
        }
        let context = Unmanaged.passUnretained(counts).toOpaque()
        while try handle.dispatch(limit: 4096, context: context, to: callback) > 0 {}
        return withExtendedLifetime(counts) { (counts.frames, counts.bytes) }
    }
}

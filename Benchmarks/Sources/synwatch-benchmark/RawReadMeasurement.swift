import CBenchmarkPcap
import SynwatchCapture

/// How fast a capture file can be read when frames are only counted: the ceiling any engine run is compared with.
struct RawReadMeasurement: CustomStringConvertible {
    /// The reading loop measured.
    enum Method: String {
        /// libpcap's `pcap_next_ex` in a loop: the reference.
        case pcapNextEx = "pcap_next_ex"
        /// `CaptureFileReader`, memory-mapped when the file allows it, as the engine is fed.
        case captureFileReader = "CaptureFileReader"
    }

    /// A capture libpcap could not open or read to its end.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The loop measured.
    var method: Method
    /// For `captureFileReader`, the reader's own method (`mapped` or `libpcap`).
    var readerMethod: CaptureFileReader.Method?
    /// Frames counted.
    var frames: Int
    /// Captured bytes counted.
    var bytes: Int
    /// Time spent reading, after the file was opened.
    var duration: Duration

    /// Frames read per second.
    var framesPerSecond: Double {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds > 0 ? Double(frames) / seconds : 0
    }

    var description: String {
        let name = readerMethod.map { "\(method.rawValue) (\($0))" } ?? method.rawValue
        let rate = (framesPerSecond / 1e6 * 100).rounded() / 100
        return "\(name): \(frames) frames, \(bytes) bytes in \(duration): \(rate) M frames/s"
    }

    /// Reads every frame of the file at `path` with `method`, counting frames and captured bytes.
    /// - Throws: `Failure` or `CaptureError` if the file cannot be opened or read to its end.
    static func measure(_ path: String, method: Method) throws -> RawReadMeasurement {
        var frames = 0
        var bytes = 0
        let clock = ContinuousClock()
        switch method {
        case .pcapNextEx:
            var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard
                let handle = pcap_open_offline_with_tstamp_precision(
                    path,
                    UInt32(PCAP_TSTAMP_PRECISION_NANO),
                    &error
                )
            else {
                throw Failure(
                    description:
                        "\(path): \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
                )
            }
            defer { pcap_close(handle) }
            let start = clock.now
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            while true {
                let result = pcap_next_ex(handle, &header, &data)
                if result == 1, let header {
                    frames += 1
                    bytes += Int(header.pointee.caplen)
                } else if result == PCAP_ERROR_BREAK {
                    break
                } else {
                    throw Failure(description: "\(path): \(String(cString: pcap_geterr(handle)))")
                }
            }
            return RawReadMeasurement(method: method, frames: frames, bytes: bytes, duration: clock.now - start)
        case .captureFileReader:
            let reader = try CaptureFileReader(.file(path))
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
}

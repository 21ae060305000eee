@preconcurrency import Glibc
import CPcap
import SynwatchEngine

/// A failed libpcap call: its name and libpcap's message (`pcap_geterr` or the error buffer).
struct PcapError: Error {
    var call: String
    var message: String

    /// This failure while reading packets, after `framesRead` good ones, as a `CaptureError`.
    func readFailure(input: CaptureInput, framesRead: Int) -> CaptureError {
        // libpcap tells a short read from other failures only in its message.
        let reason: CaptureError.Reason = message.contains("truncated")
            ? .truncated(framesRead: framesRead) : .readFailed(framesRead: framesRead)
        return CaptureError(reason, input: input, call: call, message: message)
    }
}

/// The resolution libpcap delivers time stamps in.
enum TimestampPrecision: UInt32 {
    case microseconds = 0  // PCAP_TSTAMP_PRECISION_MICRO
    case nanoseconds = 1  // PCAP_TSTAMP_PRECISION_NANO
}

/// An open libpcap handle (`pcap_t`), closed with `pcap_close` when released.
///
/// Offline handles only for now; a live source will add `pcap_create`/`pcap_activate` constructors beside them.
final class PcapHandle {
    private let pcap: OpaquePointer
    /// The resolution of `pcap_pkthdr.ts.tv_usec` for this handle.
    let precision: TimestampPrecision

    private init(_ pcap: OpaquePointer) {
        self.pcap = pcap
        self.precision = TimestampPrecision(rawValue: UInt32(pcap_get_tstamp_precision(pcap))) ?? .microseconds
    }

    deinit {
        pcap_close(pcap)
    }

    /// Opens a pcap or pcapng file by path, delivering time stamps at `precision`.
    ///
    /// Wraps `pcap_open_offline_with_tstamp_precision`.
    static func openOffline(path: String, precision: TimestampPrecision) throws(PcapError) -> PcapHandle {
        let call = "pcap_open_offline_with_tstamp_precision"
        return try withErrorBuffer(call) { pcap_open_offline_with_tstamp_precision(path, precision.rawValue, $0) }
    }

    /// Reads a pcap or pcapng capture from an open stream, delivering time stamps at `precision`.
    ///
    /// Wraps `pcap_fopen_offline_with_tstamp_precision`. On success the handle owns `file` and closes it
    /// (libpcap leaves `stdin` open); on failure the caller still owns it.
    static func openOffline(
        file: UnsafeMutablePointer<FILE>, precision: TimestampPrecision
    ) throws(PcapError) -> PcapHandle {
        let call = "pcap_fopen_offline_with_tstamp_precision"
        return try withErrorBuffer(call) { pcap_fopen_offline_with_tstamp_precision(file, precision.rawValue, $0) }
    }

    private static func withErrorBuffer(
        _ call: String, _ open: (UnsafeMutablePointer<CChar>) -> OpaquePointer?
    ) throws(PcapError) -> PcapHandle {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let pcap = errorBuffer.withUnsafeMutableBufferPointer { open($0.baseAddress!) }
        guard let pcap else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw PcapError(call: call, message: message)
        }
        return PcapHandle(pcap)
    }

    /// The link-layer header type of the capture.
    ///
    /// Wraps `pcap_datalink`. libpcap maps file `LINKTYPE_` values to this system's `DLT_` values
    /// (`LINKTYPE_RAW` 101 becomes `DLT_RAW` 12 on Linux).
    var dataLinkType: DataLinkType {
        DataLinkType(rawValue: pcap_datalink(pcap))
    }

    /// How far libpcap has read into the capture stream, or `nil` where the stream cannot tell (a pipe).
    ///
    /// Wraps `pcap_file` and `ftello`, which counts what libpcap took from the stream, not stdio's read-ahead.
    var streamOffset: Int? {
        guard let file = pcap_file(pcap) else { return nil }
        let offset = ftello(file)
        return offset < 0 ? nil : Int(offset)
    }

    /// The next packet's header and data, valid until the next call; `nil` at the end of the capture.
    ///
    /// Wraps `pcap_next_ex`.
    @inline(__always)
    func nextPacket() throws(PcapError) -> (header: pcap_pkthdr, data: UnsafePointer<UInt8>)? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(pcap, &header, &data) {
        case 1:
            return (header!.pointee, data!)
        case -2:  // no more packets in the savefile
            return nil
        default:
            throw PcapError(call: "pcap_next_ex", message: lastError)
        }
    }

    /// Hands up to `limit` packets to a C callback with `context` as its user pointer; returns how many.
    ///
    /// Wraps `pcap_dispatch`; 0 means the end of a savefile.
    func dispatch(limit: Int32, context: UnsafeMutableRawPointer, to callback: pcap_handler) throws(PcapError) -> Int {
        let count = pcap_dispatch(pcap, limit, callback, context.assumingMemoryBound(to: UInt8.self))
        guard count >= 0 else { throw PcapError(call: "pcap_dispatch", message: lastError) }
        return Int(count)
    }

    /// The capture time in a packet header, scaled from this handle's precision to nanoseconds.
    @inline(__always)
    func timestamp(of header: pcap_pkthdr) -> Timestamp {
        let fraction = Int64(header.ts.tv_usec)
        let nanoseconds = precision == .nanoseconds ? fraction : fraction &* 1000
        return Timestamp(nanoseconds: Int64(header.ts.tv_sec) &* 1_000_000_000 &+ nanoseconds)
    }

    /// libpcap's message for the last failure on this handle.
    ///
    /// Wraps `pcap_geterr`.
    var lastError: String {
        String(cString: pcap_geterr(pcap))
    }
}

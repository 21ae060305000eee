import CPcap
@preconcurrency import Glibc
import SynwatchEngine

/// A failed libpcap call: its name, libpcap's message (`pcap_geterr` or the error buffer) and status code.
struct PcapError: Error {
    var call: String
    var message: String
    /// The call's `PCAP_ERROR_*` status, such as `PCAP_ERROR_NO_SUCH_DEVICE` from `pcap_activate`.
    var status: Int32 = PCAP_ERROR

    /// This failure while reading packets, after `framesRead` good ones, as a `CaptureError`.
    func readFailure(input: CaptureInput, framesRead: Int) -> CaptureError {
        // libpcap tells a short read from other failures only in its message.
        let reason: CaptureError.Reason =
            message.contains("truncated")
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
/// Offline handles read files; a live handle is made by `create(device:)`, configured, then activated.
final class PcapHandle {
    private let pcap: OpaquePointer
    /// The resolution of `pcap_pkthdr.ts.tv_usec` for this handle; a live handle knows it once activated.
    private(set) var precision: TimestampPrecision

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
        file: UnsafeMutablePointer<FILE>,
        precision: TimestampPrecision
    ) throws(PcapError) -> PcapHandle {
        let call = "pcap_fopen_offline_with_tstamp_precision"
        return try withErrorBuffer(call) { pcap_fopen_offline_with_tstamp_precision(file, precision.rawValue, $0) }
    }

    private static func withErrorBuffer(
        _ call: String,
        _ open: (UnsafeMutablePointer<CChar>) -> OpaquePointer?
    ) throws(PcapError) -> PcapHandle {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let pcap = errorBuffer.withUnsafeMutableBufferPointer { open($0.baseAddress!) }
        guard let pcap else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw PcapError(call: call, message: message)
        }
        return PcapHandle(pcap)
    }

    /// A live capture handle on `device` (`any` for all interfaces), still to be configured and activated.
    ///
    /// Wraps `pcap_create`, which only fails for an impossible name; a missing interface shows at `activate()`.
    static func create(device: String) throws(PcapError) -> PcapHandle {
        try withErrorBuffer("pcap_create") { pcap_create(device, $0) }
    }

    /// Checks the result of one of the `pcap_set_*` calls made before activation.
    private func configure(_ call: String, _ status: Int32) throws(PcapError) {
        guard status == 0 else { throw PcapError(call: call, message: message(for: status), status: status) }
    }

    /// Sets the most bytes kept of each packet. Wraps `pcap_set_snaplen`.
    func setSnapLength(_ bytes: Int) throws(PcapError) {
        try configure("pcap_set_snaplen", pcap_set_snaplen(pcap, Int32(clamping: bytes)))
    }

    /// Sets the kernel ring buffer's size. Wraps `pcap_set_buffer_size`.
    func setBufferSize(_ bytes: Int) throws(PcapError) {
        try configure("pcap_set_buffer_size", pcap_set_buffer_size(pcap, Int32(clamping: bytes)))
    }

    /// Sets how long the kernel may hold packets before handing a block over. Wraps `pcap_set_timeout`.
    func setBufferTimeout(milliseconds: Int) throws(PcapError) {
        try configure("pcap_set_timeout", pcap_set_timeout(pcap, Int32(clamping: milliseconds)))
    }

    /// Turns promiscuous mode on or off. Wraps `pcap_set_promisc`.
    func setPromiscuous(_ on: Bool) throws(PcapError) {
        try configure("pcap_set_promisc", pcap_set_promisc(pcap, on ? 1 : 0))
    }

    /// Asks for time stamps at `precision`; `false` when the interface cannot give it (the default stays).
    ///
    /// Wraps `pcap_set_tstamp_precision`.
    func requestTimestampPrecision(_ precision: TimestampPrecision) throws(PcapError) -> Bool {
        let status = pcap_set_tstamp_precision(pcap, Int32(precision.rawValue))
        if status == PCAP_ERROR_TSTAMP_PRECISION_NOTSUP { return false }
        try configure("pcap_set_tstamp_precision", status)
        return true
    }

    /// Starts capturing with the options set so far.
    ///
    /// Wraps `pcap_activate`. Warnings (such as `PCAP_WARNING_PROMISC_NOTSUP`) do not fail: the capture runs.
    func activate() throws(PcapError) {
        let status = pcap_activate(pcap)
        guard status >= 0 else { throw PcapError(call: "pcap_activate", message: message(for: status), status: status) }
        precision = TimestampPrecision(rawValue: UInt32(pcap_get_tstamp_precision(pcap))) ?? .microseconds
    }

    /// Makes `dispatch` return at once when no packet is ready instead of waiting. Wraps `pcap_setnonblock`.
    func setNonblocking() throws(PcapError) {
        try checkingErrorBuffer("pcap_setnonblock") { pcap_setnonblock(pcap, 1, $0) }
    }

    /// Whether filters go through `pcap_setfilter`: on cooked (`any`) captures, whose programs libpcap rewrites for
    /// the kernel, and once the kernel refused one (libpcap then filters in user space, with its own copy).
    private var filtersThroughLibpcap = false

    /// Compiles `expression` (optimised) and puts it on the capture's socket in place of the filter there, if any.
    ///
    /// The program replaces the old one in one `setsockopt(SO_ATTACH_FILTER)`, so no frame is lost meanwhile.
    /// `pcap_setfilter` first attaches a filter that rejects everything while it drains the socket: each change of a
    /// thinning filter during a storm silently lost that moment's frames (35 to 60 a change at the top replay speed
    /// here). Frames already in the ring are not held to the new filter: the engine reads any frame. The netmask is
    /// unknown, which only matters for `ip broadcast`.
    ///
    /// Wraps `pcap_compile` and `setsockopt`, or `pcap_setfilter` (see `filtersThroughLibpcap`).
    func setFilter(_ expression: String) throws(PcapError) {
        var program = bpf_program()
        guard pcap_compile(pcap, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw PcapError(call: "pcap_compile", message: lastError)
        }
        defer { pcap_freecode(&program) }
        let link = pcap_datalink(pcap)
        if !filtersThroughLibpcap, link != DLT_LINUX_SLL, link != DLT_LINUX_SLL2,
            let length = UInt16(exactly: program.bf_len), let instructions = program.bf_insns
        {
            // `bpf_insn` and the kernel's `sock_filter` are the same four fields.
            var socketProgram = sock_fprog(
                len: length,
                filter: UnsafeMutableRawPointer(instructions).assumingMemoryBound(to: sock_filter.self)
            )
            let size = socklen_t(MemoryLayout<sock_fprog>.size)
            if setsockopt(pcap_fileno(pcap), SOL_SOCKET, SO_ATTACH_FILTER, &socketProgram, size) == 0 { return }
        }
        filtersThroughLibpcap = true
        guard pcap_setfilter(pcap, &program) == 0 else { throw PcapError(call: "pcap_setfilter", message: lastError) }
    }

    /// The descriptor to `poll()` for readable packets. Wraps `pcap_get_selectable_fd`.
    func selectableDescriptor() throws(PcapError) -> Int32 {
        let descriptor = pcap_get_selectable_fd(pcap)
        guard descriptor >= 0 else { throw PcapError(call: "pcap_get_selectable_fd", message: lastError) }
        return descriptor
    }

    /// The capture's counters since it was activated. Wraps `pcap_stats`.
    func statistics() throws(PcapError) -> pcap_stat {
        var counters = pcap_stat()
        guard pcap_stats(pcap, &counters) == 0 else { throw PcapError(call: "pcap_stats", message: lastError) }
        return counters
    }

    /// libpcap's message for a failed status: the handle's own when it left one, else the status's description.
    private func message(for status: Int32) -> String {
        let own = lastError
        return own.isEmpty ? String(cString: pcap_statustostr(status)) : own
    }

    /// Calls a libpcap function that reports failure as -1 and a message in an error buffer.
    private func checkingErrorBuffer(_ call: String, _ body: (UnsafeMutablePointer<CChar>) -> Int32) throws(PcapError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let status = errorBuffer.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        guard status >= 0 else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw PcapError(call: call, message: message)
        }
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
    /// Wraps `pcap_dispatch`; 0 means the end of a savefile, or no packet ready on a non-blocking live handle.
    func dispatch(limit: Int32, context: UnsafeMutableRawPointer, to callback: pcap_handler) throws(PcapError) -> Int {
        let count = pcap_dispatch(pcap, limit, callback, context.assumingMemoryBound(to: UInt8.self))
        guard count >= 0 else { throw PcapError(call: "pcap_dispatch", message: lastError, status: count) }
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

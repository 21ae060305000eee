@preconcurrency import CPcap
@preconcurrency import Glibc
import SynwatchEngine
import SynwatchSystem
import SystemPackage

/// How a live capture is set up: the daemon configuration's `capture` keys.
public struct LiveCaptureOptions: Equatable, Sendable {
    /// Bytes kept of each packet: enough for Ethernet, two VLAN tags, IPv6 with a few extension headers and TCP.
    public var snapLength: Int
    /// The kernel ring buffer: room for a burst while the capture thread is busy (64 MiB of 128-byte snaps and
    /// their headers hold a few hundred thousand SYNs: a fraction of a second at 1 Mpps).
    public var bufferSize: Int
    /// How long the kernel may hold packets before handing a block over (`pcap_set_timeout`): latency against the
    /// cost of a wake-up per few packets (../shared/PLATFORM-NOTES.md measured immediate mode at about 18 % of a
    /// core at 149 k pps here, a 50–100 ms timeout at about 1 %; 10 ms cost no more than 100 ms at 20 k pps).
    public var bufferTimeout: Duration
    /// How long `readFrames` waits for traffic before it returns 0, so the caller ticks its timers at least as
    /// often even on a silent interface.
    public var idleInterval: Duration
    /// Whether to see frames not addressed to this host (needs `CAP_NET_ADMIN` too); off by default.
    public var promiscuous: Bool
    /// The BPF filter expression, compiled with optimisation; nil for `engineFilter(for:)` of the interface.
    public var filter: String?

    /// The filter that passes what the engine reads: TCP over IPv4 and IPv6, and on Ethernet also under one or
    /// two 802.1Q/802.1ad tags.
    ///
    /// On Ethernet it is nested rather than `tcp or (vlan and tcp) or (vlan and vlan and tcp)`: each `vlan` moves
    /// the offsets of every test after it in the whole expression, so that form never matches a double-tagged
    /// frame (checked on a veth). Linux cooked framing (`any`) has no `vlan` keyword; there the kernel has already
    /// moved a single tag into metadata, so `tcp` passes singly tagged frames too, but not QinQ (libpcap 1.10
    /// also rebuilds such frames wrongly on `any`: capture the interface itself). TCP behind IPv6 extension
    /// headers does not match: `ip6 protochain` needs a filter the kernel refuses, which would then run in user
    /// space on every packet.
    public static func engineFilter(for linkType: LinkType) -> String {
        engineFilter(for: linkType, tcp: "tcp")
    }

    /// `tcp`, a parenthesised test that implies TCP, at every depth of tagging that `linkType` is read at.
    static func engineFilter(for linkType: LinkType, tcp: String) -> String {
        linkType == .ethernet ? "\(tcp) or (vlan and (\(tcp) or (vlan and \(tcp))))" : tcp
    }

    /// Options with the daemon's defaults: 128-byte snap length, 64 MiB buffer, 10 ms buffer timeout, 100 ms
    /// idle interval, promiscuous mode off, `engineFilter(for:)`.
    public init(
        snapLength: Int = 128,
        bufferSize: Int = 64 << 20,
        bufferTimeout: Duration = .milliseconds(10),
        idleInterval: Duration = .milliseconds(100),
        promiscuous: Bool = false,
        filter: String? = nil
    ) {
        self.snapLength = snapLength
        self.bufferSize = bufferSize
        self.bufferTimeout = bufferTimeout
        self.idleInterval = idleInterval
        self.promiscuous = promiscuous
        self.filter = filter
    }
}

/// The kernel's counters of a live capture since it was opened (`pcap_stats`).
///
/// libpcap keeps them as 32-bit counters on Linux: they wrap after 4 G packets, so compare successive readings
/// modulo 2³².
public struct CaptureStatistics: Equatable, Sendable {
    /// Packets that passed the filter (`ps_recv`), including those then dropped for want of buffer space.
    public var received: UInt32
    /// Packets dropped because the ring buffer was full (`ps_drop`): the capture fell behind.
    public var dropped: UInt32
    /// Packets the interface or its driver dropped (`ps_ifdrop`), whether or not they would have passed the filter.
    public var interfaceDropped: UInt32

    /// Counters with the given values.
    public init(received: UInt32, dropped: UInt32, interfaceDropped: UInt32) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
    }
}

/// Captures frames from a network interface (or `any`) through libpcap, for the engine.
///
/// The handle is non-blocking (a blocking `pcap_dispatch` can wait forever on a silent interface): `readFrames`
/// dispatches what the kernel has ready and, when nothing is, waits in `poll()` on libpcap's descriptor and the
/// stop signal's pipe, for at most `options.idleInterval`. So every call returns within about that interval,
/// with 0 frames if none came, which gives the caller its chance to tick windows and the watchdog; it returns
/// `nil`, at once, once `stopSignal` is raised from any thread. Frames point into libpcap's ring buffer, valid
/// until `body` returns: nothing is copied or allocated per frame, and `body` runs on the calling thread.
///
/// ```swift
/// let capture = try LiveCapture(interface: "eth0")
/// while try capture.readFrames(upTo: 4096, { engine.process($0) }) != nil {
///     tick()  // at least every `idleInterval`, with or without traffic
/// }
/// // another thread: capture.stopSignal.stop()
/// ```
///
/// A capture belongs to the one thread that reads it (not `Sendable`); only `stopSignal` crosses threads.
public final class LiveCapture: FrameSource {
    /// The interface captured, as `CaptureInput.interface`.
    public let input: CaptureInput
    /// The interface's name, or `any`.
    public let interface: String
    /// The options the capture was opened with.
    public let options: LiveCaptureOptions
    /// The link-layer type of every frame: Ethernet on an Ethernet interface, Linux cooked v1 or v2 on `any`.
    public let linkType: LinkType
    /// Whether frames carry nanosecond time stamps (else microseconds, when the interface cannot give them).
    public let hasNanosecondTimestamps: Bool
    /// The BPF filter installed: the options' at first, then the last one `setFilter` installed.
    public private(set) var filter: String
    /// Raise it, from any thread, to make `readFrames` return `nil` at once.
    public let stopSignal: CaptureStopSignal
    /// Frames delivered so far.
    public private(set) var framesRead = 0
    /// The fanout group this capture takes its share of the flows in, if any.
    public let fanout: CaptureFanout?

    private let handle: PcapHandle
    private let packetDescriptor: Int32
    /// Frames stamped before the capture was set up (nanoseconds, the realtime clock) are left: from its activation
    /// until its filter was on, the socket took frames the filter does not pass, and until it joined its fanout
    /// group, a copy of every frame, which the group's members took too. Such copies would pose as retransmissions.
    /// `.min` once the check has stopped.
    private var setUpAt: Int64 = .min
    /// When leaving frames by their stamps stops (what came before comes within a block time-out): a realtime clock
    /// stepped back cannot keep the capture from delivering.
    private var setUpCheckedUntil = ContinuousClock.now
    /// Later reads throw the same error again: a dead handle stays dead.
    private var failure: CaptureError?

    /// Opens and activates a capture on `interface`.
    ///
    /// - Parameters:
    ///   - interface: an interface name, or `any` for all interfaces (Linux cooked framing).
    ///   - options: snap length, buffer, time-outs, promiscuous mode and filter.
    ///   - stopSignal: the signal that stops this capture; nil makes a new one.
    ///   - fanout: the group whose share of the interface's flows this capture takes; nil for every flow.
    /// - Throws: `CaptureError` with reason `noSuchInterface` (naming the interface), `permissionDenied` (without
    ///   `CAP_NET_RAW`; the call is `pcap_activate`), `captureSetupFailed` (an option, the filter, joining the
    ///   fanout group, or an interface that is down), or `unsupportedLinkType`.
    public init(
        interface: String,
        options: LiveCaptureOptions = LiveCaptureOptions(),
        stopSignal: CaptureStopSignal? = nil,
        fanout: CaptureFanout? = nil
    ) throws(CaptureError) {
        let input = CaptureInput.interface(interface)
        self.input = input
        self.interface = interface
        self.options = options
        if let stopSignal {
            self.stopSignal = stopSignal
        } else {
            do {
                self.stopSignal = try CaptureStopSignal()
            } catch {
                throw CaptureError(.captureSetupFailed, input: input, call: error.call, message: error.message)
            }
        }
        do {
            handle = try PcapHandle.create(device: interface)
            try handle.setSnapLength(options.snapLength)
            try handle.setBufferSize(options.bufferSize)
            try handle.setBufferTimeout(milliseconds: options.bufferTimeout.timeoutMilliseconds)
            try handle.setPromiscuous(options.promiscuous)
            // Without nanosecond support the capture still runs, in microseconds.
            _ = try handle.requestTimestampPrecision(.nanoseconds)
            try handle.activate()
        } catch {
            throw CaptureError(Self.setupReason(error), input: input, call: error.call, message: error.message)
        }
        let dataLinkType = handle.dataLinkType
        guard let linkType = dataLinkType.linkType else {
            throw CaptureError(
                .unsupportedLinkType(dataLinkType),
                input: input,
                call: "pcap_datalink",
                message: "link-layer type \(dataLinkType) is not decoded"
            )
        }
        self.linkType = linkType
        filter = options.filter ?? LiveCaptureOptions.engineFilter(for: linkType)
        hasNanosecondTimestamps = handle.precision == .nanoseconds
        self.fanout = fanout
        do {
            try handle.setNonblocking()
            packetDescriptor = try handle.selectableDescriptor()
        } catch {
            throw CaptureError(Self.setupReason(error), input: input, call: error.call, message: error.message)
        }
        // The filter before the join: on `any`, libpcap installs it by rejecting everything for a moment, which must
        // not be the group's share.
        do {
            try handle.setFilter(filter)
        } catch {
            throw CaptureError(Self.setupReason(error), input: input, call: error.call, message: error.message)
        }
        do {
            try fanout?.join(packetDescriptor)
        } catch {
            throw CaptureError(.captureSetupFailed, input: input, call: error.call, message: error.message)
        }
        // Read after the join: a reading before it would let the copies of the moment the join takes through twice,
        // this one leaves the socket's own share of that moment (a handful of frames at a storm's top speed here).
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        setUpAt = Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
        setUpCheckedUntil = .now + .seconds(1)
    }

    /// A new capture on the same interface with the same options, stop signal and fanout group, for when this one
    /// reported `interfaceGone`: the daemon retries it until the interface is back (it then throws
    /// `noSuchInterface` or `captureSetupFailed`).
    ///
    /// - Throws: `CaptureError`, as `init` does.
    public func reopened() throws(CaptureError) -> LiveCapture {
        try LiveCapture(interface: interface, options: options, stopSignal: stopSignal, fanout: fanout)
    }

    /// Replaces the kernel filter, such as with `LiveCaptureOptions.engineFilter(for:thinning:sampling:)` when the
    /// services to thin change: in one step, so no frame is lost meanwhile (but on `any`, where libpcap installs it).
    /// Frames already in the ring buffer passed the old filter. `reopened()` starts again from the options' filter.
    ///
    /// - Throws: `CaptureError` with reason `captureSetupFailed` when libpcap cannot compile or install the
    ///   expression; the previous filter then stays installed, and the capture goes on.
    public func setFilter(_ expression: String) throws(CaptureError) {
        do {
            try handle.setFilter(expression)
        } catch {
            throw CaptureError(Self.setupReason(error), input: input, call: error.call, message: error.message)
        }
        filter = expression
    }

    /// Hands the frames ready, up to `limit`, to `body`, waiting at most `options.idleInterval` for the first.
    ///
    /// - Returns: the number of frames delivered, 0 when none came within the interval, or `nil` once
    ///   `stopSignal` is raised.
    /// - Throws: `CaptureError` with reason `interfaceGone` when the interface disappeared, or `readFailed`; after
    ///   a failure every call throws it again. An interface that is only down delivers nothing until it is up.
    public func readFrames(upTo limit: Int, _ body: (Frame) -> Void) throws(CaptureError) -> Int? {
        try readFrames(upTo: limit, timeout: options.idleInterval, body)
    }

    /// Hands the frames ready, up to `limit`, to `body`, waiting at most `timeout` for the first.
    ///
    /// - Parameters:
    ///   - limit: the most frames to deliver (at least 1).
    ///   - timeout: the longest wait when no frame is ready; the call may return up to a millisecond later.
    ///   - body: called once per frame, on the calling thread.
    /// - Returns: the number of frames delivered, 0 when none came in time, or `nil` once `stopSignal` is raised.
    /// - Throws: `CaptureError` with reason `interfaceGone` or `readFailed`; later calls throw it again.
    public func readFrames(upTo limit: Int, timeout: Duration, _ body: (Frame) -> Void) throws(CaptureError) -> Int? {
        try waitForFrames(timeout: timeout) { () throws(CaptureError) in try dispatch(upTo: limit, body) }
    }

    /// Decodes the frames ready, as many as `batch` holds, with `decoder` into `batch` from its start, waiting at
    /// most `timeout` for the first; `batch.count` says how many, also when the read fails part-way.
    /// `readFrames(upTo:timeout:_:)` without a closure, whose context the C callback would retain and release
    /// for every frame (a sixth of the daemon's samples in `perf record` at 1 M packets/s).
    /// - Returns: the frames decoded, 0 when none came in time, or `nil` once `stopSignal` is raised.
    /// - Throws: `CaptureError` with reason `interfaceGone` or `readFailed`; later calls throw it again.
    public func readFrames<Note>(
        timeout: Duration,
        decodingInto batch: DecodedBatchRing<Note>.Batch,
        with decoder: FrameDecoder
    ) throws(CaptureError) -> Int? {
        batch.count = 0
        return try waitForFrames(timeout: timeout) { () throws(CaptureError) in
            try dispatch(upTo: batch.capacity, decodingInto: batch.frames, with: decoder) { batch.count = $0 }
        }
    }

    /// Runs `dispatch` at once, then each time the socket is readable, until it gives frames or `timeout` passes.
    private func waitForFrames(
        timeout: Duration,
        _ dispatch: () throws(CaptureError) -> Int
    ) throws(CaptureError) -> Int? {
        if let failure { throw failure }
        if stopSignal.isRaised { return nil }
        if setUpAt != .min && ContinuousClock.now > setUpCheckedUntil { setUpAt = .min }
        let count = try dispatch()
        if count > 0 { return count }

        let deadline = ContinuousClock.now + timeout
        var descriptors = [
            pollfd(fd: packetDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stopSignal.descriptor.rawValue, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let remaining = (deadline - ContinuousClock.now).timeoutMilliseconds
            if remaining <= 0 { return 0 }
            do {
                _ = try SystemCall.checked("poll", retryOnInterrupt: false) {
                    poll(&descriptors, 2, Int32(clamping: remaining))
                }
            } catch  where error.errno == .interrupted {
                // A signal (SIGHUP for a reload) only shortens the wait.
                continue
            } catch {
                throw fail(.readFailed(framesRead: framesRead), call: error.call, message: error.message)
            }
            if stopSignal.isRaised { return nil }
            let events = descriptors[0].revents
            guard events != 0 else { continue }
            let count = try dispatch()
            if count > 0 { return count }
            if events & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { try checkSocketError(events) }
        }
    }

    /// Clears an error condition that libpcap left on its socket, so `poll()` does not wake at once forever, and
    /// throws it unless it is `ENETDOWN`.
    ///
    /// libpcap 1.10 itself takes `ENETDOWN` (the interface is down) as no error: the kernel hooks the socket up
    /// again when the interface comes back, and the capture resumes. A vanished interface is `ENODEV`/`ENXIO`.
    /// Wraps `getsockopt(SO_ERROR)`.
    private func checkSocketError(_ events: Int16) throws(CaptureError) {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(packetDescriptor, SOL_SOCKET, SO_ERROR, &code, &length) != 0 { code = errno }
        if events & Int16(POLLHUP | POLLNVAL) != 0 {
            throw fail(.interfaceGone(framesRead: framesRead), call: "poll", message: "hang-up on the packet socket")
        }
        guard code != 0 && code != ENETDOWN else { return }
        let reason: CaptureError.Reason =
            code == ENODEV || code == ENXIO
            ? .interfaceGone(framesRead: framesRead) : .readFailed(framesRead: framesRead)
        throw fail(reason, call: "getsockopt(SO_ERROR)", message: String(cString: strerror(code)))
    }

    /// The kernel's counters since the capture was opened.
    ///
    /// - Throws: `CaptureError` with reason `readFailed`, naming `pcap_stats`.
    public func statistics() throws(CaptureError) -> CaptureStatistics {
        do {
            let counters = try handle.statistics()
            return CaptureStatistics(
                received: counters.ps_recv,
                dropped: counters.ps_drop,
                interfaceDropped: counters.ps_ifdrop
            )
        } catch {
            throw CaptureError(
                .readFailed(framesRead: framesRead),
                input: input,
                call: error.call,
                message: error.message
            )
        }
    }

    /// What the C callback needs, on the stack of `dispatch` for one batch.
    private struct DispatchContext {
        var body: (Frame) -> Void
        var framing: Framing
        var count: Int
    }

    /// What the decoding C callback needs: where the frames go, and no closure.
    private struct DecodingContext {
        var frames: UnsafeMutablePointer<DecodedFrame>
        var decoder: FrameDecoder
        var framing: Framing
        var count: Int
    }

    /// How libpcap's records become frames, for the C callbacks.
    private struct Framing {
        var linkType: LinkType
        /// Nanoseconds per unit of `ts.tv_usec`.
        var fractionScale: Int64
        var setUpAt: Int64

        /// The frame libpcap hands a callback; nil for one stamped before the capture was set up.
        @inline(__always)
        func frame(_ header: UnsafePointer<pcap_pkthdr>?, _ data: UnsafePointer<UInt8>?) -> Frame? {
            let header = header!.pointee
            let nanoseconds = Int64(header.ts.tv_sec) &* 1_000_000_000 &+ Int64(header.ts.tv_usec) &* fractionScale
            guard nanoseconds >= setUpAt else { return nil }
            let bytes = UnsafeRawBufferPointer(start: data, count: Int(header.caplen))
            return Frame(
                time: Timestamp(nanoseconds: nanoseconds),
                linkType: linkType,
                bytes: bytes,
                wireLength: Int(header.len)
            )
        }
    }

    private var framing: Framing {
        Framing(
            linkType: linkType,
            fractionScale: hasNanosecondTimestamps ? 1 : 1000,
            setUpAt: setUpAt
        )
    }

    /// One non-blocking `pcap_dispatch`: the frames ready now, up to `limit`.
    private func dispatch(upTo limit: Int, _ body: (Frame) -> Void) throws(CaptureError) -> Int {
        let callback: pcap_handler = { user, header, data in
            let context = UnsafeMutableRawPointer(user!).assumingMemoryBound(to: DispatchContext.self)
            guard let frame = context.pointee.framing.frame(header, data) else { return }
            context.pointee.body(frame)
            context.pointee.count += 1
        }
        let framing = self.framing
        return try withoutActuallyEscaping(body) { body throws(CaptureError) in
            var context = DispatchContext(body: body, framing: framing, count: 0)
            return try dispatch(upTo: limit, context: &context, callback) { $0.count }
        }
    }

    /// One non-blocking `pcap_dispatch` decoding into `frames`, which hold `limit`; `decoded` is told how many.
    private func dispatch(
        upTo limit: Int,
        decodingInto frames: UnsafeMutablePointer<DecodedFrame>,
        with decoder: FrameDecoder,
        decoded: (Int) -> Void
    ) throws(CaptureError) -> Int {
        let callback: pcap_handler = { user, header, data in
            let context = UnsafeMutableRawPointer(user!).assumingMemoryBound(to: DecodingContext.self)
            guard let frame = context.pointee.framing.frame(header, data) else { return }
            context.pointee.frames[context.pointee.count] = context.pointee.decoder.decode(frame)
            context.pointee.count += 1
        }
        var context = DecodingContext(frames: frames, decoder: decoder, framing: framing, count: 0)
        return try dispatch(upTo: limit, context: &context, callback) { context in
            decoded(context.count)
            return context.count
        }
    }

    /// `pcap_dispatch` with `context` for `callback`; the frames it delivered (`delivered`, without those left)
    /// count as read, also when it fails part-way.
    /// - Returns: the frames delivered.
    private func dispatch<Context>(
        upTo limit: Int,
        context: inout Context,
        _ callback: pcap_handler,
        delivered: (Context) -> Int
    ) throws(CaptureError) -> Int {
        let result = withUnsafeMutablePointer(to: &context) { pointer in
            Result { () throws(PcapError) in
                try handle.dispatch(
                    limit: Int32(clamping: max(1, limit)),
                    context: UnsafeMutableRawPointer(pointer),
                    to: callback
                )
            }
        }
        let count = delivered(context)
        framesRead += count
        switch result {
        case .success:
            return count
        case .failure(let error):
            throw fail(Self.readReason(error, framesRead: framesRead), call: error.call, message: error.message)
        }
    }

    /// Records a read failure, so later calls throw it again, and returns it.
    private func fail(_ reason: CaptureError.Reason, call: String, message: String) -> CaptureError {
        let error = CaptureError(reason, input: input, call: call, message: message)
        failure = error
        return error
    }

    /// The reason for a failure while opening.
    private static func setupReason(_ error: PcapError) -> CaptureError.Reason {
        switch error.status {
        case PCAP_ERROR_NO_SUCH_DEVICE: .noSuchInterface
        case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED: .permissionDenied
        default: .captureSetupFailed
        }
    }

    /// The reason for a failed `pcap_dispatch`: libpcap tells a lost interface from other errors only in its
    /// message ("The interface disappeared", "Hangup on packet socket", or "The interface went down" in
    /// versions that give up on a downed interface).
    private static func readReason(_ error: PcapError, framesRead: Int) -> CaptureError.Reason {
        let lost = ["went down", "disappeared", "Hangup", "No such device", "Network is down"]
        return lost.contains { error.message.contains($0) }
            ? .interfaceGone(framesRead: framesRead) : .readFailed(framesRead: framesRead)
    }
}

@available(*, unavailable, message: "a capture belongs to the thread that reads it; share its stopSignal instead")
extension LiveCapture: Sendable {}

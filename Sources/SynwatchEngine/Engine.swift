import CPrefetch

/// The detection engine: frames and their capture timestamps in, events out.
///
/// It follows every TCP handshake (SYN, SYN-ACK, completing ACK, RST, time-out), then each completed
/// connection through its close as the server's kernel sees it, keeps sliding windows per victim
/// service and per source, and decides when floods start and end. Its only
/// clock is the capture time of the frames it is given (and of `advance(to:)` when traffic stops),
/// so a capture replayed through it gives the same events every time. Every table is bounded by
/// the configuration. Not thread-safe: one capture loop owns one engine.
///
/// Its jobs, one folder each: `Clock` (capture time in steps and epochs), `Handshakes` (SYN to completion),
/// `Connections` (completion to close), `Tracking` (the bounded tables, what enters them and what they drop),
/// `Detection` (decisions and events once a step), `Reports` (what it tells when asked), `Configuration`.
public final class Engine {
    public private(set) var configuration: EngineConfiguration

    let hasher: KeyedHasher
    /// Which clients of a service under a spoofed storm are followed; its multiplier is drawn from the hash seed.
    public let clientSampling: ClientSampling
    /// The services thinned by client now (the detector's list, updated once a step).
    @exclusivity(unchecked) public private(set) var thinned: [SampledService] = []
    let handshakes: HandshakeTable
    let victims: VictimTable
    let sources: SourceTable
    let backscatter: BackscatterTable
    let connections: ConnectionTable
    var admission: SourceAdmission

    var clock: StepClock
    var settings: DerivedSettings

    var counters = EngineStatistics()
    let outcomeCounts: UnsafeMutablePointer<Int>
    var detector = Detector()
    /// The kernel's latest reading, when the daemon feeds it.
    var kernel: KernelObservation?
    /// Capture time of the input's end (`finish()`), before the last attempts were let pass their deadline.
    var inputEnd: Int64?
    /// Completion delays of every service's handshakes: the grace of services not yet learnt.
    let linkDelays: UnsafeMutablePointer<UInt16>

    /// Creates an engine with empty tables of the configured capacities.
    /// - Throws: `ConfigurationProblem` when the configuration cannot work.
    public init(configuration: EngineConfiguration = EngineConfiguration()) throws(ConfigurationProblem) {
        try configuration.validate()
        self.configuration = configuration
        hasher = KeyedHasher(seed: configuration.hashSeed)
        clientSampling = ClientSampling(seed: configuration.hashSeed)
        let windows = configuration.windows
        let resolution = windows.resolution.nanoseconds
        clock = StepClock(resolution: resolution, epochLength: max(resolution, windows.sources.nanoseconds / 2))
        // The rate window, the steps attempts mature in ahead of now, and the retransmission deadline behind it.
        let ringLength = Int(
            (windows.rate.nanoseconds + windows.completionGraceCeiling.nanoseconds
                + configuration.handshakes.retransmissionDeadline.nanoseconds) / resolution + 3
        )
        handshakes = HandshakeTable(capacity: configuration.handshakes.capacity, hasher: hasher)
        victims = VictimTable(capacity: configuration.victims.capacity, ringLength: ringLength, hasher: hasher)
        sources = SourceTable(capacity: configuration.sources.capacity)
        backscatter = BackscatterTable(capacity: configuration.backscatter.capacity)
        connections = ConnectionTable(capacity: configuration.connections.capacity)
        admission = SourceAdmission(maximumAge: windows.sources)
        outcomeCounts = .allocate(capacity: DecodeOutcome.allCases.count)
        outcomeCounts.initialize(repeating: 0, count: DecodeOutcome.allCases.count)
        linkDelays = .allocate(capacity: DelayHistogram.storage)
        linkDelays.initialize(repeating: 0, count: DelayHistogram.storage)
        settings = DerivedSettings(configuration, handshakes: handshakes, connections: connections)
        // Filled on the packet path, which allocates nothing.
        detector.scanCandidates.reserveCapacity(Detector.maximumScanCandidates)
    }

    deinit {
        outcomeCounts.deallocate()
        linkDelays.deallocate()
        admission.deallocate()
    }

    /// Applies a new configuration without losing what the engine has learnt (a reload).
    ///
    /// Thresholds, time-outs and notice settings take effect at once. Capacities and the shape of the
    /// windows fix the layout of the tables: they keep their running values until a restart.
    /// - Returns: the keys whose new values wait for a restart.
    /// - Throws: `ConfigurationProblem` when the new configuration cannot work; nothing changes then.
    @discardableResult
    public func reconfigure(_ new: EngineConfiguration) throws(ConfigurationProblem) -> [String] {
        try new.validate()
        var applied = new
        var deferred: [String] = []
        func keep<Value: Equatable>(_ path: WritableKeyPath<EngineConfiguration, Value>, _ key: String?) {
            guard applied[keyPath: path] != configuration[keyPath: path] else { return }
            applied[keyPath: path] = configuration[keyPath: path]
            if let key { deferred.append(key) }
        }
        keep(\.handshakes.capacity, "handshakes.capacity")
        keep(\.victims.capacity, "victims.capacity")
        keep(\.sources.capacity, "sources.capacity")
        keep(\.backscatter.capacity, "backscatter.capacity")
        keep(\.connections.capacity, "connections.capacity")
        keep(\.windows.resolution, "windows.resolution")
        keep(\.windows.rate, "windows.rate")
        keep(\.windows.sources, "windows.sources")
        keep(\.windows.completionGraceCeiling, "windows.completion_grace_ceiling")
        keep(\.handshakes.retransmissionDeadline, "handshakes.retransmission_deadline")
        // The hash seed is the daemon's, drawn at start, never the file's.
        keep(\.hashSeed, nil)
        configuration = applied
        settings = DerivedSettings(applied, handshakes: handshakes, connections: connections)
        return deferred
    }

    // MARK: Input

    /// Feeds one captured frame.
    /// - Complexity: O(1) amortized; allocates nothing unless an event is raised.
    public func process(_ frame: Frame) {
        // Handlers take it `inout`, by address: a copy of the freshly decoded segment per packet costs a tenth of
        // the SYN path (its loads wait on the decoder's narrower stores).
        var segment = TCPSegment.empty
        let outcome = PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment)
        dispatch(&segment, outcome, time: frame.time.nanoseconds, wireLength: frame.wireLength, keyHashes: nil)
    }

    /// Decodes frames for this engine on another thread, for `process(decoded:count:)`.
    public var frameDecoder: FrameDecoder { FrameDecoder(hasher: hasher, sampling: clientSampling) }

    /// Feeds `count` frames decoded by another thread, in order and in place: the same work as `process(_:)` on
    /// each after its decoding.
    ///
    /// Meanwhile it prefetches the entry that the frame a few frames ahead will look up, which the handshakes written
    /// since have pushed out of the cache: a SYN's source (a flood from many real hosts makes every SYN count on its
    /// source; a sixth less time on such a flood) and a SYN-ACK's handshake (the server's answers to a flood whose
    /// attempts it tracks; a fifth to a quarter less on a single-source flood). A spoofed storm thinned by client
    /// never reaches the source table, and most of its SYN-ACKs stop before the handshake table: there the prefetch
    /// would only slow it down.
    public func process(decoded frames: UnsafeMutablePointer<DecodedFrame>, count: Int) {
        let prefetching = thinned.isEmpty
        for index in 0..<count {
            let ahead = index &+ Self.prefetchDistance
            if prefetching && ahead < count { prefetchEntry(for: frames + ahead) }
            let frame = frames + index
            let hashes = frame.pointee.keyHashes
            dispatch(
                &frame.pointee.segment,
                frame.pointee.outcome,
                time: frame.pointee.time,
                wireLength: frame.pointee.wireLength,
                // None for a SYN the decoder expected to be thinned out (`FrameDecoder.thinned`).
                keyHashes: hashes.handshake.hash == 0 ? nil : hashes
            )
        }
    }

    /// Frames between a prefetch and the frame's work (4 and 16 measured the same for sources).
    static let prefetchDistance = 8

    /// Asks for the entry a SYN (its source's) or a SYN-ACK (its handshake's) will look up, when the table holds
    /// one; nothing for other frames.
    @inline(__always)
    func prefetchEntry(for frame: UnsafeMutablePointer<DecodedFrame>) {
        let hashes = frame.pointee.keyHashes
        if hashes.source != 0 {
            guard let slot = sources.slots.find(hash: hashes.source, matches: { _ in true }) else { return }
            // An entry spans two cache lines at most: those of its first and its last byte.
            let entry = UnsafeRawPointer(sources.entries.pointer(slot))
            synwatch_prefetch(entry)
            synwatch_prefetch(entry + MemoryLayout<SourceEntry>.stride - 1)
        } else if hashes.handshake.hash != 0 {
            // Entries are 32 bytes, aligned: one cache line.
            guard let slot = handshakes.slots.find(hash: hashes.handshake.hash, matches: { _ in true }) else { return }
            synwatch_prefetch(handshakes.entries.pointer(slot))
        }
    }

    @inline(__always)
    func dispatch(
        _ segment: inout TCPSegment,
        _ outcome: DecodeOutcome,
        time: Int64,
        wireLength: Int,
        keyHashes: KeyHashes?
    ) {
        counters.frames &+= 1
        counters.bytes &+= wireLength
        outcomeCounts[Int(outcome.rawValue)] &+= 1
        advanceClock(to: time)
        guard outcome == .tcp else { return }
        let flags = segment.flags
        if flags.contains(.rst) {
            handleReset(&segment)
        } else if flags.contains(.syn) {
            if flags.contains(.ack) {
                handleSynAck(&segment, keyHashes)
            } else {
                handleSyn(&segment, keyHashes)
            }
        } else {
            if flags.contains(.ack) { handleAck(&segment) }
            if flags.contains(.fin) { handleFin(&segment) }
        }
    }

    /// Moves capture time forward without traffic, so windows slide and attacks can end while
    /// the link is silent. Times in the past are ignored.
    public func advance(to time: Timestamp) {
        guard clock.hasStarted else { return }
        advanceClock(to: time.nanoseconds)
    }

    /// Ends the input: lets the last handshakes mature, then ends attacks still going on.
    public func finish() {
        guard clock.hasStarted else { return }
        let end = inputEnd ?? clock.now
        inputEnd = end
        // Every attempt has matured and passed its retransmission deadline.
        advanceClock(to: clock.now + settings.retransmissionDeadline + 3 * clock.resolution)
        let inputs = detectorInputs
        withDetector { detector, _ in
            for slot in 0..<victims.slots.capacity
            where victims.slots.isOccupied(slot) && victims.states[slot].phase == .attacked {
                detector.endAttack(slot, at: clock.now, reason: .captureEnd, lastSeen: end, inputs)
            }
            detector.thinned = []
        }
        thinned = []
    }

    // MARK: Output

    /// Whether events are waiting in `takeEvents()`.
    public var hasEvents: Bool { !detector.pendingEvents.isEmpty }

    /// The events raised since the last call, in capture-time order.
    public func takeEvents() -> [Event] {
        defer { detector.pendingEvents.removeAll(keepingCapacity: true) }
        return detector.pendingEvents
    }

    // MARK: Steps

    /// Moves the clock forward, running the steps that ended.
    @inline(__always)
    func advanceClock(to time: Int64) {
        if let step = clock.advance(to: min(max(time, 0), Self.latestTime)) { runSteps(to: step) }
    }

    /// The latest capture time the engine computes with (2^62 ns, in the year 2116). Times of a damaged capture
    /// before the epoch count as the epoch and later ones as this, so that steps are never negative (a negative
    /// step would index a victim's ring before its start) and time arithmetic never overflows.
    static let latestTime: Int64 = 1 << 62

    /// Runs the detector once per resolution step up to `step`; after a long silence, only as many
    /// steps as it takes for every window to empty.
    func runSteps(to step: Int64) {
        let last = min(step, clock.step + settings.settleSteps)
        var next = clock.step + 1
        while next <= last {
            tick(step: next)
            next += 1
        }
        if last < step {
            tick(step: step)
            // Every attempt and TIME_WAIT that ran out during the silence ends now, not a slice a step later.
            sweepTimeouts(at: step * clock.resolution, buckets: .max)
            sweepConnections(at: step * clock.resolution, buckets: .max)
        }
        clock.settle(at: step)
    }

    /// One resolution step: time-outs, then a decision for every tracked service, then scans.
    func tick(step: Int64) {
        let time = step * clock.resolution
        // The step and its own sources epoch: after a silence, `settle` comes only once every step has run.
        clock.enter(step)
        sweepTimeouts(at: time, buckets: settings.handshakeSweepBuckets)
        sweepConnections(at: time, buckets: settings.connectionSweepBuckets)
        let inputs = detectorInputs
        withDetector { detector, counters in detector.tick(step: step, time: time, inputs, counters: &counters) }
        if detector.thinned != thinned { thinned = detector.thinned }
    }

    /// The shift a SYN to `address` and `port` is thinned at by client: its service's or its host's, 0 for none.
    @inline(__always)
    func thinningShift(_ address: IPAddress, port: UInt16) -> UInt8 {
        // Empty except during a spoofed storm: then most SYNs and SYN-ACKs stop at this test.
        guard !thinned.isEmpty else { return 0 }
        return thinned.shift(of: address, port: port)
    }

    /// Runs `body` on the detector and the counters taken out of the engine, then puts them back. An access to
    /// the engine's own properties held across the detector's work would keep the optimizer from dropping the
    /// run-time exclusivity checks of every access to them, those of the packet path included.
    @inline(__always)
    func withDetector(_ body: (inout Detector, inout EngineStatistics) -> Void) {
        var taken = Detector()
        swap(&taken, &detector)
        var counts = counters
        body(&taken, &counts)
        counters = counts
        swap(&taken, &detector)
    }

    /// What the detector reads, as it stands now.
    var detectorInputs: DetectorInputs {
        DetectorInputs(
            configuration: configuration,
            settings: settings,
            clock: clock,
            hasher: hasher,
            victims: victims,
            sources: sources,
            backscatter: backscatter,
            linkDelays: linkDelays,
            kernel: kernel
        )
    }

}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The detection engine: frames and their capture timestamps in, events out.
///
/// It follows every TCP handshake (SYN, SYN-ACK, completing ACK, RST, time-out), then each completed
/// connection through its close as the server's kernel sees it, keeps sliding windows per victim
/// service and per source, and decides when floods start and end. Its only
/// clock is the capture time of the frames it is given (and of `advance(to:)` when traffic stops),
/// so a capture replayed through it gives the same events every time. Every table is bounded by
/// the configuration. Not thread-safe: one capture loop owns one engine.
public final class Engine {
    public private(set) var configuration: EngineConfiguration

    let hasher: KeyedHasher
    let handshakes: HandshakeTable
    let victims: VictimTable
    let sources: SourceTable
    let backscatter: BackscatterTable
    let connections: ConnectionTable
    var admission: SourceAdmission

    // Configuration in the units the per-packet path uses.
    let resolution: Int64
    let epochLength: Int64
    var timeout: Int64 = 0
    var scanCandidateBits = 0
    var retransmissionDeadline: Int64 = 0
    /// Steps from the one an attempt matures in to one by which it surely passed its retransmission
    /// deadline: its SYN came at least one grace floor before the end of its maturity step.
    var deadlineSteps: Int64 = 0
    var sweepBuckets = 0
    var connectionSweepBuckets = 0
    /// Steps after which an idle engine has nothing left to decide: longer gaps are skipped.
    var settleSteps: Int64 = 0
    /// Weight of one step's measurement in a service's baseline.
    var baselineAlpha = 0.0

    var counters = EngineStatistics()
    let outcomeCounts: UnsafeMutablePointer<Int>
    var segment = TCPSegment.empty
    /// Capture time of the newest frame (or tick); frames from the past are taken as happening now.
    var now: Int64 = .min
    var currentStep: Int64 = 0
    /// Start of the step after `currentStep`, and the sources epoch of `currentStep`.
    var nextStepStart: Int64 = .min
    var currentEpoch: Int64 = 0
    var nextAttackID: UInt64 = 1
    /// Sources that crossed the scan target count, judged once their handshakes had time to complete.
    var scanCandidates: [(slot: Int, source: IPAddress, since: Int64)] = []
    static let maximumScanCandidates = 256
    /// A service under attack keeps at least this many tracked attempts per second (if it has them)...
    static let minimumTrackedPerSecond = 2_000.0
    /// ...while tracking as few as one in 2^this.
    static let maximumSamplingShift: UInt8 = 6
    var pendingEvents: [Event] = []
    /// The kernel's latest reading, when the daemon feeds it.
    var kernel: KernelObservation?
    /// For each attack going on, the most the kernel showed during it (`observe`).
    var attackKernelPeaks: [UInt64: KernelFigures] = [:]
    /// Completion delays of every service's handshakes: the grace of services not yet learnt.
    let linkDelays: UnsafeMutablePointer<UInt16>

    /// Creates an engine with empty tables of the configured capacities.
    /// - Throws: `ConfigurationProblem` when the configuration cannot work.
    public init(configuration: EngineConfiguration = EngineConfiguration()) throws(ConfigurationProblem) {
        try configuration.validate()
        self.configuration = configuration
        hasher = KeyedHasher(seed: configuration.hashSeed)
        let windows = configuration.windows
        resolution = windows.resolution.nanoseconds
        epochLength = max(resolution, windows.sources.nanoseconds / 2)
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
        // Filled on the packet path, which allocates nothing.
        scanCandidates.reserveCapacity(Engine.maximumScanCandidates)
        deriveSettings()
    }

    deinit {
        outcomeCounts.deallocate()
        linkDelays.deallocate()
        admission.deallocate()
    }

    /// The configuration in the units the per-packet path and the steps use.
    private func deriveSettings() {
        let windows = configuration.windows
        let detection = configuration.detection
        timeout = configuration.handshakes.timeout.nanoseconds
        retransmissionDeadline = configuration.handshakes.retransmissionDeadline.nanoseconds
        deadlineSteps =
            (retransmissionDeadline - windows.completionGraceFloor.nanoseconds + resolution - 1) / resolution
        sweepBuckets = handshakes.bucketsPerSweep(
            resolution: windows.resolution,
            timeout: configuration.handshakes.timeout
        )
        connectionSweepBuckets = connections.bucketsPerSweep(resolution: windows.resolution)
        scanCandidateBits = LinearCounter.bitsNeeded(for: configuration.scan.minTargets, of: 64)
        // Notice intervals only limit how often notices come: after two backscatter epochs of silence
        // there is nothing left to count.
        let longest = [
            windows.rate.nanoseconds + windows.completionGraceCeiling.nanoseconds + detection.quietPeriod.nanoseconds
                + retransmissionDeadline,
            windows.sources.nanoseconds, timeout, 2 * BackscatterTable.epochLength,
        ].max()!
        baselineAlpha = 1 - pow(2, -Double(resolution) / Double(configuration.baseline.halfLife.nanoseconds))
        settleSteps = longest / resolution + 2
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
        deriveSettings()
        return deferred
    }

    // MARK: Input

    /// Feeds one captured frame.
    /// - Complexity: O(1) amortized; allocates nothing unless an event is raised.
    public func process(_ frame: Frame) {
        counters.frames &+= 1
        counters.bytes &+= frame.wireLength
        let outcome = PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment)
        outcomeCounts[Int(outcome.rawValue)] &+= 1
        advanceClock(to: frame.time.nanoseconds)
        guard outcome == .tcp else { return }
        let flags = segment.flags
        if flags.contains(.rst) {
            handleReset()
        } else if flags.contains(.syn) {
            if flags.contains(.ack) { handleSynAck() } else { handleSyn() }
        } else {
            if flags.contains(.ack) { handleAck() }
            if flags.contains(.fin) { handleFin() }
        }
    }

    /// Moves capture time forward without traffic, so windows slide and attacks can end while
    /// the link is silent. Times in the past are ignored.
    public func advance(to time: Timestamp) {
        guard now != .min else { return }
        advanceClock(to: time.nanoseconds)
    }

    /// Ends the input: lets the last handshakes mature, then ends attacks still going on.
    public func finish() {
        guard now != .min else { return }
        // Every attempt has matured and passed its retransmission deadline.
        advanceClock(to: now + retransmissionDeadline + 3 * resolution)
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && victims.states[slot].phase == .attacked {
            endAttack(slot, at: now, reason: .captureEnd)
        }
    }

    // MARK: Output

    /// Whether events are waiting in `takeEvents()`.
    public var hasEvents: Bool { !pendingEvents.isEmpty }

    /// The events raised since the last call, in capture-time order.
    public func takeEvents() -> [Event] {
        defer { pendingEvents.removeAll(keepingCapacity: true) }
        return pendingEvents
    }

    /// Everything counted so far.
    public var statistics: EngineStatistics {
        var result = counters
        result.outcomes = (0..<DecodeOutcome.allCases.count).map { outcomeCounts[$0] }
        result.lastTime = now == .min ? nil : Timestamp(nanoseconds: now)
        return result
    }

    /// How full each bounded table is.
    public var occupancy: TableOccupancy {
        TableOccupancy(
            handshakes: handshakes.slots.count,
            handshakeCapacity: handshakes.slots.capacity,
            victims: victims.slots.count,
            victimCapacity: victims.slots.capacity,
            sources: sources.slots.count,
            sourceCapacity: sources.slots.capacity,
            backscatterAddresses: backscatter.slots.count,
            backscatterCapacity: backscatter.slots.capacity,
            connections: connections.slots.count,
            connectionCapacity: connections.slots.capacity
        )
    }

    /// The services (and hosts) with the most SYNs since they were first seen, busiest first.
    /// - Complexity: O(victim capacity).
    public func services(limit: Int) -> [ServiceSummary] {
        var result: [ServiceSummary] = []
        for slot in 0..<victims.slots.capacity where victims.slots.isOccupied(slot) {
            let key = victims.keys[slot]
            let state = victims.states[slot]
            result.append(
                ServiceSummary(
                    address: key.address,
                    port: key.port == 0 ? nil : key.port,
                    firstSeen: Timestamp(nanoseconds: state.firstSeen),
                    synPackets: state.synPackets,
                    attempts: state.attempts,
                    retransmits: state.retransmits,
                    completions: state.completions,
                    resets: state.resets,
                    timeouts: state.timeouts,
                    underAttack: state.phase == .attacked,
                    connections: key.port == 0 ? nil : victims.connections[slot]
                )
            )
        }
        result.sort { ($0.synPackets, $1.address, $1.port ?? 0) > ($1.synPackets, $0.address, $0.port ?? 0) }
        return Array(result.prefix(limit))
    }

    /// The attacks going on, with the figures of the latest complete window.
    /// - Complexity: O(victim capacity).
    public func activeAttacks() -> [AttackStatus] {
        var result: [AttackStatus] = []
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && victims.states[slot].phase == .attacked {
            let key = victims.keys[slot]
            let state = victims.states[slot]
            let figures = self.figures(slot, measure(slot, step: currentStep))
            result.append(
                AttackStatus(
                    attackID: state.attackID,
                    victim: key.address,
                    port: key.port == 0 ? nil : key.port,
                    kind: state.kind,
                    start: Timestamp(nanoseconds: state.attackStart),
                    figures: figures,
                    peakSynPerSecond: state.peakSynPerSecond,
                    peakHalfOpenPerSecond: state.peakHalfOpenPerSecond,
                    peakDistinctSources: max(state.peakDistinctSources, figures.distinctSources),
                    totalSyns: max(0, state.synPackets - state.synPacketsAtStart)
                )
            )
        }
        return result.sorted { $0.attackID < $1.attackID }
    }

    /// The sources with the most uncompleted attempts over the sources window, most first.
    /// - Complexity: O(source capacity × log limit); only candidates that make the list are built.
    public func topSources(limit: Int) -> [SourceSummary] {
        var top: [SourceSummary] = []
        top.reserveCapacity(limit + 1)
        for slot in 0..<sources.slots.capacity where sources.slots.isOccupied(slot) {
            sources.advanceEpoch(slot, to: currentEpoch)
            let entry = sources.entries.pointer(slot)
            let halfOpen = entry.pointee.halfOpen
            guard entry.pointee.attempts.total > 0 else { continue }
            if top.count == limit, let last = top.last,
                (halfOpen, last.address) <= (last.halfOpen, entry.pointee.address)
            {
                continue
            }
            let summary = SourceSummary(
                address: entry.pointee.address,
                attempts: entry.pointee.attempts.total,
                completions: entry.pointee.completions.total,
                distinctTargets: sources.distinctTargets(slot),
                lastTarget: entry.pointee.lastTarget
            )
            // Most half-open first, then by address, so equal counts list the same way every time.
            var low = 0
            var high = top.count
            while low < high {
                let middle = (low + high) / 2
                if (top[middle].halfOpen, summary.address) > (summary.halfOpen, top[middle].address) {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            top.insert(summary, at: low)
            if top.count > limit { top.removeLast() }
        }
        return top
    }

    // MARK: Clock

    /// Moves `now` forward; divides only when a resolution step ends, not per packet.
    @inline(__always)
    func advanceClock(to time: Int64) {
        guard time > now else { return }
        if now == .min {
            counters.firstTime = Timestamp(nanoseconds: time)
            setStep(time / resolution)
        }
        now = time
        if time >= nextStepStart { runSteps(to: time / resolution) }
    }

    func setStep(_ step: Int64) {
        currentStep = step
        nextStepStart = (step + 1) * resolution
        // Epochs are counted from the start of the step: at most one step early, which no count notices.
        currentEpoch = step * resolution / epochLength
    }

    /// Runs the detector once per resolution step up to `step`; after a long silence, only as many
    /// steps as it takes for every window to empty.
    func runSteps(to step: Int64) {
        let last = min(step, currentStep + settleSteps)
        var next = currentStep + 1
        while next <= last {
            tick(step: next)
            next += 1
        }
        if last < step {
            tick(step: step)
            // Every TIME_WAIT that ran out during the silence ends now, not a slice a step later.
            sweepConnections(at: step * resolution, buckets: .max)
        }
        setStep(step)
    }

    /// One resolution step: time-outs, then a decision for every tracked service, then scans.
    func tick(step: Int64) {
        let time = step * resolution
        // The step's own sources epoch: after a silence, `setStep` comes only once every step has run.
        currentEpoch = time / epochLength
        sweepTimeouts(before: time - timeout)
        sweepConnections(at: time, buckets: connectionSweepBuckets)
        for slot in 0..<victims.slots.capacity where victims.slots.isOccupied(slot) {
            evaluate(slot, step: step, time: time)
        }
        judgeScanCandidates(at: time)
        judgeBackscatter(at: time)
    }

    // MARK: Handshakes

    func handleSyn() {
        counters.synPackets &+= 1
        let victimKey = VictimKey(address: segment.destination, port: segment.destinationPort)
        let victimHash = victims.hash(victimKey)
        let victim = trackVictim(victimKey, hash: victimHash)
        // The whole host too (port 0), where a flood spread over random ports adds up.
        let hostKey = VictimKey(address: segment.destination, port: 0)
        let hostHash = victims.hash(hostKey)
        let host = segment.destinationPort == 0 ? -1 : trackVictim(hostKey, hash: hostHash)
        // Everything about the attempt is counted in the step it matures in.
        let grace = victim >= 0 ? victims.states[victim].grace : configuration.windows.completionGrace.nanoseconds
        let graceCentiseconds = UInt8(truncatingIfNeeded: (grace + 9_999_999) / 10_000_000)
        let step = (now + Int64(graceCentiseconds) * 10_000_000) / resolution
        if victim >= 0 { countSynPacket(on: victim, step: step) }
        if host >= 0 { countSynPacket(on: host, step: step) }

        let key = HandshakeKey(
            client: segment.source,
            clientPort: segment.sourcePort,
            server: segment.destination,
            serverPort: segment.destinationPort
        )
        let hashed = handshakes.hash(key)
        // A service under a heavy attack has its attempts sampled by 4-tuple, so a flood stops filling
        // the table (and evicting other services' handshakes) once it is known. Retransmissions of a
        // sampled 4-tuple are sampled too. A tracked attempt stands for `weight` attempts.
        let shift = max(
            victim >= 0 ? victims.states[victim].samplingShift : 0,
            host >= 0 ? victims.states[host].samplingShift : 0
        )
        let tracked = hashed.fingerprint & ((1 << UInt64(shift)) - 1) == 0
        let weight = UInt32(1) << UInt32(shift)
        if tracked {
            var slot = handshakes.find(hashed)
            if slot >= 0 {
                if handshakes.entries[slot].clientISN == segment.sequence {
                    counters.synRetransmits &+= 1
                    if victim >= 0 { victims.states[victim].retransmits &+= 1 }
                    // A live stack: undecided while it is open.
                    if !handshakes.entries[slot].retransmitted {
                        handshakes.entries[slot].retransmitted = true
                        forEachMaturityStep(of: slot, key) { $0.pointee.retransmitted &+= $1 }
                    }
                    return
                }
                // A new ISN on the same 4-tuple is a new attempt; the old one never completed.
                if handshakes.entries[slot].retransmitted {
                    forEachMaturityStep(of: slot, key) { $0.pointee.retransmitted &-= $1 }
                }
                handshakes.slots.vacate(slot)
            } else {
                slot = handshakes.slots.freeSlot(hash: hashed.hash)
                if slot < 0 {
                    // Evicting reads nothing of the old entry: under a flood its line is not in cache.
                    slot = handshakes.slots.rotationSlot(hash: hashed.hash)
                    handshakes.slots.vacate(slot)
                    counters.handshakeEvictions &+= 1
                }
            }
            handshakes.open(
                slot,
                hashed,
                isn: segment.sequence,
                time: now,
                victim: victim,
                weight: UInt8(weight),
                graceCentiseconds: graceCentiseconds
            )
        } else {
            counters.sampledOut &+= 1
        }

        let sourceHash = hasher.hash(segment.source)
        if victim >= 0 {
            countAttempt(
                on: victim,
                step: step,
                sourceHash: sourceHash,
                tracked: tracked,
                weight: weight,
                topSources: true
            )
        }
        // A host-wide attack is a spoofed one: its sources are never heavy hitters.
        if host >= 0 {
            countAttempt(
                on: host,
                step: step,
                sourceHash: sourceHash,
                tracked: tracked,
                weight: weight,
                topSources: false
            )
        }
        // The sources of a spoofed storm send one SYN each: following them one by one would only
        // churn the source table. Scanners still show through their SYNs to other services.
        if !isUnderSpoofedAttack(victim) && !isUnderSpoofedAttack(host) {
            recordSourceAttempt(sourceHash: sourceHash, targetHash: victimHash, addressHash: hostHash)
        }
    }

    @inline(__always)
    func isUnderSpoofedAttack(_ slot: Int) -> Bool {
        slot >= 0 && victims.states[slot].phase == .attacked && victims.states[slot].kind == .randomSource
    }

    func handleSynAck() {
        counters.synAcks &+= 1
        let key = HandshakeKey(
            client: segment.destination,
            clientPort: segment.destinationPort,
            server: segment.source,
            serverPort: segment.sourcePort
        )
        let slot = handshakes.find(handshakes.hash(key))
        guard slot >= 0 else {
            counters.unsolicitedSynAcks &+= 1
            // A service of ours that receives SYNs answers attempts that were sampled out or evicted:
            // backscatter is SYN-ACKs from others.
            let service = VictimKey(address: segment.source, port: segment.sourcePort)
            if victims.find(service, hash: victims.hash(service)) < 0 { recordBackscatter() }
            return
        }
        let entry = handshakes.entries.pointer(slot)
        guard segment.acknowledgement == entry.pointee.clientISN &+ 1 else { return }
        if entry.pointee.synAckSeen && entry.pointee.serverISN == segment.sequence {
            counters.synAckRetransmits &+= 1
        } else {
            entry.pointee.synAckSeen = true
            entry.pointee.serverISN = segment.sequence
        }
    }

    func handleAck() {
        // Most ACKs carry data of established connections: look in the handshake table only when the
        // destination is a service that had a SYN within the handshake time-out, and in the connection
        // table only when the service has a FIN of its own waiting for the client's ACK.
        let victimKey = VictimKey(address: segment.destination, port: segment.destinationPort)
        let victim = victims.find(victimKey, hash: victims.hash(victimKey))
        guard victim >= 0 else { return }
        if victims.states[victim].lastActive >= now - timeout, completeHandshake(on: victim) { return }
        if victims.connections[victim].awaitingFinAck > 0 { acknowledgeServerFin() }
    }

    /// Whether the current segment completes a tracked handshake on `victim`; if so, it is counted and the
    /// connection followed from then on.
    func completeHandshake(on victim: Int) -> Bool {
        let key = HandshakeKey(
            client: segment.source,
            clientPort: segment.sourcePort,
            server: segment.destination,
            serverPort: segment.destinationPort
        )
        let hashed = handshakes.hash(key)
        let slot = handshakes.find(hashed)
        guard slot >= 0 else {
            noteSampledOutCompleter(on: victim, fingerprint: hashed.fingerprint)
            return false
        }
        let entry = handshakes.entries[slot]
        guard segment.sequence == entry.clientISN &+ 1,
            !entry.synAckSeen || segment.acknowledgement == entry.serverISN &+ 1
        else { return false }
        counters.completions &+= 1
        close(slot, of: key, client: segment.source, completed: true)
        openConnection(service: victim, weight: entry.weight)
        return true
    }

    /// Counts the sender of an ACK on a 4-tuple whose attempts are sampled out as a source that completed: its
    /// handshake is not tracked, but a source that acknowledges on a connection of the service is no failing one.
    /// Without this, distinct sources under sampling would count the service's own clients as failing. Completers
    /// are a service's only (a host-wide attack is spoofed by definition); most ACKs end at the first guard.
    func noteSampledOutCompleter(on victim: Int, fingerprint: UInt64) {
        let shift = victims.states[victim].samplingShift
        guard shift > 0, fingerprint & ((1 << UInt64(shift)) - 1) != 0 else { return }
        let parity = Int(currentEpoch & 1)
        let sourceHash = hasher.hash(segment.source)
        victims.advanceEpoch(victim, to: currentEpoch)
        victims.distinct.add(sourceHash, to: victims.completerSketch(victim, parity: parity))
        let source = sources.find(segment.source, hash: sourceHash)
        if source >= 0 { sources.entries[source].acknowledged = true }
    }

    func handleReset() {
        // From the client: it gives up, or its kernel resets a SYN-ACK it never asked for (a flood
        // from a real host), or a scanner tears down. The attempt ends without completing: it stays
        // counted as half-open, and only leaves the table.
        let fromClient = HandshakeKey(
            client: segment.source,
            clientPort: segment.sourcePort,
            server: segment.destination,
            serverPort: segment.destinationPort
        )
        var slot = handshakes.find(handshakes.hash(fromClient))
        if slot >= 0 {
            counters.resets &+= 1
            // The client never wanted the connection (it did not send the SYN, or gave up): decided at once.
            let retransmitted = handshakes.entries[slot].retransmitted
            forEachMaturityStep(of: slot, fromClient) { counters, weight in
                counters.pointee.clientReset &+= weight
                if retransmitted { counters.pointee.retransmitted &-= weight }
            }
            handshakes.slots.vacate(slot)
            return
        }
        // From the server: nothing listens on that port (RST/ACK acknowledging the SYN).
        let fromServer = HandshakeKey(
            client: segment.destination,
            clientPort: segment.destinationPort,
            server: segment.source,
            serverPort: segment.sourcePort
        )
        slot = handshakes.find(handshakes.hash(fromServer))
        if slot >= 0 {
            guard
                !segment.flags.contains(.ack) || segment.acknowledgement == handshakes.entries[slot].clientISN &+ 1
            else { return }
            counters.resets &+= 1
            close(slot, of: fromServer, client: segment.destination, completed: false)
            return
        }
        // Otherwise it may abort a connection that completed.
        resetConnection()
    }

    /// Ends the attempt in `slot` by a completing ACK or the server's RST (nothing listens), crediting
    /// the step of its SYN on its service and its host.
    func close(_ slot: Int, of key: HandshakeKey, client: IPAddress, completed: Bool) {
        let entry = handshakes.entries[slot]
        let step = entry.maturityStep(resolution: resolution)
        let weight = UInt32(entry.weight)
        handshakes.slots.vacate(slot)
        let parity = Int(currentEpoch & 1)
        let victim = victimSlot(of: key)
        let host = hostSlot(of: key)
        let clientHash = completed ? hasher.hash(client) : 0
        if host >= 0 {
            countClose(on: host, step: step, weight: weight, completed: completed, retransmitted: entry.retransmitted)
        }
        if victim >= 0 {
            countClose(on: victim, step: step, weight: weight, completed: completed, retransmitted: entry.retransmitted)
            // Completers are subtracted from a service's sources (a host-wide attack is spoofed by definition),
            // and delays learnt per service and for the link (hosts use the link's).
            if completed {
                victims.distinct.add(clientHash, to: victims.completerSketch(victim, parity: parity))
                // After a retransmission the delay measures the client's time-out, not the path.
                if !entry.retransmitted {
                    DelayHistogram.add(now - entry.synTime, to: victims.delayHistogram(victim))
                    DelayHistogram.add(now - entry.synTime, to: linkDelays)
                }
            }
        }
        if victim >= 0 {
            SpaceSaving.remove(
                client,
                weight: Int32(weight),
                from: victims.top(victim, parity: parity),
                k: victims.topK
            )
        }
        if completed {
            let source = sources.find(client, hash: clientHash)
            if source >= 0 {
                sources.advanceEpoch(source, to: currentEpoch)
                // Every SYN of the source is counted, but only tracked attempts complete here: each stands for
                // its weight, or a sampled service's busy clients would look half-open.
                sources.entries.pointer(source).pointee.completions[parity] &+= weight
            }
        }
    }

    /// Drops attempts whose SYN is older than `cutoff`, a slice of the table per step.
    func sweepTimeouts(before cutoff: Int64) {
        let slots = handshakes.slots
        for _ in 0..<sweepBuckets {
            let bucket = handshakes.sweepCursor
            handshakes.sweepCursor = (bucket + 1) & slots.bucketMask
            guard slots.tags[bucket] != 0 else { continue }
            for slot in (bucket * 8)..<(bucket * 8 + 8)
            where slots.isOccupied(slot) && handshakes.entries[slot].synTime < cutoff {
                // The service may have been evicted (and its slot reused) since: a stale count is harmless.
                let victim = Int(handshakes.entries[slot].victim) - 1
                if victim >= 0 && victims.slots.isOccupied(victim) {
                    let weight = Int(handshakes.entries[slot].weight)
                    victims.states[victim].timeouts &+= weight
                    let hostKey = VictimKey(address: victims.keys[victim].address, port: 0)
                    let host = victims.find(hostKey, hash: victims.hash(hostKey))
                    if host >= 0 && host != victim { victims.states[host].timeouts &+= weight }
                }
                counters.timeouts &+= 1
                slots.vacate(slot)
            }
        }
    }

    // MARK: Tables

    /// Counts a SYN packet in the step its attempt matures in (`step`).
    @inline(__always)
    func countSynPacket(on service: Int, step: Int64) {
        victims.advanceRing(service, to: step)
        victims.stepCounters(service, step: step).pointee.synPackets &+= 1
        victims.states[service].synPackets &+= 1
    }

    /// Counts a new attempt on a service or host, maturing in `step`: distinct sources always, the
    /// attempt itself only when tracked (untracked SYNs may be retransmissions), with its weight.
    @inline(__always)
    func countAttempt(
        on service: Int,
        step: Int64,
        sourceHash: UInt64,
        tracked: Bool,
        weight: UInt32,
        topSources: Bool
    ) {
        let parity = Int(currentEpoch & 1)
        victims.advanceEpoch(service, to: currentEpoch)
        victims.distinct.add(sourceHash, to: victims.sketch(service, parity: parity))
        let counters = victims.stepCounters(service, step: step)
        LinearCounter.add(sourceHash, to: &counters.pointee.sources)
        guard tracked else { return }
        counters.pointee.attempts &+= weight
        let state = victims.states.pointer(service)
        state.pointee.attempts &+= Int(weight)
        state.pointee.epochAttempts[parity] &+= weight
        if topSources {
            SpaceSaving.add(
                segment.source,
                weight: Int32(weight),
                to: victims.top(service, parity: parity),
                k: victims.topK
            )
        }
    }

    /// Credits a completion or refusal to the step its attempt matures in.
    @inline(__always)
    func countClose(on service: Int, step: Int64, weight: UInt32, completed: Bool, retransmitted: Bool) {
        let state = victims.states.pointer(service)
        if victims.holds(service, step: step) {
            let counters = victims.stepCounters(service, step: step)
            if completed { counters.pointee.completed &+= weight } else { counters.pointee.refused &+= weight }
            if retransmitted { counters.pointee.retransmitted &-= weight }
        }
        if completed { state.pointee.completions &+= Int(weight) } else { state.pointee.resets &+= Int(weight) }
        victims.advanceEpoch(service, to: currentEpoch)
        state.pointee.epochClosed[Int(currentEpoch & 1)] &+= weight
    }

    /// Calls `body` with the counters of the step in which the attempt in `slot` matures, on its service and on
    /// its host (each while that step is still in its ring), and with the attempts it stands for.
    @inline(__always)
    func forEachMaturityStep(
        of slot: Int,
        _ key: HandshakeKey,
        _ body: (UnsafeMutablePointer<StepCounters>, UInt32) -> Void
    ) {
        let entry = handshakes.entries[slot]
        let step = entry.maturityStep(resolution: resolution)
        // Two calls, not a loop over an array: a flood from a real host resets every attempt.
        let service = victimSlot(of: key)
        if service >= 0 && victims.holds(service, step: step) {
            body(victims.stepCounters(service, step: step), UInt32(entry.weight))
        }
        let host = hostSlot(of: key)
        if host >= 0 && victims.holds(host, step: step) {
            body(victims.stepCounters(host, step: step), UInt32(entry.weight))
        }
    }

    /// The completion grace learnt from the handshakes of the service in `slot` (nil: of none yet),
    /// else from those of every service, else the configured one, between its floor and ceiling.
    ///
    /// The median, not a high quantile: by then at least half of a real crowd's handshakes complete
    /// (so its undecided attempts never reach nine per completed one), while a flood has none, and
    /// a service whose clients are far away is still judged in a fraction of their slowest round trip.
    /// Late completions are credited to the step of the attempt when they come.
    func learntGrace(slot: Int?) -> Int64 {
        let windows = configuration.windows
        let quantile = 0.5
        let learnt =
            slot.flatMap { DelayHistogram.upperBound(quantile: quantile, of: victims.delayHistogram($0)) }
            ?? DelayHistogram.upperBound(quantile: quantile, of: linkDelays)
        guard let learnt else { return windows.completionGrace.nanoseconds }
        // A quarter more than the bucket's edge: the edge of a handshake near the top of its bucket.
        return min(
            max(learnt + learnt / 4, windows.completionGraceFloor.nanoseconds),
            windows.completionGraceCeiling.nanoseconds
        )
    }

    @inline(__always)
    func victimSlot(of key: HandshakeKey) -> Int {
        let victimKey = VictimKey(address: key.server, port: key.serverPort)
        return victims.find(victimKey, hash: victims.hash(victimKey))
    }

    /// The host-wide slot of the attempt's server, or -1.
    @inline(__always)
    func hostSlot(of key: HandshakeKey) -> Int {
        guard key.serverPort != 0 else { return -1 }
        let hostKey = VictimKey(address: key.server, port: 0)
        return victims.find(hostKey, hash: victims.hash(hostKey))
    }

    /// The slot of a service, added if new; -1 when its bucket holds only services under attack.
    func trackVictim(_ key: VictimKey, hash: UInt64) -> Int {
        var slot = victims.find(key, hash: hash)
        if slot >= 0 {
            victims.states[slot].lastActive = now
            return slot
        }
        slot = victims.slots.freeSlot(hash: hash)
        if slot < 0 {
            let states = victims.states
            slot = victims.slots.oldestSlot(
                hash: hash,
                age: { states[$0].lastActive },
                evictable: { states[$0].phase == .idle }
            )
            guard slot >= 0 else {
                counters.victimsUntracked &+= 1
                return -1
            }
            victims.slots.vacate(slot)
            counters.victimEvictions &+= 1
        }
        victims.open(
            slot,
            key: key,
            hash: hash,
            time: now,
            step: currentStep,
            epoch: currentEpoch,
            grace: learntGrace(slot: nil)
        )
        return slot
    }

    /// Counts the segment's SYN for its source, admitting the source on its second SYN.
    /// - Parameters:
    ///   - sourceHash: the source address's hash.
    ///   - targetHash: the target service's hash.
    ///   - addressHash: the target address's hash (its host-wide victim hash).
    func recordSourceAttempt(sourceHash: UInt64, targetHash: UInt64, addressHash: UInt64) {
        let address = segment.source
        let epoch = currentEpoch
        let parity = Int(epoch & 1)
        var slot = sources.find(address, hash: sourceHash)
        if slot < 0 {
            guard admission.admit(sourceHash, at: now) else { return }
            slot = sources.slots.freeSlot(hash: sourceHash)
            if slot < 0 {
                slot = sources.slots.rotationSlot(hash: sourceHash)
                sources.slots.vacate(slot)
                counters.sourceEvictions &+= 1
            }
            sources.slots.occupy(slot, hash: sourceHash)
            // Built in registers and stored once: the entry's line is not read while it is fetched.
            // The admitting SYN is the second: the first one's target is unknown.
            var fresh = SourceEntry(address: address, epoch: epoch)
            fresh.attempts[parity] = 2
            fresh.lastTarget = segment.destination
            LinearCounter.add(targetHash, to: &fresh.targets[parity])
            LinearCounter.add(addressHash, to: &fresh.addresses[parity])
            sources.entries[slot] = fresh
            return
        }
        sources.advanceEpoch(slot, to: epoch)
        let entry = sources.entries.pointer(slot)
        entry.pointee.attempts[parity] &+= 1
        entry.pointee.lastTarget = segment.destination
        LinearCounter.add(targetHash, to: &entry.pointee.targets[parity])
        LinearCounter.add(addressHash, to: &entry.pointee.addresses[parity])
        if !entry.pointee.scanCandidate, entry.pointee.targets.union.nonzeroBitCount >= scanCandidateBits,
            scanCandidates.count < Engine.maximumScanCandidates
        {
            entry.pointee.scanCandidate = true
            scanCandidates.append((slot, address, now))
        }
    }

    func recordBackscatter() {
        let address = segment.destination
        let hash = hasher.hash(address)
        let epoch = now / BackscatterTable.epochLength
        var slot = backscatter.find(address, hash: hash)
        if slot < 0 {
            slot = backscatter.slots.freeSlot(hash: hash)
            if slot < 0 {
                slot = backscatter.slots.rotationSlot(hash: hash)
                backscatter.slots.vacate(slot)
                counters.backscatterEvictions &+= 1
            }
            backscatter.slots.occupy(slot, hash: hash)
            backscatter.entries[slot] = BackscatterEntry(address: address, firstSeen: now, epoch: epoch)
            backscatter.sketch(slot, parity: 0).update(repeating: 0, count: backscatter.distinct.registerCount * 2)
        }
        let parity = Int(epoch & 1)
        backscatter.advanceEpoch(slot, to: epoch)
        backscatter.entries.pointer(slot).pointee.synAcks[parity] &+= 1
        backscatter.distinct.add(hasher.hash(segment.source), to: backscatter.sketch(slot, parity: parity))
    }
}

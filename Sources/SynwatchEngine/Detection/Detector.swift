#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the rate window of one service shows at one step: every figure over the same matured steps.
struct WindowMeasurement {
    /// SYN packets in the window.
    var synPackets = 0
    var synPerSecond = 0.0
    var halfOpenPerSecond = 0.0
    var completionRatio = 1.0
    /// Attempts old enough to have completed: the base of the two figures above.
    var maturedAttempts = 0
}

extension Engine {
    // MARK: Victim services

    /// Reads the rate window of `slot` as it stands at the start of `step`: the steps whose attempts
    /// have matured (had their service's grace to complete), over the part the service has existed,
    /// so a flood is measured right from its first step.
    func measure(_ slot: Int, step: Int64) -> WindowMeasurement {
        victims.advanceRing(slot, to: step - 1)
        let rateSteps = configuration.windows.rate.nanoseconds / clock.resolution
        let state = victims.states[slot]
        let firstStep = max(step - rateSteps, (state.firstSeen + state.grace) / clock.resolution)
        var synPackets = 0, attempts = 0, completed = 0, halfOpen = 0
        var position = firstStep
        while position < step {
            let counters = victims.stepCounters(slot, step: position).pointee
            synPackets += Int(counters.synPackets)
            attempts += Int(counters.attempts)
            completed += Int(counters.completed)
            halfOpen += counters.halfOpen
            position += 1
        }
        var result = WindowMeasurement()
        guard firstStep < step else { return result }
        let seconds = Double(step - firstStep) * Double(clock.resolution) / 1e9
        result.synPackets = synPackets
        result.synPerSecond = Double(synPackets) / seconds
        // Sampled attempts are estimates: never more half-open attempts than SYNs.
        result.halfOpenPerSecond = Double(min(halfOpen, synPackets)) / seconds
        result.completionRatio = attempts > 0 ? min(1, Double(completed) / Double(attempts)) : 1
        result.maturedAttempts = attempts
        return result
    }

    /// Evidence of a flood in the step that just matured (`step - 1`): attempts whose client reset
    /// them, and attempts still undecided that come from many sources and far outnumber what the
    /// service completed in the same step. A crowd over a lossy path completes most of its attempts;
    /// one client's burst into a full listen queue comes from one source and retransmits.
    func undecidedEvidence(_ slot: Int, step: Int64) -> Double {
        let counters = victims.stepCounters(slot, step: step - 1).pointee
        let decided = Double(counters.clientReset)
        let undecided = Double(max(0, counters.halfOpen - Int(counters.clientReset) - Int(counters.retransmitted)))
        let ratio = configuration.detection.maxCompletionRatio
        // At most `ratio` of the step's decided attempts completed: `completed * (1 - ratio) / ratio` others.
        let allowed = ratio <= 0 ? Double.infinity : Double(counters.completed) * (1 - ratio) / ratio
        let sources = Double(LinearCounter.estimate(counters.sources))
        // Many sources: at most four undecided attempts each in the step (a client's burst into a full queue
        // is dozens to hundreds), or fifty of them (the 64-bit counter saturates near 260).
        let manySources = sources >= 0.25 * min(undecided, 200)
        return decided + (manySources ? max(0, undecided - allowed) : 0)
    }

    /// Failures decided by now in the step whose every attempt passed its retransmission deadline:
    /// attempts that neither completed, nor were refused, nor were retransmitted by a live client.
    func failedEvidence(_ slot: Int, step: Int64) -> Double {
        let deadlineStep = step - 1 - settings.deadlineSteps
        guard deadlineStep * clock.resolution >= victims.states[slot].firstSeen,
            victims.holds(slot, step: deadlineStep)
        else { return 0 }
        let counters = victims.stepCounters(slot, step: deadlineStep).pointee
        return Double(max(0, counters.halfOpen - Int(counters.retransmitted)))
    }

    /// The detector's decision for one service at one step.
    func evaluate(_ slot: Int, step: Int64, time: Int64) {
        victims.advanceEpoch(slot, to: time / clock.epochLength)
        let state = victims.states.pointer(slot)
        state.pointee.grace = learntGrace(slot: slot)
        let measured = measure(slot, step: step)
        let detection = configuration.detection
        switch state.pointee.phase {
        case .idle:
            let threshold = allowance(slot, measured, time: time)
            let perStep = threshold * Double(clock.resolution) / 1e9
            let undecided = undecidedEvidence(slot, step: step) - perStep
            let failed = failedEvidence(slot, step: step) - perStep
            if state.pointee.undecidedEvidence == 0 && state.pointee.failedEvidence == 0 {
                // The SYNs of the step that matured now came one grace before it.
                state.pointee.evidenceSince = (step - 1) * clock.resolution - state.pointee.grace
            }
            state.pointee.undecidedEvidence = max(0, state.pointee.undecidedEvidence + undecided)
            state.pointee.failedEvidence = max(0, state.pointee.failedEvidence + failed)
            let interval = threshold * Double(detection.confirmation.nanoseconds) / 1e9
            let evident =
                max(state.pointee.undecidedEvidence, state.pointee.failedEvidence) >= interval
                || kernelLiftsOverThreshold(measured)
            guard evident else {
                if state.pointee.undecidedEvidence == 0 && state.pointee.failedEvidence == 0 {
                    learnBaseline(slot, measured)
                }
                return
            }
            if victims.keys[slot].port == 0 && !isSpreadOverPorts(slot, measured, step: step) {
                // The evidence is a service's, reported for that service: none is left for the host.
                state.pointee.undecidedEvidence = 0
                state.pointee.failedEvidence = 0
            } else if measured.maturedAttempts >= detection.minAttempts {
                startAttack(slot, threshold: threshold, measured: measured, at: time)
            } else {
                // Too few attempts to judge yet: evidence waits at the interval, it does not pile up.
                state.pointee.undecidedEvidence = min(state.pointee.undecidedEvidence, interval)
                state.pointee.failedEvidence = min(state.pointee.failedEvidence, interval)
            }
        case .attacked:
            // A lower shift tracks 4-tuples the higher one did not: their retransmissions would look like new
            // attempts. It waits until their attempts have timed out, as every attempt does unsampled.
            let shift = Engine.samplingShift(forSynPerSecond: measured.synPerSecond)
            if shift >= state.pointee.samplingShift {
                state.pointee.samplingShift = shift
                state.pointee.samplingWanted = time
            } else if time - state.pointee.samplingWanted >= settings.timeout {
                state.pointee.samplingShift = shift
                state.pointee.samplingWanted = time
            }
            if evidentHalfOpen(measured.halfOpenPerSecond) >= detection.endFraction * state.pointee.startThreshold {
                state.pointee.lastEvidence = time
            }
            // Peaks at every step; the top sources (a walk of the source table) only when an event needs them.
            let distinctSources = failingSources(slot)
            state.pointee.peakSynPerSecond = max(state.pointee.peakSynPerSecond, measured.synPerSecond)
            state.pointee.peakHalfOpenPerSecond = max(state.pointee.peakHalfOpenPerSecond, measured.halfOpenPerSecond)
            state.pointee.peakDistinctSources = max(state.pointee.peakDistinctSources, distinctSources)
            if time - state.pointee.lastEvidence >= detection.quietPeriod.nanoseconds {
                endAttack(slot, at: time, reason: .quiet)
            } else if time - state.pointee.lastUpdate >= detection.updateInterval.nanoseconds {
                state.pointee.lastUpdate = time
                // Only evidence may change the kind: once the flood stops, its emptied windows read as distributed.
                if state.pointee.lastEvidence == time {
                    state.pointee.kind = classify(slot, distinctSources: distinctSources, top: topSources(slot).first)
                }
                raise(slot, .attackUpdate, at: time, figures: figures(slot, measured))
            }
        }
    }

    /// Whether the kernel's reading, while capture loses frames, lifts the window over the threshold.
    func kernelLiftsOverThreshold(_ measured: WindowMeasurement) -> Bool {
        let detection = configuration.detection
        return kernelCorroborates && evidentHalfOpen(measured.halfOpenPerSecond) >= detection.halfOpenPerSecond
            && measured.completionRatio <= detection.maxCompletionRatio
    }

    /// Whether the half-open attempts on a whole host are a spoofed flood spread over its ports, rather
    /// than a flood on one service (reported for that service) or one source probing many ports (a scan).
    func isSpreadOverPorts(_ host: Int, _ measured: WindowMeasurement, step: Int64) -> Bool {
        let distinct = victims.distinct.estimate(victims.sketch(host, parity: 0), victims.sketch(host, parity: 1))
        guard classify(host, distinctSources: distinct, top: nil) == .randomSource else { return false }
        let address = victims.keys[host].address
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && slot != host && victims.keys[slot].address == address {
            if measure(slot, step: step).halfOpenPerSecond >= 0.5 * measured.halfOpenPerSecond { return false }
        }
        return true
    }

    /// How many halvings of the tracked attempts a SYN rate allows while keeping the sample large
    /// enough for the half-open figure to stay within a few percent.
    static func samplingShift(forSynPerSecond rate: Double) -> UInt8 {
        var shift: UInt8 = 0
        while shift < maximumSamplingShift, rate / Double(1 << (shift + 1)) >= minimumTrackedPerSecond { shift += 1 }
        return shift
    }

    /// The failing attempts per second the service may have before they count as evidence: the
    /// absolute threshold, or below it the service's learnt baseline once warm, while its completion
    /// ratio has fallen clearly below normal (not a crowd that completes).
    func allowance(_ slot: Int, _ measured: WindowMeasurement, time: Int64) -> Double {
        let absolute = configuration.detection.halfOpenPerSecond
        // A host's figures are the sum of its services': only the absolute threshold applies.
        guard victims.keys[slot].port != 0 else { return absolute }
        let baseline = configuration.baseline
        let state = victims.states[slot]
        guard baseline.enabled, time - state.baselineSince >= baseline.warmup.nanoseconds,
            measured.completionRatio <= state.baselineCompletion - baseline.minCompletionDrop
        else { return absolute }
        let learnt = max(
            baseline.minHalfOpenPerSecond,
            baseline.factor * state.baselineHalfOpen,
            state.baselineHalfOpen + baseline.deviations * state.baselineHalfOpenVariance.squareRoot()
        )
        return min(absolute, learnt)
    }

    /// Moves the service's baseline towards a quiet measurement (exponentially weighted mean and variance).
    func learnBaseline(_ slot: Int, _ measured: WindowMeasurement) {
        let state = victims.states.pointer(slot)
        let alpha = settings.baselineAlpha
        let difference = measured.halfOpenPerSecond - state.pointee.baselineHalfOpen
        state.pointee.baselineHalfOpen += alpha * difference
        state.pointee.baselineHalfOpenVariance =
            (1 - alpha) * (state.pointee.baselineHalfOpenVariance + alpha * difference * difference)
        if measured.maturedAttempts > 0 {
            state.pointee.baselineCompletion += alpha * (measured.completionRatio - state.pointee.baselineCompletion)
        }
    }

    func startAttack(_ slot: Int, threshold: Double, measured: WindowMeasurement, at time: Int64) {
        let state = victims.states.pointer(slot)
        state.pointee.phase = .attacked
        state.pointee.attackID = nextAttackID
        nextAttackID += 1
        state.pointee.attackStart = state.pointee.evidenceSince
        state.pointee.undecidedEvidence = 0
        state.pointee.failedEvidence = 0
        state.pointee.lastEvidence = time
        state.pointee.lastUpdate = time
        state.pointee.startThreshold = threshold
        // The SYNs of the window that revealed the attack belong to it, and so do those that came since, which
        // have not matured yet (counted in the steps from this one to the ring's head).
        var pending = 0
        var position = time / clock.resolution
        while position <= state.pointee.ringHead {
            pending += Int(victims.stepCounters(slot, step: position).pointee.synPackets)
            position += 1
        }
        state.pointee.synPacketsAtStart = state.pointee.synPackets - measured.synPackets - pending
        state.pointee.peakSynPerSecond = measured.synPerSecond
        state.pointee.peakHalfOpenPerSecond = measured.halfOpenPerSecond
        state.pointee.samplingShift = Engine.samplingShift(forSynPerSecond: measured.synPerSecond)
        state.pointee.samplingWanted = time
        state.pointee.kind = classify(slot, distinctSources: failingSources(slot), top: topSources(slot).first)
        let figures = self.figures(slot, measured)
        state.pointee.peakDistinctSources = figures.distinctSources
        counters.attacks += 1
        raise(slot, .attackStart, at: time, figures: figures)
    }

    func endAttack(_ slot: Int, at time: Int64, reason: AttackSummary.EndReason) {
        let state = victims.states.pointer(slot)
        let figures = self.figures(slot, measure(slot, step: time / clock.resolution))
        state.pointee.peakDistinctSources = max(state.pointee.peakDistinctSources, figures.distinctSources)
        let end = reason == .quiet ? state.pointee.lastEvidence : time
        let summary = AttackSummary(
            start: Timestamp(nanoseconds: state.pointee.attackStart),
            duration: TimeSpan(nanoseconds: max(0, end - state.pointee.attackStart)),
            peakSynPerSecond: state.pointee.peakSynPerSecond,
            peakHalfOpenPerSecond: state.pointee.peakHalfOpenPerSecond,
            peakDistinctSources: state.pointee.peakDistinctSources,
            totalSyns: max(0, state.pointee.synPackets - state.pointee.synPacketsAtStart),
            endReason: reason
        )
        raise(slot, .attackEnd, at: time, figures: figures, summary: summary)
        state.pointee.phase = .idle
        state.pointee.samplingShift = 0
        // The attack must not become the service's idea of normal.
        state.pointee.baselineSince = min(state.pointee.baselineSince, state.pointee.attackStart)
    }

    /// The figures events carry: rates from the window, sources from the sources epochs.
    func figures(_ slot: Int, _ measured: WindowMeasurement) -> VictimFigures {
        let state = victims.states[slot]
        // In a spoofed storm no source stands out: listing some would only name arbitrary ones.
        let spoofed = state.phase == .attacked && state.kind == .randomSource
        return VictimFigures(
            synPerSecond: measured.synPerSecond,
            halfOpenPerSecond: measured.halfOpenPerSecond,
            completionRatio: measured.completionRatio,
            distinctSources: failingSources(slot),
            topSources: spoofed ? [] : topSources(slot),
            completionGrace: TimeSpan(nanoseconds: state.grace)
        )
    }

    /// Half-open attempts in the sources window (weighted where sampled).
    func failingAttempts(_ slot: Int) -> Int {
        let state = victims.states[slot]
        return max(0, state.epochAttempts.total - state.epochClosed.total)
    }

    /// Estimated distinct sources of the attempts that did not complete in the sources window: all
    /// sources less those that completed, never more than those attempts.
    func failingSources(_ slot: Int) -> Int {
        let all = victims.distinct.estimate(victims.sketch(slot, parity: 0), victims.sketch(slot, parity: 1))
        let completers = victims.distinct.estimate(
            victims.completerSketch(slot, parity: 0),
            victims.completerSketch(slot, parity: 1)
        )
        return min(max(0, all - completers), failingAttempts(slot))
    }

    /// The sources with the most half-open attempts on the service in `slot`, with their counts.
    ///
    /// The Space-Saving sketch finds sources holding more than 1/k of the service's attempts; a botnet
    /// of many equal bots has none such, so the source table completes the list with the sources
    /// that aim at this service alone. A count is never more than the source's real SYNs: the
    /// sketch's certain count (scaled where sampled) capped by the source table's, which counts every
    /// SYN of a source that repeats. A source the table does not hold sent one SYN: it stands out in
    /// nothing.
    func topSources(_ slot: Int) -> [SourceCount] {
        // A host-wide attack is a spoofed one: no source stands out.
        guard victims.keys[slot].port != 0 else { return [] }
        let wanted = configuration.detection.topSources
        let sketches = [victims.top(slot, parity: 0), victims.top(slot, parity: 1)]
        var top: [SourceCount] = []
        for candidate in SpaceSaving.top(wanted, of: sketches, k: victims.topK) {
            guard let source = sources.find(candidate.address, hash: hasher.hash(candidate.address)) else { continue }
            sources.advanceEpoch(source, to: clock.epoch)
            guard !Self.completes(sources.entries[source]) else { continue }
            // The table's count holds the SYN before the admitting one, whose target and time are unknown.
            let halfOpen = min(candidate.halfOpen, sources.entries[source].halfOpen - 1)
            if halfOpen >= 2 { top.append(SourceCount(address: candidate.address, halfOpen: halfOpen)) }
        }
        guard top.count < wanted else { return top }
        let address = victims.keys[slot].address
        // The bit this service sets in a source's targets (`recordSourceAttempt`).
        let serviceBit = UInt64(1) << (victims.hash(victims.keys[slot]) >> 58)
        let known = Set(top.map(\.address))
        var candidates: [SourceCount] = []
        for source in 0..<sources.slots.capacity where sources.slots.isOccupied(source) {
            guard sources.entries[source].lastTarget == address else { continue }
            // Counts of sources silent for two epochs are out of the window.
            sources.advanceEpoch(source, to: clock.epoch)
            let entry = sources.entries[source]
            // A scanner's or a busy client's count is spread over other services: not this one's. A client of
            // another service of the same host aims at this address too: only sources of this service count.
            guard !known.contains(entry.address), sources.distinctTargets(source) <= 1,
                entry.targets.union & serviceBit != 0, !Self.completes(entry)
            else { continue }
            // The SYN before the admitting one is counted too, but its target, its time and whether it completed
            // (before the source was followed) are unknown: it is not a certain half-open attempt on this service.
            let halfOpen = entry.halfOpen - 1
            guard halfOpen >= 2 else { continue }
            candidates.append(SourceCount(address: entry.address, halfOpen: halfOpen))
        }
        candidates.sort { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
        top += candidates.prefix(wanted - top.count)
        return top.sorted { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
    }

    /// Whether a source completes handshakes: a client, however many of its attempts are half-open for the
    /// moment (under sampling most of its completions go unseen), never a flood's source.
    static func completes(_ entry: SourceEntry) -> Bool {
        entry.completions.total > 0 || entry.acknowledged
    }

    /// Tells the kind of flood from the attempts that fail in the sources window and their sources;
    /// completing attempts (a crowd the flood hides in) say nothing about it.
    func classify(_ slot: Int, distinctSources: Int, top: SourceCount?) -> FloodKind {
        let classification = configuration.classification
        let failing = max(1, failingAttempts(slot))
        if let top, Double(top.halfOpen) >= classification.singleSourceShare * Double(failing) {
            return .singleSource
        }
        if distinctSources >= classification.randomSourceMinSources,
            Double(distinctSources) >= classification.randomSourceDistinctRatio * Double(failing)
        {
            return .randomSource
        }
        return .distributed
    }

    func raise(
        _ slot: Int,
        _ type: EventType,
        at time: Int64,
        figures: VictimFigures,
        summary: AttackSummary? = nil
    ) {
        let key = victims.keys[slot]
        let state = victims.states[slot]
        let kernelFigures = kernelFigures(slot, type, halfOpenPerSecond: figures.halfOpenPerSecond)
        pendingEvents.append(
            Event(
                type: type,
                time: Timestamp(nanoseconds: time),
                victim: key.address,
                port: key.port == 0 ? nil : key.port,
                attackID: state.attackID,
                kind: state.kind,
                figures: figures,
                summary: summary,
                kernel: kernelFigures
            )
        )
    }

    /// The kernel's figures for an event on `slot`: at the end, the most it showed during the attack
    /// (the latest reading included); otherwise the latest reading.
    func kernelFigures(_ slot: Int, _ type: EventType, halfOpenPerSecond: Double) -> KernelFigures? {
        let latest = kernelFigures(for: victims.keys[slot], halfOpenPerSecond: halfOpenPerSecond)
        guard type == .attackEnd, let peaks = kernelPeaks(forAttackIn: slot) else { return latest }
        return latest.map { peaks.merged(with: $0) } ?? peaks
    }

    // MARK: Notices

    /// Nanoseconds from `start` to `end`; `Int64.max` when `start` is `.min` (never).
    static func elapsed(from start: Int64, to end: Int64) -> Int64 {
        start == .min ? .max : end - start
    }

    /// Raises a scan notice for candidates whose handshakes had time to complete and mostly did not.
    func judgeScanCandidates(at time: Int64) {
        guard !scanCandidates.isEmpty else { return }
        let grace = configuration.windows.completionGrace.nanoseconds + clock.resolution
        let scan = configuration.scan
        scanCandidates.removeAll { candidate in
            guard time - candidate.since >= grace else { return false }
            let slot = candidate.slot
            // The slot may have been given to another source since.
            guard sources.slots.isOccupied(slot), sources.entries[slot].address == candidate.source else {
                return true
            }
            let state = sources.entries.pointer(slot)
            state.pointee.scanCandidate = false
            let attempts = state.pointee.attempts.total
            let ratio = attempts > 0 ? Double(state.pointee.completions.total) / Double(attempts) : 1
            guard ratio <= scan.maxCompletionRatio,
                Engine.elapsed(from: state.pointee.lastNotice, to: time) >= scan.noticeInterval.nanoseconds
            else { return true }
            state.pointee.lastNotice = time
            let addresses = sources.distinctAddresses(slot)
            counters.scanNotices += 1
            pendingEvents.append(
                Event(
                    type: .scan,
                    time: Timestamp(nanoseconds: time),
                    victim: addresses <= 1 ? state.pointee.lastTarget : nil,
                    scan: ScanFigures(
                        source: candidate.source,
                        distinctTargets: sources.distinctTargets(slot),
                        distinctAddresses: addresses,
                        syns: attempts
                    )
                )
            )
            return true
        }
    }

    /// Raises a backscatter notice for each address that received enough unsolicited SYN-ACKs from
    /// enough reflectors, measured over at least the confirmation time.
    func judgeBackscatter(at time: Int64) {
        let settings = configuration.backscatter
        let confirmation = configuration.detection.confirmation.nanoseconds
        let slots = backscatter.slots
        guard slots.count > 0 else { return }
        for slot in 0..<slots.capacity where slots.isOccupied(slot) {
            backscatter.advanceEpoch(slot, to: time / BackscatterTable.epochLength)
            let entry = backscatter.entries.pointer(slot)
            let total = entry.pointee.synAcks.total
            guard total >= settings.minSources,
                Engine.elapsed(from: entry.pointee.lastNotice, to: time) >= settings.noticeInterval.nanoseconds
            else { continue }
            let windowStart = max(entry.pointee.firstSeen, (entry.pointee.epoch - 1) * BackscatterTable.epochLength)
            let span = time - windowStart
            let rate = Double(total) / (Double(max(span, confirmation)) / 1e9)
            guard span >= confirmation, rate >= settings.minPerSecond else { continue }
            let reflectors = backscatter.distinct.estimate(
                backscatter.sketch(slot, parity: 0),
                backscatter.sketch(slot, parity: 1)
            )
            guard reflectors >= settings.minSources else { continue }
            entry.pointee.lastNotice = time
            counters.backscatterNotices += 1
            pendingEvents.append(
                Event(
                    type: .backscatter,
                    time: Timestamp(nanoseconds: time),
                    victim: entry.pointee.address,
                    backscatter: BackscatterFigures(synAckPerSecond: rate, distinctSources: reflectors)
                )
            )
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the rate window of one service shows at one step.
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

    /// Reads the rate window of `slot` as it stands at the start of `step`.
    ///
    /// SYN rate covers the whole window; half-open rate and completion ratio only the steps older
    /// than the completion grace, whose handshakes had time to complete. Both divide by the part
    /// of the window the service has existed, so a flood is measured right from its first second.
    func measure(_ slot: Int, step: Int64) -> WindowMeasurement {
        victims.advanceRing(slot, to: step - 1)
        let ringLength = Int64(victims.ringLength)
        let firstStep = max(step - ringLength, victims.states[slot].firstSeen / resolution)
        let lastMatured = step - 1 - graceSteps
        var synPackets = 0, attempts = 0, completed = 0, reset = 0
        var position = firstStep
        while position < step {
            let counters = victims.stepCounters(slot, step: position).pointee
            synPackets += Int(counters.synPackets)
            if position <= lastMatured {
                attempts += Int(counters.attempts)
                completed += Int(counters.completed)
                reset += Int(counters.reset)
            }
            position += 1
        }
        let stepSeconds = Double(resolution) / 1e9
        var result = WindowMeasurement()
        result.synPackets = synPackets
        result.synPerSecond = Double(synPackets) / (Double(step - firstStep) * stepSeconds)
        if lastMatured >= firstStep {
            let halfOpen = max(0, attempts - completed - reset)
            result.halfOpenPerSecond = Double(halfOpen) / (Double(lastMatured - firstStep + 1) * stepSeconds)
            result.completionRatio = attempts > 0 ? Double(completed) / Double(attempts) : 1
            result.maturedAttempts = attempts
        }
        return result
    }

    /// The detector's decision for one service at one step.
    func evaluate(_ slot: Int, step: Int64, time: Int64) {
        victims.advanceEpoch(slot, to: time / epochLength)
        let measured = measure(slot, step: step)
        let state = victims.states.pointer(slot)
        let detection = configuration.detection
        switch state.pointee.phase {
        case .idle, .candidate:
            guard let threshold = startThreshold(slot, measured, step: step, time: time) else {
                state.pointee.phase = .idle
                learnBaseline(slot, measured)
                return
            }
            if state.pointee.phase == .idle {
                state.pointee.phase = .candidate
                state.pointee.candidateSince = time
            }
            if time - state.pointee.candidateSince >= detection.confirmation.nanoseconds {
                startAttack(slot, threshold: threshold, measured: measured, at: time)
            }
        case .attacked:
            state.pointee.samplingShift = Engine.samplingShift(forSynPerSecond: measured.synPerSecond)
            if evidentHalfOpen(measured.halfOpenPerSecond) >= detection.endFraction * state.pointee.startThreshold {
                state.pointee.lastEvidence = time
            }
            state.pointee.peakSynPerSecond = max(state.pointee.peakSynPerSecond, measured.synPerSecond)
            state.pointee.peakHalfOpenPerSecond = max(state.pointee.peakHalfOpenPerSecond, measured.halfOpenPerSecond)
            if time - state.pointee.lastEvidence >= detection.quietPeriod.nanoseconds {
                endAttack(slot, at: time, reason: .quiet)
            } else if time - state.pointee.lastUpdate >= detection.updateInterval.nanoseconds {
                state.pointee.lastUpdate = time
                let figures = self.figures(slot, measured)
                // Only evidence may change the kind: once the flood stops, its emptied windows read as distributed.
                if state.pointee.lastEvidence == time {
                    state.pointee.kind = classify(
                        slot,
                        distinctSources: figures.distinctSources,
                        top: figures.topSources.first
                    )
                }
                state.pointee.peakDistinctSources = max(state.pointee.peakDistinctSources, figures.distinctSources)
                raise(slot, .attackUpdate, at: time, figures: figures)
            }
        }
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

    /// The threshold the measurement exceeds, when it is evidence of a flood: the absolute one
    /// (unless most handshakes complete: a flash crowd), else the service's learned baseline.
    func startThreshold(_ slot: Int, _ measured: WindowMeasurement, step: Int64, time: Int64) -> Double? {
        let detection = configuration.detection
        guard measured.maturedAttempts >= detection.minAttempts else { return nil }
        // While the capture loses frames, the kernel's SYN pressure lets the rate be corrected for the loss.
        if evidentHalfOpen(measured.halfOpenPerSecond) >= detection.halfOpenPerSecond,
            measured.completionRatio <= detection.maxCompletionRatio
        {
            if victims.keys[slot].port == 0 && !isSpreadOverPorts(slot, measured, step: step) { return nil }
            return detection.halfOpenPerSecond
        }
        // A host's figures are the sum of its services': only the absolute threshold applies.
        if victims.keys[slot].port == 0 { return nil }
        let baseline = configuration.baseline
        let state = victims.states[slot]
        guard baseline.enabled, time - state.baselineSince >= baseline.warmup.nanoseconds else { return nil }
        let threshold = max(
            baseline.minHalfOpenPerSecond,
            baseline.factor * state.baselineHalfOpen,
            state.baselineHalfOpen + baseline.deviations * state.baselineHalfOpenVariance.squareRoot()
        )
        guard measured.halfOpenPerSecond >= threshold,
            measured.completionRatio <= state.baselineCompletion - baseline.minCompletionDrop
        else { return nil }
        return threshold
    }

    /// Moves the service's baseline towards a quiet measurement (exponentially weighted mean and variance).
    func learnBaseline(_ slot: Int, _ measured: WindowMeasurement) {
        let state = victims.states.pointer(slot)
        let alpha = 1 - pow(2, -Double(resolution) / Double(configuration.baseline.halfLife.nanoseconds))
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
        state.pointee.attackStart = state.pointee.candidateSince
        state.pointee.lastEvidence = time
        state.pointee.lastUpdate = time
        state.pointee.startThreshold = threshold
        // The SYNs of the window that revealed the attack belong to it.
        state.pointee.synPacketsAtStart = state.pointee.synPackets - measured.synPackets
        state.pointee.peakSynPerSecond = measured.synPerSecond
        state.pointee.peakHalfOpenPerSecond = measured.halfOpenPerSecond
        state.pointee.samplingShift = Engine.samplingShift(forSynPerSecond: measured.synPerSecond)
        let figures = self.figures(slot, measured)
        state.pointee.kind = classify(slot, distinctSources: figures.distinctSources, top: figures.topSources.first)
        state.pointee.peakDistinctSources = figures.distinctSources
        counters.attacks += 1
        raise(slot, .attackStart, at: time, figures: figures)
    }

    func endAttack(_ slot: Int, at time: Int64, reason: AttackSummary.EndReason) {
        let state = victims.states.pointer(slot)
        let figures = self.figures(slot, measure(slot, step: time / resolution))
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
        VictimFigures(
            synPerSecond: measured.synPerSecond,
            halfOpenPerSecond: measured.halfOpenPerSecond,
            completionRatio: measured.completionRatio,
            distinctSources: victims.distinct.estimate(
                victims.sketch(slot, parity: 0),
                victims.sketch(slot, parity: 1)
            ),
            topSources: topSources(slot)
        )
    }

    /// The sources with the most half-open attempts on the service in `slot`.
    ///
    /// The Space-Saving sketch certifies sources holding more than 1/k of the attempts. A botnet of
    /// many equal bots has none such, so the source table (exact counts for sources that repeat)
    /// completes the list with the sources whose latest SYN went to this address.
    func topSources(_ slot: Int) -> [SourceCount] {
        // A host-wide attack is a spoofed one: no source stands out.
        guard victims.keys[slot].port != 0 else { return [] }
        let wanted = configuration.detection.topSources
        var top = SpaceSaving.top(
            wanted,
            of: [victims.top(slot, parity: 0), victims.top(slot, parity: 1)],
            k: victims.topK
        )
        guard top.count < wanted else { return top }
        let address = victims.keys[slot].address
        let known = Set(top.map(\.address))
        var candidates: [SourceCount] = []
        for source in 0..<sources.slots.capacity where sources.slots.isOccupied(source) {
            guard sources.entries[source].lastTarget == address else { continue }
            // Counts of sources silent for two epochs are out of the window.
            sources.advanceEpoch(source, to: currentEpoch)
            let entry = sources.entries[source]
            guard !known.contains(entry.address), entry.halfOpen >= 2 else { continue }
            candidates.append(SourceCount(address: entry.address, halfOpen: entry.halfOpen))
        }
        candidates.sort { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
        top += candidates.prefix(wanted - top.count)
        return top.sorted { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
    }

    /// Tells the kind of flood from who sends the half-open attempts of the sources window.
    func classify(_ slot: Int, distinctSources: Int, top: SourceCount?) -> FloodKind {
        let state = victims.states[slot]
        let classification = configuration.classification
        let attempts = max(1, state.epochAttempts.total)
        let halfOpen = max(1, attempts - state.epochClosed.total)
        if let top, Double(top.halfOpen) >= classification.singleSourceShare * Double(halfOpen) {
            return .singleSource
        }
        if distinctSources >= classification.randomSourceMinSources,
            Double(distinctSources) >= classification.randomSourceDistinctRatio * Double(attempts)
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
                kernel: kernelFigures(for: key, halfOpenPerSecond: figures.halfOpenPerSecond)
            )
        )
    }

    // MARK: Notices

    /// Nanoseconds from `start` to `end`; `Int64.max` when `start` is `.min` (never).
    static func elapsed(from start: Int64, to end: Int64) -> Int64 {
        start == .min ? .max : end - start
    }

    /// Raises a scan notice for candidates whose handshakes had time to complete and mostly did not.
    func judgeScanCandidates(at time: Int64) {
        guard !scanCandidates.isEmpty else { return }
        let grace = configuration.windows.completionGrace.nanoseconds + resolution
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

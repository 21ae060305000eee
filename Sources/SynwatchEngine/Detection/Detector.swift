#if canImport(Glibc)
#elseif canImport(Darwin)
import Darwin
#endif

/// What the rate window of one service shows at one step: every figure over the same matured steps.
struct WindowMeasurement {
    /// SYN packets in the window.
    var synPackets = 0
    var synPerSecond = 0.0
    var halfOpenPerSecond = 0.0
    /// Attempts the server refused with a RST: nothing listens on the port.
    var refusedPerSecond = 0.0
    var completedPerSecond = 0.0
    var completionRatio = 1.0
    /// Attempts old enough to have completed: the base of the figures above.
    var maturedAttempts = 0
    /// The step after the window's last.
    var endStep: Int64 = 0

    /// Attempts that did not complete: half-open, or refused by a closed port.
    var failingPerSecond: Double { halfOpenPerSecond + refusedPerSecond }
}

/// The detector: the evidence and state of each service's attack, once a step, and the events they raise.
///
/// The engine owns it and hands it what it reads (`DetectorInputs`) and the counters it adds to, never itself
/// (`Engine.withDetector`).
struct Detector {
    var nextAttackID: UInt64 = 1
    /// Sources that crossed the scan target count, judged once their handshakes had time to complete.
    var scanCandidates: [(slot: Int, source: IPAddress, since: Int64)] = []
    static let maximumScanCandidates = 256
    /// A service under attack keeps at least this many tracked attempts per second (if it has them)...
    static let minimumTrackedPerSecond = 2_000.0
    /// ...while tracking as few as one in 2^this (a tracked attempt's weight is a byte).
    static let maximumSamplingShift: UInt8 = 7
    /// The services under a random-source attack thinned by client, most SYNs first (`Engine.thinned`).
    var thinned: [SampledService] = []
    var pendingEvents: [Event] = []
    /// For each attack going on, the most the kernel showed during it (`observe`).
    var attackKernelPeaks: [UInt64: KernelFigures] = [:]
}

extension Detector {
    /// One step's decisions: every tracked service, then every host (a host's flood is no service's, which it can
    /// tell only once its services have been decided for the step), then scans, then backscatter.
    mutating func tick(step: Int64, time: Int64, _ inputs: DetectorInputs, counters: inout EngineStatistics) {
        let victims = inputs.victims
        var thinning: [(service: SampledService, rate: Double)] = []
        for hosts in [false, true] {
            for slot in 0..<victims.slots.capacity
            where victims.slots.isOccupied(slot) && (victims.keys[slot].port == 0) == hosts {
                evaluate(slot, step: step, time: time, inputs, counters: &counters)
                let state = victims.states[slot]
                if state.phase == .attacked && state.kind == .randomSource && state.samplingShift > 0 {
                    let key = victims.keys[slot]
                    thinning.append(
                        (
                            SampledService(address: key.address, port: key.port, shift: state.samplingShift),
                            state.peakSynPerSecond
                        )
                    )
                }
            }
        }
        thinning.sort { ($0.rate, $1.service.port) > ($1.rate, $0.service.port) }
        let next = thinning.prefix(ClientSampling.maximumServices).map(\.service)
        if next != thinned { thinned = Array(next) }
        judgeScanCandidates(at: time, inputs, counters: &counters)
        judgeBackscatter(at: time, inputs, counters: &counters)
    }

    /// The detector's decision for one service at one step.
    mutating func evaluate(
        _ slot: Int,
        step: Int64,
        time: Int64,
        _ inputs: DetectorInputs,
        counters: inout EngineStatistics
    ) {
        let victims = inputs.victims, clock = inputs.clock
        victims.advanceEpoch(slot, to: time / clock.epochLength)
        let state = victims.states.pointer(slot)
        state.pointee.grace = inputs.learntGrace(slot: slot)
        let measured = inputs.measure(slot, step: step)
        let detection = inputs.configuration.detection
        if victims.keys[slot].port == 0 {
            // What a host answered and holds tells a flood over its ports from a scan (`isSpreadOverPorts`).
            let held = inputs.heldPastDeadline(slot, step: step)
            state.pointee.epochHeld[clock.parity] &+= UInt32(held)
        }
        switch state.pointee.phase {
        case .idle:
            let threshold = inputs.allowance(slot, measured, time: time)
            let perStep = threshold * Double(clock.resolution) / 1e9
            // Each sum judges the SYNs of the step that matured now, or of the one that matured `answerSteps` or
            // `deadlineSteps` before it: they came one grace before their step.
            func synTime(maturedStepsAgo steps: Int64) -> Int64 {
                (step - 1 - steps) * clock.resolution - state.pointee.steppedGrace
            }
            state.pointee.evidence.undecided.add(
                inputs.undecidedEvidence(slot, step: step) - perStep,
                synTime: synTime(maturedStepsAgo: 0)
            )
            state.pointee.evidence.ignoredAnswers.add(
                inputs.ignoredAnswerEvidence(slot, step: step) - perStep,
                synTime: synTime(maturedStepsAgo: inputs.settings.answerSteps)
            )
            state.pointee.evidence.failed.add(
                inputs.failedEvidence(slot, step: step) - perStep,
                synTime: synTime(maturedStepsAgo: inputs.settings.deadlineSteps)
            )
            let evidence = state.pointee.evidence
            let interval = threshold * Double(detection.confirmation.nanoseconds) / 1e9
            guard evidence.largest >= interval || inputs.kernelLiftsOverThreshold(measured) else {
                // A window over the threshold is never learnt: it may be a flood whose attempts wait for their
                // retransmission deadline, and learnt meanwhile it would raise the threshold it is judged by.
                if evidence.isEmpty && measured.halfOpenPerSecond <= threshold { inputs.learnBaseline(slot, measured) }
                return
            }
            // Attempts judged after they matured are older than the window: when they alone are the evidence, a
            // flood that has stopped since (a burst shorter than the wait) is in the window that ended with them, and
            // is judged and reported by it, not by what came after.
            let judgedLater: Int64? =
                if evidence.undecided.excess >= interval {
                    nil
                } else if evidence.ignoredAnswers.excess >= interval {
                    inputs.settings.answerSteps
                } else if evidence.failed.excess >= interval {
                    inputs.settings.deadlineSteps
                } else {
                    nil
                }
            let window =
                judgedLater.flatMap { inputs.measure(slot, stepsAfterMaturity: $0, before: step) }.flatMap {
                    $0.maturedAttempts > measured.maturedAttempts ? $0 : nil
                } ?? measured
            // Where its host is thinned by client, a service's kept SYNs count for 2^shift each: it needs as many SYNs
            // seen as any other service, not a few that happened to be kept.
            let key = victims.keys[slot]
            let seenAttempts = window.maturedAttempts >> thinned.shift(of: key.address, port: key.port)
            if key.port == 0 && !inputs.isSpreadOverPorts(slot, measured, step: step) {
                // The evidence is a service's, reported for that service: none is left for the host.
                state.pointee.evidence = Evidence()
            } else if seenAttempts >= detection.minAttempts && !inputs.looksSpoofedFromTooFewSources(slot) {
                startAttack(
                    slot,
                    threshold: threshold,
                    measured: window,
                    // The SYNs of the evidence that decided, or of the step that matured now when the kernel lifted
                    // the window over the threshold.
                    evidenceSince: evidence.since(reaching: interval) ?? synTime(maturedStepsAgo: 0),
                    at: time,
                    inputs,
                    counters: &counters
                )
            } else {
                // Too few attempts to judge yet, or to tell a spoofed flood from a botnet: evidence waits at the
                // interval, it does not pile up.
                state.pointee.evidence.cap(at: interval)
            }
        case .attacked:
            // A lower shift tracks 4-tuples the higher one did not: their retransmissions would look like new
            // attempts. It waits until their attempts have timed out, as every attempt does unsampled.
            let shift = Detector.samplingShift(forSynPerSecond: measured.synPerSecond)
            if shift >= state.pointee.samplingShift {
                state.pointee.samplingShift = shift
                state.pointee.samplingWanted = time
            } else if time - state.pointee.samplingWanted >= inputs.settings.timeout {
                state.pointee.samplingShift = shift
                state.pointee.samplingWanted = time
            }
            let endThreshold = detection.endFraction * state.pointee.startThreshold
            if inputs.showsFloodStill(slot, measured, step: step, above: endThreshold) {
                state.pointee.lastEvidence = time
                state.pointee.floodSeenUntil = max(
                    state.pointee.floodSeenUntil,
                    inputs.floodSeenUntil(slot, measured, step: step, above: endThreshold)
                )
            }
            // Peaks at every step; the top sources (a walk of the source table) only when an event needs them.
            let distinctSources = inputs.failingSources(slot)
            state.pointee.peakSynPerSecond = max(state.pointee.peakSynPerSecond, measured.synPerSecond)
            state.pointee.peakHalfOpenPerSecond = max(state.pointee.peakHalfOpenPerSecond, measured.halfOpenPerSecond)
            state.pointee.peakRefusedPerSecond = max(state.pointee.peakRefusedPerSecond, measured.refusedPerSecond)
            state.pointee.peakDistinctSources = max(state.pointee.peakDistinctSources, distinctSources)
            if time - state.pointee.lastEvidence >= detection.quietPeriod.nanoseconds {
                endAttack(slot, at: time, reason: .quiet, inputs)
            } else if let revised = revisedSpoofedKind(slot, distinctSources: distinctSources, at: time, inputs) {
                state.pointee.tell(revised)
                state.pointee.lastUpdate = time
                raise(slot, .attackUpdate, at: time, figures: inputs.figures(slot, measured), inputs)
            } else if time - state.pointee.lastUpdate >= detection.updateInterval.nanoseconds {
                state.pointee.lastUpdate = time
                // Only evidence may change the kind: once the flood stops, its emptied windows read as distributed.
                // So may only enough failing attempts: a flood whose SYNs all come again (a capture replayed in a
                // loop) has hardly any new, and a handful reads as any kind.
                // Counted as seen: a kept attempt of a service thinned by client stands for 2^shift.
                let key = inputs.victims.keys[slot]
                let seenFailing = inputs.failingAttempts(slot) >> thinned.shift(of: key.address, port: key.port)
                if state.pointee.lastEvidence == time && seenFailing >= detection.minAttempts {
                    let reading = inputs.classify(
                        slot,
                        distinctSources: distinctSources,
                        top: inputs.topSources(slot).first,
                        step: step
                    )
                    state.pointee.confirmKind(
                        reading: reading,
                        at: time,
                        window: inputs.configuration.windows.sources.nanoseconds
                    )
                }
                raise(slot, .attackUpdate, at: time, figures: inputs.figures(slot, measured), inputs)
            }
        }
    }

    /// The kind of a young random-source attack that no longer looks spoofed, nil otherwise.
    ///
    /// An attack starts within a few steps of its flood, when each bot of a botnet of many slow bots has sent one
    /// SYN: it looks spoofed. Until its sources window has filled, such an attack is judged again at every step of
    /// evidence, and a new kind is told at once rather than at the next update. Only away from random-source: a
    /// spoofed storm's sources repeat more as the window fills, never less, and that change waits for the update.
    func revisedSpoofedKind(_ slot: Int, distinctSources: Int, at time: Int64, _ inputs: DetectorInputs) -> FloodKind? {
        let state = inputs.victims.states[slot]
        guard state.kind == .randomSource, state.lastEvidence == time,
            time - state.attackStart < inputs.configuration.windows.sources.nanoseconds
        else { return nil }
        // The source table is walked for top sources only once the distinct sources no longer say spoofed.
        let step = time / inputs.clock.resolution
        guard inputs.classify(slot, distinctSources: distinctSources, top: nil, step: step) != .randomSource
        else { return nil }
        let top = inputs.topSources(slot).first
        let kind = inputs.classify(slot, distinctSources: distinctSources, top: top, step: step)
        return kind == .randomSource ? nil : kind
    }

    /// How many halvings of the tracked attempts a SYN rate allows while keeping the sample large
    /// enough for the half-open figure to stay within a few percent.
    static func samplingShift(forSynPerSecond rate: Double) -> UInt8 {
        var shift: UInt8 = 0
        while shift < maximumSamplingShift, rate / Double(1 << (shift + 1)) >= minimumTrackedPerSecond { shift += 1 }
        return shift
    }

    mutating func startAttack(
        _ slot: Int,
        threshold: Double,
        measured: WindowMeasurement,
        evidenceSince: Int64,
        at time: Int64,
        _ inputs: DetectorInputs,
        counters: inout EngineStatistics
    ) {
        let victims = inputs.victims
        let state = victims.states.pointer(slot)
        state.pointee.phase = .attacked
        state.pointee.attackID = nextAttackID
        nextAttackID += 1
        state.pointee.evidence = Evidence()
        state.pointee.lastEvidence = time
        state.pointee.lastUpdate = time
        state.pointee.startThreshold = threshold
        // The SYNs of the window that revealed the attack belong to it, and so do those that came since, which
        // have not matured yet (counted in the steps from the window's end to the ring's head).
        var pending = 0
        var position = measured.endStep
        while position <= state.pointee.ringHead {
            pending += Int(victims.stepCounters(slot, step: position).pointee.synPackets)
            position += 1
        }
        state.pointee.synPacketsAtStart = state.pointee.synPackets - measured.synPackets - pending
        state.pointee.peakSynPerSecond = measured.synPerSecond
        state.pointee.peakHalfOpenPerSecond = measured.halfOpenPerSecond
        state.pointee.peakRefusedPerSecond = measured.refusedPerSecond
        // Where the flood's steps begin and end: after the peaks, which tell its SYNs from a loop's repeats.
        let endThreshold = inputs.configuration.detection.endFraction * threshold
        state.pointee.attackStart = inputs.floodSeenSince(slot, evidenceSince: evidenceSince, above: endThreshold)
        state.pointee.floodSeenUntil = max(
            state.pointee.attackStart,
            inputs.floodSeenUntil(slot, measured, step: time / inputs.clock.resolution, above: endThreshold)
        )
        state.pointee.samplingShift = Detector.samplingShift(forSynPerSecond: measured.synPerSecond)
        state.pointee.samplingWanted = time
        state.pointee.kind = inputs.classify(
            slot,
            distinctSources: inputs.failingSources(slot),
            top: inputs.topSources(slot).first,
            step: time / inputs.clock.resolution
        )
        state.pointee.challengerKind = nil
        state.pointee.kindsLeft = 0
        state.pointee.attacksStarted[state.pointee.kind] += 1
        let figures = inputs.figures(slot, measured)
        state.pointee.peakDistinctSources = figures.distinctSources
        counters.attacks += 1
        raise(slot, .attackStart, at: time, figures: figures, inputs)
    }

    /// Ends the attack on `slot` at `time`: after its quiet period, or at the end of the input, whose last frame came
    /// at `lastSeen` (the attack lasted until then).
    mutating func endAttack(
        _ slot: Int,
        at time: Int64,
        reason: AttackSummary.EndReason,
        lastSeen: Int64? = nil,
        _ inputs: DetectorInputs
    ) {
        let state = inputs.victims.states.pointer(slot)
        let figures = inputs.figures(slot, inputs.measure(slot, step: time / inputs.clock.resolution))
        state.pointee.peakDistinctSources = max(state.pointee.peakDistinctSources, figures.distinctSources)
        // The flood's last SYNs, or the input's last frame when the input ended while they were still coming.
        let end = min(state.pointee.floodSeenUntil, reason == .quiet ? .max : lastSeen ?? time)
        let summary = AttackSummary(
            start: Timestamp(nanoseconds: state.pointee.attackStart),
            duration: TimeSpan(nanoseconds: max(0, end - state.pointee.attackStart)),
            peakSynPerSecond: state.pointee.peakSynPerSecond,
            peakHalfOpenPerSecond: state.pointee.peakHalfOpenPerSecond,
            peakRefusedPerSecond: state.pointee.peakRefusedPerSecond,
            peakDistinctSources: state.pointee.peakDistinctSources,
            totalSyns: max(0, state.pointee.synPackets - state.pointee.synPacketsAtStart),
            endReason: reason
        )
        raise(slot, .attackEnd, at: time, figures: figures, summary: summary, inputs)
        state.pointee.phase = .idle
        state.pointee.attackEndStep = time / inputs.clock.resolution
        state.pointee.samplingShift = 0
        // The attack must not become the service's idea of normal.
        state.pointee.baselineSince = min(state.pointee.baselineSince, state.pointee.attackStart)
    }

    mutating func raise(
        _ slot: Int,
        _ type: EventType,
        at time: Int64,
        figures: VictimFigures,
        summary: AttackSummary? = nil,
        _ inputs: DetectorInputs
    ) {
        let key = inputs.victims.keys[slot]
        let state = inputs.victims.states[slot]
        let kernelFigures = kernelFigures(slot, type, halfOpenPerSecond: figures.halfOpenPerSecond, inputs)
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
    mutating func kernelFigures(
        _ slot: Int,
        _ type: EventType,
        halfOpenPerSecond: Double,
        _ inputs: DetectorInputs
    ) -> KernelFigures? {
        let latest = inputs.kernelFigures(for: inputs.victims.keys[slot], halfOpenPerSecond: halfOpenPerSecond)
        guard type == .attackEnd, let peaks = kernelPeaks(forAttackIn: slot, inputs) else { return latest }
        return latest.map { peaks.merged(with: $0) } ?? peaks
    }

    /// The kernel's figures for the end of the attack in `slot`: the most it showed while the attack lasted.
    mutating func kernelPeaks(forAttackIn slot: Int, _ inputs: DetectorInputs) -> KernelFigures? {
        attackKernelPeaks.removeValue(forKey: inputs.victims.states[slot].attackID)
    }

    /// Keeps, for each attack going on, the most the kernel showed during it, for its end.
    mutating func recordKernelPeaks(_ inputs: DetectorInputs) {
        let victims = inputs.victims
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && victims.states[slot].phase == .attacked {
            let state = victims.states[slot]
            let now = inputs.kernelFigures(for: victims.keys[slot], halfOpenPerSecond: state.peakHalfOpenPerSecond)!
            attackKernelPeaks[state.attackID] = attackKernelPeaks[state.attackID].map { $0.merged(with: now) } ?? now
        }
    }

    /// Nanoseconds from `start` to `end`; `Int64.max` when `start` is `.min` (never).
    static func elapsed(from start: Int64, to end: Int64) -> Int64 {
        start == .min ? .max : end - start
    }

    /// Raises a scan notice for candidates whose handshakes had time to complete and mostly did not.
    mutating func judgeScanCandidates(at time: Int64, _ inputs: DetectorInputs, counters: inout EngineStatistics) {
        guard !scanCandidates.isEmpty else { return }
        let sources = inputs.sources
        let grace = inputs.configuration.windows.completionGrace.nanoseconds + inputs.clock.resolution
        let scan = inputs.configuration.scan
        // Taken out while judged (without a copy): the judgement appends to `pendingEvents`, another part of `self`.
        var candidates: [(slot: Int, source: IPAddress, since: Int64)] = []
        swap(&candidates, &scanCandidates)
        defer { swap(&candidates, &scanCandidates) }
        candidates.removeAll { candidate in
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
            let addresses = sources.distinctAddresses(slot)
            // A source spraying the ports of a host under a flood of many sources is one of the flood's.
            guard ratio <= scan.maxCompletionRatio,
                addresses > 1 || !inputs.isUnderHostAttack(state.pointee.lastTarget),
                Detector.elapsed(from: state.pointee.lastNotice, to: time) >= scan.noticeInterval.nanoseconds
            else { return true }
            state.pointee.lastNotice = time
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

    /// Raises a backscatter notice for each address that received enough unsolicited SYN-ACKs from enough
    /// reflectors in the last whole second, judged from `BackscatterTable.followUpGrace` after it: by then the
    /// SYN-ACKs that answered SYNs out of sight have been taken out of its count by their connection's next segment.
    mutating func judgeBackscatter(at time: Int64, _ inputs: DetectorInputs, counters: inout EngineStatistics) {
        let backscatter = inputs.backscatter
        let settings = inputs.configuration.backscatter
        let slots = backscatter.slots
        let epoch = time / BackscatterTable.epochLength
        guard slots.count > 0, time - epoch * BackscatterTable.epochLength >= BackscatterTable.followUpGrace else {
            return
        }
        for slot in 0..<slots.capacity where slots.isOccupied(slot) {
            backscatter.advanceEpoch(slot, to: epoch)
            let entry = backscatter.entries.pointer(slot)
            let lastSecond = Int(entry.pointee.synAcks[Int((epoch - 1) & 1)])
            guard lastSecond >= settings.minSources, Double(lastSecond) >= settings.minPerSecond,
                Detector.elapsed(from: entry.pointee.lastNotice, to: time) >= settings.noticeInterval.nanoseconds
            else { continue }
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
                    backscatter: BackscatterFigures(synAckPerSecond: Double(lastSecond), distinctSources: reflectors)
                )
            )
        }
    }
}

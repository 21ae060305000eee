/// What the detector reads of the engine at one step, handed in rather than the engine itself: the tables are
/// shared references (the packet path writes them between steps), the rest are copies that do not change
/// during a step.
struct DetectorInputs {
    let configuration: EngineConfiguration
    let settings: DerivedSettings
    let clock: StepClock
    let hasher: KeyedHasher
    let victims: VictimTable
    let sources: SourceTable
    let backscatter: BackscatterTable
    /// Completion delays of every service's handshakes: the grace of services not yet learnt.
    let linkDelays: UnsafeMutablePointer<UInt16>
    /// The kernel's latest reading, when the daemon feeds it.
    let kernel: KernelObservation?
}

extension DetectorInputs {

    /// Reads the rate window of `slot` as it stands at the start of `step`: the steps whose attempts
    /// have matured (had their service's grace to complete), over the part the service has existed,
    /// so a flood is measured right from its first step.
    func measure(_ slot: Int, step: Int64) -> WindowMeasurement {
        victims.advanceRing(slot, to: step - 1)
        let rateSteps = configuration.windows.rate.nanoseconds / clock.resolution
        let state = victims.states[slot]
        let firstStep = max(step - rateSteps, (state.firstSeen + state.grace) / clock.resolution)
        var synPackets = 0, attempts = 0, completed = 0, halfOpen = 0, refused = 0
        var position = firstStep
        while position < step {
            let counters = victims.stepCounters(slot, step: position).pointee
            synPackets += Int(counters.synPackets)
            attempts += Int(counters.attempts)
            completed += Int(counters.completed)
            halfOpen += counters.halfOpen
            refused += Int(counters.refused)
            position += 1
        }
        var result = WindowMeasurement()
        result.endStep = step
        guard firstStep < step else { return result }
        let seconds = Double(step - firstStep) * Double(clock.resolution) / 1e9
        result.synPackets = synPackets
        result.synPerSecond = Double(synPackets) / seconds
        // Sampled attempts are estimates: never more half-open and refused attempts than SYNs.
        let halfOpenSeen = min(halfOpen, synPackets)
        result.halfOpenPerSecond = Double(halfOpenSeen) / seconds
        result.refusedPerSecond = Double(min(refused, synPackets - halfOpenSeen)) / seconds
        result.completedPerSecond = Double(completed) / seconds
        result.completionRatio = attempts > 0 ? min(1, Double(completed) / Double(attempts)) : 1
        result.maturedAttempts = attempts
        return result
    }

    /// The window that ends with the step that matured `steps` before the one that just did: whose attempts passed
    /// their retransmission deadline (`failedEvidence`), or had the longest a handshake may take
    /// (`ignoredAnswerEvidence`), by `step`; while the service's ring still holds all of it.
    func measure(_ slot: Int, stepsAfterMaturity steps: Int64, before step: Int64) -> WindowMeasurement? {
        let end = step - steps
        guard victims.holds(slot, step: end - configuration.windows.rate.nanoseconds / clock.resolution) else {
            return nil
        }
        return measure(slot, step: end)
    }

    /// Evidence of a flood in the step that just matured (`step - 1`): attempts whose client reset them, attempts of
    /// a SYN repeated more often than any stack sends one, attempts still undecided that come from many sources and
    /// far outnumber what the service completed in the same step, and attempts the server refused (a flood at a
    /// closed port) on a host, or on a service that never completed a handshake (one that did listens: it refuses
    /// only while it restarts, and its own clients, or a proxy in front of it, then make the refusals). A crowd over
    /// a lossy path completes most of its attempts; one client's burst into a full listen queue comes from one source
    /// and retransmits.
    ///
    /// On a service, attempts still undecided whose SYN carried no options count too, from any number of sources,
    /// beyond nine per such attempt that completed: no client's stack sent them, so they need not wait to be told from
    /// a client's burst (a flood from one address is told as soon as its attempts mature, not a second or a
    /// retransmission deadline later), and a tool of one's own that completes its handshakes raises nothing. A host
    /// waits for its deadline: a scan of its ports is told from a flood over them by what they leave open then.
    func undecidedEvidence(_ slot: Int, step: Int64) -> Double {
        let counters = victims.stepCounters(slot, step: step - 1).pointee
        let isService = victims.keys[slot].port != 0
        let refusalsCount = !isService || victims.states[slot].completions == 0
        let refused = refusalsCount ? Double(counters.refused) : 0
        // Never retransmitted, reset, refused or completed: among the undecided ones.
        let repeated = min(Int(counters.repeated), counters.undecided)
        let optionless = isService ? min(Int(counters.optionless), counters.undecided - repeated) : 0
        let optionlessExcess = max(0, Double(optionless) - allowedBeside(counters.optionlessCompleted))
        let decided = Double(counters.clientReset) + refused + Double(repeated) + optionlessExcess
        let undecided = Double(counters.undecided - repeated - optionless)
        // The step's sources are those of the tool's attempts too.
        let fromMany = Self.comeFromManySources(counters, undecided: Double(counters.undecided - repeated))
        return decided + (fromMany ? max(0, undecided - allowedBeside(counters.completed)) : 0)
    }

    /// The attempts that may stay open beside `completed` ones before the excess counts: a flood completes at most
    /// `max_completion_ratio` of its attempts, so `completed * (1 - ratio) / ratio` others.
    private func allowedBeside(_ completed: UInt32) -> Double {
        let ratio = configuration.detection.maxCompletionRatio
        return ratio <= 0 ? Double.infinity : Double(completed) * (1 - ratio) / ratio
    }

    /// Whether a step's undecided attempts come from many sources: at most four each (a client's burst into a full
    /// queue is dozens to hundreds), or fifty sources (the 64-bit counter saturates near 260).
    private static func comeFromManySources(_ counters: StepCounters, undecided: Double) -> Bool {
        Double(LinearCounter.estimate(counters.sources)) >= 0.25 * min(undecided, 200)
    }

    /// Evidence of a flood from few sources that the server answers, in the step that matured the longest a
    /// handshake may take ago (`windows.completion_grace_ceiling`): attempts answered whose client has neither
    /// completed, nor reset, nor sent its SYN again, beyond nine per completion (as in `undecidedEvidence`). A client
    /// acknowledges a SYN-ACK within its round trip, and sends its SYN again when the answer is lost; an address that
    /// sent no SYN (one spoofed source, hping3's `-a`) does neither, and waits for no retransmission deadline. Only
    /// few sources: many sources' undecided attempts counted when they matured. Not in a capture without the
    /// server's answers, nor while the service's heaviest source is a client (`heaviestSourceCompletes`).
    func ignoredAnswerEvidence(_ slot: Int, step: Int64) -> Double {
        guard let counters = counters(slot, stepsAfterMaturity: settings.answerSteps, before: step) else { return 0 }
        let ignored = Double(
            Int(counters.answered) - Int(counters.completed) - Int(counters.clientReset)
                - Int(counters.retransmittedAnswered)
        )
        guard ignored > 0, !Self.comeFromManySources(counters, undecided: Double(counters.undecided)) else { return 0 }
        let excess = ignored - allowedBeside(counters.completed)
        return excess > 0 && !heaviestSourceCompletes(slot) ? excess : 0
    }

    /// Whether the heaviest source of the service in `slot` (its heavy-hitter sketch's first) is a client, seen
    /// completing handshakes in the sources window. Answers a client leaves unacknowledged are its path's trouble (a
    /// return path down for a moment, a NAT of Windows hosts that ask again only after 3 s) until its retransmission
    /// deadline says otherwise. A host has no sketch: its evidence waits for the deadline.
    private func heaviestSourceCompletes(_ slot: Int) -> Bool {
        guard victims.keys[slot].port != 0 else { return true }
        let sketches = [victims.top(slot, parity: 0), victims.top(slot, parity: 1)]
        guard let top = SpaceSaving.top(1, of: sketches, k: victims.topK).first,
            let source = sources.find(top.address, hash: hasher.hash(top.address))
        else { return false }
        sources.advanceEpoch(source, to: clock.epoch)
        return Self.completes(sources.entries[source])
    }

    /// Failures decided by now in the step whose every attempt passed its retransmission deadline:
    /// attempts that neither completed, nor were refused, nor were retransmitted by a live client; and attempts
    /// retransmitted although the server had answered, beyond `lostAnswersPerRecovery` per such attempt that
    /// completed all the same.
    ///
    /// A client that waits in a full listen queue is not answered, and retransmits. One that sends its SYN again
    /// after a SYN-ACK lost that answer, and is answered again at once: by the deadline, half a second later, it
    /// has completed, unless its second SYN or answer was lost too. A flood from hosts that drop their SYN-ACKs
    /// recovers none, whatever its rate and however many of the service's own clients complete beside it, and a
    /// real stack behind that drop retransmits on.
    func failedEvidence(_ slot: Int, step: Int64) -> Double {
        guard let counters = counters(slot, stepsAfterMaturity: settings.deadlineSteps, before: step) else { return 0 }
        let neverRetransmitted = max(0, counters.halfOpen - Int(counters.retransmitted))
        return Double(neverRetransmitted) + Self.answeredInVain(counters)
    }

    /// Of the attempts of the step whose every attempt passed its retransmission deadline, those the server answered
    /// that the client neither completed nor reset (the retransmitted ones weighed as in `failedEvidence`). A
    /// scanner's kernel resets what it is answered within a round trip; an address that never answers leaves the
    /// server holding every one.
    func heldPastDeadline(_ slot: Int, step: Int64) -> Double {
        guard let counters = counters(slot, stepsAfterMaturity: settings.deadlineSteps, before: step) else { return 0 }
        let open = Int(counters.answered) - Int(counters.completed) - Int(counters.clientReset)
        return Double(max(0, open - Int(counters.retransmittedAnswered))) + Self.answeredInVain(counters)
    }

    /// The counters of the step that matured `steps` before the one that just did (`step - 1`): the step whose every
    /// attempt passed its retransmission deadline, or had the longest a handshake may take, by `step`. Nil unless
    /// the service's ring holds it, the service was followed since, and no attack that has ended counted its attempts.
    private func counters(_ slot: Int, stepsAfterMaturity steps: Int64, before step: Int64) -> StepCounters? {
        let matured = step - 1 - steps
        guard matured * clock.resolution >= victims.states[slot].firstSeen,
            matured > victims.states[slot].attackEndStep,
            victims.holds(slot, step: matured)
        else { return nil }
        return victims.stepCounters(slot, step: matured).pointee
    }

    /// Attempts still open that were retransmitted although answered, beyond `lostAnswersPerRecovery` for each such
    /// attempt that completed all the same.
    private static func answeredInVain(_ counters: StepCounters) -> Double {
        let recovered = Double(counters.retransmittedAnsweredCompleted)
        return max(0, Double(counters.retransmittedAnswered) - lostAnswersPerRecovery * recovered)
    }

    /// Attempts answered, retransmitted and still open at the deadline that a lossy path leaves per such attempt
    /// that completed: through one losing half its packets each way a retransmission and its answer both arrive one
    /// time in four, so three are left per recovery. A path that loses more serves no one.
    static let lostAnswersPerRecovery = 3.0

    /// Whether a service under attack still shows its flood: half-open attempts at `threshold` a second or more
    /// beyond the tail its completing clients leave (one per nine completions: a crowd completes at least nine in
    /// ten, as a flood at most one in ten, `detection.max_completion_ratio`), or as many failures past the
    /// retransmission deadline, which a flood among many clients still shows, or SYNs at half the flood's peak rate
    /// (and `threshold`) or more of which at most `max_completion_ratio` complete, whatever attempts they belong to:
    /// a spoofed capture replayed in a loop sends each SYN again with its ISN, as a stack retransmits it, and after
    /// the first loop no attempt is new, but the server's queue stays as full as the flood made it. (Clients
    /// retrying a server the flood left unanswering send far fewer than the flood did.) A flash crowd that follows
    /// a flood, a few of its handshakes slow, is no flood going on.
    func showsFloodStill(_ slot: Int, _ measured: WindowMeasurement, step: Int64, above threshold: Double) -> Bool {
        let ratio = configuration.detection.maxCompletionRatio
        let floodRate = max(threshold, configuration.detection.endFraction * victims.states[slot].peakSynPerSecond)
        if measured.synPerSecond >= floodRate && measured.completedPerSecond <= ratio * measured.synPerSecond {
            return true
        }
        // A flood at a closed port is refused: those attempts fail as surely as half-open ones.
        let halfOpen = evidentHalfOpen(measured.halfOpenPerSecond) + measured.refusedPerSecond
        guard halfOpen >= threshold else { return false }
        if halfOpen - completionTail(measured.completedPerSecond) >= threshold { return true }
        return failedEvidence(slot, step: step) * 1e9 / Double(clock.resolution) >= threshold
    }

    /// The half-open attempts that completing clients leave beside `completed` ones: one per nine completions (a crowd
    /// completes at least nine in ten, a flood at most one in ten, `detection.max_completion_ratio`).
    private func completionTail(_ completed: Double) -> Double {
        let ratio = configuration.detection.maxCompletionRatio
        return ratio >= 1 ? 0 : completed * ratio / (1 - ratio)
    }

    /// The capture time by which the SYNs of a flood that `measured` shows at `step` had all come. A window goes on
    /// showing a flood for most of its length after the flood stopped, and a step's own count is noise (a slow
    /// client's handshake is half-open until it completes): the flood ended with the step at which the window's sum
    /// of each step's excess (`failingExcess`) peaks, a CUSUM's change point. With no step in excess, the failures
    /// judged past their deadline at `step` showed it: it ended with their step.
    func floodSeenUntil(_ slot: Int, _ measured: WindowMeasurement, step: Int64, above threshold: Double) -> Int64 {
        var lastStep = step - 1 - settings.deadlineSteps
        var sum = 0.0, peak = 0.0
        var position = max(measured.endStep - configuration.windows.rate.nanoseconds / clock.resolution, 0)
        while position < measured.endStep {
            sum += failingExcess(slot, step: position, above: threshold)
            if sum > peak {
                peak = sum
                lastStep = position
            }
            position += 1
        }
        return (lastStep + 1) * clock.resolution - victims.states[slot].steppedGrace
    }

    /// The capture time of the first SYNs of a flood whose evidence began with the SYNs that came at `since`. Evidence
    /// counts only beyond what the service's completions allow, and a flood's first steps among busy clients may
    /// add none: it began with the step, within a rate window before `since` and after the service's last attack,
    /// from which the sum of each step's excess (`failingExcess`) up to `since` is highest, a CUSUM's change point.
    func floodSeenSince(_ slot: Int, evidenceSince since: Int64, above threshold: Double) -> Int64 {
        let state = victims.states[slot]
        let sinceStep = (since + state.steppedGrace) / clock.resolution
        var firstStep = sinceStep
        var sum = 0.0, highest = 0.0
        var position = sinceStep - 1
        let oldest = max(sinceStep - configuration.windows.rate.nanoseconds / clock.resolution, state.attackEndStep + 1)
        while position >= max(oldest, 0) {
            sum += failingExcess(slot, step: position, above: threshold)
            if sum > highest {
                highest = sum
                firstStep = position
            }
            position -= 1
        }
        return min(since, firstStep * clock.resolution - state.steppedGrace)
    }

    /// What a step adds to the sums that place a flood's start and end: its failing attempts as `showsFloodStill`
    /// weighs them, beyond `threshold`; 0 for a step the ring no longer holds.
    private func failingExcess(_ slot: Int, step: Int64, above threshold: Double) -> Double {
        guard victims.holds(slot, step: step) else { return 0 }
        let state = victims.states[slot]
        let counters = victims.stepCounters(slot, step: step).pointee
        let seconds = Double(clock.resolution) / 1e9
        let ratio = configuration.detection.maxCompletionRatio
        let syns = Double(counters.synPackets), completed = Double(counters.completed)
        let halfOpen = evidentHalfOpen(Double(min(counters.halfOpen, Int(counters.synPackets))))
        // A capture replayed in a loop: SYNs at the flood's rate that hardly complete, whatever their attempts.
        let floodSyns = max(threshold, configuration.detection.endFraction * state.peakSynPerSecond) * seconds
        let failing = syns >= floodSyns && completed <= ratio * syns ? syns : halfOpen + Double(counters.refused)
        // Sampled, one kept attempt counts for 2^shift: a step needs more than two (one is a slow client).
        let sampledNoise = state.samplingShift > 0 ? Double(2 << state.samplingShift) : 0
        return failing - completionTail(completed) - max(threshold * seconds, sampledNoise)
    }

    /// Whether the kernel's reading, while capture loses frames, lifts the window over the threshold.
    func kernelLiftsOverThreshold(_ measured: WindowMeasurement) -> Bool {
        let detection = configuration.detection
        return kernelCorroborates && evidentHalfOpen(measured.halfOpenPerSecond) >= detection.halfOpenPerSecond
            && measured.completionRatio <= detection.maxCompletionRatio
    }

    /// Whether the half-open attempts on a whole host are a flood spread over its ports, rather than a flood on
    /// one service (reported for that service) or one source probing many ports (a scan, which a busy host's
    /// completing clients must not turn into a flood). The flood's sources are spoofed, or many that repeat (a
    /// botnet spraying random ports), and none of them holds the share of the host's failing attempts that makes a
    /// flood single-source. While a service of the host is under attack, the host's evidence is that flood's: its
    /// last failures count a retransmission deadline after it stopped, when the window no longer shows it on the
    /// service.
    func isSpreadOverPorts(_ host: Int, _ measured: WindowMeasurement, step: Int64) -> Bool {
        // The host's services first: during a flood on one of them this answers at every step, and walking the
        // source table (below) took a sixth of the time `analyze` spent on a storm.
        let address = victims.keys[host].address
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && slot != host && victims.keys[slot].address == address {
            if victims.states[slot].phase == .attacked { return false }
            if measure(slot, step: step).failingPerSecond >= 0.5 * measured.failingPerSecond { return false }
        }
        let classification = configuration.classification
        let repeating = sourcesAimingAlone(at: host)
        if let top = repeating.first,
            Double(top.halfOpen) >= classification.singleSourceShare * Double(max(1, failingAttempts(host)))
        {
            // One source probing ports is a scan, answered by RSTs: the host refuses, or the scanner resets what the
            // host answers. One whose attempts the host answers and holds past their deadline fills its queues: a
            // flood spread over its ports. One that sends every SYN to one port is a flood on it, and on the host
            // only for port 0, the host's own key (hping3's default port).
            guard let source = sources.find(top.address, hash: hasher.hash(top.address)) else { return false }
            return sources.distinctTargets(source) <= 1 || holdsHalfOpen(host)
        }
        return repeating.count >= classification.randomSourceMinSources
            || hasSpoofedSources(host, distinctSources: failingSources(host))
    }

    /// Whether the attempts the host answered and held past their retransmission deadline, in the sources window,
    /// reach the threshold's rate over an epoch (the least the window spans).
    func holdsHalfOpen(_ host: Int) -> Bool {
        let epochSeconds = Double(clock.epochLength) / 1e9
        return Double(victims.states[host].epochHeld.total) >= configuration.detection.halfOpenPerSecond * epochSeconds
    }

    /// Whether the whole host at `address` is under attack: a flood spread over its ports.
    func isUnderHostAttack(_ address: IPAddress) -> Bool {
        let key = VictimKey(address: address, port: 0)
        guard let slot = victims.find(key, hash: victims.hash(key)) else { return false }
        return victims.states[slot].phase == .attacked
    }

    /// The failing attempts per second the service may have before they count as evidence: the absolute threshold,
    /// or below it, while the service's completion ratio has fallen clearly below normal (not a crowd that
    /// completes), its learnt baseline once warm, or the baseline's floor while the kernel finds its SYN queue full.
    func allowance(_ slot: Int, _ measured: WindowMeasurement, time: Int64) -> Double {
        let absolute = configuration.detection.halfOpenPerSecond
        // A host's figures are the sum of its services': only the absolute threshold applies.
        guard victims.keys[slot].port != 0 else { return absolute }
        let baseline = configuration.baseline
        let state = victims.states[slot]
        let warm = baseline.enabled && time - state.baselineSince >= baseline.warmup.nanoseconds
        // Normal is all completing until it is learnt.
        guard measured.completionRatio <= (warm ? state.baselineCompletion : 1) - baseline.minCompletionDrop
        else { return absolute }
        // A flood that holds the listener's SYN queue full, however slow, leaves its clients to cookies or, with
        // cookies off, to nothing: the threshold is the floor of a learnt one.
        let floor = min(absolute, baseline.minHalfOpenPerSecond)
        if kernelFindsSynQueueFull(victims.keys[slot], turningAway: floor) { return floor }
        guard warm else { return absolute }
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

    /// The figures events carry: rates from the window, sources from the sources epochs.
    func figures(_ slot: Int, _ measured: WindowMeasurement) -> VictimFigures {
        let state = victims.states[slot]
        // In a spoofed storm no source stands out: listing some would only name arbitrary ones.
        let spoofed = state.phase == .attacked && state.kind == .randomSource
        let top = spoofed ? [] : topSources(slot)
        // SYNs enough to judge, none of them a new attempt (a capture replayed in a loop): none completed. Under
        // sampling the attempts followed may be none while others began.
        let onlyRepeats =
            measured.maturedAttempts == 0 && measured.synPackets >= configuration.detection.minAttempts
            && state.samplingShift == 0
        return VictimFigures(
            synPerSecond: measured.synPerSecond,
            halfOpenPerSecond: measured.halfOpenPerSecond,
            refusedPerSecond: measured.refusedPerSecond,
            completionRatio: onlyRepeats ? 0 : measured.completionRatio,
            // The sources listed failed for certain: the estimate, a difference of two, never says fewer.
            distinctSources: max(failingSources(slot), top.count),
            topSources: top,
            completionGrace: TimeSpan(nanoseconds: state.grace)
        )
    }

    /// Attempts in the sources window that did not complete, half-open or refused (weighted where sampled).
    func failingAttempts(_ slot: Int) -> Int {
        let state = victims.states[slot]
        return max(0, state.epochAttempts.total - state.epochCompleted.total - expectedToComplete(slot))
    }

    /// Of the attempts of `slot` that have not matured and are still open, an estimate of those that will complete:
    /// the share of the rate window's matured attempts that did. A busy service's clients in the middle of their
    /// handshakes would otherwise outnumber the first failing attempts of a flood told as they mature, and read as
    /// failing attempts from few sources (returning clients count among those that completed). The flood's own in
    /// their grace are discounted by the same share: a little early, its failing attempts are counted short.
    private func expectedToComplete(_ slot: Int) -> Int {
        var open = 0
        var position = clock.step
        while position <= victims.states[slot].ringHead {
            let counters = victims.stepCounters(slot, step: position).pointee
            open += counters.halfOpen - Int(counters.clientReset)
            position += 1
        }
        guard open > 0 else { return 0 }
        var attempts = 0, completed = 0
        position = clock.step - 1
        let oldest = clock.step - configuration.windows.rate.nanoseconds / clock.resolution
        while position >= oldest && victims.holds(slot, step: position) {
            let counters = victims.stepCounters(slot, step: position).pointee
            attempts += Int(counters.attempts)
            completed += Int(counters.completed)
            position -= 1
        }
        return attempts > 0 ? open * min(completed, attempts) / attempts : 0
    }

    /// Whether the attempts of `slot` that fail look spoofed (a source each, or nearly) but come from fewer sources than
    /// `classification.random_source_min_sources`: too few to tell a spoofed flood from a botnet whose hosts have each
    /// sent a SYN or two. A flood that would be told that soon (a slow one, its SYNs decided as they mature) is told
    /// later, with its kind, once its next sources came or its first ones sent again.
    func looksSpoofedFromTooFewSources(_ slot: Int) -> Bool {
        let classification = configuration.classification
        let failing = failingAttempts(slot)
        let distinct = failingSources(slot)
        guard failing > 0, distinct < classification.randomSourceMinSources,
            Double(distinct) >= classification.randomSourceDistinctRatio * Double(failing)
        else { return false }
        // One source may hold half of them, the distinct ones a busy service's estimate: single-source at once.
        guard let top = topSources(slot).first else { return true }
        return Double(top.halfOpen) < classification.singleSourceShare * Double(failing)
    }

    /// Estimated distinct sources of the attempts that did not complete in the sources window: all
    /// sources less those that completed, never more than those attempts.
    func failingSources(_ slot: Int) -> Int {
        let shift = victims.sketchShift(slot)
        let all = victims.distinct.estimate(
            shift: shift,
            victims.sketch(slot, parity: 0),
            victims.sketch(slot, parity: 1)
        )
        let completers = victims.distinct.estimate(
            shift: shift,
            victims.completerSketch(slot, parity: 0),
            victims.completerSketch(slot, parity: 1)
        )
        return min(max(0, all - completers), failingAttempts(slot))
    }

    /// The sources with the most half-open attempts on the victim in `slot`, with their counts.
    ///
    /// The Space-Saving sketch finds sources holding more than 1/k of a service's attempts; a botnet
    /// of many equal bots has none such, so the source table completes the list with the sources
    /// that aim at this victim alone. A count is never more than the source's real SYNs: the
    /// sketch's certain count (scaled where sampled) capped by the source table's, which counts every
    /// SYN of a source that repeats. A source the table does not hold sent one SYN: it stands out in
    /// nothing. A host has no sketch (a spoofed storm's sources are no heavy hitters): only the table.
    func topSources(_ slot: Int) -> [SourceCount] {
        let wanted = configuration.detection.topSources
        var top: [SourceCount] = []
        if victims.keys[slot].port != 0 {
            let sketches = [victims.top(slot, parity: 0), victims.top(slot, parity: 1)]
            for candidate in SpaceSaving.top(wanted, of: sketches, k: victims.topK) {
                guard let source = sources.find(candidate.address, hash: hasher.hash(candidate.address)) else {
                    continue
                }
                sources.advanceEpoch(source, to: clock.epoch)
                guard !Self.completes(sources.entries[source]) else { continue }
                // The table's count holds the SYN before the admitting one, whose target and time are unknown.
                let halfOpen = min(candidate.halfOpen, sources.entries[source].halfOpen - 1)
                if halfOpen >= 2 { top.append(SourceCount(address: candidate.address, halfOpen: halfOpen)) }
            }
        }
        guard top.count < wanted else { return top }
        let known = Set(top.map(\.address))
        top += sourcesAimingAlone(at: slot).lazy.filter { !known.contains($0.address) }.prefix(wanted - top.count)
        return top.sorted { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
    }

    /// The sources of the source table that aim at the victim in `slot` alone and complete nothing, with their
    /// certain half-open attempts, most first: for a service, those of no other target; for a host, those of no
    /// other address, whatever its ports.
    func sourcesAimingAlone(at slot: Int) -> [SourceCount] {
        let address = victims.keys[slot].address
        let isHost = victims.keys[slot].port == 0
        // The bit this service sets in a source's targets (`recordSourceAttempt`).
        let serviceBit = UInt64(1) << (victims.hash(victims.keys[slot]) >> 58)
        var found: [SourceCount] = []
        for source in 0..<sources.slots.capacity where sources.slots.isOccupied(source) {
            guard sources.entries[source].lastTarget == address else { continue }
            // Counts of sources silent for two epochs are out of the window.
            sources.advanceEpoch(source, to: clock.epoch)
            let entry = sources.entries[source]
            // A scanner's or a busy client's count is spread over other victims: not this one's. A client of
            // another service of the same host aims at this address too: only sources of this service count.
            let alone =
                isHost
                ? sources.distinctAddresses(source) <= 1
                : sources.distinctTargets(source) <= 1 && entry.targets.union & serviceBit != 0
            guard alone, !Self.completes(entry) else { continue }
            // The SYN before the admitting one is counted too, but its target, its time and whether it completed
            // (before the source was followed) are unknown: it is not a certain half-open attempt on this victim.
            let halfOpen = entry.halfOpen - 1
            guard halfOpen >= 2 else { continue }
            found.append(SourceCount(address: entry.address, halfOpen: halfOpen))
        }
        found.sort { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
        return found
    }

    /// Whether a source completes handshakes: a client, however many of its attempts are half-open for the
    /// moment (under sampling most of its completions go unseen), never a flood's source.
    static func completes(_ entry: SourceEntry) -> Bool {
        entry.completions.total > 0 || entry.acknowledged
    }

    /// Tells the kind of flood at `step` from the attempts that fail in the sources window and their sources;
    /// completing attempts (a crowd the flood hides in) say nothing about it.
    func classify(_ slot: Int, distinctSources: Int, top: SourceCount?, step: Int64) -> FloodKind {
        let failing = max(1, failingAttempts(slot))
        if let top, Double(top.halfOpen) >= configuration.classification.singleSourceShare * Double(failing) {
            return .singleSource
        }
        if hasSpoofedSources(slot, distinctSources: distinctSources) && !failuresRetransmit(slot, step: step) {
            return .randomSource
        }
        return .distributed
    }

    /// Whether the failing sources of the service or host in `slot` look spoofed: about one attempt each, or drawn
    /// from a pool. A botnet of many hosts that each sent one SYN in the window looks so too.
    func hasSpoofedSources(_ slot: Int, distinctSources: Int) -> Bool {
        let classification = configuration.classification
        return distinctSources >= classification.randomSourceMinSources
            && (Double(distinctSources) >= classification.randomSourceDistinctRatio * Double(failingAttempts(slot))
                || isDrawnFromPool(slot, distinctSources: distinctSources))
    }

    /// Whether most attempts of `slot` still open past their retransmission deadline, over a rate window of such
    /// steps, were retransmitted: the SYN again with its ISN, as only a live TCP stack sends it. Those sources are
    /// a botnet's hosts, however rarely each of them repeats within the window; a spoofed storm never retransmits.
    func failuresRetransmit(_ slot: Int, step: Int64) -> Bool {
        let newest = step - 1 - settings.deadlineSteps
        let oldest = newest - configuration.windows.rate.nanoseconds / clock.resolution
        var open = 0, retransmitted = 0
        var position = newest
        while position > oldest && victims.holds(slot, step: position) {
            let counters = victims.stepCounters(slot, step: position).pointee
            open += counters.halfOpen
            retransmitted += Int(counters.retransmitted)
            position -= 1
        }
        return open >= configuration.detection.minAttempts && 2 * retransmitted >= open
    }

    /// Whether the repeating sources of a flood on the service or host in `slot` are spoofed addresses drawn from a
    /// pool (an attacker's range, a lab's /15) rather than a botnet's hosts.
    ///
    /// Drawn at random from a pool of P addresses, a storm above about P/6 SYNs a second repeats each address
    /// within the sources window, as a botnet's bots repeat. What tells the pool is that it fills its range: at
    /// least `random_source_pool_min_sources` failing sources, at least half as many as the addresses of the ranges
    /// that a uniform sample of them (`SourceSample`, up to 16 an epoch) comes from. A botnet's hosts are scattered
    /// over the Internet, a few per /24; only a range the size of a lab's can be filled by real hosts.
    func isDrawnFromPool(_ slot: Int, distinctSources: Int) -> Bool {
        guard distinctSources >= configuration.classification.randomSourcePoolMinSources else { return false }
        var samples: [IPAddress] = []
        for parity in 0..<2 {
            let sample = victims.sample(slot, parity: parity)
            for index in 0..<victims.sampleK
            where sample[index].hash != .max && !sample[index].completed && !samples.contains(sample[index].address) {
                samples.append(sample[index].address)
            }
        }
        guard let pool = Self.poolSize(of: samples) else { return false }
        return 2 * Double(distinctSources) >= pool
    }

    /// How many addresses the ranges that `samples` were drawn from hold; nil for fewer than 8 samples, too few to
    /// tell. Sorted, the samples fall into runs split by gaps far wider than the typical one: each run of two or
    /// more spans most of its range (one prefix of a pool, or the whole pool), and a sample alone is a client from
    /// elsewhere whose handshake has not completed yet, as a quarter at most may be. A sample at a run's end 6 times
    /// the typical gap from the rest is left out of its span: a client just outside the pool would stretch it.
    static func poolSize(of samples: [IPAddress]) -> Double? {
        guard samples.count >= 8 else { return nil }
        let sorted = samples.sorted()
        // Addresses 2^64 or more apart (another high word) are never in one range.
        let gaps = (1..<sorted.count).map { index in
            sorted[index].high == sorted[index - 1].high
                ? Double(sorted[index].low - sorted[index - 1].low) : Double.infinity
        }
        let typical = max(1, gaps.sorted()[gaps.count / 2])
        var addresses = 0.0
        var drawn = 0
        var first = 0
        for end in 1...sorted.count
        where end == sorted.count || gaps[end - 1] > 16 * typical || gaps[end - 1].isInfinite {
            var (low, high) = (first, end - 1)
            while high - low >= 2, gaps[low] > 6 * typical { low += 1 }
            while high - low >= 2, gaps[high - 1] > 6 * typical { high -= 1 }
            let run = high - low + 1
            if run >= 2 {
                // k samples drawn uniformly from P addresses span (k - 1) / (k + 1) of them on average.
                addresses += Double(sorted[high].low - sorted[low].low) * Double(run + 1) / Double(run - 1)
                drawn += end - first
            }
            first = end
        }
        return 4 * drawn >= 3 * sorted.count ? addresses : .infinity
    }

    /// How long attempts on `slot` may take to complete (see `Engine.learntGrace`).
    func learntGrace(slot: Int) -> Int64 {
        Engine.learntGrace(slot: slot, victims: victims, linkDelays: linkDelays, windows: configuration.windows)
    }
}

/// A victim service: destination address and port.

struct VictimKey: Equatable, Sendable {
    var address: IPAddress
    var port: UInt16

    /// The key's hash in the victim table; also taken off the engine's thread (`KeyHashes`).
    @inline(__always)
    func hashed(by hasher: KeyedHasher) -> UInt64 { hasher.hash(address, port: port) }
}

/// Counters of one resolution step of a victim's rate window.
///
/// Everything about an attempt is counted in the step in which it matures (its SYN plus the
/// service's completion grace), whenever it happens: so a step's `attempts - completed - refused`
/// is exactly its attempts still half-open, and every figure read over a span of steps is about the
/// same SYNs. Attempts on a service under a heavy attack are sampled (`VictimState.samplingShift`):
/// each tracked one, and its outcome, then counts for as many as it stands for.
struct StepCounters: Sendable {
    /// SYN packets, retransmissions included.
    var synPackets: UInt32 = 0
    var attempts: UInt32 = 0
    var completed: UInt32 = 0
    /// Refused by the server's RST (nothing listens).
    var refused: UInt32 = 0
    /// Reset by the client before completing: it never wanted the connection (a decided failure).
    var clientReset: UInt32 = 0
    /// Attempts answered by a SYN-ACK, whatever came of them.
    var answered: UInt32 = 0
    /// Attempts whose SYN was retransmitted and that are still open: live stacks, undecided.
    var retransmitted: UInt32 = 0
    /// Of those, the ones the server had answered: their client sent the SYN again although a SYN-ACK went out,
    /// so the answer was lost on its way, or no live stack sent the SYN.
    var retransmittedAnswered: UInt32 = 0
    /// Attempts retransmitted although answered that completed all the same: their first answer was lost.
    var retransmittedAnsweredCompleted: UInt32 = 0
    /// Attempts opened by a SYN sent more often than any stack sends one (`HandshakeEntry.maximumSends`) and still
    /// open: a flood repeating one packet, decided when they mature.
    var repeated: UInt32 = 0
    /// Attempts (neither `repeated` nor retransmitted) whose SYN carried no TCP options and that are still open, a
    /// part of the undecided ones: no stack sends a SYN without its MSS. Decided when they mature, beyond nine per one
    /// that completed (`optionlessCompleted`).
    var optionless: UInt32 = 0
    /// Attempts whose SYN carried no options that completed: what sends them completes, as no flood does.
    var optionlessCompleted: UInt32 = 0
    /// The attempts' sources, one bit each (`LinearCounter`): a few sources or many.
    var sources: UInt64 = 0

    /// Attempts that neither completed nor were refused.
    var halfOpen: Int { max(0, Int(attempts) - Int(completed) - Int(refused)) }

    /// Half-open attempts neither reset by their client nor retransmitted: not decided yet.
    var undecided: Int { max(0, halfOpen - Int(clientReset) - Int(retransmitted)) }

    /// Takes `entry` out of the retransmitted attempts still open: it closed, or a new attempt took its 4-tuple.
    @inline(__always)
    mutating func removeRetransmission(of entry: HandshakeEntry) {
        guard entry.retransmitted else { return }
        let weight = UInt32(entry.weight)
        retransmitted &-= weight
        if entry.synAckSeen { retransmittedAnswered &-= weight }
    }

    /// Takes `entry` out of the attempts still open it was counted among: it completed, was refused or was reset.
    /// The two counts that add evidence never wrap: a step may not hold the attempt (its SYN came while the service
    /// was untracked, or counted on a slot evicted since, or it reached `maximumSends` as copies of one attempt).
    @inline(__always)
    mutating func removeOpen(_ entry: HandshakeEntry) {
        removeRetransmission(of: entry)
        let weight = UInt32(entry.weight)
        if entry.sends == HandshakeEntry.maximumSends { repeated -= min(repeated, weight) }
        if entry.optionless { optionless -= min(optionless, weight) }
    }
}

/// A counter per sources epoch, indexed by the epoch's parity: the current and the previous one.

struct EpochPair: Sendable {
    var even: UInt32 = 0
    var odd: UInt32 = 0

    init() {}

    subscript(parity: Int) -> UInt32 {
        @inline(__always) get { parity == 0 ? even : odd }
        @inline(__always) set { if parity == 0 { even = newValue } else { odd = newValue } }
    }

    var total: Int { Int(even) + Int(odd) }
}

/// CUSUMs of the excess of a service's failing attempts over its threshold, each read when its attempts can be
/// judged: when they mature (reset by their client, or undecided among many sources), once their client had the
/// longest a handshake may take to acknowledge an answer (`DetectorInputs.ignoredAnswerEvidence`), and once they
/// passed the retransmission deadline. Any reaching the decision interval starts an attack.
struct Evidence: Sendable {
    /// One CUSUM, and the capture time of the SYNs that began it: each sum judges older SYNs than the last.
    struct Sum: Sendable {
        var excess = 0.0
        var since: Int64 = 0

        /// Adds one step's excess, never below zero; `synTime` is when that step's SYNs came.
        mutating func add(_ stepExcess: Double, synTime: Int64) {
            if excess == 0 { since = synTime }
            excess = max(0, excess + stepExcess)
        }
    }

    var undecided = Sum()
    var ignoredAnswers = Sum()
    var failed = Sum()

    var isEmpty: Bool { undecided.excess == 0 && ignoredAnswers.excess == 0 && failed.excess == 0 }
    var largest: Double { max(undecided.excess, ignoredAnswers.excess, failed.excess) }

    /// When the SYNs of the evidence that reached `interval` began (the earliest, if several did), nil for none. A
    /// sum below it may hold a few ordinary failures from long before the flood.
    func since(reaching interval: Double) -> Int64? {
        [undecided, ignoredAnswers, failed].filter { $0.excess >= interval && $0.excess > 0 }.map(\.since).min()
    }

    /// Keeps every sum at `interval` at most: evidence that waits does not pile up.
    mutating func cap(at interval: Double) {
        undecided.excess = min(undecided.excess, interval)
        ignoredAnswers.excess = min(ignoredAnswers.excess, interval)
        failed.excess = min(failed.excess, interval)
    }
}

/// Where a victim service stands in the detector's state machine.

enum Phase: UInt8, Sendable {
    /// Evidence, if any, is accumulating (`VictimState.evidence`).
    case idle
    /// Attack reported; ends after the quiet period without evidence.
    case attacked
}

/// Scalar state of a victim service.

struct VictimState: Sendable {
    var firstSeen: Int64 = 0
    /// Capture time of the latest SYN: eviction takes the least recently active service.
    var lastActive: Int64 = 0
    /// Absolute resolution step of the newest ring position.
    var ringHead: Int64 = 0
    /// Number of the current sources epoch (half of the sources window).
    var sourceEpoch: Int64 = 0
    /// New attempts and completed ones per epoch parity: the rest failed (half-open, or refused by a closed port).
    var epochAttempts = EpochPair()
    var epochCompleted = EpochPair()
    /// On a host, attempts it answered with a SYN-ACK and still held at their retransmission deadline, per epoch
    /// parity: neither the client's ACK nor its RST came (a scanner resets what it is answered).
    var epochHeld = EpochPair()
    /// The highest shift the epoch's distinct-sources sketches were fed at (`LeveledHyperLogLog`).
    var epochShift = EpochPair()

    var synPackets = 0
    var attempts = 0
    var retransmits = 0
    var completions = 0
    var resets = 0
    var timeouts = 0

    var phase = Phase.idle
    /// How long attempts on this service may take to complete (learnt, see `Engine.learntGrace`).
    var grace: Int64 = 0
    /// What the service's failing attempts add up to over its threshold.
    var evidence = Evidence()
    var attackID: UInt64 = 0
    var attackStart: Int64 = 0
    /// The step the last attack ended in. Its attempts up to then were that attack's evidence: those failing past
    /// their retransmission deadline afterwards (a deadline may be longer than the quiet period) start no other.
    var attackEndStep = Int64.min
    /// The grace as attempts are stepped with it (`Engine.handleSyn`): rounded up to whole centiseconds. A step's
    /// SYNs came one such grace before it.
    var steppedGrace: Int64 { (grace + 9_999_999) / 10_000_000 * 10_000_000 }
    /// The step time the attack last showed its flood (the quiet period runs from it), and the capture time of the
    /// latest SYNs that showed it (the attack's end).
    var lastEvidence: Int64 = 0
    var floodSeenUntil: Int64 = 0
    var lastUpdate: Int64 = 0
    /// The threshold that started the attack; it continues while above `endFraction` of it.
    var startThreshold = 0.0
    var kind = FloodKind.randomSource
    /// Another kind than the attack's that every reading since `challengerSince` gave, nil for none (`confirmKind`).
    var challengerKind: FloodKind?
    var challengerSince: Int64 = 0
    /// The kinds the attack was told and left since its start, a bit each (`FloodKind.bit`): never told again.
    var kindsLeft: UInt8 = 0
    /// Attacks started since the service entered the table, by their kind at the start.
    var attacksStarted = AttacksByKind()
    var synPacketsAtStart = 0
    /// While under attack, one attempt in 2^samplingShift is tracked (`Engine.handleSyn`).
    var samplingShift: UInt8 = 0
    /// The handshake fingerprint of a SYN sent more often than a stack sends one (`HandshakeEntry.maximumSends`), 0
    /// for none: a flood repeating that one packet, whose every SYN is a new attempt, tracked whatever the sampling.
    /// Sampled by handshake, its one handshake would be all kept or all left, and its attack would end while it went
    /// on.
    var repeatedSyn: UInt64 = 0
    /// The latest step time at which the rate still called for `samplingShift` (it is lowered only a handshake
    /// time-out later).
    var samplingWanted: Int64 = 0
    var peakSynPerSecond = 0.0
    var peakHalfOpenPerSecond = 0.0
    var peakRefusedPerSecond = 0.0
    var peakDistinctSources = 0

    /// Moving averages of the service's normal half-open rate and completion ratio.
    var baselineHalfOpen = 0.0
    var baselineHalfOpenVariance = 0.0
    var baselineCompletion = 1.0
    var baselineSince: Int64 = 0
    /// Tells this service from others that held the slot before it (connections keep it).
    var serial: UInt32 = 0

    /// Takes the kind an update at `time` read (`reading`): another kind than the attack's replaces it once every
    /// reading over a sources window (`window`, what one reading is taken over) has given it, unless the attack
    /// left that kind before; updates that took no reading neither confirm nor refute it. A flood whose few failing
    /// attempts read one kind, then another (a spoofed capture replayed in a loop, whose repeats look like
    /// retransmissions, and whose thinning by client, on while it is told spoofed, changes what looks new) keeps
    /// the kind it was told, or changes it once.
    mutating func confirmKind(reading: FloodKind, at time: Int64, window: Int64) {
        guard reading != kind && kindsLeft & reading.bit == 0 else {
            challengerKind = nil
            return
        }
        guard reading == challengerKind else {
            challengerKind = reading
            challengerSince = time
            return
        }
        guard time - challengerSince >= window else { return }
        tell(reading)
    }

    /// Tells the attack's kind as `new` from now on.
    mutating func tell(_ new: FloodKind) {
        kindsLeft |= kind.bit
        kind = new
        challengerKind = nil
    }
}

/// Per victim service: counters in a ring of resolution steps, distinct sources (HyperLogLog by client level), top
/// sources (Space-Saving) and a sample of sources per sources epoch, the detector state, and its connections by state.
///
/// Bounded: a full bucket evicts its least recently active service that is not under attack; when
/// every service in the bucket is under attack, the new service is not tracked and that is counted.

final class VictimTable {
    let slots: BucketedSlots
    let keys: FlatArray<VictimKey>
    let states: FlatArray<VictimState>
    let steps: FlatArray<StepCounters>
    /// Steps each ring holds for counting: older ones are gone.
    let ringLength: Int
    /// Positions of each ring: `ringLength` rounded up to a power of two, so that a step's position is a mask, not
    /// a division (several per SYN). Positions beyond `ringLength` hold steps no longer counted, never read.
    let ringMask: Int
    let sketches: FlatArray<UInt8>
    let distinct: LeveledHyperLogLog
    /// Per slot and epoch parity, a service's top sources (Space-Saving); a host has none (a spoofed storm has no
    /// heavy hitters, and a botnet's bots are found in the source table).
    let tops: FlatArray<TopEntry>
    let topK: Int
    /// Per slot and epoch parity, a uniform sample of the sources of its tracked attempts (`SourceSample`).
    let samples: FlatArray<SampledSource>
    let sampleK = 16
    /// Distinct sources of completed handshakes per epoch parity: subtracted from all sources, they
    /// leave the sources of failing attempts, which alone tell the kind of a flood.
    let completerSketches: FlatArray<UInt8>
    /// Per slot, its handshakes' completion delays (`DelayHistogram`).
    let delays: FlatArray<UInt16>
    /// Per slot, the service's connections by state (weighted) and how they ended.
    let connections: FlatArray<ConnectionCounts>
    let hasher: KeyedHasher
    /// Services opened so far: the next one's serial number.
    private var openings: UInt32 = 0

    init(capacity: Int, ringLength: Int, hasher: KeyedHasher, sketchPrecisionPerLevel: Int = 7, topK: Int = 8) {
        slots = BucketedSlots(capacity: capacity)
        let count = slots.capacity
        keys = FlatArray(zeroedCount: count)
        states = FlatArray(zeroedCount: count)
        self.ringLength = ringLength
        var positions = 1
        while positions < ringLength { positions <<= 1 }
        ringMask = positions - 1
        steps = FlatArray(zeroedCount: count * positions)
        distinct = LeveledHyperLogLog(precisionPerLevel: sketchPrecisionPerLevel)
        sketches = FlatArray(zeroedCount: count * 2 * distinct.registerCount)
        self.topK = topK
        tops = FlatArray(zeroedCount: count * 2 * topK)
        samples = FlatArray(zeroedCount: count * 2 * sampleK)
        completerSketches = FlatArray(zeroedCount: count * 2 * distinct.registerCount)
        delays = FlatArray(zeroedCount: count * DelayHistogram.storage)
        connections = FlatArray(zeroedCount: count)
        self.hasher = hasher
    }

    deinit {
        keys.deallocate()
        states.deallocate()
        steps.deallocate()
        sketches.deallocate()
        tops.deallocate()
        samples.deallocate()
        completerSketches.deallocate()
        delays.deallocate()
        connections.deallocate()
    }

    @inline(__always)
    func hash(_ key: VictimKey) -> UInt64 { key.hashed(by: hasher) }

    /// The slot of `key`.
    @inline(__always)
    func find(_ key: VictimKey, hash: UInt64) -> Int? {
        slots.find(hash: hash) { keys.base[$0] == key }
    }

    /// The ring position of absolute resolution step `step` of `slot`.
    @inline(__always)
    func stepCounters(_ slot: Int, step: Int64) -> UnsafeMutablePointer<StepCounters> {
        steps.pointer(slot &* (ringMask &+ 1) &+ Int(truncatingIfNeeded: step) & ringMask)
    }

    /// Distinct-source registers of `slot` for the epoch of parity `parity`.
    @inline(__always)
    func sketch(_ slot: Int, parity: Int) -> UnsafeMutablePointer<UInt8> {
        sketches.pointer((slot &* 2 &+ parity) &* distinct.registerCount)
    }

    /// Distinct-completer registers of `slot` for the epoch of parity `parity`.
    @inline(__always)
    func completerSketch(_ slot: Int, parity: Int) -> UnsafeMutablePointer<UInt8> {
        completerSketches.pointer((slot &* 2 &+ parity) &* distinct.registerCount)
    }

    /// Notes that the current epoch's sketches of `slot` are fed at sampling shift `shift`.
    @inline(__always)
    func noteSketchShift(_ slot: Int, parity: Int, shift: UInt8) {
        let state = states.pointer(slot)
        if state.pointee.epochShift[parity] < UInt32(shift) { state.pointee.epochShift[parity] = UInt32(shift) }
    }

    /// The highest shift the sketches of both epochs of `slot` were fed at: the shift to estimate at.
    func sketchShift(_ slot: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: max(states[slot].epochShift.even, states[slot].epochShift.odd))
    }

    /// Completion-delay histogram of `slot`.
    @inline(__always)
    func delayHistogram(_ slot: Int) -> UnsafeMutablePointer<UInt16> {
        delays.pointer(slot &* DelayHistogram.storage)
    }

    /// Whether absolute step `step` of `slot` is still in its ring (counts for it may be credited).
    @inline(__always)
    func holds(_ slot: Int, step: Int64) -> Bool {
        step > states[slot].ringHead - Int64(ringLength)
    }

    /// Top-source counters of `slot` for the epoch of parity `parity`.
    @inline(__always)
    func top(_ slot: Int, parity: Int) -> UnsafeMutablePointer<TopEntry> {
        tops.pointer((slot &* 2 &+ parity) &* topK)
    }

    /// Source sample of `slot` for the epoch of parity `parity`.
    @inline(__always)
    func sample(_ slot: Int, parity: Int) -> UnsafeMutablePointer<SampledSource> {
        samples.pointer((slot &* 2 &+ parity) &* sampleK)
    }

    /// Clears ring positions up to absolute step `step` and makes it the newest.
    @inline(__always)
    func advanceRing(_ slot: Int, to step: Int64) {
        let head = states[slot].ringHead
        guard step > head else { return }
        let stale = min(step - head, Int64(ringLength))
        var position = step - stale + 1
        while position <= step {
            stepCounters(slot, step: position).pointee = StepCounters()
            position += 1
        }
        states[slot].ringHead = step
    }

    /// Starts sources epoch `epoch`, clearing what was counted two epochs back (or both when idle longer).
    @inline(__always)
    func advanceEpoch(_ slot: Int, to epoch: Int64) {
        let current = states[slot].sourceEpoch
        guard epoch > current else { return }
        for parity in 0..<2 where epoch - current >= 2 || parity == Int(epoch & 1) {
            sketch(slot, parity: parity).update(repeating: 0, count: distinct.registerCount)
            completerSketch(slot, parity: parity).update(repeating: 0, count: distinct.registerCount)
            top(slot, parity: parity).update(repeating: .empty, count: topK)
            sample(slot, parity: parity).update(repeating: .empty, count: sampleK)
            states[slot].epochAttempts[parity] = 0
            states[slot].epochCompleted[parity] = 0
            states[slot].epochHeld[parity] = 0
            states[slot].epochShift[parity] = 0
        }
        states[slot].sourceEpoch = epoch
    }

    /// Sets up a new service in the free `slot`.
    func open(_ slot: Int, key: VictimKey, hash: UInt64, time: Int64, step: Int64, epoch: Int64, grace: Int64) {
        slots.occupy(slot, hash: hash)
        keys[slot] = key
        states[slot] = VictimState()
        states[slot].firstSeen = time
        states[slot].lastActive = time
        states[slot].baselineSince = time
        states[slot].ringHead = step
        states[slot].sourceEpoch = epoch
        states[slot].grace = grace
        openings &+= 1
        states[slot].serial = openings
        connections[slot] = ConnectionCounts()
        steps.pointer(slot * (ringMask + 1)).update(repeating: StepCounters(), count: ringMask + 1)
        sketch(slot, parity: 0).update(repeating: 0, count: distinct.registerCount * 2)
        completerSketch(slot, parity: 0).update(repeating: 0, count: distinct.registerCount * 2)
        delayHistogram(slot).update(repeating: 0, count: DelayHistogram.storage)
        top(slot, parity: 0).update(repeating: .empty, count: topK * 2)
        sample(slot, parity: 0).update(repeating: .empty, count: sampleK * 2)
    }
}

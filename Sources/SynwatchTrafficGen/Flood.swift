/// The kinds of SYN flood, named as the detector reports them.
public enum FloodKind: String, Sendable, Codable, CaseIterable {
    /// About one SYN per spoofed source address.
    case randomSource = "random-source"
    /// Every SYN from one real address.
    case singleSource = "single-source"
    /// A fixed set of real addresses (a botnet) that never complete their handshakes.
    case distributed
}

/// How the attacking SYNs look on the wire.
public enum SYNStyle: String, Sendable, Codable, CaseIterable {
    /// No options, window 512: a raw-socket tool such as hping3 (54-byte Ethernet frames).
    case bare
    /// No options, SYN with ECE and CWR set, window 65535, as some flooding tools send.
    case eceCwr = "ece-cwr"
    /// A full Linux SYN: MSS, SACK permitted, timestamps, window scale (74-byte Ethernet frames over IPv4).
    case linux
}

/// A SYN flood against one victim service.
public struct Flood: Sendable {
    public var kind: FloodKind
    /// The attacked service; by default port 80 of the first server.
    public var victim: Endpoint?
    /// New SYNs (attempts, not counting retransmissions) per second while the flood is on.
    public var rate: Double
    /// Seconds after the scenario start.
    public var start: Double
    public var duration: Double
    /// Spoofed prefix (random-source) or attacker prefix (others); by default the plan's.
    public var sources: NetPrefix?
    /// The number of bots of a distributed flood.
    public var bots: Int
    /// The look of the SYNs; by default bare for random-source and single-source, linux for distributed.
    public var style: SYNStyle?
    /// On/off periods; nil for a steady flood.
    public var pulse: Pulse?
    /// Whether attackers retransmit unanswered SYNs (same ISN) after 1 s and 3 s, as a real TCP stack
    /// does; by default only the bots of a distributed flood do.
    public var retransmits: Bool?
    /// SYN-ACK retransmissions of the victim (after 1, 3, 7, ... s) for SYNs the attacker does not repeat.
    public var synAckRetransmissions: Int
    /// Whether nothing listens on the victim's port: its kernel answers every SYN with a RST/ACK.
    public var closedPort: Bool

    /// A flood of `kind` at `rate` SYNs per second, starting `start` seconds into the scenario.
    ///
    /// - Parameters:
    ///   - kind: random-source, single-source or distributed.
    ///   - victim: the attacked service (nil: port 80 of the first server).
    ///   - rate: new SYNs per second while on; 50–300 makes a low-rate flood.
    ///   - start: seconds after the scenario start.
    ///   - duration: seconds from the first to the last SYN, off periods included.
    ///   - sources: the prefix sources are drawn from (nil: the plan's spoofed or attacker prefix).
    ///   - bots: the number of distinct bots of a distributed flood.
    ///   - style: the look of the SYNs (nil: the kind's usual tool).
    ///   - pulse: on/off periods, nil for a steady flood.
    ///   - retransmits: whether attackers retransmit their SYNs (nil: only distributed bots do).
    ///   - synAckRetransmissions: how often the victim repeats a SYN-ACK nobody answers.
    ///   - closedPort: whether the victim's port is closed, so that its kernel refuses every SYN.
    public init(
        _ kind: FloodKind = .randomSource,
        victim: Endpoint? = nil,
        rate: Double = 2000,
        start: Double = 5,
        duration: Double = 10,
        sources: NetPrefix? = nil,
        bots: Int = 200,
        style: SYNStyle? = nil,
        pulse: Pulse? = nil,
        retransmits: Bool? = nil,
        synAckRetransmissions: Int = 2,
        closedPort: Bool = false
    ) {
        self.kind = kind
        self.victim = victim
        self.rate = rate
        self.start = start
        self.duration = duration
        self.sources = sources
        self.bots = bots
        self.style = style
        self.pulse = pulse
        self.retransmits = retransmits
        self.synAckRetransmissions = synAckRetransmissions
        self.closedPort = closedPort
    }
}

extension Flood {
    /// The attacked service in `frame`: the one given, or port 80 of the first server.
    func victim(in frame: ScenarioFrame) -> Endpoint { victim ?? Endpoint(frame.plan.servers[0], 80) }
}

/// Plays `Flood`.
struct FloodSource: TrafficSource {
    private let kind: FloodKind
    private let victim: Endpoint
    private let sources: NetPrefix
    private let style: SYNStyle
    private let retransmits: Bool
    /// When the attacker sends each attempt's SYN, in seconds after the first.
    private let synDelays: [Int64]
    private let synAckRetransmissions: Int
    private let closedPort: Bool
    private let botCount: Int
    private let pulse: Pulse?
    /// Scrambles source indices so different seeds use different addresses (XOR keeps them distinct).
    private let salt: UInt64
    private let mss: UInt16
    private var arrivals: Arrivals
    private var rng: SeededRandom
    private(set) var nextTime: Int64?
    private var nextSinglePort: UInt16
    private var botsSeen: [Bool]
    private var first: Int64?
    private var last: Int64 = 0
    private var attempts = 0
    private var synPackets = 0

    init(_ config: Flood, frame: ScenarioFrame, rng: SeededRandom) throws {
        kind = config.kind
        victim = config.victim(in: frame)
        try frame.check(victim.address, "flood victim")
        sources = config.sources ?? (config.kind == .randomSource ? frame.plan.spoofed : frame.plan.attackers)
        try frame.check(sources, "flood source")
        guard config.rate > 0 else { throw TrafficGenError.invalidConfiguration("a flood needs a rate above 0") }
        if let pulse = config.pulse, !(pulse.on > 0 && pulse.off >= 0) {
            throw TrafficGenError.invalidConfiguration("a pulse needs an on period above 0 s")
        }
        guard (0...6).contains(config.synAckRetransmissions) else {
            throw TrafficGenError.invalidConfiguration("SYN-ACK retransmissions must be 0...6 (Linux allows up to 5)")
        }
        botCount = config.kind == .distributed ? config.bots : 1
        guard botCount > 0, UInt64(botCount) <= sources.capacity else {
            throw TrafficGenError.invalidConfiguration("\(config.bots) bots do not fit in \(sources)")
        }
        style = config.style ?? (config.kind == .distributed ? .linux : .bare)
        retransmits = config.retransmits ?? (config.kind == .distributed)
        synDelays = retransmits ? [0, 1, 3] : [0]
        synAckRetransmissions = config.synAckRetransmissions
        closedPort = config.closedPort
        pulse = config.pulse
        mss = frame.family == .ipv4 ? 1460 : 1440
        let window = try frame.window(start: config.start, duration: config.duration, part: "the flood")
        arrivals = Arrivals(start: window.start, end: window.end, rate: config.rate, pulse: config.pulse)
        self.rng = rng
        salt = self.rng.next()
        nextSinglePort = UInt16(1024 + self.rng.below(60000))
        botsSeen = [Bool](repeating: false, count: config.kind == .distributed ? botCount : 0)
        nextTime = arrivals.next(using: &self.rng)
    }

    mutating func playNext(into schedule: inout Schedule) {
        guard let time = nextTime else { return }
        let source: NetAddress
        let sourcePort: UInt16
        var ttl: UInt8
        switch kind {
        case .randomSource:
            source = sources.permutedAddress(UInt64(attempts) ^ salt)
            sourcePort = UInt16(1024 + rng.below(64512))
            ttl = UInt8(rng.int(in: 40...64))
        case .singleSource:
            source = sources.permutedAddress(salt)
            sourcePort = nextSinglePort
            nextSinglePort = nextSinglePort == .max ? 1024 : nextSinglePort + 1
            ttl = UInt8(64 - salt % 16)
        case .distributed:
            let bot = Int(rng.below(UInt64(botCount)))
            botsSeen[bot] = true
            source = sources.permutedAddress(UInt64(bot) ^ salt)
            sourcePort = ephemeralPort(&rng)
            let traits = mix64(UInt64(bot) ^ salt)
            ttl = UInt8(truncatingIfNeeded: (traits % 3 == 0 ? 128 : 64) - (traits >> 8) % 20)
        }
        let isn = rng.next32()
        let serverISN = rng.next32()
        let clock = UInt32(truncatingIfNeeded: mix64(source.low ^ source.high))
        var syn = Segment(
            time: time,
            from: source,
            sourcePort,
            to: victim.address,
            victim.port,
            sequence: isn,
            flags: .syn,
            window: 512,
            inbound: true
        )
        syn.ttl = ttl
        syn.dontFragment = style == .linux
        switch style {
        case .bare: break
        case .eceCwr: (syn.flags, syn.window) = ([.syn, .ece, .cwr], 65535)
        case .linux: syn.window = 64240
        }
        for delay in synDelays {
            var copy = syn
            copy.time = time + delay * 1_000_000_000
            copy.ipIdentification = UInt32(truncatingIfNeeded: rng.next())
            if style == .linux {
                copy.options = .linux(
                    mss: mss,
                    windowScale: 7,
                    tsval: clock &+ UInt32(truncatingIfNeeded: copy.time / 1_000_000),
                    tsecr: 0
                )
            }
            schedule.add(copy)
            synPackets += 1
            let delay = rng.int(in: 10_000...50_000)
            schedule.add(
                closedPort
                    ? refusal(of: copy, after: delay) : synAck(answering: copy, serverISN: serverISN, after: delay)
            )
        }
        if !retransmits && !closedPort {
            // Nobody repeats the SYN, so the victim's own timer repeats its SYN-ACK: after 1, 3, 7, ... s.
            var delay: Int64 = 0
            for attempt in 0..<synAckRetransmissions {
                delay += Int64(1 << attempt) * 1_000_000_000
                var again = synAck(answering: syn, serverISN: serverISN, after: 0)
                again.time = time + delay
                schedule.add(again)
            }
        }
        first = first ?? time
        last = time
        attempts += 1
        nextTime = arrivals.next(using: &rng)
    }

    /// The RST/ACK of a victim where nothing listens, `delay` ns after `syn`.
    private func refusal(of syn: Segment, after delay: Int) -> Segment {
        reply(to: syn, after: delay, sequence: 0, flags: .rstAck, window: 0)
    }

    /// The victim's SYN-ACK to `syn`, `delay` ns later; its options answer the SYN's.
    private func synAck(answering syn: Segment, serverISN: UInt32, after delay: Int) -> Segment {
        var answer = reply(
            to: syn,
            after: delay,
            sequence: serverISN,
            flags: style == .eceCwr ? [.syn, .ack, .ece] : .synAck,
            window: 65160
        )
        if case .linux(_, _, let tsval, _) = syn.options {
            answer.options = .linux(
                mss: mss,
                windowScale: 7,
                tsval: UInt32(truncatingIfNeeded: answer.time / 4_000_000),
                tsecr: tsval
            )
        } else {
            answer.options = .mss(mss)
        }
        return answer
    }

    /// The victim's answer to `syn`, `delay` ns later, acknowledging it.
    private func reply(
        to syn: Segment,
        after delay: Int,
        sequence: UInt32,
        flags: TCPFlags,
        window: UInt16
    ) -> Segment {
        var reply = Segment(
            time: syn.time + Int64(delay),
            from: victim.address,
            victim.port,
            to: syn.source,
            syn.sourcePort,
            sequence: sequence,
            acknowledgment: syn.sequence &+ 1,
            flags: flags,
            window: window,
            inbound: false
        )
        reply.ipIdentification = 0
        return reply
    }

    func record(into truth: inout GroundTruth) {
        guard let first else { return }
        let distinct: Int
        switch kind {
        case .randomSource: distinct = Int(min(UInt64(attempts), sources.capacity))
        case .singleSource: distinct = 1
        case .distributed: distinct = botsSeen.filter { $0 }.count
        }
        truth.floods.append(
            FloodTruth(
                victim: victim.address,
                port: victim.port,
                kind: kind,
                start: seconds(first),
                end: seconds(last),
                synPerSecond: Double(attempts) / arrivals.activeSeconds,
                attempts: attempts,
                synPackets: synPackets,
                distinctSources: distinct,
                style: style,
                pulse: pulse
            )
        )
    }
}

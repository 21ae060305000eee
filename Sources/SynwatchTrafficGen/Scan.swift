/// A SYN scan from one source: many ports of one address, or one port across many addresses.
public struct Scan: Sendable {
    /// What the scanner probes.
    public enum Shape: Sendable, Hashable {
        /// Every port of `ports` on one address, in random order (as nmap does).
        case vertical(ports: ClosedRange<UInt16>)
        /// `port` on the first `targets` addresses of a prefix, in order.
        case horizontal(port: UInt16, targets: Int)
    }

    public var shape: Shape
    /// The scanner; by default an address of the plan's attacker prefix.
    public var source: NetAddress?
    /// The scanned address of a vertical scan; by default the first server.
    public var target: NetAddress?
    /// The scanned block of a horizontal scan; by default the /24 (IPv6: /120) around the first server.
    public var targets: NetPrefix?
    /// Ports that answer SYN-ACK in a vertical scan; the others answer RST/ACK.
    public var openPorts: [UInt16]
    /// Share of addresses of a horizontal scan whose port is open (SYN-ACK).
    public var openShare: Double
    /// Share of addresses of a horizontal scan that answer RST/ACK; the remaining ones stay silent.
    public var closedShare: Double
    /// Probes per second.
    public var rate: Double
    /// Seconds after the scenario start.
    public var start: Double

    /// A scan of `shape` at `rate` probes per second, starting `start` seconds into the scenario.
    ///
    /// - Parameters:
    ///   - shape: vertical (ports of one address) or horizontal (one port across addresses).
    ///   - source: the scanner (nil: from the plan's attacker prefix).
    ///   - target: the address of a vertical scan (nil: the first server).
    ///   - targets: the block of a horizontal scan (nil: around the first server).
    ///   - openPorts: the open ports of a vertical scan's target.
    ///   - openShare: share of a horizontal scan's addresses that answer SYN-ACK.
    ///   - closedShare: share of a horizontal scan's addresses that answer RST/ACK.
    ///   - rate: probes per second.
    ///   - start: seconds after the scenario start.
    public init(
        _ shape: Shape = .vertical(ports: 1...1024),
        source: NetAddress? = nil,
        target: NetAddress? = nil,
        targets: NetPrefix? = nil,
        openPorts: [UInt16] = [22, 80, 443],
        openShare: Double = 0.2,
        closedShare: Double = 0.3,
        rate: Double = 500,
        start: Double = 5
    ) {
        self.shape = shape
        self.source = source
        self.target = target
        self.targets = targets
        self.openPorts = openPorts
        self.openShare = openShare
        self.closedShare = closedShare
        self.rate = rate
        self.start = start
    }
}

/// Plays `Scan`.
struct ScanSource: TrafficSource {
    private enum Answer { case open, closed, silent }

    private let config: Scan
    private let scanner: NetAddress
    private let scannerPort: UInt16
    private let rtt: Int64
    private let end: Int64
    /// The probes in the order sent: address and port.
    private let probes: [(address: NetAddress, port: UInt16, answer: Answer)]
    private let summary: (target: NetAddress?, port: UInt16?)
    private var rng: SeededRandom
    private var sent = 0
    private var first: Int64?
    private var last: Int64 = 0
    private(set) var nextTime: Int64?

    init(_ config: Scan, frame: ScenarioFrame, rng: SeededRandom) throws {
        self.config = config
        var rng = rng
        let scanner = config.source ?? frame.plan.attackers.permutedAddress(rng.next())
        try frame.check(scanner, "scanner")
        self.scanner = scanner
        scannerPort = UInt16(1024 + rng.below(64512))
        rtt = Int64(rng.int(in: 20_000_000...150_000_000))
        guard config.rate > 0 else { throw TrafficGenError.invalidConfiguration("a scan needs a rate above 0") }
        switch config.shape {
        case .vertical(let ports):
            let target = config.target ?? frame.plan.servers[0]
            try frame.check(target, "scan target")
            var order = Array(ports)
            for index in order.indices.dropLast().reversed() {
                order.swapAt(index, Int(rng.below(UInt64(index + 1))))
            }
            let open = Set(config.openPorts)
            probes = order.map { (target, $0, open.contains($0) ? .open : .closed) }
            summary = (target, nil)
        case .horizontal(let port, let count):
            let block = config.targets ?? NetPrefix(frame.plan.servers[0], length: frame.family == .ipv4 ? 24 : 120)
            try frame.check(block, "scan target")
            guard count > 0, UInt64(count) < block.capacity else {
                throw TrafficGenError.invalidConfiguration("\(count) scan targets do not fit in \(block)")
            }
            var answers = SeededRandom(seed: rng.next())
            probes = (1...count).map { index in
                let draw = answers.unit()
                let answer: Answer =
                    draw < config.openShare ? .open : draw < config.openShare + config.closedShare ? .closed : .silent
                return (block.address(at: UInt64(index)), port, answer)
            }
            summary = (nil, port)
        }
        let window = try frame.window(start: config.start, duration: nil, part: "the scan")
        self.rng = rng
        end = window.end
        nextTime = window.start
    }

    mutating func playNext(into schedule: inout Schedule) {
        guard let time = nextTime else { return }
        let probe = probes[sent]
        let isn = rng.next32()
        var syn = Segment(
            time: time,
            from: scanner,
            scannerPort,
            to: probe.address,
            probe.port,
            sequence: isn,
            flags: .syn,
            window: 1024,
            inbound: true
        )
        syn.options = .mss(1460)
        syn.ttl = UInt8(rng.int(in: 37...59))
        syn.ipIdentification = UInt32(truncatingIfNeeded: rng.next())
        syn.dontFragment = false
        schedule.add(syn)
        let answerTime = time + Int64(rng.int(in: 15_000...60_000))
        switch probe.answer {
        case .open:
            var synAck = Segment(
                time: answerTime,
                from: probe.address,
                probe.port,
                to: scanner,
                scannerPort,
                sequence: rng.next32(),
                acknowledgment: isn &+ 1,
                flags: .synAck,
                window: 65160,
                inbound: false
            )
            synAck.options = .mss(scanner.family == .ipv4 ? 1460 : 1440)
            schedule.add(synAck)
            // The scanner's kernel never opened this connection and resets it.
            schedule.add(
                Segment(
                    time: answerTime + rtt,
                    from: scanner,
                    scannerPort,
                    to: probe.address,
                    probe.port,
                    sequence: isn &+ 1,
                    flags: .rst,
                    window: 0,
                    inbound: true
                )
            )
        case .closed:
            schedule.add(
                Segment(
                    time: answerTime,
                    from: probe.address,
                    probe.port,
                    to: scanner,
                    scannerPort,
                    sequence: 0,
                    acknowledgment: isn &+ 1,
                    flags: .rstAck,
                    window: 0,
                    inbound: false
                )
            )
        case .silent:
            break
        }
        first = first ?? time
        last = time
        sent += 1
        let next = time + rng.exponentialGap(rate: config.rate)
        nextTime = sent < probes.count && next < end ? next : nil
    }

    func record(into truth: inout GroundTruth) {
        guard let first else { return }
        let shape: ScanShape
        if case .vertical = config.shape { shape = .vertical } else { shape = .horizontal }
        truth.scans.append(
            ScanTruth(
                source: scanner,
                shape: shape,
                target: summary.target,
                port: summary.port,
                start: seconds(first),
                end: seconds(last),
                probes: sent,
                ports: Set(probes.prefix(sent).map(\.port)).count,
                targets: Set(probes.prefix(sent).map(\.address)).count
            )
        )
    }
}

/// SYN-ACKs (and some RSTs) from reflectors, answering SYNs someone else sent with our address as source.
public struct Backscatter: Sendable {
    /// Our addresses that were spoofed; by default the second server.
    public var addresses: [NetAddress]?
    /// Reflector answers per second (retransmissions not counted).
    public var rate: Double
    /// Seconds after the scenario start.
    public var start: Double
    public var duration: Double
    /// Where reflectors are; by default the plan's reflector prefix.
    public var reflectors: NetPrefix?
    public var reflectorCount: Int
    /// Share of answers that are RST/ACK (closed reflector ports) rather than SYN-ACK.
    public var resetShare: Double
    /// Share of SYN-ACKs that the reflector repeats after 1 s and 3 s (nobody answers them).
    public var retransmitShare: Double

    /// Backscatter at `rate` answers per second, starting `start` seconds into the scenario.
    ///
    /// - Parameters:
    ///   - addresses: our spoofed addresses (nil: the second server).
    ///   - rate: answers per second.
    ///   - start: seconds after the scenario start.
    ///   - duration: seconds it lasts.
    ///   - reflectors: the reflectors' prefix (nil: the plan's).
    ///   - reflectorCount: the number of distinct reflectors.
    ///   - resetShare: share of RST/ACK answers.
    ///   - retransmitShare: share of SYN-ACKs repeated after 1 s and 3 s.
    public init(
        addresses: [NetAddress]? = nil,
        rate: Double = 300,
        start: Double = 5,
        duration: Double = 10,
        reflectors: NetPrefix? = nil,
        reflectorCount: Int = 5000,
        resetShare: Double = 0.1,
        retransmitShare: Double = 0.3
    ) {
        self.addresses = addresses
        self.rate = rate
        self.start = start
        self.duration = duration
        self.reflectors = reflectors
        self.reflectorCount = reflectorCount
        self.resetShare = resetShare
        self.retransmitShare = retransmitShare
    }
}

/// Plays `Backscatter`.
struct BackscatterSource: TrafficSource {
    private static let reflectorPorts: [UInt16] = [80, 443, 22, 25, 53, 8080]
    /// When a reflector that retransmits sends its SYN-ACK, in seconds after the first.
    private static let retransmitDelays: [Int64] = [0, 1, 3]

    private let config: Backscatter
    private let addresses: [NetAddress]
    private let reflectors: NetPrefix
    private let salt: UInt64
    private var arrivals: Arrivals
    private var rng: SeededRandom
    private(set) var nextTime: Int64?
    private var stats: [(first: Int64?, last: Int64, synAcks: Int, resets: Int, reflectors: Set<Int>)]

    init(_ config: Backscatter, frame: ScenarioFrame, rng: SeededRandom) throws {
        self.config = config
        addresses = config.addresses ?? [frame.plan.servers[1]]
        for address in addresses { try frame.check(address, "backscatter") }
        reflectors = config.reflectors ?? frame.plan.reflectors
        try frame.check(reflectors, "reflector")
        guard !addresses.isEmpty, config.rate > 0, config.reflectorCount > 0,
            UInt64(config.reflectorCount) <= reflectors.capacity
        else {
            throw TrafficGenError.invalidConfiguration(
                "backscatter needs our addresses, a rate above 0 and 1...\(reflectors.capacity) reflectors"
            )
        }
        let window = try frame.window(start: config.start, duration: config.duration, part: "the backscatter")
        arrivals = Arrivals(start: window.start, end: window.end, rate: config.rate)
        self.rng = rng
        salt = self.rng.next()
        stats = addresses.map { _ in (nil, 0, 0, 0, []) }
        nextTime = arrivals.next(using: &self.rng)
    }

    mutating func playNext(into schedule: inout Schedule) {
        guard let time = nextTime else { return }
        let which = Int(rng.below(UInt64(addresses.count)))
        let reflectorIndex = Int(rng.below(UInt64(config.reflectorCount)))
        let reflector = reflectors.permutedAddress(UInt64(reflectorIndex) ^ salt)
        let port = Self.reflectorPorts[Int(rng.below(UInt64(Self.reflectorPorts.count)))]
        var answer = Segment(
            time: time,
            from: reflector,
            port,
            to: addresses[which],
            UInt16(1024 + rng.below(64512)),
            sequence: rng.next32(),
            acknowledgment: rng.next32(),
            flags: .synAck,
            window: 29200,
            inbound: true
        )
        answer.ttl = UInt8(rng.int(in: 40...60))
        answer.ipIdentification = UInt32(truncatingIfNeeded: rng.next())
        if rng.chance(config.resetShare) {
            answer.flags = .rstAck
            answer.sequence = 0
            answer.window = 0
            stats[which].resets += 1
            schedule.add(answer)
        } else {
            answer.options = .mss(addresses[which].family == .ipv4 ? 1460 : 1440)
            let repeats = Self.retransmitDelays[..<(rng.chance(config.retransmitShare) ? 3 : 1)]
            for delay in repeats {
                var copy = answer
                copy.time = time + delay * 1_000_000_000
                schedule.add(copy)
                stats[which].synAcks += 1
            }
        }
        stats[which].first = stats[which].first ?? time
        stats[which].last = time
        stats[which].reflectors.insert(reflectorIndex)
        nextTime = arrivals.next(using: &rng)
    }

    func record(into truth: inout GroundTruth) {
        for (address, stat) in zip(addresses, stats) {
            guard let first = stat.first else { continue }
            truth.backscatter.append(
                BackscatterTruth(
                    address: address,
                    start: seconds(first),
                    end: seconds(stat.last),
                    synAcks: stat.synAcks,
                    resets: stat.resets,
                    reflectors: stat.reflectors.count
                )
            )
        }
    }
}

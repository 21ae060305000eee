/// Which packets of the traffic the capture keeps.
public enum CaptureDirection: String, Sendable, CaseIterable, Codable {
    /// Both directions, as captured on the server itself.
    case both
    /// Only packets towards our network, as captured on a router's ingress: no SYN-ACKs of ours.
    case incomingOnly = "incoming-only"
}

/// A reproducible mix of traffic, written as a capture file together with its ground truth.
///
/// ```swift
/// let truth = try Scenario(seed: 7, duration: 20)
///     .background(Background(rate: 800))
///     .flood(Flood(.randomSource, rate: 5000, start: 5, duration: 10))
///     .write(to: "/tmp/flood.pcap")
/// ```
///
/// The same seed and parts give a byte-identical file. Each part draws from its own random stream, so
/// adding a part leaves the packets of the parts before it unchanged.
public struct Scenario: Sendable {
    private enum Part: Sendable {
        case background(Background)
        case flood(Flood)
        case flashCrowd(FlashCrowd)
        case scan(Scan)
        case backscatter(Backscatter)
    }

    public var seed: UInt64
    public var duration: Double
    public var family: AddressFamily
    /// Capture time of the scenario's start, in whole seconds since the epoch.
    public var startTime: Int64
    public var plan: AddressPlan
    private var parts: [Part] = []

    /// An empty scenario; add parts with the builder methods.
    ///
    /// - Parameters:
    ///   - seed: the random seed; the same seed gives the same capture.
    ///   - duration: seconds during which parts start new traffic; conversations and retransmissions that
    ///     began before the end still finish, so the capture can run a few seconds longer.
    ///   - family: IPv4 or IPv6 for every part.
    ///   - startTime: the capture time of the start (default 2025-01-01T00:00:00Z).
    ///   - plan: default addresses for each role (nil: `AddressPlan.default(for: family)`).
    public init(
        seed: UInt64,
        duration: Double = 30,
        family: AddressFamily = .ipv4,
        startTime: Int64 = 1_735_689_600,
        plan: AddressPlan? = nil
    ) {
        self.seed = seed
        self.duration = duration
        self.family = family
        self.startTime = startTime
        self.plan = plan ?? .default(for: family)
    }

    /// Adds benign background traffic for the whole scenario.
    public func background(_ background: Background = Background()) -> Scenario { adding(.background(background)) }

    /// Adds a SYN flood.
    public func flood(_ flood: Flood) -> Scenario { adding(.flood(flood)) }

    /// Adds a flash crowd: a surge of connections that all complete.
    public func flashCrowd(_ crowd: FlashCrowd = FlashCrowd()) -> Scenario { adding(.flashCrowd(crowd)) }

    /// Adds a SYN scan.
    public func scan(_ scan: Scan) -> Scenario { adding(.scan(scan)) }

    /// Adds backscatter: answers to SYNs that someone sent with our address as source.
    public func backscatter(_ backscatter: Backscatter = Backscatter()) -> Scenario {
        adding(.backscatter(backscatter))
    }

    private func adding(_ part: Part) -> Scenario {
        var copy = self
        copy.parts.append(part)
        return copy
    }

    /// Generates the traffic and writes it as a capture file.
    ///
    /// - Parameters:
    ///   - path: the capture file to create or replace.
    ///   - format: pcap or pcapng.
    ///   - precision: microsecond or nanosecond timestamps.
    ///   - linkType: the link-layer framing.
    ///   - vlanTags: 802.1Q/802.1ad tags, outermost first (Ethernet only).
    ///   - direction: both directions, or only packets towards our network.
    ///   - ledger: when given, takes note of every attempt and SYN packet written, per service.
    /// - Returns: the ground truth of what was written.
    /// - Throws: `TrafficGenError.invalidConfiguration` for inconsistent parts, `.system` for I/O errors.
    @discardableResult
    public func write(
        to path: String,
        format: CaptureFormat = .pcap,
        precision: TimestampPrecision = .microseconds,
        linkType: LinkLayer = .ethernet,
        vlanTags: [VLANTag] = [],
        direction: CaptureDirection = .both,
        ledger: TrafficLedger? = nil
    ) throws -> GroundTruth {
        guard vlanTags.isEmpty || linkType == .ethernet else {
            throw TrafficGenError.invalidConfiguration(
                "VLAN tags need the ethernet link type, not \(linkType.rawValue)"
            )
        }
        guard duration > 0, plan.servers.count >= 2 else {
            throw TrafficGenError.invalidConfiguration("a scenario needs a duration above 0 and two servers")
        }
        var sources = try makeSources()
        let writer = try CaptureWriter(path: path, format: format, precision: precision, linkType: linkType)
        let encoder = FrameEncoder(linkType: linkType, vlanTags: vlanTags)
        var schedule = Schedule(keepsOutbound: direction == .both)
        var truth = GroundTruth(seed: seed, family: family)
        while true {
            var earliest: Int? = nil
            var earliestTime = Int64.max
            for index in sources.indices {
                if let time = sources[index].nextTime, time < earliestTime { (earliest, earliestTime) = (index, time) }
            }
            if let earliest, earliestTime <= schedule.earliestTime ?? .max {
                sources[earliest].playNext(into: &schedule)
                continue
            }
            guard let segment = schedule.removeEarliest() else { break }
            let frame = try writer.reserveRecord(at: segment.time, length: encoder.frameLength(segment))
            encoder.encode(segment, into: frame)
            ledger?.record(segment)
            truth.firstPacket = truth.firstPacket ?? seconds(segment.time)
            truth.lastPacket = seconds(segment.time)
        }
        try writer.close()
        truth.packets = writer.packetCount
        for source in sources { source.record(into: &truth) }
        truth.hasFlashCrowd = !truth.flashCrowds.isEmpty
        return truth
    }

    private func makeSources() throws -> [any TrafficSource] {
        for server in plan.servers {
            guard server.family == family else {
                throw TrafficGenError.invalidConfiguration("server \(server) is not \(family.rawValue)")
            }
        }
        let origin = startTime * 1_000_000_000
        let frame = ScenarioFrame(
            family: family,
            plan: plan,
            origin: origin,
            end: origin + Int64((duration * 1e9).rounded())
        )
        let backgroundRate = parts.lazy.compactMap { part -> Double? in
            if case .background(let background) = part { background.rate } else { nil }
        }.first
        let closedServices = Set(
            parts.compactMap { part -> Endpoint? in
                if case .flood(let flood) = part, flood.closedPort { flood.victim(in: frame) } else { nil }
            }
        )
        return try parts.enumerated().map { index, part -> any TrafficSource in
            let rng = SeededRandom(seed: seed, stream: index)
            switch part {
            case .background(let config):
                return try BackgroundSource(config, frame: frame, closedServices: closedServices, rng: rng)
            case .flood(let config): return try FloodSource(config, frame: frame, rng: rng)
            case .flashCrowd(let config):
                return try FlashCrowdSource(config, backgroundRate: backgroundRate, frame: frame, rng: rng)
            case .scan(let config): return try ScanSource(config, frame: frame, rng: rng)
            case .backscatter(let config): return try BackscatterSource(config, frame: frame, rng: rng)
            }
        }
    }
}

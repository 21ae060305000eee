/// Benign background traffic: clients from a pool opening connections to our services at a Poisson rate.
public struct Background: Sendable {
    /// New connections per second.
    public var rate: Double
    /// The services clients connect to; by default ports 80 and 443 of the first server and 22 of the second. Never
    /// a flood's victim where nothing listens (`Flood.closedPort`).
    public var services: [Endpoint]?
    /// Where clients come from; by default the plan's client prefix.
    public var clients: NetPrefix?
    /// How many distinct client addresses take part.
    public var clientCount: Int
    /// Share of connections to a port nobody listens on, answered by RST/ACK.
    public var closedPortShare: Double
    /// Share of connections whose first SYN-ACK is lost, so the client retransmits its SYN after 1 s.
    public var lostSynAckShare: Double
    /// Share of connections aborted by a RST from either side instead of a FIN exchange.
    public var resetShare: Double
    /// Share of connections closed by both sides at once (crossing FINs).
    public var simultaneousCloseShare: Double
    /// Share of connections whose packets carry IPv4 options or an IPv6 extension-header chain.
    public var unusualHeaderShare: Double
    /// Share of connections whose request is sent as two IP fragments.
    public var fragmentedShare: Double

    /// Background traffic of `rate` connections per second; the shares are the fractions of connections
    /// that behave unusually.
    ///
    /// - Parameters:
    ///   - rate: new connections per second.
    ///   - services: the services to connect to (nil: the plan's defaults).
    ///   - clients: the client prefix (nil: the plan's).
    ///   - clientCount: the number of distinct clients.
    ///   - closedPortShare: connections refused with RST/ACK.
    ///   - lostSynAckShare: connections that retransmit their SYN after a lost SYN-ACK.
    ///   - resetShare: connections aborted by RST.
    ///   - simultaneousCloseShare: connections closed by both sides at once.
    ///   - unusualHeaderShare: connections with IPv4 options or IPv6 extension headers.
    ///   - fragmentedShare: connections whose request is fragmented.
    public init(
        rate: Double = 500,
        services: [Endpoint]? = nil,
        clients: NetPrefix? = nil,
        clientCount: Int = 2000,
        closedPortShare: Double = 0.01,
        lostSynAckShare: Double = 0.01,
        resetShare: Double = 0.03,
        simultaneousCloseShare: Double = 0.02,
        unusualHeaderShare: Double = 0,
        fragmentedShare: Double = 0
    ) {
        self.rate = rate
        self.services = services
        self.clients = clients
        self.clientCount = clientCount
        self.closedPortShare = closedPortShare
        self.lostSynAckShare = lostSynAckShare
        self.resetShare = resetShare
        self.simultaneousCloseShare = simultaneousCloseShare
        self.unusualHeaderShare = unusualHeaderShare
        self.fragmentedShare = fragmentedShare
    }
}

/// A sudden surge of new clients whose connections all complete: legitimate load that is not a flood.
public struct FlashCrowd: Sendable {
    /// Seconds after the scenario start.
    public var start: Double
    public var duration: Double
    /// New connections per second during the surge; nil means `factor` times the background rate.
    public var rate: Double?
    public var factor: Double
    /// The service everybody wants; by default port 80 of the first server.
    public var service: Endpoint?
    /// Where the new clients come from; by default the plan's crowd prefix.
    public var clients: NetPrefix?
    public var clientCount: Int

    /// A surge of connections to one service, starting `start` seconds into the scenario.
    ///
    /// - Parameters:
    ///   - start: seconds after the scenario start.
    ///   - duration: seconds the surge lasts.
    ///   - rate: connections per second (nil: `factor` times the background rate, or times 500 without one).
    ///   - factor: the surge's size relative to the background.
    ///   - service: the target service (nil: port 80 of the first server).
    ///   - clients: the new clients' prefix (nil: the plan's crowd prefix).
    ///   - clientCount: the number of distinct new clients.
    public init(
        start: Double = 5,
        duration: Double = 10,
        rate: Double? = nil,
        factor: Double = 10,
        service: Endpoint? = nil,
        clients: NetPrefix? = nil,
        clientCount: Int = 10_000
    ) {
        self.start = start
        self.duration = duration
        self.rate = rate
        self.factor = factor
        self.service = service
        self.clients = clients
        self.clientCount = clientCount
    }
}

/// A fixed set of clients, each with its own round-trip time, OS and hop count, derived from its index so
/// nothing but the next source port is stored per client.
struct ClientPool {
    let prefix: NetPrefix
    let count: Int
    private var portOffsets: [UInt16]

    init(prefix: NetPrefix, count: Int) throws {
        guard count > 0, UInt64(count) <= prefix.capacity else {
            throw TrafficGenError.invalidConfiguration("\(count) clients do not fit in \(prefix)")
        }
        self.prefix = prefix
        self.count = count
        portOffsets = [UInt16](repeating: 0, count: count)
    }

    /// A conversation of a random client to `server` from the client's next source port: Linux picks even
    /// ports, counting up from a hashed start, so a client never reuses a port while it is in use.
    mutating func draw(_ rng: inout SeededRandom, to server: Endpoint) -> ConversationPlan {
        let index = Int(rng.below(UInt64(count)))
        let traits = mix64(UInt64(index) ^ prefix.base.low)
        var traitRandom = SeededRandom(seed: traits)
        let windows = traits % 10 < 3
        let hops = UInt8(traitRandom.int(in: 3...20))
        // Round trips: log-normal around 40 ms, kept to 5–300 ms as between real clients and a server.
        let rtt = min(max(traitRandom.logNormal(median: 0.040, sigma: 0.9), 0.005), 0.300)
        let start = UInt16((traits >> 32) % 14116)
        let port = 32768 + 2 * ((start &+ portOffsets[index]) % 14116)
        portOffsets[index] &+= 1
        return ConversationPlan(
            client: prefix.permutedAddress(UInt64(index)),
            clientPort: port,
            server: server,
            rtt: Int64(rtt * 1e9),
            windowsClient: windows,
            clientTTL: (windows ? 128 : 64) - hops
        )
    }
}

/// Plays `Background`.
struct BackgroundSource: TrafficSource {
    private let config: Background
    private let services: [Endpoint]
    private let closedPorts: [UInt16]
    private var pool: ClientPool
    private var arrivals: Arrivals
    private var rng: SeededRandom
    private(set) var nextTime: Int64?
    private var connections = 0

    /// - Parameter closedServices: services where nothing listens (a flood's victim with `closedPort`): clients know
    ///   better than to connect there.
    init(_ config: Background, frame: ScenarioFrame, closedServices: Set<Endpoint> = [], rng: SeededRandom) throws {
        let plan = frame.plan
        let services =
            (config.services ?? [
                Endpoint(plan.servers[0], 80), Endpoint(plan.servers[0], 443), Endpoint(plan.servers[1], 22),
            ]).filter { !closedServices.contains($0) }
        self.services = services
        guard !services.isEmpty, config.rate > 0 else {
            throw TrafficGenError.invalidConfiguration("background traffic needs a service and a rate above 0")
        }
        for service in services { try frame.check(service.address, "background service") }
        let clients = config.clients ?? plan.clients
        try frame.check(clients, "background client")
        closedPorts = [23, 3389, 8080, 8443].filter { port in !services.contains { $0.port == port } }
        self.config = config
        self.pool = try ClientPool(prefix: clients, count: config.clientCount)
        self.rng = rng
        arrivals = Arrivals(start: frame.origin, end: frame.end, rate: config.rate)
        nextTime = arrivals.next(using: &self.rng)
    }

    mutating func playNext(into schedule: inout Schedule) {
        guard let time = nextTime else { return }
        var plan = pool.draw(&rng, to: services[Int(rng.below(UInt64(services.count)))])
        if rng.chance(config.closedPortShare), !closedPorts.isEmpty {
            plan.server.port = closedPorts[Int(rng.below(UInt64(closedPorts.count)))]
            plan.closedPort = true
        }
        plan.lostSynAck = rng.chance(config.lostSynAckShare)
        let ending = rng.unit()
        if ending < config.resetShare {
            plan.ending = rng.chance(0.5) ? .clientReset : .serverReset
        } else if ending < config.resetShare + config.simultaneousCloseShare {
            plan.ending = .simultaneousClose
        } else {
            plan.ending = rng.chance(0.6) ? .clientClose : .serverClose
        }
        if rng.chance(config.unusualHeaderShare) {
            let ipv6Variants: [ExtraHeaders] = [.hopByHop, .destinationOptions, .routing, .ipv6Chain]
            plan.extras =
                plan.client.family == .ipv4 ? .ipv4Options : ipv6Variants[Int(rng.below(4))]
        }
        plan.fragmentRequest = rng.chance(config.fragmentedShare)
        var conversation = Conversation(plan, rng: &rng)
        conversation.play(at: time, rng: &rng, into: &schedule)
        connections += 1
        nextTime = arrivals.next(using: &rng)
    }

    func record(into truth: inout GroundTruth) {
        truth.backgroundConnections += connections
    }
}

/// Plays `FlashCrowd`.
struct FlashCrowdSource: TrafficSource {
    private let service: Endpoint
    private var pool: ClientPool
    private var arrivals: Arrivals
    private var rng: SeededRandom
    private(set) var nextTime: Int64?
    private var first: Int64?
    private var last: Int64 = 0
    private var connections = 0

    init(_ config: FlashCrowd, backgroundRate: Double?, frame: ScenarioFrame, rng: SeededRandom) throws {
        service = config.service ?? Endpoint(frame.plan.servers[0], 80)
        try frame.check(service.address, "flash crowd service")
        let clients = config.clients ?? frame.plan.crowd
        try frame.check(clients, "flash crowd client")
        let rate = config.rate ?? config.factor * (backgroundRate ?? 500)
        guard rate > 0 else { throw TrafficGenError.invalidConfiguration("a flash crowd needs a rate above 0") }
        pool = try ClientPool(prefix: clients, count: config.clientCount)
        let window = try frame.window(start: config.start, duration: config.duration, part: "the flash crowd")
        arrivals = Arrivals(start: window.start, end: window.end, rate: rate)
        self.rng = rng
        nextTime = arrivals.next(using: &self.rng)
    }

    mutating func playNext(into schedule: inout Schedule) {
        guard let time = nextTime else { return }
        var plan = pool.draw(&rng, to: service)
        plan.ending = rng.chance(0.6) ? .clientClose : .serverClose
        var conversation = Conversation(plan, rng: &rng)
        conversation.play(at: time, rng: &rng, into: &schedule)
        first = first ?? time
        last = time
        connections += 1
        nextTime = arrivals.next(using: &rng)
    }

    func record(into truth: inout GroundTruth) {
        guard let first else { return }
        truth.flashCrowds.append(
            FlashCrowdTruth(
                service: service.address,
                port: service.port,
                start: seconds(first),
                end: seconds(last),
                connections: connections,
                connectionsPerSecond: Double(connections) / arrivals.activeSeconds
            )
        )
    }
}

import SynwatchEngine

extension V1 {
    /// Traffic and handshake counters, in the order reports list them.
    public struct Traffic: Codable, Hashable, Sendable {
        public var frames: Int
        public var bytes: Int
        public var tcpSegments: Int
        public var synPackets: Int
        public var synRetransmits: Int
        public var synAcks: Int
        public var synAckRetransmits: Int
        public var unsolicitedSynAcks: Int
        public var completions: Int
        public var resets: Int
        public var timeouts: Int

        enum CodingKeys: String, CodingKey {
            case frames, bytes, tcpSegments = "tcp_segments", synPackets = "syn_packets"
            case synRetransmits = "syn_retransmits", synAcks = "syn_acks", synAckRetransmits = "syn_ack_retransmits"
            case unsolicitedSynAcks = "unsolicited_syn_acks", completions, resets, timeouts
        }
    }

    /// What the engine counted besides traffic: the capture's span, connections, detections, frames it did not
    /// follow, and its tables.
    public struct EngineTotals: Codable, Hashable, Sendable {
        /// Capture times of the first and last frame, and the span between; left out before the first frame.
        public var firstTime: CaptureTime?
        public var lastTime: CaptureTime?
        public var duration: Seconds?
        public var connections: Connections
        public var attacks: Int
        public var scanNotices: Int
        public var backscatterNotices: Int
        /// Frames that are not TCP, per reason: ordinary traffic the engine does not follow.
        public var skipped: NamedCounts<SkipReasons, Int>
        /// Malformed frames per reason.
        public var problems: NamedCounts<ProblemReasons, Int>
        public var tables: Tables

        enum CodingKeys: String, CodingKey {
            case firstTime = "first_time", lastTime = "last_time", duration, connections, attacks
            case scanNotices = "scan_notices", backscatterNotices = "backscatter_notices", skipped, problems, tables
        }
    }

    public enum SkipReasons: FieldNames {
        public static let names = DecodeOutcome.allCases.filter { $0 != .tcp && !$0.isProblem }.map(\.name)
    }

    public enum ProblemReasons: FieldNames {
        public static let names = DecodeOutcome.allCases.filter(\.isProblem).map(\.name)
    }

    /// Connections by server-side state (`fin_wait` is FIN_WAIT_1 and FIN_WAIT_2), then closes by who sent the
    /// first FIN and RST aborts by who sent the RST.
    public struct ConnectionStates: Codable, Hashable, Sendable {
        public var established: Int
        public var finWait: Int
        public var closing: Int
        public var timeWait: Int
        public var closeWait: Int
        public var lastAck: Int
        public var closesClientFirst: Int
        public var closesServerFirst: Int
        public var closesSimultaneous: Int
        public var abortedByClient: Int
        public var abortedByServer: Int

        enum CodingKeys: String, CodingKey {
            case established, finWait = "fin_wait", closing, timeWait = "time_wait", closeWait = "close_wait"
            case lastAck = "last_ack", closesClientFirst = "closes_client_first"
            case closesServerFirst = "closes_server_first", closesSimultaneous = "closes_simultaneous"
            case abortedByClient = "aborted_by_client", abortedByServer = "aborted_by_server"
        }
    }

    /// The connections whose handshake completed in sight: by state now, how they closed, and how many entered
    /// and left the table.
    public struct Connections: Codable, Hashable, Sendable {
        public var states: ConnectionStates
        public var churn: Churn

        public struct Churn: Codable, Hashable, Sendable {
            public var opened: Int
            public var closed: Int
            public var expired: Int
        }

        public init(states: ConnectionStates, churn: Churn) {
            self.states = states
            self.churn = churn
        }

        public init(from decoder: any Decoder) throws {
            states = try ConnectionStates(from: decoder)
            churn = try Churn(from: decoder)
        }

        public func encode(to encoder: any Encoder) throws { try V1.flatten([states, churn], into: encoder) }
    }

    /// Each bounded table: entries now, capacity, and what it evicted.
    public struct Tables: Codable, Hashable, Sendable {
        public var handshakes: HandshakeTable
        public var victims: VictimTable
        public var sources: Table
        public var backscatter: Table
        public var connections: Table
    }

    public struct Table: Codable, Hashable, Sendable {
        public var tracked: Int
        public var capacity: Int
        public var evictions: Int
    }

    public struct HandshakeTable: Codable, Hashable, Sendable {
        public var tracked: Int
        public var capacity: Int
        public var evictions: Int
        /// Attempts on attacked services left untracked by sampling.
        public var sampledOut: Int
        /// SYNs and SYN-ACKs of clients left out of a service sampled by client that reached the engine (most
        /// never do: the kernel's filter drops them).
        public var thinnedOut: Int

        enum CodingKeys: String, CodingKey {
            case tracked, capacity, evictions, sampledOut = "sampled_out", thinnedOut = "thinned_out"
        }
    }

    public struct VictimTable: Codable, Hashable, Sendable {
        public var tracked: Int
        public var capacity: Int
        public var evictions: Int
        /// SYNs to services the full table could not track.
        public var untrackedSyns: Int

        enum CodingKeys: String, CodingKey {
            case tracked, capacity, evictions, untrackedSyns = "untracked_syns"
        }
    }

    /// A service's totals, named as in events (`victim`, `port`; no `port` for a whole host).
    public struct Service: Codable, Hashable, Sendable {
        public var victim: String
        public var port: UInt16?
        public var firstSeen: CaptureTime
        public var synPackets: Int
        public var attempts: Int
        public var retransmits: Int
        public var completions: Int
        public var resets: Int
        public var timeouts: Int
        public var underAttack: Bool
        /// Left out for a whole host: only services have connections.
        public var connections: ConnectionStates?
        /// The detector's current window: half-open attempts per second over the rate window.
        public var halfOpenPerSecond: Rate
        /// Completed per matured attempt over the rate window; null when no attempt matured in it.
        public var completionRatio: Nullable<Ratio>
        /// Estimated distinct sources of the attempts that did not complete, over the sources window.
        public var distinctSources: Int
        /// The kind of the attack going on; left out when none is.
        public var kind: FloodKind?
        /// Attacks started since the service entered the victims table, by the kind they started as.
        public var attacksStarted: NamedCounts<FloodKindNames, Int>
        /// How its attempts are sampled now; left out when every one is followed.
        public var sampling: Sampling?

        enum CodingKeys: String, CodingKey {
            case victim, port, firstSeen = "first_seen", synPackets = "syn_packets", attempts, retransmits
            case completions, resets, timeouts, underAttack = "under_attack", connections
            case halfOpenPerSecond = "half_open_per_s", completionRatio = "completion_ratio"
            case distinctSources = "distinct_sources", kind, attacksStarted = "attacks_started", sampling
        }

        public var service: String { V1.serviceText(victim: victim, port: port) }
    }

    /// A service under a heavy attack follows one attempt in `one_in`, each standing for `one_in`: `by` `handshake`
    /// (4-tuple) or `client` (a random-source storm's clients, `in_kernel` when the capture's filter drops the rest).
    public struct Sampling: Codable, Hashable, Sendable {
        public var by: String
        public var oneIn: Int
        public var inKernel: Bool

        public init(by: String, oneIn: Int, inKernel: Bool) {
            self.by = by
            self.oneIn = oneIn
            self.inKernel = inKernel
        }

        enum CodingKeys: String, CodingKey {
            case by, oneIn = "one_in", inKernel = "in_kernel"
        }
    }

    /// The kinds of flood, in the order `FloodKind` lists them.
    public enum FloodKindNames: FieldNames {
        public static let names = FloodKind.allCases.map(\.rawValue)
    }

    /// A source with repeated SYNs.
    public struct Source: Codable, Hashable, Sendable {
        public var address: String
        public var attempts: Int
        public var completions: Int
        public var halfOpen: Int
        public var distinctTargets: Int
        public var lastTarget: String

        enum CodingKeys: String, CodingKey {
            case address, attempts, completions, halfOpen = "half_open", distinctTargets = "distinct_targets"
            case lastTarget = "last_target"
        }
    }

    /// An attack going on as the API lists it: the event field names, with the current window's figures.
    public struct ActiveAttack: Codable, Hashable, Sendable {
        public var identity: Identity
        public var window: Event.Window
        public var peaks: Peaks

        public struct Identity: Codable, Hashable, Sendable {
            public var attackID: UInt64
            public var victim: String
            public var port: UInt16?
            public var kind: FloodKind
            public var start: CaptureTime

            enum CodingKeys: String, CodingKey {
                case attackID = "attack_id", victim, port, kind, start
            }
        }

        public struct Peaks: Codable, Hashable, Sendable {
            public var peakSynPerSecond: Rate
            public var peakHalfOpenPerSecond: Rate
            public var peakRefusedPerSecond: Rate
            public var peakDistinctSources: Int
            public var totalSyns: Int

            enum CodingKeys: String, CodingKey {
                case peakSynPerSecond = "peak_syn_per_s", peakHalfOpenPerSecond = "peak_half_open_per_s"
                case peakRefusedPerSecond = "peak_refused_per_s"
                case peakDistinctSources = "peak_distinct_sources", totalSyns = "total_syns"
            }
        }

        public init(identity: Identity, window: Event.Window, peaks: Peaks) {
            self.identity = identity
            self.window = window
            self.peaks = peaks
        }

        public init(from decoder: any Decoder) throws {
            identity = try Identity(from: decoder)
            window = try Event.Window(from: decoder)
            peaks = try Peaks(from: decoder)
        }

        public func encode(to encoder: any Encoder) throws { try V1.flatten([identity, window, peaks], into: encoder) }

        public var service: String { V1.serviceText(victim: identity.victim, port: identity.port) }
    }

    /// The body of `GET /v1/attacks`: attacks going on, and the latest that ended (`attack_end` events, oldest
    /// first).
    public struct Attacks: Codable, Hashable, Sendable {
        public var active: [ActiveAttack]
        public var recent: [Event]

        public init(active: [ActiveAttack], recent: [Event]) {
            self.active = active
            self.recent = recent
        }
    }

    /// The body of `GET /v1/victims`: the busiest services.
    public struct Victims: Codable, Hashable, Sendable {
        public var victims: [Service]

        public init(victims: [Service]) { self.victims = victims }
    }

    /// The body of `GET /v1/sources`: the sources with the most half-open attempts.
    public struct Sources: Codable, Hashable, Sendable {
        public var sources: [Source]

        public init(sources: [Source]) { self.sources = sources }
    }

    /// The last line of `synwatch analyze --json`: the files, the engine's totals, the busiest services, and the
    /// error that stopped the reading, if one did.
    public struct Summary: Codable, Hashable, Sendable {
        public var head: Head
        public var traffic: Traffic
        public var totals: EngineTotals
        public var tail: Tail

        public struct Head: Codable, Hashable, Sendable {
            /// Always `summary`.
            public var event = "summary"
            public var files: [String]
        }

        public struct Tail: Codable, Hashable, Sendable {
            public var services: [Service]
            public var error: String?
        }

        public init(files: [String], traffic: Traffic, totals: EngineTotals, services: [Service], error: String?) {
            head = Head(files: files)
            self.traffic = traffic
            self.totals = totals
            tail = Tail(services: services, error: error)
        }

        public init(from decoder: any Decoder) throws {
            head = try Head(from: decoder)
            traffic = try Traffic(from: decoder)
            totals = try EngineTotals(from: decoder)
            tail = try Tail(from: decoder)
        }

        public func encode(to encoder: any Encoder) throws {
            try V1.flatten([head, traffic, totals, tail], into: encoder)
        }
    }
}

// MARK: From the engine

extension V1.Traffic {
    public init(_ statistics: EngineStatistics) {
        frames = statistics.frames
        bytes = statistics.bytes
        tcpSegments = statistics[.tcp]
        synPackets = statistics.synPackets
        synRetransmits = statistics.synRetransmits
        synAcks = statistics.synAcks
        synAckRetransmits = statistics.synAckRetransmits
        unsolicitedSynAcks = statistics.unsolicitedSynAcks
        completions = statistics.completions
        resets = statistics.resets
        timeouts = statistics.timeouts
    }
}

extension V1.EngineTotals {
    public init(_ statistics: EngineStatistics, occupancy: TableOccupancy) {
        firstTime = statistics.firstTime.map(CaptureTime.init)
        lastTime = statistics.lastTime.map(CaptureTime.init)
        if let first = statistics.firstTime, let last = statistics.lastTime {
            duration = Seconds((last - first).seconds)
        }
        connections = V1.Connections(
            states: V1.ConnectionStates(statistics.connections),
            churn: V1.Connections.Churn(
                opened: statistics.connectionsOpened,
                closed: statistics.connectionsClosed,
                expired: statistics.connectionsExpired
            )
        )
        attacks = statistics.attacks
        scanNotices = statistics.scanNotices
        backscatterNotices = statistics.backscatterNotices
        skipped = NamedCounts(
            DecodeOutcome.allCases.filter { $0 != .tcp && !$0.isProblem }.map { ($0.name, statistics[$0]) }
        )
        problems = NamedCounts(DecodeOutcome.allCases.filter(\.isProblem).map { ($0.name, statistics[$0]) })
        tables = V1.Tables(
            handshakes: V1.HandshakeTable(
                tracked: occupancy.handshakes,
                capacity: occupancy.handshakeCapacity,
                evictions: statistics.handshakeEvictions,
                sampledOut: statistics.sampledOut,
                thinnedOut: statistics.thinnedOut
            ),
            victims: V1.VictimTable(
                tracked: occupancy.victims,
                capacity: occupancy.victimCapacity,
                evictions: statistics.victimEvictions,
                untrackedSyns: statistics.victimsUntracked
            ),
            sources: V1.Table(
                tracked: occupancy.sources,
                capacity: occupancy.sourceCapacity,
                evictions: statistics.sourceEvictions
            ),
            backscatter: V1.Table(
                tracked: occupancy.backscatterAddresses,
                capacity: occupancy.backscatterCapacity,
                evictions: statistics.backscatterEvictions
            ),
            connections: V1.Table(
                tracked: occupancy.connections,
                capacity: occupancy.connectionCapacity,
                evictions: statistics.connectionEvictions
            )
        )
    }
}

extension V1.ConnectionStates {
    public init(_ counts: ConnectionCounts) {
        established = counts.established
        finWait = counts.finWait
        closing = counts.closing
        timeWait = counts.timeWait
        closeWait = counts.closeWait
        lastAck = counts.lastAck
        closesClientFirst = counts.closesClientFirst
        closesServerFirst = counts.closesServerFirst
        closesSimultaneous = counts.closesSimultaneous
        abortedByClient = counts.abortsByClient
        abortedByServer = counts.abortsByServer
    }

    /// The engine's counts (`fin_wait` read back as FIN_WAIT_1), for the columns the CLI shares with its report.
    public var counts: ConnectionCounts {
        var counts = ConnectionCounts()
        counts.established = established
        counts.finWait1 = finWait
        counts.closing = closing
        counts.timeWait = timeWait
        counts.closeWait = closeWait
        counts.lastAck = lastAck
        counts.closesClientFirst = closesClientFirst
        counts.closesServerFirst = closesServerFirst
        counts.closesSimultaneous = closesSimultaneous
        counts.abortsByClient = abortedByClient
        counts.abortsByServer = abortedByServer
        return counts
    }
}

extension V1.Service {
    public init(_ summary: ServiceSummary) {
        victim = summary.address.description
        port = summary.port
        firstSeen = CaptureTime(summary.firstSeen)
        synPackets = summary.synPackets
        attempts = summary.attempts
        retransmits = summary.retransmits
        completions = summary.completions
        resets = summary.resets
        timeouts = summary.timeouts
        underAttack = summary.underAttack
        connections = summary.connections.map(V1.ConnectionStates.init)
        halfOpenPerSecond = Rate(summary.halfOpenPerSecond)
        completionRatio = Nullable(summary.completionRatio.map { Ratio($0) })
        distinctSources = summary.distinctSources
        kind = summary.attackKind
        attacksStarted = NamedCounts(FloodKind.allCases.map { ($0.rawValue, summary.attacksStarted[$0]) })
        sampling = summary.sampling.map { V1.Sampling(by: $0.by.rawValue, oneIn: $0.oneIn, inKernel: $0.inKernel) }
    }
}

extension V1.Source {
    public init(_ summary: SourceSummary) {
        address = summary.address.description
        attempts = summary.attempts
        completions = summary.completions
        halfOpen = summary.halfOpen
        distinctTargets = summary.distinctTargets
        lastTarget = summary.lastTarget.description
    }
}

extension V1.ActiveAttack {
    public init(_ attack: AttackStatus) {
        identity = Identity(
            attackID: attack.attackID,
            victim: attack.victim.description,
            port: attack.port,
            kind: attack.kind,
            start: CaptureTime(attack.start)
        )
        window = V1.Event.Window(attack.figures)
        peaks = Peaks(
            peakSynPerSecond: Rate(attack.peakSynPerSecond),
            peakHalfOpenPerSecond: Rate(attack.peakHalfOpenPerSecond),
            peakRefusedPerSecond: Rate(attack.peakRefusedPerSecond),
            peakDistinctSources: attack.peakDistinctSources,
            totalSyns: attack.totalSyns
        )
    }
}

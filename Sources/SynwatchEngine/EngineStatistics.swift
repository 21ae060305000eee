/// Counters of everything the engine saw and did, for the summary, status and metrics.
public struct EngineStatistics: Sendable, Equatable {
    public var frames = 0
    public var bytes = 0
    /// Frames per decode outcome (`DecodeOutcome.rawValue` indexes it).
    public var outcomes = [Int](repeating: 0, count: DecodeOutcome.allCases.count)
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?

    public var synPackets = 0
    /// SYNs repeating an attempt already tracked (same 4-tuple and ISN).
    public var synRetransmits = 0
    public var synAcks = 0
    public var synAckRetransmits = 0
    /// SYN-ACKs that answer no tracked attempt: backscatter, replies to SYNs sent before the capture
    /// began, or (from a service that receives SYNs) replies to attempts sampled out or evicted.
    public var unsolicitedSynAcks = 0
    public var completions = 0
    public var resets = 0
    public var timeouts = 0

    /// Handshakes evicted from the full table before completing or timing out.
    public var handshakeEvictions = 0
    /// Attempts on services under attack left out of the handshake table by sampling.
    public var sampledOut = 0
    public var victimEvictions = 0
    /// SYNs whose service could not be tracked because its bucket held only services under attack.
    public var victimsUntracked = 0
    public var sourceEvictions = 0
    public var backscatterEvictions = 0

    public var attacks = 0
    public var scanNotices = 0
    public var backscatterNotices = 0

    public init() {}

    /// Frames whose decoding ended in `outcome`.
    public subscript(outcome: DecodeOutcome) -> Int { outcomes[Int(outcome.rawValue)] }

    /// Malformed frames in all.
    public var problems: Int { DecodeOutcome.allCases.filter(\.isProblem).reduce(0) { $0 + self[$1] } }
}

/// How full the bounded tables are now.
public struct TableOccupancy: Sendable, Equatable {
    public var handshakes: Int
    public var handshakeCapacity: Int
    public var victims: Int
    public var victimCapacity: Int
    public var sources: Int
    public var sourceCapacity: Int
    public var backscatterAddresses: Int
    public var backscatterCapacity: Int

    public init(
        handshakes: Int,
        handshakeCapacity: Int,
        victims: Int,
        victimCapacity: Int,
        sources: Int,
        sourceCapacity: Int,
        backscatterAddresses: Int,
        backscatterCapacity: Int
    ) {
        self.handshakes = handshakes
        self.handshakeCapacity = handshakeCapacity
        self.victims = victims
        self.victimCapacity = victimCapacity
        self.sources = sources
        self.sourceCapacity = sourceCapacity
        self.backscatterAddresses = backscatterAddresses
        self.backscatterCapacity = backscatterCapacity
    }
}

/// What one service (or, without a port, one whole host) received since it was first seen.
///
/// Attempt, completion and reset counts are estimates while the service was sampled under attack.
public struct ServiceSummary: Sendable, Equatable {
    public var address: IPAddress
    /// Nil for a host's figures over all its ports.
    public var port: UInt16?
    public var firstSeen: Timestamp
    public var synPackets: Int
    public var attempts: Int
    /// SYNs repeating a tracked attempt (same 4-tuple and ISN).
    public var retransmits: Int
    public var completions: Int
    /// Attempts the server refused with a RST.
    public var resets: Int
    public var timeouts: Int
    public var underAttack: Bool

    public init(
        address: IPAddress,
        port: UInt16?,
        firstSeen: Timestamp,
        synPackets: Int,
        attempts: Int,
        retransmits: Int,
        completions: Int,
        resets: Int,
        timeouts: Int,
        underAttack: Bool
    ) {
        self.address = address
        self.port = port
        self.firstSeen = firstSeen
        self.synPackets = synPackets
        self.attempts = attempts
        self.retransmits = retransmits
        self.completions = completions
        self.resets = resets
        self.timeouts = timeouts
        self.underAttack = underAttack
    }
}

/// An attack going on, as the daemon shows it between events.
public struct AttackStatus: Sendable, Equatable {
    public var attackID: UInt64
    public var victim: IPAddress
    /// Nil for a flood spread over all the host's ports.
    public var port: UInt16?
    public var kind: FloodKind
    /// When the evidence first held.
    public var start: Timestamp
    /// The figures of the latest complete window.
    public var figures: VictimFigures
    public var peakSynPerSecond: Double
    public var peakHalfOpenPerSecond: Double
    public var peakDistinctSources: Int
    /// SYN packets to the service since the attack started.
    public var totalSyns: Int

    public init(
        attackID: UInt64,
        victim: IPAddress,
        port: UInt16?,
        kind: FloodKind,
        start: Timestamp,
        figures: VictimFigures,
        peakSynPerSecond: Double,
        peakHalfOpenPerSecond: Double,
        peakDistinctSources: Int,
        totalSyns: Int
    ) {
        self.attackID = attackID
        self.victim = victim
        self.port = port
        self.kind = kind
        self.start = start
        self.figures = figures
        self.peakSynPerSecond = peakSynPerSecond
        self.peakHalfOpenPerSecond = peakHalfOpenPerSecond
        self.peakDistinctSources = peakDistinctSources
        self.totalSyns = totalSyns
    }
}

/// One source as the source table knows it: sources that sent at least two SYNs in the sources window.
public struct SourceSummary: Sendable, Equatable {
    public var address: IPAddress
    /// Attempts and completions over the sources window.
    public var attempts: Int
    public var completions: Int
    /// Estimated distinct services (address and port) it sent SYNs to.
    public var distinctTargets: Int
    /// The destination of its latest SYN.
    public var lastTarget: IPAddress

    /// Attempts that did not complete.
    public var halfOpen: Int { max(0, attempts - completions) }

    public init(address: IPAddress, attempts: Int, completions: Int, distinctTargets: Int, lastTarget: IPAddress) {
        self.address = address
        self.attempts = attempts
        self.completions = completions
        self.distinctTargets = distinctTargets
        self.lastTarget = lastTarget
    }
}

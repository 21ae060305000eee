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
    /// began, or (from a service that receives SYNs) replies to attempts evicted. Replies to attempts its
    /// service sampled out under attack are none: their SYNs were seen (`sampledOut`).
    public var unsolicitedSynAcks = 0
    public var completions = 0
    public var resets = 0
    public var timeouts = 0

    /// Handshakes evicted from the full table before completing or timing out.
    public var handshakeEvictions = 0
    /// Attempts on services under attack left out of the handshake table by sampling.
    public var sampledOut = 0
    /// SYNs and SYN-ACKs of clients left out of a service thinned by client (`ClientSampling`) that reached the
    /// engine: in a capture file all of them, live only those the kernel's filter had not dropped yet.
    public var thinnedOut = 0
    public var victimEvictions = 0
    /// SYNs whose service could not be tracked because its bucket held only services under attack.
    public var victimsUntracked = 0
    public var sourceEvictions = 0
    public var backscatterEvictions = 0

    /// Connections whose handshake completed in sight, now in each state (one per connection, unweighted),
    /// and how many closed and aborted.
    public var connections = ConnectionCounts()
    /// Connections that entered the connection table (completed handshakes).
    public var connectionsOpened = 0
    /// Connections that left after a graceful close: last ACK, TIME_WAIT over, or their 4-tuple reused.
    public var connectionsClosed = 0
    /// Closing connections that outlived the FIN time-out, or were replaced before their close was seen.
    public var connectionsExpired = 0
    /// Connections evicted from the full table.
    public var connectionEvictions = 0

    public var attacks = 0
    public var scanNotices = 0
    public var backscatterNotices = 0

    public init() {}

    /// Frames whose decoding ended in `outcome`.
    public subscript(outcome: DecodeOutcome) -> Int { outcomes[Int(outcome.rawValue)] }

    /// Malformed frames in all.
    public var problems: Int { DecodeOutcome.allCases.filter(\.isProblem).reduce(0) { $0 + self[$1] } }

    /// Adds another engine's counters (one engine per interface); times span both.
    public mutating func accumulate(_ other: EngineStatistics) {
        frames += other.frames
        bytes += other.bytes
        for index in outcomes.indices { outcomes[index] += other.outcomes[index] }
        if let time = other.firstTime { firstTime = min(firstTime ?? time, time) }
        if let time = other.lastTime { lastTime = max(lastTime ?? time, time) }
        synPackets += other.synPackets
        synRetransmits += other.synRetransmits
        synAcks += other.synAcks
        synAckRetransmits += other.synAckRetransmits
        unsolicitedSynAcks += other.unsolicitedSynAcks
        completions += other.completions
        resets += other.resets
        timeouts += other.timeouts
        handshakeEvictions += other.handshakeEvictions
        sampledOut += other.sampledOut
        thinnedOut += other.thinnedOut
        victimEvictions += other.victimEvictions
        victimsUntracked += other.victimsUntracked
        sourceEvictions += other.sourceEvictions
        backscatterEvictions += other.backscatterEvictions
        connections.accumulate(other.connections)
        connectionsOpened += other.connectionsOpened
        connectionsClosed += other.connectionsClosed
        connectionsExpired += other.connectionsExpired
        connectionEvictions += other.connectionEvictions
        attacks += other.attacks
        scanNotices += other.scanNotices
        backscatterNotices += other.backscatterNotices
    }
}

/// Connections of a service (or of all services) by server-side TCP state, and how they ended.
///
/// Only connections whose handshake synwatch saw complete are counted: those open before the capture began
/// are not. The states need both directions of the traffic: a capture of incoming packets only never sees
/// the server's FIN, so its connections stop at ESTABLISHED or CLOSE_WAIT. Per service the counts are
/// estimates while the service was sampled under attack (each tracked connection stands for its weight).
public struct ConnectionCounts: Sendable, Equatable, BitwiseCopyable {
    public var established = 0
    /// The server closed first and waits for the ACK of its FIN (1), then for the client's FIN (2).
    public var finWait1 = 0
    public var finWait2 = 0
    /// Both FINs crossed.
    public var closing = 0
    /// The server closed first and both FINs were acknowledged; lasts `connections.time_wait`.
    public var timeWait = 0
    /// The client closed first and the server has not closed yet.
    public var closeWait = 0
    /// The client closed first, then the server; waiting for the last ACK.
    public var lastAck = 0

    /// Graceful closes (both FINs seen), by who sent the first FIN.
    public var closesClientFirst = 0
    public var closesServerFirst = 0
    public var closesSimultaneous = 0
    /// Connections ended by a RST, by who sent it.
    public var abortsByClient = 0
    public var abortsByServer = 0

    public init() {}

    /// FIN_WAIT_1 and FIN_WAIT_2.
    public var finWait: Int { finWait1 + finWait2 }

    /// Connections in any state.
    public var current: Int { established + finWait1 + finWait2 + closing + timeWait + closeWait + lastAck }

    /// Connections waiting for the client to acknowledge the server's FIN: the client's ACKs matter only then.
    var awaitingFinAck: Int {
        @inline(__always) get { finWait1 + closing + lastAck }
    }

    /// The count of connections in `state`.
    subscript(state: ConnectionState) -> Int {
        get {
            switch state {
            case .established: established
            case .finWait1: finWait1
            case .finWait2: finWait2
            case .closing: closing
            case .timeWait: timeWait
            case .closeWait: closeWait
            case .lastAck: lastAck
            }
        }
        set {
            switch state {
            case .established: established = newValue
            case .finWait1: finWait1 = newValue
            case .finWait2: finWait2 = newValue
            case .closing: closing = newValue
            case .timeWait: timeWait = newValue
            case .closeWait: closeWait = newValue
            case .lastAck: lastAck = newValue
            }
        }
    }

    /// Counts `weight` closes or aborts of kind `close`.
    mutating func count(_ close: ConnectionClose, weight: Int) {
        switch close {
        case .clientFirst: closesClientFirst &+= weight
        case .serverFirst: closesServerFirst &+= weight
        case .simultaneous: closesSimultaneous &+= weight
        case .abortedByClient: abortsByClient &+= weight
        case .abortedByServer: abortsByServer &+= weight
        }
    }

    /// Adds another engine's counts.
    public mutating func accumulate(_ other: ConnectionCounts) {
        established += other.established
        finWait1 += other.finWait1
        finWait2 += other.finWait2
        closing += other.closing
        timeWait += other.timeWait
        closeWait += other.closeWait
        lastAck += other.lastAck
        closesClientFirst += other.closesClientFirst
        closesServerFirst += other.closesServerFirst
        closesSimultaneous += other.closesSimultaneous
        abortsByClient += other.abortsByClient
        abortsByServer += other.abortsByServer
    }
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
    public var connections: Int
    public var connectionCapacity: Int

    public init(
        handshakes: Int,
        handshakeCapacity: Int,
        victims: Int,
        victimCapacity: Int,
        sources: Int,
        sourceCapacity: Int,
        backscatterAddresses: Int,
        backscatterCapacity: Int,
        connections: Int = 0,
        connectionCapacity: Int = 0
    ) {
        self.handshakes = handshakes
        self.handshakeCapacity = handshakeCapacity
        self.victims = victims
        self.victimCapacity = victimCapacity
        self.sources = sources
        self.sourceCapacity = sourceCapacity
        self.backscatterAddresses = backscatterAddresses
        self.backscatterCapacity = backscatterCapacity
        self.connections = connections
        self.connectionCapacity = connectionCapacity
    }

    /// Both engines' tables together (one engine per interface).
    public func combined(with other: TableOccupancy) -> TableOccupancy {
        TableOccupancy(
            handshakes: handshakes + other.handshakes,
            handshakeCapacity: handshakeCapacity + other.handshakeCapacity,
            victims: victims + other.victims,
            victimCapacity: victimCapacity + other.victimCapacity,
            sources: sources + other.sources,
            sourceCapacity: sourceCapacity + other.sourceCapacity,
            backscatterAddresses: backscatterAddresses + other.backscatterAddresses,
            backscatterCapacity: backscatterCapacity + other.backscatterCapacity,
            connections: connections + other.connections,
            connectionCapacity: connectionCapacity + other.connectionCapacity
        )
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
    /// The service's connections by state and how they ended; nil for a host's figures over all its ports.
    public var connections: ConnectionCounts?
    /// The detector's current window: half-open attempts per second over the rate window.
    public var halfOpenPerSecond: Double
    /// Completed handshakes per matured attempt over the rate window; nil when no attempt matured in it.
    public var completionRatio: Double?
    /// Estimated distinct sources of the attempts that did not complete, over the sources window (as events say).
    public var distinctSources: Int
    /// The kind of the attack going on; nil when none is.
    public var attackKind: FloodKind?
    /// Attacks started on the service since it entered the victims table, by the kind they started as.
    public var attacksStarted: AttacksByKind
    /// How its attempts are sampled now; nil when every one is followed.
    public var sampling: ServiceSampling?

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
        underAttack: Bool,
        connections: ConnectionCounts? = nil,
        halfOpenPerSecond: Double = 0,
        completionRatio: Double? = nil,
        distinctSources: Int = 0,
        attackKind: FloodKind? = nil,
        attacksStarted: AttacksByKind = AttacksByKind(),
        sampling: ServiceSampling? = nil
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
        self.connections = connections
        self.halfOpenPerSecond = halfOpenPerSecond
        self.completionRatio = completionRatio
        self.distinctSources = distinctSources
        self.attackKind = attackKind
        self.attacksStarted = attacksStarted
        self.sampling = sampling
    }
}

/// Attacks started on one service, by the kind they were given at their start.
public struct AttacksByKind: Sendable, Equatable, BitwiseCopyable {
    public var randomSource = 0
    public var singleSource = 0
    public var distributed = 0

    public init() {}

    public subscript(kind: FloodKind) -> Int {
        get {
            switch kind {
            case .randomSource: randomSource
            case .singleSource: singleSource
            case .distributed: distributed
            }
        }
        set {
            switch kind {
            case .randomSource: randomSource = newValue
            case .singleSource: singleSource = newValue
            case .distributed: distributed = newValue
            }
        }
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
    public var peakRefusedPerSecond: Double
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
        peakRefusedPerSecond: Double = 0,
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
        self.peakRefusedPerSecond = peakRefusedPerSecond
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

/// How the attempts of a service under a heavy attack are sampled: one in 2^shift stands for them all.
public struct ServiceSampling: Sendable, Equatable {
    public enum Method: String, Sendable {
        /// By 4-tuple, in the engine only.
        case handshake
        /// By client address (`ClientSampling`), for a random-source storm: the daemon's kernel filter thins too.
        case client
    }

    public var by: Method
    public var shift: UInt8
    /// Whether the daemon's kernel filter drops the left-out clients' SYNs before they are captured.
    public var inKernel = false

    public init(by: Method, shift: UInt8) {
        self.by = by
        self.shift = shift
    }

    public var oneIn: Int { 1 << Int(shift) }
}

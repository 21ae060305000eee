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
}

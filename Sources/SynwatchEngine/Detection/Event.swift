/// The kind of a SYN flood, as named in events.
public enum FloodKind: String, Sendable, CaseIterable, BitwiseCopyable {
    /// Spoofed storm: about one SYN per source.
    case randomSource = "random-source"
    /// One source sends most of the SYNs.
    case singleSource = "single-source"
    /// A fixed set of real sources that keep sending and never complete (a botnet).
    case distributed

    /// One bit per kind, for sets of them.
    var bit: UInt8 {
        switch self {
        case .randomSource: 1
        case .singleSource: 2
        case .distributed: 4
        }
    }
}

/// The type of an event; `scan` and `backscatter` are notices, never attacks on us.
public enum EventType: String, Sendable, CaseIterable {
    case attackStart = "attack_start"
    case attackUpdate = "attack_update"
    case attackEnd = "attack_end"
    case scan
    case backscatter
}

/// A source address with its count of half-open handshakes.
public struct SourceCount: Hashable, Sendable {
    public var address: IPAddress
    public var halfOpen: Int

    public init(address: IPAddress, halfOpen: Int) {
        self.address = address
        self.halfOpen = halfOpen
    }
}

/// What a victim service's windows said at one moment.
public struct VictimFigures: Hashable, Sendable {
    /// SYN packets per second (retransmissions included) over the rate window.
    public var synPerSecond: Double
    /// Handshakes per second that neither completed nor were refused within the completion grace.
    public var halfOpenPerSecond: Double
    /// Attempts per second the server refused with a RST: nothing listens on the port.
    public var refusedPerSecond: Double
    /// Completed handshakes per matured attempt (1 when there were none).
    public var completionRatio: Double
    /// Estimated distinct sources over the sources window.
    public var distinctSources: Int
    /// The sources with the most half-open handshakes, largest first.
    public var topSources: [SourceCount]
    /// How long the victim's handshakes had to complete before they counted as half-open: learnt from its own
    /// handshake delays, between the configured floor and ceiling.
    public var completionGrace: TimeSpan

    public init(
        synPerSecond: Double = 0,
        halfOpenPerSecond: Double = 0,
        refusedPerSecond: Double = 0,
        completionRatio: Double = 1,
        distinctSources: Int = 0,
        topSources: [SourceCount] = [],
        completionGrace: TimeSpan = TimeSpan(nanoseconds: 0)
    ) {
        self.synPerSecond = synPerSecond
        self.halfOpenPerSecond = halfOpenPerSecond
        self.refusedPerSecond = refusedPerSecond
        self.completionRatio = completionRatio
        self.distinctSources = distinctSources
        self.topSources = topSources
        self.completionGrace = completionGrace
    }
}

/// The peaks and totals of an attack, carried by `attack_end`.
public struct AttackSummary: Hashable, Sendable {
    public var start: Timestamp
    public var duration: TimeSpan
    public var peakSynPerSecond: Double
    public var peakHalfOpenPerSecond: Double
    /// The most attempts refused per second: a flood at a closed port.
    public var peakRefusedPerSecond: Double
    public var peakDistinctSources: Int
    /// SYN packets to the victim service while the attack lasted.
    public var totalSyns: Int
    /// Why it ended: after the quiet period, or because the capture ended.
    public var endReason: EndReason

    public enum EndReason: String, Sendable {
        case quiet
        case captureEnd = "capture_end"
    }

    public init(
        start: Timestamp,
        duration: TimeSpan,
        peakSynPerSecond: Double,
        peakHalfOpenPerSecond: Double,
        peakRefusedPerSecond: Double = 0,
        peakDistinctSources: Int,
        totalSyns: Int,
        endReason: EndReason
    ) {
        self.start = start
        self.duration = duration
        self.peakSynPerSecond = peakSynPerSecond
        self.peakHalfOpenPerSecond = peakHalfOpenPerSecond
        self.peakRefusedPerSecond = peakRefusedPerSecond
        self.peakDistinctSources = peakDistinctSources
        self.totalSyns = totalSyns
        self.endReason = endReason
    }
}

/// Figures of a scan notice.
public struct ScanFigures: Hashable, Sendable {
    /// The scanning source.
    public var source: IPAddress
    /// Estimated distinct (address, port) targets in the sources window.
    public var distinctTargets: Int
    /// Distinct destination addresses among them (1 for a vertical scan of one host).
    public var distinctAddresses: Int
    /// SYNs from the source in the sources window.
    public var syns: Int

    public init(source: IPAddress, distinctTargets: Int, distinctAddresses: Int, syns: Int) {
        self.source = source
        self.distinctTargets = distinctTargets
        self.distinctAddresses = distinctAddresses
        self.syns = syns
    }
}

/// Figures of a backscatter notice.
public struct BackscatterFigures: Hashable, Sendable {
    /// Unsolicited SYN-ACKs arriving at our address in the last whole second.
    public var synAckPerSecond: Double
    /// Estimated distinct reflectors sending them.
    public var distinctSources: Int

    public init(synAckPerSecond: Double, distinctSources: Int) {
        self.synAckPerSecond = synAckPerSecond
        self.distinctSources = distinctSources
    }
}

/// One thing the engine tells: an attack starting, going on or ending, or a notice.
public struct Event: Hashable, Sendable {
    public var type: EventType
    /// Capture time at which the engine decided.
    public var time: Timestamp
    /// The attacked (or, for backscatter, spoofed) address; for a scan, the scanned address
    /// when there was only one.
    public var victim: IPAddress?
    /// The attacked port (attacks only); nil for a spoofed flood spread over all the host's ports.
    public var port: UInt16?
    /// Set on attack events.
    public var attackID: UInt64?
    public var kind: FloodKind?
    public var figures: VictimFigures?
    /// Set on `attack_end`.
    public var summary: AttackSummary?
    public var scan: ScanFigures?
    public var backscatter: BackscatterFigures?
    /// Set on attack events when the daemon feeds the kernel's TCP counters (never offline).
    public var kernel: KernelFigures?

    public init(
        type: EventType,
        time: Timestamp,
        victim: IPAddress? = nil,
        port: UInt16? = nil,
        attackID: UInt64? = nil,
        kind: FloodKind? = nil,
        figures: VictimFigures? = nil,
        summary: AttackSummary? = nil,
        scan: ScanFigures? = nil,
        backscatter: BackscatterFigures? = nil,
        kernel: KernelFigures? = nil
    ) {
        self.type = type
        self.time = time
        self.victim = victim
        self.port = port
        self.attackID = attackID
        self.kind = kind
        self.figures = figures
        self.summary = summary
        self.scan = scan
        self.backscatter = backscatter
        self.kernel = kernel
    }
}

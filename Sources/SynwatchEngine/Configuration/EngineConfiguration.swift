/// Every tunable of the engine, with the documented defaults of `Config/synwatch.yaml`.
///
/// Capacities bound memory whatever the traffic; thresholds decide what is a flood.
public struct EngineConfiguration: Sendable, Equatable {
    /// The handshake table: one entry per half-open connection attempt.
    public struct Handshakes: Sendable, Equatable {
        /// A SYN with no completing ACK or RST after this long counts as timed out.
        public var timeout = TimeSpan.seconds(5)
        /// An unanswered attempt whose SYN was not retransmitted by then has failed: a real TCP stack
        /// retransmits an unanswered SYN after 1 s (RFC 6298: Linux, macOS, the BSDs) or 3 s (Windows), a spoofed
        /// storm never does.
        public var retransmissionDeadline = TimeSpan.milliseconds(3_500)
        /// The same SYN again sooner than this is a copy of it (a mirror port that sees each frame twice, merged
        /// captures), not a retransmission: no stack retransmits a SYN that soon (TCP's least time-out is 200 ms).
        public var minRetransmissionDelay = TimeSpan.milliseconds(100)
        /// An attempt whose SYN was retransmitted is followed this long: a client waiting in a full queue
        /// retransmits on (Linux after 1, 3, 7, 15, 31 and 63 s), and each of those SYNs is still the same attempt.
        public var retransmittedTimeout = TimeSpan.seconds(65)
        /// Hard capacity; a full bucket evicts in rotation, close to its oldest attempt (and counts it).
        public var capacity = 262_144
        public init() {}
    }

    /// The per-victim-service table (destination address and port).
    public struct Victims: Sendable, Equatable {
        /// Hard capacity; the least recently active service not under attack is evicted.
        public var capacity = 4_096
        public init() {}
    }

    /// The per-source table.
    public struct Sources: Sendable, Equatable {
        /// Hard capacity; a full bucket evicts in rotation (close to its oldest entry).
        public var capacity = 65_536
        public init() {}
    }

    /// The table of connections whose handshake completed, followed through their close.
    public struct Connections: Sendable, Equatable {
        /// Hard capacity; a full bucket evicts its oldest TIME_WAIT connection, else its least recently
        /// changed one (and counts it).
        public var capacity = 131_072
        /// How long the server holds a connection it closed first in TIME_WAIT (Linux: TCP_TIMEWAIT_LEN, 60 s).
        public var timeWait = TimeSpan.seconds(60)
        /// How long a closing connection (FIN_WAIT, CLOSING, LAST_ACK) waits for its peer before it is
        /// taken as gone (Linux: net.ipv4.tcp_fin_timeout, 60 s).
        public var finTimeout = TimeSpan.seconds(60)
        public init() {}
    }

    /// The sliding windows every rate is computed over.
    public struct Windows: Sendable, Equatable {
        /// Granularity of the windows and the interval at which the detector decides.
        public var resolution = TimeSpan.milliseconds(50)
        /// Length of the window over which SYN and half-open rates are measured.
        public var rate = TimeSpan.seconds(1)
        /// A handshake younger than its service's grace may still complete, so it is not yet half-open.
        /// The grace is learnt per service from the handshakes it completes (a high quantile of their
        /// SYN-to-ACK delay), then from all services; this one applies until either has enough of them.
        public var completionGrace = TimeSpan.milliseconds(200)
        /// The learnt grace is never shorter than this (jitter, a server slowed by a flood)...
        public var completionGraceFloor = TimeSpan.milliseconds(50)
        /// ...nor longer than this: later, retransmissions tell a live client from a dead one.
        public var completionGraceCeiling = TimeSpan.seconds(1)
        /// Span over which distinct sources and top sources are counted (two half-span epochs).
        public var sources = TimeSpan.seconds(10)
        public init() {}
    }

    /// When an attack on a victim service starts and ends.
    public struct Detection: Sendable, Equatable {
        /// Failing handshakes per second that make a flood whatever the service's history.
        public var halfOpenPerSecond = 100.0
        /// Attempts still undecided after the grace (no answer yet, no retransmission) are evidence only
        /// beyond what this share of completions allows: a crowd over a lossy path completes the rest.
        public var maxCompletionRatio = 0.1
        /// Fewest matured attempts in the window before any decision (avoids judging on a handful).
        public var minAttempts = 20
        /// Evidence worth this long at the threshold rate starts an attack (a CUSUM of the excess over
        /// the threshold): a flood many times the threshold is confirmed within one step.
        public var confirmation = TimeSpan.milliseconds(300)
        /// The attack ends after this long without evidence.
        public var quietPeriod = TimeSpan.seconds(10)
        /// Evidence ends only below this fraction of the threshold that started it (hysteresis).
        public var endFraction = 0.5
        /// Interval between `attack_update` events of one attack.
        public var updateInterval = TimeSpan.seconds(10)
        /// Number of top sources reported in events.
        public var topSources = 5
        public init() {}
    }

    /// The per-service learned baseline that catches floods below the absolute threshold.
    public struct Baseline: Sendable, Equatable {
        public var enabled = true
        /// Half-life of the moving average of half-open and completion figures.
        public var halfLife = TimeSpan.seconds(300)
        /// A service's baseline is used only after it has been observed this long.
        public var warmup = TimeSpan.seconds(60)
        /// A flood is this many times the baseline half-open rate...
        public var factor = 4.0
        /// ...and this many standard deviations above it...
        public var deviations = 4.0
        /// ...and at least this many half-open per second.
        public var minHalfOpenPerSecond = 20.0
        /// ...and the completion ratio fell at least this much below its average (not a flash crowd).
        public var minCompletionDrop = 0.2
        public init() {}
    }

    /// How the kind of a flood is told.
    public struct Classification: Sendable, Equatable {
        /// One source with at least this share of the attempts makes `single-source`.
        public var singleSourceShare = 0.5
        /// Distinct sources per attempt at or above this makes `random-source` (spoofed, ~1 SYN per source).
        public var randomSourceDistinctRatio = 0.5
        /// Fewest distinct sources for `random-source`.
        public var randomSourceMinSources = 32
        /// Fewest distinct sources for `random-source` from sources that repeat: spoofed addresses drawn from a
        /// pool that they fill (`DetectorInputs.isDrawnFromPool`).
        public var randomSourcePoolMinSources = 16_384
        public init() {}
    }

    /// Scan notices: one source probing many services.
    public struct Scan: Sendable, Equatable {
        /// Distinct (address, port) targets of one source within the sources window.
        public var minTargets = 20
        /// Above this share of completed handshakes the source is a busy client, not a scanner.
        public var maxCompletionRatio = 0.5
        /// One notice per source per this interval.
        public var noticeInterval = TimeSpan.seconds(60)
        public init() {}
    }

    /// Backscatter notices: SYN-ACKs for SYNs we never sent.
    public struct Backscatter: Sendable, Equatable {
        /// Unsolicited SYN-ACKs per second to one of our addresses.
        public var minPerSecond = 20.0
        /// Fewest distinct reflectors.
        public var minSources = 8
        /// One notice per address per this interval.
        public var noticeInterval = TimeSpan.seconds(60)
        /// Hard capacity of the per-address table.
        public var capacity = 1_024
        public init() {}
    }

    public var handshakes = Handshakes()
    public var victims = Victims()
    public var connections = Connections()
    public var sources = Sources()
    public var windows = Windows()
    public var detection = Detection()
    public var baseline = Baseline()
    public var classification = Classification()
    public var scan = Scan()
    public var backscatter = Backscatter()
    /// Seed of the table hashes. The daemon draws it at random so no attacker can aim at a bucket;
    /// offline analysis keeps the default so results repeat exactly.
    public var hashSeed: UInt64 = 0x5359_4E57_4154_4348

    public init() {}

    /// Checks the relations between values that each look valid on their own.
    /// - Throws: `ConfigurationProblem` naming the first offending key.
    public func validate() throws(ConfigurationProblem) {
        func positive(_ span: TimeSpan, _ key: String) throws(ConfigurationProblem) {
            guard span.nanoseconds > 0 else { throw ConfigurationProblem(key: key, message: "must be positive") }
        }
        func atLeast(_ value: Int, _ minimum: Int, _ key: String) throws(ConfigurationProblem) {
            guard value >= minimum else { throw ConfigurationProblem(key: key, message: "must be at least \(minimum)") }
        }
        func atMost(_ value: Int, _ maximum: Int, _ key: String) throws(ConfigurationProblem) {
            guard value <= maximum else { throw ConfigurationProblem(key: key, message: "must be at most \(maximum)") }
        }
        func fraction(_ value: Double, _ key: String) throws(ConfigurationProblem) {
            guard value >= 0, value <= 1 else {
                throw ConfigurationProblem(key: key, message: "must be between 0 and 1")
            }
        }
        try positive(handshakes.timeout, "handshakes.timeout")
        guard handshakes.retransmittedTimeout >= handshakes.timeout else {
            throw ConfigurationProblem(
                key: "handshakes.retransmitted_timeout",
                message: "must be at least handshakes.timeout"
            )
        }
        guard handshakes.minRetransmissionDelay.nanoseconds >= 0,
            handshakes.minRetransmissionDelay < handshakes.retransmissionDeadline
        else {
            throw ConfigurationProblem(
                key: "handshakes.min_retransmission_delay",
                message: "must be at least 0 and shorter than handshakes.retransmission_deadline"
            )
        }
        try atLeast(handshakes.capacity, 64, "handshakes.capacity")
        try atLeast(victims.capacity, 16, "victims.capacity")
        try atLeast(sources.capacity, 64, "sources.capacity")
        try atLeast(backscatter.capacity, 16, "backscatter.capacity")
        try atLeast(connections.capacity, 64, "connections.capacity")
        // A table's size must be computable and allocatable: a capacity near Int.max overflowed when the engine
        // started (found fuzzing the configuration path). The bounds are far above any server's need.
        try atMost(handshakes.capacity, 1 << 26, "handshakes.capacity")
        try atMost(victims.capacity, 1 << 20, "victims.capacity")
        try atMost(sources.capacity, 1 << 26, "sources.capacity")
        try atMost(backscatter.capacity, 1 << 20, "backscatter.capacity")
        try atMost(connections.capacity, 1 << 26, "connections.capacity")
        try positive(connections.timeWait, "connections.time_wait")
        try positive(connections.finTimeout, "connections.fin_timeout")
        try positive(windows.resolution, "windows.resolution")
        guard windows.rate.nanoseconds >= 2 * windows.resolution.nanoseconds,
            windows.rate.nanoseconds / windows.resolution.nanoseconds <= 600
        else {
            throw ConfigurationProblem(key: "windows.rate", message: "must span 2 to 600 resolution steps")
        }
        guard windows.completionGraceFloor.nanoseconds >= 0,
            windows.completionGraceFloor <= windows.completionGraceCeiling
        else {
            throw ConfigurationProblem(
                key: "windows.completion_grace_floor",
                message: "must be between 0 and windows.completion_grace_ceiling"
            )
        }
        guard windows.completionGraceCeiling.nanoseconds <= 2_500_000_000 else {
            throw ConfigurationProblem(key: "windows.completion_grace_ceiling", message: "must be at most 2.5s")
        }
        guard windows.completionGraceFloor <= windows.completionGrace,
            windows.completionGrace <= windows.completionGraceCeiling
        else {
            throw ConfigurationProblem(
                key: "windows.completion_grace",
                message: "must be between windows.completion_grace_floor and windows.completion_grace_ceiling"
            )
        }
        guard handshakes.retransmissionDeadline > windows.completionGraceCeiling,
            handshakes.retransmissionDeadline < handshakes.timeout
        else {
            throw ConfigurationProblem(
                key: "handshakes.retransmission_deadline",
                message: "must be longer than windows.completion_grace_ceiling and shorter than handshakes.timeout"
            )
        }
        guard windows.sources.nanoseconds >= 2 * windows.resolution.nanoseconds else {
            throw ConfigurationProblem(key: "windows.sources", message: "must span at least 2 resolution steps")
        }
        guard detection.halfOpenPerSecond > 0 else {
            throw ConfigurationProblem(key: "detection.half_open_per_s", message: "must be positive")
        }
        try fraction(detection.maxCompletionRatio, "detection.max_completion_ratio")
        try atLeast(detection.minAttempts, 1, "detection.min_attempts")
        try positive(detection.quietPeriod, "detection.quiet_period")
        try fraction(detection.endFraction, "detection.end_fraction")
        try positive(detection.updateInterval, "detection.update_interval")
        try atLeast(detection.topSources, 1, "detection.top_sources")
        guard detection.topSources <= 32 else {
            throw ConfigurationProblem(key: "detection.top_sources", message: "must be at most 32")
        }
        try positive(baseline.halfLife, "baseline.half_life")
        // It is also the threshold of a service whose SYN queue the kernel finds full, baseline or not.
        guard baseline.minHalfOpenPerSecond > 0 else {
            throw ConfigurationProblem(key: "baseline.min_half_open_per_s", message: "must be positive")
        }
        guard baseline.factor >= 1 else {
            throw ConfigurationProblem(key: "baseline.factor", message: "must be at least 1")
        }
        try fraction(baseline.minCompletionDrop, "baseline.min_completion_drop")
        try fraction(classification.singleSourceShare, "classification.single_source_share")
        try fraction(classification.randomSourceDistinctRatio, "classification.random_source_distinct_ratio")
        try atLeast(classification.randomSourcePoolMinSources, 1, "classification.random_source_pool_min_sources")
        try atLeast(scan.minTargets, 2, "scan.min_targets")
        try fraction(scan.maxCompletionRatio, "scan.max_completion_ratio")
        try atLeast(backscatter.minSources, 1, "backscatter.min_sources")
    }
}

/// A configuration value that cannot work, named by its key in the YAML file.
public struct ConfigurationProblem: Error, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

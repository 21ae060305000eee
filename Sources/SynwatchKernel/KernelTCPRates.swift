/// The kernel's TCP counters at one moment of the monotonic clock.
public struct KernelTCPSample: Equatable, Sendable {
    /// When the counters were read.
    public var time: ContinuousClock.Instant
    public var counters: KernelTCPCounters

    public init(time: ContinuousClock.Instant, counters: KernelTCPCounters) {
        self.time = time
        self.counters = counters
    }
}

/// How much each counter rose between two samples, and how fast.
public struct KernelTCPRates: Equatable, Sendable {
    /// The time between the two samples, positive.
    public let interval: Duration
    private let increases: [UInt64?]

    /// The change from `earlier` to `later`; nil unless `later` is later.
    ///
    /// A counter that is unknown in either sample, or that went down (a namespace re-created, a 32-bit counter
    /// that wrapped), has no increase and no rate rather than a huge one.
    public init?(from earlier: KernelTCPSample, to later: KernelTCPSample) {
        interval = earlier.time.duration(to: later.time)
        guard interval > .zero else { return nil }
        increases = KernelTCPCounter.allCases.map { counter in
            guard let old = earlier.counters[counter], let new = later.counters[counter], new >= old else {
                return nil
            }
            return new - old
        }
    }

    /// The interval in seconds.
    public var seconds: Double {
        let (seconds, attoseconds) = interval.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    /// How much `counter` rose over the interval, nil when unknown.
    public func increase(_ counter: KernelTCPCounter) -> UInt64? {
        increases[counter.rawValue]
    }

    /// How fast `counter` rose, per second, nil when unknown.
    public func perSecond(_ counter: KernelTCPCounter) -> Double? {
        increase(counter).map { Double($0) / seconds }
    }
}

/// The latest sample and the rates over the last interval, for a caller that samples once a second.
public struct KernelTCPMonitor: Sendable {
    /// The latest sample recorded.
    public private(set) var latest: KernelTCPSample?
    /// The rates between the two latest samples, nil until there are two (or if the clock did not move).
    public private(set) var rates: KernelTCPRates?

    public init() {}

    /// Takes `sample` as the latest one, and the rates since the previous one.
    public mutating func record(_ sample: KernelTCPSample) {
        rates = latest.flatMap { KernelTCPRates(from: $0, to: sample) }
        latest = sample
    }
}

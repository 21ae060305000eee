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
    /// The SYN proxy's increases; nil when either sample has no SYN proxy counters.
    private let synproxyIncreases: [UInt64?]?

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
        synproxyIncreases = earlier.counters.synproxy.flatMap { old in
            later.counters.synproxy.map { new in
                KernelSynproxyCounter.allCases.map { counter in
                    guard let before = old[counter], let after = new[counter], after >= before else { return nil }
                    return after - before
                }
            }
        }
    }

    /// The interval in seconds.
    public var seconds: Double { interval.inSeconds }

    /// How much `counter` rose over the interval, nil when unknown.
    public func increase(_ counter: KernelTCPCounter) -> UInt64? {
        increases[counter.rawValue]
    }

    /// How fast `counter` rose, per second, nil when unknown.
    public func perSecond(_ counter: KernelTCPCounter) -> Double? {
        increase(counter).map { Double($0) / seconds }
    }

    /// How fast the SYN proxy's `counter` rose, per second; nil when unknown or without SYN proxy counters.
    public func perSecond(_ counter: KernelSynproxyCounter) -> Double? {
        synproxyIncreases?[counter.rawValue].map { Double($0) / seconds }
    }
}

/// The latest sample and the rates over about the last `span`, for a caller that samples more often than that:
/// the rates are taken from the newest earlier sample at least `span` old (or the oldest kept, early on).
public struct KernelTCPMonitor: Sendable {
    /// How far back the rates reach.
    public let span: Duration
    /// Samples kept, oldest first: the newest at least `span` older than the latest, and those after it.
    private var samples: [KernelTCPSample] = []
    /// The rates over about `span`, nil until there are two samples (or if the clock did not move).
    public private(set) var rates: KernelTCPRates?

    /// - Parameter span: how far back the rates reach; zero gives the rates between the two latest samples.
    public init(span: Duration = .zero) {
        self.span = span
    }

    /// The latest sample recorded.
    public var latest: KernelTCPSample? { samples.last }

    /// Takes `sample` as the latest one, and the rates over about `span` up to it.
    /// - Complexity: amortised O(1); at most `span` divided by the sampling interval, plus two, samples are kept.
    public mutating func record(_ sample: KernelTCPSample) {
        samples.append(sample)
        while samples.count > 2, sample.time - samples[1].time >= span { samples.removeFirst() }
        rates = samples.count > 1 ? KernelTCPRates(from: samples[0], to: sample) : nil
    }
}

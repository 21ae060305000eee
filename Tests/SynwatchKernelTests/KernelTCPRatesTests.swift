import SynwatchKernel
import Testing

@Suite struct KernelTCPRatesTests {
    private let start = ContinuousClock.now

    private func sample(after seconds: Double, _ values: [KernelTCPCounter: UInt64]) -> KernelTCPSample {
        var counters = KernelTCPCounters()
        for (counter, value) in values { counters[counter] = value }
        return KernelTCPSample(time: start + .seconds(seconds), counters: counters)
    }

    @Test func dividesEachIncreaseByTheInterval() throws {
        let earlier = sample(after: 0, [.syncookiesSent: 100, .listenOverflows: 7, .activeOpens: 3])
        let later = sample(after: 2, [.syncookiesSent: 1100, .listenOverflows: 7, .activeOpens: 4])
        let rates = try #require(KernelTCPRates(from: earlier, to: later))
        #expect(rates.interval == .seconds(2))
        #expect(rates.seconds == 2)
        #expect(rates.increase(.syncookiesSent) == 1000)
        #expect(rates.perSecond(.syncookiesSent) == 500)
        #expect(rates.perSecond(.listenOverflows) == 0)
        #expect(rates.perSecond(.activeOpens) == 0.5)
    }

    @Test func aCounterThatWentDownOrIsUnknownHasNoRate() throws {
        let earlier = sample(after: 0, [.syncookiesSent: UInt64.max - 5, .listenDrops: 10, .passiveOpens: 4])
        let later = sample(after: 1, [.syncookiesSent: 3, .listenDrops: 10, .estabResets: 9])
        let rates = try #require(KernelTCPRates(from: earlier, to: later))
        #expect(rates.increase(.syncookiesSent) == nil)
        #expect(rates.perSecond(.syncookiesSent) == nil)
        #expect(rates.perSecond(.listenDrops) == 0)
        #expect(rates.perSecond(.passiveOpens) == nil)
        #expect(rates.perSecond(.estabResets) == nil)
    }

    @Test func needsTimeToHavePassed() {
        let first = sample(after: 5, [.syncookiesSent: 1])
        #expect(KernelTCPRates(from: first, to: sample(after: 5, [.syncookiesSent: 2])) == nil)
        #expect(KernelTCPRates(from: first, to: sample(after: 4, [.syncookiesSent: 2])) == nil)
    }

    @Test func theMonitorKeepsTheLatestSampleAndTheRatesSinceThePrevious() throws {
        var monitor = KernelTCPMonitor()
        #expect(monitor.latest == nil && monitor.rates == nil)
        monitor.record(sample(after: 0, [.listenOverflows: 10]))
        #expect(monitor.latest?.counters[.listenOverflows] == 10)
        #expect(monitor.rates == nil)
        monitor.record(sample(after: 1, [.listenOverflows: 250]))
        #expect(monitor.rates?.perSecond(.listenOverflows) == 240)
        monitor.record(sample(after: 1.5, [.listenOverflows: 250]))
        #expect(monitor.rates?.perSecond(.listenOverflows) == 0)
        #expect(monitor.rates?.seconds == 0.5)
        #expect(monitor.latest?.counters[.listenOverflows] == 250)
    }

    @Test func withASpanTheRatesReachBackThatFar() throws {
        var monitor = KernelTCPMonitor(span: .seconds(1))
        monitor.record(sample(after: 0, [.syncookiesSent: 0]))
        monitor.record(sample(after: 0.25, [.syncookiesSent: 100]))
        // Early on, from the oldest sample there is.
        #expect(monitor.rates?.seconds == 0.25)
        #expect(monitor.rates?.perSecond(.syncookiesSent) == 400)
        for step in 2...8 { monitor.record(sample(after: 0.25 * Double(step), [.syncookiesSent: UInt64(100 * step)])) }
        // At 2 s: from the sample at 1 s, the newest at least a second old.
        let rates = try #require(monitor.rates)
        #expect(rates.seconds == 1)
        #expect(rates.perSecond(.syncookiesSent) == 400)
        #expect(monitor.latest?.counters[.syncookiesSent] == 800)
    }
}

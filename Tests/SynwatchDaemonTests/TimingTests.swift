import Dispatch
import ServiceLifecycleTestKit
import Testing

@testable import SynwatchDaemon

@Suite("Timed loops")
struct TimingTests {
    @Test("Ticks come at their interval and stop once graceful shutdown begins")
    func repeatingStopsOnGracefulShutdown() async {
        let clock = ContinuousClock()
        let start = clock.now
        var ticks = 0
        await testGracefulShutdown { shutdown in
            await repeating(every: .milliseconds(20)) {
                ticks += 1
                if ticks == 5 { shutdown.triggerGracefulShutdown() }
            }
        }
        #expect(ticks == 5)
        #expect(clock.now - start >= .milliseconds(100))
    }

    @Test("Blocking work runs on the queue it is given, and its error comes back")
    func blockingRunsOnTheQueue() async throws {
        let queue = DispatchQueue(label: "synwatch.test.blocking")
        let key = DispatchSpecificKey<Int>()
        queue.setSpecific(key: key, value: 7)
        let seen = await blocking(on: queue) { DispatchQueue.getSpecific(key: key) }
        #expect(seen == 7)
        await #expect(throws: CancellationError.self) {
            try await blocking(on: queue) { throw CancellationError() }
        }
    }
}

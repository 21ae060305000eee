import SynwatchDaemon
import SynwatchEngine
import XCTest

final class DaemonStateTests: XCTestCase {
    private func snapshot(reloads: Int = 0) -> DaemonSnapshot {
        DaemonSnapshot(
            startedAt: 1,
            updatedAt: 2,
            configurationPath: "/etc/synwatch/synwatch.yaml",
            reloads: reloads,
            capture: CaptureStatus(interfaces: ["any"]),
            occupancy: TableOccupancy(
                handshakes: 0,
                handshakeCapacity: 8,
                victims: 0,
                victimCapacity: 8,
                sources: 0,
                sourceCapacity: 8,
                backscatterAddresses: 0,
                backscatterCapacity: 8
            )
        )
    }

    private func event(_ id: UInt64) -> Event {
        Event(type: .attackUpdate, time: Timestamp(seconds: Int64(id)), attackID: id)
    }

    func testPublishReplacesTheSnapshot() {
        let state = DaemonState(snapshot())
        XCTAssertEqual(state.snapshot.reloads, 0)
        state.publish(snapshot(reloads: 3))
        XCTAssertEqual(state.snapshot.reloads, 3)
    }

    func testSubscribersGetEventsFromNowOn() async {
        let state = DaemonState(snapshot())
        state.broadcast([event(1)])
        let stream = state.subscribe()
        XCTAssertEqual(state.subscriberCount, 1)
        state.broadcast([event(2), event(3)])
        state.finishSubscriptions()
        var received: [UInt64] = []
        for await event in stream { received.append(event.attackID ?? 0) }
        XCTAssertEqual(received, [2, 3])
        XCTAssertEqual(state.subscriberCount, 0)
    }

    func testASlowSubscriberKeepsOnlyTheNewestEvents() async {
        let state = DaemonState(snapshot())
        let stream = state.subscribe()
        let total = DaemonState.subscriberBuffer + 100
        state.broadcast((1...UInt64(total)).map(event))
        state.finishSubscriptions()
        var received: [UInt64] = []
        for await event in stream { received.append(event.attackID ?? 0) }
        XCTAssertEqual(received.count, DaemonState.subscriberBuffer)
        XCTAssertEqual(received.last, UInt64(total))
        XCTAssertEqual(received.first, UInt64(total - DaemonState.subscriberBuffer + 1))
    }

    func testAStoppedSubscriberIsForgotten() async {
        let state = DaemonState(snapshot())
        let task = Task {
            for await _ in state.subscribe() { break }
        }
        while state.subscriberCount == 0 { await Task.yield() }
        state.broadcast([event(1)])
        await task.value
        for _ in 0..<100 where state.subscriberCount > 0 { await Task.yield() }
        XCTAssertEqual(state.subscriberCount, 0)
    }
}

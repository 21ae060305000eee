import Glibc
import SynwatchClient
import SynwatchDaemon
import SynwatchTestSupport
import XCTest

/// The operator's query is answered while other clients hold or hammer the socket (real socket, real server).
///
/// XCTest rather than Swift Testing: these run one at a time, not beside long synchronous suites on the same
/// cooperative pool, so the 1 s bound measures the server's fairness and not the test run's load.
final class QueryFairnessTests: XCTestCase {
    /// What the operator is promised: an answer to `synwatch status` within a second.
    private static let bound = Duration.seconds(1)

    func testStatusIsAnsweredWhileIdleClientsAndStalledWatchersHoldTheSocket() async throws {
        let server = try await RunningServer()
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        // Clients that connect and never send a byte, before and after the watchers.
        for _ in 0..<100 { held.append(try RawClient.connect(server.path)) }
        // Watchers of the event stream that never read it.
        for _ in 0..<50 {
            let watcher = try RawClient.connect(server.path)
            held.append(watcher)
            try RawClient.send(watcher, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        for _ in 0..<500 where server.state.subscriberCount < 50 { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(server.state.subscriberCount, 50)
        for _ in 0..<100 { held.append(try RawClient.connect(server.path)) }

        // Events keep coming meanwhile, so the stalled watchers' buffers fill.
        let state = server.state
        let publisher = Task.detached {
            var id: UInt64 = 0
            while !Task.isCancelled {
                id += 1
                state.broadcast((0..<20).map { QueryFixtures.update(id * 20 + $0) })
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        defer { publisher.cancel() }

        let clock = ContinuousClock()
        for _ in 0..<6 {
            let start = clock.now
            let response = try await server.client.get("/v1/status")
            let latency = clock.now - start
            XCTAssertEqual(response.status, 200, response.text)
            XCTAssertLessThan(latency, Self.bound, "status took \(latency)")
            try await Task.sleep(for: .milliseconds(500))
        }
        // Watchers whose buffers stay full are dropped, with their subscriptions.
        for _ in 0..<500 where server.state.subscriberCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(server.state.subscriberCount, 0)
        publisher.cancel()
        try await server.stop()
    }

    func testStatusIsAnsweredRightAfterABurstOfConnections() async throws {
        let server = try await RunningServer()
        // 1,000 connect-and-close as fast as one thread goes; non-blocking, so a full listen queue shows as EAGAIN.
        var refused = 0
        for _ in 0..<1_000 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            XCTAssertGreaterThanOrEqual(fd, 0)
            var result: Int32 = 0
            RawClient.withAddress(server.path) { result = connect(fd, $0, $1) }
            if result != 0 { refused += 1 }
            close(fd)
        }
        XCTAssertEqual(refused, 0, "connections refused: the listen queue was full")

        let clock = ContinuousClock()
        let start = clock.now
        let response = try await server.client.get("/v1/status")
        let latency = clock.now - start
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertLessThan(latency, Self.bound, "status took \(latency)")
        try await server.stop()
    }

    /// A daemon told to stop while clients are still connecting stops cleanly: connections accepted but not yet
    /// served are closed, not dropped half-made (NIO traps on those), and none is left open.
    func testStoppingDuringABurstOfConnectionsClosesThemAll() async throws {
        for _ in 0..<20 {
            let server = try await RunningServer()
            var clients: [Int32] = []
            for _ in 0..<200 {
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                XCTAssertGreaterThanOrEqual(fd, 0)
                var result: Int32 = 0
                RawClient.withAddress(server.path) { result = connect(fd, $0, $1) }
                XCTAssertEqual(result, 0, "connect: errno \(errno)")
                clients.append(fd)
            }
            try await server.stop()
            // Every client sees its connection end (EOF or a reset), whether it was served, waiting or still queued.
            for fd in clients {
                XCTAssertTrue(RawClient.waitForHangUp(fd, within: .seconds(5)), "a connection outlived the server")
                close(fd)
            }
        }
    }

    func testOneUserCannotTakeEveryPlace() async throws {
        let server = try await RunningServer(limits: QueryServer.Limits(maxClientsPerUser: 3))
        var watchers: [Int32] = []
        defer { watchers.forEach { close($0) } }
        for _ in 0..<3 {
            let watcher = try RawClient.connect(server.path)
            watchers.append(watcher)
            try RawClient.send(watcher, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        for _ in 0..<500 where server.state.subscriberCount < 3 { try await Task.sleep(for: .milliseconds(10)) }
        let refused = try await server.client.get("/v1/status")
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(
            try RunningServer.object(refused.text)["error"] as? String,
            "too many clients of user \(getuid()) (at most 3); try again"
        )
        try await server.stop()
    }
}

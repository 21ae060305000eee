import Foundation
import Glibc
import Logging
import ServiceLifecycleTestKit
import SynwatchConfig
import SynwatchSystemd
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

@testable import SynwatchDaemon

/// The daemon's services in this process, as the executable runs them: a live capture on a veth of the test's own,
/// the query socket, a notify socket of the test's own, reloads on the reload trigger and a graceful shutdown.
///
/// XCTest, not Swift Testing: `NOTIFY_SOCKET` is process-wide, and XCTest runs one test at a time.
final class DaemonServiceTests: XCTestCase {
    func testServicesStartReadyCaptureReloadAndShutDownGracefully() async throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        let lab = try NetworkLab()
        let folder = try TemporaryFolder()
        let file = folder.path("synwatch.yaml")
        try "detection:\n  quiet_period: 1s\n".write(toFile: file, atomically: true, encoding: .utf8)
        let capture = folder.path("flood.pcap")
        let truth = try Scenario(seed: 10, duration: 4)
            .flood(Flood(.randomSource, rate: 3000, start: 1, duration: 2))
            .write(to: capture)
        let socket = folder.path("run/synwatch.sock")
        let notify = try NotifyListener(path: folder.path("notify.sock"))
        setenv("NOTIFY_SOCKET", notify.path, 1)
        unsetenv("WATCHDOG_USEC")
        defer { unsetenv("NOTIFY_SOCKET") }

        let interface = lab.capturePort
        let overrides: @Sendable (inout SynwatchConfiguration) -> Void = { configuration in
            configuration.daemon.interfaces = [interface]
            configuration.daemon.socketPath = socket
            configuration.daemon.user = "root"
        }
        var configuration = try SynwatchConfiguration.load(path: file).configuration
        overrides(&configuration)
        let daemon = DaemonRuntime(configuration: configuration, path: file, version: "0.1.0", overrides: overrides)
        let prepared = try daemon.prepare()
        let state = prepared.state
        XCTAssertEqual(state.snapshot.capture.state, .starting)
        let (reloadRequests, reload) = AsyncStream.makeStream(of: Void.self)

        try await testGracefulShutdown { shutdown in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await daemon.run(prepared, reloadRequests: reloadRequests, gracefulShutdownSignals: [])
                }

                // Ready once the capture runs and the socket listens.
                let ready = await notify.next(startingWith: "READY=1", timeout: 10)
                XCTAssertNotNil(ready)
                XCTAssertTrue(FileManager.default.fileExists(atPath: socket), "READY before the socket listens")
                try await waitUntil { state.snapshot.capture.state == .active }
                let active = try await curl(socket, "/v1/status")
                XCTAssertTrue(active.contains("\"state\":\"active\""), active)
                let status = await notify.next(startingWith: "STATUS=", timeout: 5)
                XCTAssertNotNil(status)

                // The flood on the wire reaches the engine and the snapshot the query socket serves. At top speed:
                // tcpreplay's own pacing took up to a minute on a loaded machine.
                let replay = try lab.startReplay([capture], speed: .topSpeed)
                while replay.isRunning { try await Task.sleep(for: .milliseconds(50)) }
                XCTAssertEqual(replay.terminationStatus, 0)
                let flood = truth.floods[0]
                try await waitUntil(timeout: .seconds(10)) {
                    (state.snapshot.activeAttacks.map(\.victim.description)
                        + state.snapshot.recentAttacks.compactMap { $0.victim?.description })
                        .contains(flood.victim.description)
                }
                try await waitUntil { state.snapshot.capture.packets >= truth.packets }

                // A valid file: RELOADING, then READY, and one reload counted.
                try "detection:\n  quiet_period: 2s\n".write(toFile: file, atomically: true, encoding: .utf8)
                reload.yield()
                let reloading = await notify.next(startingWith: "RELOADING=1", timeout: 5)
                XCTAssertNotNil(reloading)
                let reloaded = await notify.next(startingWith: "READY=1", timeout: 5)
                XCTAssertNotNil(reloaded)
                try await waitUntil { state.snapshot.reloads == 1 }

                // An invalid file: the running configuration stays, and no reload is counted.
                try "detection:\n  half_open_per_s: -1\n".write(toFile: file, atomically: true, encoding: .utf8)
                reload.yield()
                let refused = await notify.next(startingWith: "RELOADING=1", timeout: 5)
                XCTAssertNotNil(refused)
                let back = await notify.next(startingWith: "READY=1", timeout: 5)
                XCTAssertNotNil(back)
                try await Task.sleep(for: .milliseconds(600))
                XCTAssertEqual(state.snapshot.reloads, 1)

                // The interface goes away: the capture is reopening, and says why.
                try ChildProcess.check(["ip", "link", "delete", interface])
                try await waitUntil {
                    if case .reopening = state.snapshot.capture.state { true } else { false }
                }
                let reopening = try await curl(socket, "/v1/status")
                XCTAssertTrue(reopening.contains("\"state\":\"reopening: interface \(interface)"), reopening)

                // Graceful shutdown: STOPPING, every service ends, the socket is gone.
                shutdown.triggerGracefulShutdown()
                let stopping = await notify.next(startingWith: "STOPPING=1", timeout: 5)
                XCTAssertNotNil(stopping)
                try await group.next()
                XCTAssertFalse(FileManager.default.fileExists(atPath: socket))
            }
        }
    }

    /// Two reading threads on one interface: every frame counted once, before the interface goes away and after it
    /// comes back, when both readers open their captures again and join a fanout group anew (the kernel refuses
    /// the old one, whose device is gone).
    func testTwoReadersShareTheInterfaceAgainAfterItCameBack() async throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        let lab = try NetworkLab()
        let folder = try TemporaryFolder()
        let capture = folder.path("crowd.pcap")
        let truth = try Scenario(seed: 12, duration: 2).background(Background(rate: 400, clientCount: 500))
            .write(to: capture)
        let socket = folder.path("run/synwatch.sock")
        let interface = lab.capturePort
        var configuration = SynwatchConfiguration()
        configuration.daemon.interfaces = [interface]
        configuration.daemon.socketPath = socket
        configuration.daemon.user = "root"
        configuration.daemon.captureShards = 2
        let daemon = DaemonRuntime(
            configuration: configuration,
            path: folder.path("none.yaml"),
            version: "0.1.0",
            overrides: { _ in }
        )
        let prepared = try daemon.prepare()
        let state = prepared.state
        let (reloadRequests, _) = AsyncStream.makeStream(of: Void.self)

        try await testGracefulShutdown { shutdown in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await daemon.run(prepared, reloadRequests: reloadRequests, gracefulShutdownSignals: [])
                }
                try await waitUntil { state.snapshot.capture.state == .active }
                let readers = state.snapshot.capture.threads.map(\.thread).filter { $0.hasPrefix("read") }
                XCTAssertEqual(readers, ["read 1", "read 2"])

                for round in 1...2 {
                    let replay = try lab.startReplay([capture], pps: 8_000)
                    while replay.isRunning { try await Task.sleep(for: .milliseconds(50)) }
                    XCTAssertEqual(replay.terminationStatus, 0)
                    // Exactly the frames sent: a reader outside the group would count every frame a second time.
                    try await waitUntil(timeout: .seconds(10)) {
                        state.snapshot.capture.packets >= round * truth.packets
                    }
                    try await Task.sleep(for: .milliseconds(600))
                    XCTAssertEqual(state.snapshot.capture.packets, round * truth.packets, "round \(round)")
                    guard round == 1 else { break }
                    try ChildProcess.check(["ip", "link", "delete", interface])
                    try await waitUntil {
                        if case .reopening = state.snapshot.capture.state { true } else { false }
                    }
                    try lab.createPair()
                    try await waitUntil(timeout: .seconds(10)) { state.snapshot.capture.state == .active }
                }

                shutdown.triggerGracefulShutdown()
                try await group.next()
            }
        }
    }

    /// A notify socket nobody reads fills up (`net.unix.max_dgram_qlen`, 10 by default) and then `sd_notify`
    /// blocks: the services go on, the way out waits for it only so long, and the messages still leave in order.
    func testAFullNotifySocketHoldsNoServiceUp() async throws {
        let folder = try TemporaryFolder()
        let notify = try NotifyListener(path: folder.path("notify.sock"))
        setenv("NOTIFY_SOCKET", notify.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let sender = NotifySender(notifier: ServiceNotifier(), logger: Logger(label: "synwatchd.test"))
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<30 { sender.send { try $0.status("message \(index)") } }
        await sender.flush(waitingAtMost: .milliseconds(300))
        XCTAssertLessThan(clock.now - start, .seconds(2))
        for index in 0..<30 {
            let message = await notify.next(startingWith: "STATUS=", timeout: 5)
            XCTAssertEqual(message, "STATUS=message \(index)")
        }
    }

    /// The body curl gets for `path` on the query socket; waited for without blocking a thread of the pool.
    private func curl(_ socket: String, _ path: String) async throws -> String {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "5", "--unix-socket", socket, "http://localhost" + path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Polls `condition` every 50 ms until it holds, failing after `timeout`.
    private func waitUntil(
        timeout: Duration = .seconds(5),
        file: StaticString = #filePath,
        line: UInt = #line,
        _ condition: () -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                return XCTFail("condition not met within \(timeout)", file: file, line: line)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A temporary folder, removed with everything in it.
private final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("synwatch-daemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

private struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

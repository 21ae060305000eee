import Glibc
import SynwatchSystem
import SynwatchSystemd
import XCTest

/// The notifier against a notify socket of the test's own, as systemd would listen on it.
final class ServiceNotifierTests: XCTestCase {
    func testEachMessageArrivesAsOneDatagram() throws {
        let socket = try TestSocket()
        defer { socket.close() }
        let notifier = ServiceNotifier()
        try withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            XCTAssertTrue(try notifier.ready())
            XCTAssertEqual(socket.receive(), "READY=1")
            XCTAssertTrue(try notifier.status("capturing on eth0\n2 attacks"))
            XCTAssertEqual(socket.receive(), "STATUS=capturing on eth0 2 attacks")
            XCTAssertTrue(try notifier.watchdog())
            XCTAssertEqual(socket.receive(), "WATCHDOG=1")
            XCTAssertTrue(try notifier.stopping())
            XCTAssertEqual(socket.receive(), "STOPPING=1")
            XCTAssertTrue(try notifier.send("READY=1\nSTATUS=reloaded"))
            XCTAssertEqual(socket.receive(), "READY=1\nSTATUS=reloaded")
        }
    }

    func testReloadingCarriesTheMonotonicClock() throws {
        let socket = try TestSocket()
        defer { socket.close() }
        let before = monotonicMicroseconds()
        try withEnvironment(["NOTIFY_SOCKET": socket.path]) { XCTAssertTrue(try ServiceNotifier().reloading()) }
        let after = monotonicMicroseconds()
        let lines = try XCTUnwrap(socket.receive()).split(separator: "\n")
        XCTAssertEqual(lines.first, "RELOADING=1")
        XCTAssertEqual(lines.count, 2)
        let value = try XCTUnwrap(lines.last?.split(separator: "=", maxSplits: 1))
        XCTAssertEqual(value.first, "MONOTONIC_USEC")
        let stamp = try XCTUnwrap(Int64(value.last ?? ""))
        XCTAssert((before...after).contains(stamp), "\(stamp) not within \(before)...\(after)")
    }

    func testWithoutNotifySocketNothingIsSent() throws {
        let notifier = ServiceNotifier()
        try withEnvironment(["NOTIFY_SOCKET": nil]) {
            XCTAssertFalse(try notifier.ready())
            XCTAssertFalse(try notifier.status("idle"))
            XCTAssertFalse(try notifier.watchdog())
            XCTAssertFalse(try notifier.reloading())
            XCTAssertFalse(try notifier.stopping())
        }
    }

    func testAMissingNotifySocketIsAnErrorNamingTheCall() throws {
        try withEnvironment(["NOTIFY_SOCKET": "/tmp/synwatch-no-such-directory/notify"]) {
            XCTAssertThrowsError(try ServiceNotifier().ready()) { error in
                XCTAssertEqual(error as? SystemCallError, SystemCallError(call: "sd_notify", errno: ENOENT))
                XCTAssertEqual("\(error)", "sd_notify failed: No such file or directory (errno 2)")
            }
        }
    }

    func testWatchdogIntervalFollowsTheEnvironment() throws {
        let notifier = ServiceNotifier()
        let me = String(getpid())
        try withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": me]) {
            XCTAssertEqual(try notifier.watchdogInterval, .seconds(3))
        }
        try withEnvironment(["WATCHDOG_USEC": "1500", "WATCHDOG_PID": nil]) {
            XCTAssertEqual(try notifier.watchdogInterval, .microseconds(1_500))
        }
        // Inherited from a parent: the watchdog is not ours.
        try withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": String(getppid())]) {
            XCTAssertNil(try notifier.watchdogInterval)
        }
        try withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            XCTAssertNil(try notifier.watchdogInterval)
        }
        try withEnvironment(["WATCHDOG_USEC": "soon", "WATCHDOG_PID": me]) {
            XCTAssertThrowsError(try notifier.watchdogInterval) { error in
                XCTAssertEqual((error as? SystemCallError)?.call, "sd_watchdog_enabled")
            }
        }
    }

    private func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }
}

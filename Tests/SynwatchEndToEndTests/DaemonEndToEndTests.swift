import Foundation
import Glibc
import Synchronization
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// The built `synwatchd` on a veth of the test's own, fed by `tcpreplay` of a generated capture: readiness,
/// status and watchdog on a notify socket of the test's, alerts in a real journald, the query socket, reloads
/// on SIGHUP with a good and a bad file, and a clean stop on SIGTERM.
final class DaemonEndToEndTests: XCTestCase {
    static var daemon: URL { Synwatch.executable.deletingLastPathComponent().appendingPathComponent("synwatchd") }

    func testFloodOnALiveInterfaceIsReportedEverywhere() throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try TestJournald.require()
        let lab = try NetworkLab()
        let workspace = try Workspace()
        let capture = workspace.path("flood.pcap")
        let truth = try Scenario(seed: 60, duration: 8)
            .background(Background(rate: 200, clientCount: 1000))
            .flood(Flood(.randomSource, rate: 3000, start: 2, duration: 4))
            .write(to: capture)
        let flood = truth.floods[0]
        let configuration = workspace.path("synwatch.yaml")
        try "detection:\n  quiet_period: 2s\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        let socket = workspace.path("synwatch.sock")
        let notify = try NotifyListener(path: workspace.path("notify.sock"))

        let process = Process()
        process.executableURL = Self.daemon
        process.arguments = [
            "--config", configuration, "--interface", lab.capturePort, "--socket", socket, "--user", "root",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "3000000"
        environment.removeValue(forKey: "WATCHDOG_PID")
        process.environment = environment
        let log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let pid = String(process.processIdentifier)

        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(Self.text(log))")
        XCTAssertTrue(FileManager.default.fileExists(atPath: socket), "READY before the socket listens")

        let replayStart = Date().timeIntervalSince1970
        let replay = try lab.startReplay([capture], speed: .asCaptured)
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0)

        // journald: the start, with every figure, in under a second of wall time from the flood's first SYN.
        let starts = try TestJournald.entries(where: "_PID", is: pid, count: 1, timeout: 5)
            .filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        let start = try XCTUnwrap(starts.first, "no attack_start in the journal: \(Self.text(log))")
        XCTAssertEqual(start["SYNWATCH_VICTIM"], flood.victim.description)
        XCTAssertEqual(start["SYNWATCH_PORT"], String(flood.port))
        XCTAssertEqual(start["SYNWATCH_KIND"], "random-source")
        XCTAssertEqual(start["SYSLOG_IDENTIFIER"], "synwatchd")
        XCTAssertEqual(start["PRIORITY"], "2")
        XCTAssertNotNil(start["MESSAGE_ID"])
        XCTAssertNotNil(start["SYNWATCH_HALF_OPEN_PER_S"])
        XCTAssertNotNil(start["SYNWATCH_DISTINCT_SOURCES"])
        let reported = (Double(start["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
        let floodBegan = replayStart + (flood.start - (truth.firstPacket ?? flood.start))
        XCTAssertLessThan(reported - floodBegan, 1.0, "reported \(reported - floodBegan) s after the flood began")

        // The query socket, as curl or any HTTP client sees it.
        let attacks = try Self.get(socket, "/v1/attacks")
        XCTAssertTrue(attacks.contains("\"victim\":\"\(flood.victim)\""), attacks)
        let metrics = try Self.get(socket, "/metrics")
        XCTAssertTrue(metrics.contains("synwatch_attacks_total 1"), metrics)

        // The end, once the quiet period has passed without the flood.
        let ended = try TestJournald.entries(where: "_PID", is: pid, count: 3, timeout: 10)
            .contains { $0["SYNWATCH_EVENT"] == "attack_end" && $0["SYNWATCH_VICTIM"] == flood.victim.description }
        XCTAssertTrue(ended, "no attack_end: \(Self.text(log))")

        XCTAssertNotNil(notify.wait(for: "STATUS=", timeout: 5))
        XCTAssertNotNil(notify.wait(for: "WATCHDOG=1", timeout: 5))

        // SIGHUP with a good file: RELOADING, then READY, and one reload counted.
        try "detection:\n  quiet_period: 3s\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        XCTAssertNotNil(notify.wait(for: "RELOADING=1", timeout: 5))
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 5))
        try Self.waitFor { try Self.get(socket, "/v1/status").contains("\"reloads\":1") }
        // SIGHUP with a bad file: logged, the running configuration stays, the daemon goes on.
        try "detection:\n  half_open_per_s: -1\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 5))
        try Self.waitFor { Self.text(log).contains("Configuration not reloaded") }
        XCTAssertTrue(process.isRunning)
        XCTAssertTrue(try Self.get(socket, "/v1/status").contains("\"reloads\":1"))

        // SIGTERM: STOPPING, a clean exit, the socket gone.
        kill(process.processIdentifier, SIGTERM)
        XCTAssertNotNil(notify.wait(for: "STOPPING=1", timeout: 5))
        try Self.waitFor(timeout: 10) { !process.isRunning }
        XCTAssertEqual(process.terminationStatus, 0, Self.text(log))
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket))
    }

    // MARK: Helpers

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// `curl --unix-socket` on the daemon's socket: the body, which must come with a 200.
    static func get(_ socket: String, _ path: String) throws -> String {
        let result = try runCommand(
            "/usr/bin/curl",
            ["-sS", "-f", "--max-time", "5", "--unix-socket", socket, "http://localhost\(path)"]
        )
        guard result.status == 0 else { throw Synwatch.AnalysisFailure(message: "curl \(path): \(result.errors)") }
        return result.output
    }

    static func waitFor(timeout: Double = 5, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else { return XCTFail("condition not met within \(timeout) s") }
            usleep(50_000)
        }
    }
}

/// A datagram socket standing in for systemd's notify socket: every message the daemon sends, in order.
final class NotifyListener: Sendable {
    let path: String
    private let descriptor: Int32
    private let received = Mutex<[String]>([])
    private let consumed = Mutex(0)

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Synwatch.AnalysisFailure(message: "socket: \(errno)") }
        var address = sockaddr_un(path: path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw Synwatch.AnalysisFailure(message: "bind \(path): \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// The first message from the last one consumed on that starts with `prefix`, within `timeout` seconds.
    func wait(for prefix: String, timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                received.withLock { $0.append(message) }
            }
            let found: String? = received.withLock { messages in
                consumed.withLock { start in
                    guard let index = messages[start...].firstIndex(where: { $0.hasPrefix(prefix) }) else { return nil }
                    start = index + 1
                    return messages[index]
                }
            }
            if let found { return found }
        } while Date() < deadline
        return nil
    }
}

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
        // The daemon makes the socket's directory and hands it to the user it becomes.
        let socket = workspace.path("run/synwatch.sock")
        let notify = try NotifyListener(path: workspace.path("notify.sock"))
        chmod(notify.path, 0o666)

        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "3000000"
        environment.removeValue(forKey: "WATCHDOG_PID")
        let log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = try ChildProcess.start(
            [
                Self.daemon.path, "--config", configuration, "--interface", lab.capturePort, "--socket", socket,
                "--user", "nobody",
            ],
            environment: environment,
            output: .inherit,
            errors: .file(log)
        )
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let pid = String(process.processIdentifier)

        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(Self.text(log))")
        XCTAssertTrue(FileManager.default.fileExists(atPath: socket), "READY before the socket listens")
        // Capture opened as root, then no privilege left: the user's ids, no capability.
        let credentials = Self.text("/proc/\(pid)/status").split(separator: "\n")
        let nobody = String(getpwnam("nobody").pointee.pw_uid)
        XCTAssertTrue(
            credentials.contains {
                $0.hasPrefix("Uid:") && $0.split(separator: "\t").dropFirst().allSatisfy { $0 == nobody }
            }
        )
        XCTAssertTrue(credentials.contains("CapEff:\t0000000000000000"), "\(credentials)")
        XCTAssertTrue(credentials.contains("CapPrm:\t0000000000000000"), "\(credentials)")

        // `synwatch watch` follows the event stream while the flood comes and goes.
        let watched = Pipe()
        let watch = try ChildProcess.start(
            [Synwatch.executable.path, "watch", "--socket", socket],
            output: .pipe(watched),
            errors: .inherit
        )
        defer { if watch.isRunning { watch.terminate() } }

        let replayStart = Date().timeIntervalSince1970
        let replay = try lab.startReplay([capture], speed: .asCaptured)
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0)

        // journald: the start, with every figure, soon after the flood's first SYN. Wall time on a shared machine
        // bounds a stuck pipeline, not the latency, which scripts/benchmark-latency measures.
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
        XCTAssertGreaterThan(reported, floodBegan, "an attack before the flood (a stale entry of a reused PID?)")
        XCTAssertLessThan(reported - floodBegan, 3.0, "reported \(reported - floodBegan) s after the flood began")

        // The query socket, as curl or any HTTP client sees it.
        let attacks = try Self.get(socket, "/v1/attacks")
        XCTAssertTrue(attacks.contains("\"victim\":\"\(flood.victim)\""), attacks)
        // And as the operator's command shows it.
        let shown = try Synwatch.run(["attacks", "--socket", socket])
        XCTAssertEqual(shown.status, 0, shown.standardError)
        XCTAssertTrue(shown.standardOutput.contains("SYN flood on \(flood.victim):\(flood.port)"), shown.standardOutput)
        let status = try Synwatch.run(["status", "--socket", socket])
        XCTAssertTrue(status.standardOutput.contains(lab.capturePort), status.standardOutput)
        // The interface's two threads, and the CPU the flood cost each.
        XCTAssertTrue(status.standardOutput.contains("threads  \(lab.capturePort): read "), status.standardOutput)
        let threads = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(Self.get(socket, "/v1/status").utf8)) as? [String: Any])
                .flatMap { ($0["capture"] as? [String: Any])?["threads"] as? [[String: Any]] }
        )
        XCTAssertEqual(threads.map { $0["thread"] as? String }, ["read", "engine"])
        for thread in threads {
            XCTAssertEqual(thread["interface"] as? String, lab.capturePort)
            XCTAssertGreaterThan((thread["cpu_seconds"] as? NSNumber)?.doubleValue ?? 0, 0, "\(thread)")
            XCTAssertLessThanOrEqual((thread["busy"] as? NSNumber)?.doubleValue ?? 2, 1.5, "\(thread)")
        }
        let metrics = try Self.get(socket, "/metrics")
        XCTAssertTrue(metrics.contains("synwatch_attacks_total 1"), metrics)
        XCTAssertTrue(
            metrics.contains(
                "synwatch_capture_thread_cpu_seconds_total{interface=\"\(lab.capturePort)\",thread=\"engine\"}"
            ),
            metrics
        )

        // The end, once the quiet period has passed without the flood.
        let ended = try TestJournald.entries(where: "_PID", is: pid, count: 2, timeout: 10)
            .contains { $0["SYNWATCH_EVENT"] == "attack_end" && $0["SYNWATCH_VICTIM"] == flood.victim.description }
        XCTAssertTrue(ended, "no attack_end: \(Self.text(log))")

        watch.terminate()
        let stream = String(decoding: watched.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(stream.contains("attack_start") && stream.contains("attack_end"), stream)

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

    /// A real HTTP server and real clients completing handshakes, then a spoofed flood from the clients' side:
    /// the flood is reported, the clients' traffic is not, and their handshakes are seen completing.
    func testRealServerWithRealClientsThenASpoofedFlood() throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3")
        try TestJournald.require()
        let lab = try ServerClientLab()
        let workspace = try Workspace()
        let socket = workspace.path("synwatch.sock")
        let notify = try NotifyListener(path: workspace.path("notify.sock"))
        let log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)

        let server = try lab.startWebServer()
        defer { server.terminate() }
        let daemon = try lab.start(
            in: lab.server,
            [
                Self.daemon.path, "--config", workspace.path("none.yaml"), "--interface", lab.serverPort, "--socket",
                socket, "--user", "root",
            ],
            environment: ["NOTIFY_SOCKET": notify.path],
            log: log
        )
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(Self.text(log))")

        // 300 real connections over about 6 s, each a full handshake, a request and a close.
        let clients = try lab.start(
            in: lab.client,
            [
                "sh", "-c",
                "for i in $(seq 1 300); do curl -s -m 2 -o /dev/null http://\(ServerClientLab.serverAddress)/; sleep 0.01; done",
            ]
        )
        sleep(2)
        let flood = workspace.path("flood.pcap")
        try SpoofedBulk(
            packets: 6_000,
            sources: 6_000,
            rate: 3_000,
            victim: Endpoint(NetAddress(ServerClientLab.serverAddress)!, 80)
        ).write(to: flood)
        let rewritten = workspace.path("flood-to-server.pcap")
        try ChildProcess.check([
            "tcprewrite", "--enet-dmac=\(try lab.serverMAC())", "--infile=\(flood)", "--outfile=\(rewritten)",
        ])
        let floodBegan = Date().timeIntervalSince1970
        try ChildProcess.check([
            "timeout", "30", "ip", "netns", "exec", lab.client, "tcpreplay", "-q", "--pps", "3000", "-i",
            lab.clientPort, rewritten,
        ])
        clients.waitUntilExit()

        let pid = String(daemon.processIdentifier)
        let starts = try TestJournald.entries(where: "_PID", is: pid, count: 1, timeout: 5)
            .filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "attacks: \(starts)")
        let start = try XCTUnwrap(starts.first)
        XCTAssertEqual(start["SYNWATCH_VICTIM"], ServerClientLab.serverAddress)
        XCTAssertEqual(start["SYNWATCH_PORT"], "80")
        XCTAssertEqual(start["SYNWATCH_KIND"], "random-source")
        let reported = (Double(start["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
        XCTAssertGreaterThan(reported, floodBegan, "an attack before the flood: the clients' traffic")
        XCTAssertLessThan(reported - floodBegan, 3.0, "reported \(reported - floodBegan) s after the flood began")

        // The clients' handshakes completed, and the server's SYN-ACKs were seen.
        let victims = try Self.get(socket, "/v1/victims")
        XCTAssertTrue(victims.contains("\"victim\":\"\(ServerClientLab.serverAddress)\",\"port\":80"), victims)
        let status = try Self.get(socket, "/v1/status")
        let completions = try XCTUnwrap(Self.number("completions", in: status))
        XCTAssertGreaterThanOrEqual(completions, 250, status)
        XCTAssertGreaterThan(try XCTUnwrap(Self.number("syn_acks", in: status)), 250, status)

        kill(daemon.processIdentifier, SIGTERM)
        try Self.waitFor(timeout: 10) { !daemon.isRunning }
        XCTAssertEqual(daemon.terminationStatus, 0, Self.text(log))
    }

    /// `--check-config` says whether a file is valid, and where it is not, with the key and line.
    func testCheckConfig() throws {
        let workspace = try Workspace()
        let good = workspace.path("good.yaml")
        try "detection:\n  quiet_period: 5s\n".write(toFile: good, atomically: true, encoding: .utf8)
        let bad = workspace.path("bad.yaml")
        try "detection:\n  quiet_period: soon\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let valid = try ChildProcess.run([Self.daemon.path, "--check-config", "--config", good])
        XCTAssertEqual(valid.status, 0, valid.errors)
        XCTAssertEqual(valid.output, "\(good): configuration is valid\n")
        let invalid = try ChildProcess.run([Self.daemon.path, "--check-config", "--config", bad])
        XCTAssertNotEqual(invalid.status, 0)
        XCTAssertTrue(
            invalid.errors.contains("\(bad):2:") && invalid.errors.contains("detection.quiet_period"),
            invalid.errors
        )
        let missing = try ChildProcess.run([
            Self.daemon.path, "--check-config", "--config", workspace.path("none.yaml"),
        ])
        XCTAssertEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("the built-in defaults are valid"), missing.output)
    }

    // MARK: Helpers

    /// The integer value of `"key":N` in a JSON text.
    static func number(_ key: String, in json: String) -> Int? {
        guard let range = json.range(of: "\"\(key)\":") else { return nil }
        return Int(json[range.upperBound...].prefix { $0.isNumber })
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// `curl --unix-socket` on the daemon's socket: the body, which must come with a 200.
    static func get(_ socket: String, _ path: String) throws -> String {
        let result = try ChildProcess.run([
            "/usr/bin/curl", "-sS", "-f", "--max-time", "5", "--unix-socket", socket, "http://localhost\(path)",
        ]
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

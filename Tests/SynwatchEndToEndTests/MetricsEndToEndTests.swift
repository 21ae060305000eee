import Foundation
import Glibc
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// The built `synwatchd` serving `/metrics` over TCP (`metrics.listen`, `--metrics-listen`) in a server namespace of the test's own,
/// scraped from the client's namespace as Prometheus would: real clients, refused attempts and a spoofed flood give
/// per-service series with their victim, port and kind; the cap leaves out all but the busiest; a reload moves the
/// cap; `promtool check metrics` accepts the scrape.
final class MetricsEndToEndTests: XCTestCase {
    static let listen = "\(ServerClientLab.serverAddress):9464"

    func testPerServiceSeriesOverTCPWithTheCap() throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "needs promtool")
        let lab = try ServerClientLab()
        let workspace = try Workspace()
        let configuration = workspace.path("synwatch.yaml")
        try "metrics:\n  listen: [\(Self.listen)]\n  max_services: 2\n"
            .write(toFile: configuration, atomically: true, encoding: .utf8)
        let notify = try NotifyListener(path: workspace.path("notify.sock"))
        chmod(notify.path, 0o666)
        let log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)

        let server = try lab.startWebServer()
        defer { server.terminate() }
        let daemon = try lab.start(
            in: lab.server,
            [
                DaemonEndToEndTests.daemon.path, "--config", configuration, "--interface", lab.serverPort, "--socket",
                workspace.path("run/synwatch.sock"), "--user", "nobody",
            ],
            environment: ["NOTIFY_SOCKET": notify.path],
            log: log
        )
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(DaemonEndToEndTests.text(log))")

        // Only /metrics, only GET.
        XCTAssertEqual(try Self.scrape(lab, "/v1/status").status, "404")
        XCTAssertEqual(try Self.scrape(lab, "/metrics", method: "POST").status, "405")

        // Completed handshakes on :80 (the server is up once one succeeds), attempts refused by RST on :81 and :82.
        try DaemonEndToEndTests.waitFor(timeout: 10) {
            try lab.clientNamespace.run(["curl", "-s", "-m", "1", "-o", "/dev/null", "http://\(Self.web)/"]).status == 0
        }
        _ = try lab.clientNamespace.check([
            "sh", "-c",
            "for p in 80 80 80 81 81 81 82; do curl -s -m 1 -o /dev/null http://\(ServerClientLab.serverAddress):$p/; "
                + "done; true",
        ])
        let flood = workspace.path("flood.pcap")
        try SpoofedBulk(
            packets: 9_000,
            sources: 9_000,
            rate: 3_000,
            victim: Endpoint(NetAddress(ServerClientLab.serverAddress)!, 80)
        ).write(to: flood)
        let replay = try lab.startReplayToServer(flood, pps: 3_000)

        // Half-way through the flood: the attack on :80 by kind, and the cap keeping two services of more.
        let flooded = "port=\"80\",victim=\"\(ServerClientLab.serverAddress)\""
        var samples: [String: Double] = [:]
        try DaemonEndToEndTests.waitFor(timeout: 15) {
            samples = try Self.samples(Self.scrape(lab, "/metrics").body)
            return samples.keys.contains { $0.hasPrefix("synwatch_service_attack_active{") }
                && samples["synwatch_service_syn_packets_total{\(flooded)}"] ?? 0 >= 4_500
        }
        replay.waitUntilExit()
        XCTAssertEqual(samples["synwatch_service_attack_active{kind=\"random-source\",\(flooded)}"], 1, "\(samples)")
        XCTAssertEqual(samples["synwatch_service_attacks_started_total{kind=\"random-source\",\(flooded)}"], 1)
        XCTAssertEqual(samples["synwatch_service_attacks_started_total{kind=\"distributed\",\(flooded)}"], 0)
        XCTAssertGreaterThan(samples["synwatch_service_half_open_per_second{\(flooded)}"] ?? 0, 300, "\(samples)")
        XCTAssertGreaterThan(samples["synwatch_service_distinct_sources{\(flooded)}"] ?? 0, 1_000, "\(samples)")
        XCTAssertLessThan(samples["synwatch_service_completion_ratio{\(flooded)}"] ?? 1, 0.5)
        let tracked = try XCTUnwrap(samples["synwatch_services_tracked"])
        XCTAssertGreaterThanOrEqual(tracked, 3, "\(samples)")
        XCTAssertEqual(samples["synwatch_service_series_limit"], 2)
        XCTAssertEqual(samples["synwatch_services_unexported"], tracked - 2)
        XCTAssertEqual(Self.labelSets("synwatch_service_syn_packets_total", in: samples).count, 2, "\(samples)")
        // Never a source address among the labels.
        XCTAssertFalse(samples.keys.contains { $0.contains("198.19.") }, "\(samples.keys)")

        // A reload raises the cap: every service listed, the refused ones with their refusals. A changed listener
        // waits for a restart, and says so.
        try "metrics:\n  max_services: 10\n  listen: [\(ServerClientLab.serverAddress):9465]\n"
            .write(toFile: configuration, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        var text = ""
        try DaemonEndToEndTests.waitFor(timeout: 10) {
            text = try Self.scrape(lab, "/metrics").body
            return try Self.samples(text)["synwatch_service_series_limit"] == 10
        }
        samples = try Self.samples(text)
        XCTAssertEqual(samples["synwatch_services_unexported"], 0)
        XCTAssertEqual(
            Self.labelSets("synwatch_service_syn_packets_total", in: samples).count,
            Int(try XCTUnwrap(samples["synwatch_services_tracked"]))
        )
        let refused = "port=\"81\",victim=\"\(ServerClientLab.serverAddress)\""
        XCTAssertEqual(samples["synwatch_service_refusals_total{\(refused)}"], 3, "\(samples)")
        XCTAssertEqual(samples["synwatch_service_completions_total{\(refused)}"], 0)
        XCTAssertGreaterThanOrEqual(samples["synwatch_service_completions_total{\(flooded)}"] ?? 0, 4)
        try DaemonEndToEndTests.waitFor {
            DaemonEndToEndTests.text(log).contains("metrics.listen takes effect only after a restart")
        }

        // The scrape is valid exposition by Prometheus's own linter.
        let scrape = workspace.path("scrape.txt")
        try text.write(toFile: scrape, atomically: true, encoding: .utf8)
        let check = try ChildProcess.run(["sh", "-c", "promtool check metrics < \(scrape)"])
        XCTAssertEqual(check.status, 0, check.output + check.errors)

        kill(daemon.processIdentifier, SIGTERM)
        try DaemonEndToEndTests.waitFor(timeout: 10) { !daemon.isRunning }
        XCTAssertEqual(daemon.terminationStatus, 0, DaemonEndToEndTests.text(log))
    }

    /// An address the daemon cannot bind stops it at start, with the address named.
    func testUnboundListenerIsAStartupError() throws {
        try XCTSkipUnless(NetworkNamespace.isAvailable, "needs root and ip netns")
        let namespace = try NetworkNamespace(NetworkNamespace.freshName("swm"))
        let workspace = try Workspace()
        try namespace.check(["ip", "link", "set", "lo", "up"])
        let result = try ChildProcess.run(
            namespace.inside([
                DaemonEndToEndTests.daemon.path, "--config", workspace.path("none.yaml"), "--interface", "lo",
                "--socket", workspace.path("synwatch.sock"), "--user", "root", "--metrics-listen", "198.18.0.99:9464",
            ]),
            timeLimit: 20
        )
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("cannot serve /metrics on 198.18.0.99:9464"), result.errors)
    }

    // MARK: Helpers

    static let web = "\(ServerClientLab.serverAddress):80"

    /// A request to the metrics listener from the client's namespace: the status code and the body.
    static func scrape(
        _ lab: ServerClientLab,
        _ path: String,
        method: String = "GET"
    ) throws -> (
        status: String, body: String
    ) {
        let result = try lab.clientNamespace.run([
            "curl", "-sS", "-m", "5", "-X", method, "-w", "\n%{http_code}", "http://\(listen)\(path)",
        ])
        guard result.status == 0, let split = result.output.lastIndex(of: "\n") else {
            throw LabError(command: "curl \(path)", output: result.errors)
        }
        return (String(result.output[result.output.index(after: split)...]), String(result.output[..<split]))
    }

    /// Each sample of an exposition by its series (name and labels as written).
    static func samples(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let split = try XCTUnwrap(line.lastIndex(of: " "), String(line))
            samples[String(line[..<split])] = try XCTUnwrap(Double(line[line.index(after: split)...]), String(line))
        }
        return samples
    }

    /// The label sets of the family `name`.
    static func labelSets(_ name: String, in samples: [String: Double]) -> [String] {
        samples.keys.filter { $0.hasPrefix(name + "{") }
    }
}

import Foundation
import Glibc
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// A real Prometheus scraping two `synwatchd` over `--metrics-listen`, each on a host (network namespace) of its
/// own, with the shipped rules loaded (their one-minute windows and holds cut to 15 s: the test takes a minute, not
/// two; `scripts/check-prometheus` runs promtool's unit tests on the shipped timings): benign traffic raises no
/// alert, a flood spread thinly over both hosts raises the fleet-wide alert though neither daemon reports an attack,
/// and a flood on one host raises the per-host alert with its victim and port.
final class FleetEndToEndTests: XCTestCase {
    static let perHostAlert = "SynFloodAttack"
    static let fleetAlert = "SynFloodAcrossFleet"

    func testPrometheusAlertsOnHostAndFleetFloods() throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Prometheus.binary), "needs prometheus")
        try TestJournald.require()
        let workspace = try Workspace()
        let lab = try FleetLab()
        let servers = AddressPlan.ipv4.servers
        // Each daemon with its own threshold (100 failing handshakes/s) and a baseline still warming up.
        let configuration = workspace.path("synwatch.yaml")
        try """
        detection:
          quiet_period: 2s
        baseline:
          warmup: 10m

        """.write(toFile: configuration, atomically: true, encoding: .utf8)
        let daemons = try lab.hosts.indices.map { index in
            try FleetDaemon(lab, host: index, configuration: configuration, workspace: workspace)
        }
        let prometheus = try Prometheus(lab, targets: lab.hosts.indices.map(lab.metricsAddress), workspace: workspace)
        try prometheus.waitUntilScraped(targets: lab.hosts.count)

        // Benign traffic on both hosts: no alert at all, not even pending.
        let benign = try lab.hosts.indices.map { index in
            let capture = workspace.path("benign\(index).pcap")
            try Scenario(seed: 80 + UInt64(index), duration: 15)
                .background(Self.background(on: servers[index]))
                .write(to: capture)
            return try lab.startReplay(capture, host: index)
        }
        for replay in benign { replay.waitUntilExit() }
        let quiet = try prometheus.alerts()
        XCTAssertTrue(quiet.isEmpty, "alerts on benign traffic: \(quiet)")

        // A spoofed flood spread over both hosts, each under its own threshold: no daemon reports an attack, and
        // the fleet sees the service's failing handshakes rise together.
        let spread = try lab.hosts.indices.map { index in
            let capture = workspace.path("spread\(index).pcap")
            try Scenario(seed: 90 + UInt64(index), duration: 150)
                .background(Self.background(on: servers[index]))
                .flood(Flood(.randomSource, victim: Endpoint(servers[index], 80), rate: 60, start: 0, duration: 150))
                .write(to: capture)
            return try lab.startReplay(capture, host: index)
        }
        // The rule's rates are over 15 s (a minute as shipped), and it must hold for as long again.
        let fleet = try prometheus.waitForFiring(Self.fleetAlert, timeout: 140)
        XCTAssertEqual(fleet?["port"], "80", "\(String(describing: fleet))")
        for replay in spread where replay.isRunning { kill(replay.processIdentifier, SIGTERM) }
        for replay in spread { replay.waitUntilExit() }
        for daemon in daemons {
            XCTAssertTrue(try daemon.attacks().isEmpty, "a daemon reported the spread flood: \(daemon.logText)")
        }

        // A flood on the first host: the per-host alert, with that victim and port.
        let capture = workspace.path("flood.pcap")
        try Scenario(seed: 100, duration: 20)
            .background(Self.background(on: servers[0]))
            .flood(Flood(.randomSource, victim: Endpoint(servers[0], 80), rate: 2_000, start: 1, duration: 19))
            .write(to: capture)
        let flood = try lab.startReplay(capture, host: 0)
        defer { if flood.isRunning { kill(flood.processIdentifier, SIGTERM) } }
        let host = try XCTUnwrap(try prometheus.waitForFiring(Self.perHostAlert, timeout: 30), daemons[0].logText)
        XCTAssertEqual(host["victim"], servers[0].description)
        XCTAssertEqual(host["port"], "80")
        XCTAssertEqual(host["kind"], "random-source")
        XCTAssertEqual(host["instance"], lab.metricsAddress(0))
        XCTAssertEqual(try daemons[0].attacks().count, 1)
    }

    /// Clients completing their handshakes with the host's web services, as a server sees every day.
    static func background(on server: NetAddress) -> Background {
        Background(rate: 150, services: [Endpoint(server, 80), Endpoint(server, 443)], clientCount: 1_000)
    }
}

/// Two hosts and a monitor, each a network namespace of the test's own: the monitor replays traffic onto each
/// host's capture interface (a veth without address) and scrapes each host's metrics over a link of its own
/// (198.18.200.0/30, 198.18.201.0/30). Nothing else is reachable; all is deleted when released.
final class FleetLab {
    let monitor: NetworkNamespace
    let hosts: [NetworkNamespace]
    private let name: String

    init() throws {
        let name = NetworkNamespace.freshName("fl")
        self.name = name
        monitor = try NetworkNamespace(name + "m")
        hosts = try (0..<2).map { try NetworkNamespace(name + String($0)) }
        for (index, host) in hosts.enumerated() {
            // Traffic: replayed in the monitor, captured on the host.
            try ChildProcess.check([
                "ip", "link", "add", capturePort(index), "netns", host.name, "type", "veth", "peer", "name",
                replayPort(index), "netns", monitor.name,
            ])
            // Metrics: the host listens, the monitor scrapes.
            let link = name + "p" + String(index)
            try ChildProcess.check([
                "ip", "link", "add", link, "netns", host.name, "type", "veth", "peer", "name", link + "m", "netns",
                monitor.name,
            ])
            try host.check(["ip", "addr", "add", "198.18.\(200 + index).2/30", "dev", link])
            try monitor.check(["ip", "addr", "add", "198.18.\(200 + index).1/30", "dev", link + "m"])
            for (namespace, ports) in [
                (host, [capturePort(index), link]), (monitor, [replayPort(index), link + "m"]),
            ] {
                for port in ports + ["lo"] { try namespace.check(["ip", "link", "set", port, "up"]) }
            }
            try host.check(["sysctl", "-q", "-w", "net.ipv6.conf.\(capturePort(index)).disable_ipv6=1"])
            try monitor.check(["sysctl", "-q", "-w", "net.ipv6.conf.\(replayPort(index)).disable_ipv6=1"])
        }
    }

    func capturePort(_ host: Int) -> String { name + "c" + String(host) }
    func replayPort(_ host: Int) -> String { name + "r" + String(host) }
    /// Where the host's daemon serves `/metrics`, as Prometheus names the target (its `instance`).
    func metricsAddress(_ host: Int) -> String { "198.18.\(200 + host).2:9410" }

    /// `tcpreplay` of `capture` onto the host's capture interface, as captured, bounded to 160 s. It sleeps between
    /// packets (`-T nano`): its default timer spins, a core per replay, at a few hundred packets a second.
    func startReplay(_ capture: String, host: Int) throws -> Process {
        try ChildProcess.start([
            "timeout", "160", "ip", "netns", "exec", monitor.name, "tcpreplay", "-q", "-T", "nano", "-i",
            replayPort(host), capture,
        ])
    }
}

/// `synwatchd` on one host of the lab, serving `/metrics` on the host's monitoring link.
final class FleetDaemon {
    let process: Process
    let socket: String
    let log: String

    init(_ lab: FleetLab, host: Int, configuration: String, workspace: Workspace) throws {
        socket = workspace.path("host\(host).sock")
        log = workspace.path("host\(host).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let notify = try NotifyListener(path: workspace.path("notify\(host).sock"))
        process = try ChildProcess.start(
            [
                "ip", "netns", "exec", lab.hosts[host].name, DaemonEndToEndTests.daemon.path, "--config",
                configuration, "--interface", lab.capturePort(host), "--socket", socket, "--user", "root",
                "--metrics-listen", lab.metricsAddress(host),
            ],
            environment: ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 },
            output: .inherit,
            errors: .file(log)
        )
        guard notify.wait(for: "READY=1", timeout: 15) != nil else {
            throw LabError(command: "synwatchd", output: "no READY=1: \(logText)")
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var logText: String { DaemonEndToEndTests.text(log) }

    /// The attacks the daemon reported, going on or ended.
    func attacks() throws -> [Any] {
        let body = try DaemonEndToEndTests.get(socket, "/v1/attacks")
        let attacks = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
        return (attacks["active"] as? [Any] ?? []) + (attacks["recent"] as? [Any] ?? [])
    }
}

/// A real Prometheus in the lab's monitor namespace: one-second scrapes and evaluations, the shipped rules with their
/// one-minute windows and holds cut to 15 s.
final class Prometheus {
    static let binary = "/usr/bin/prometheus"
    static let shippedRules = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/prometheus/synwatch.rules.yml").path

    let process: Process
    let lab: FleetLab
    let log: String

    init(_ lab: FleetLab, targets: [String], workspace: Workspace) throws {
        self.lab = lab
        let rules = workspace.path("synwatch.rules.yml")
        try String(contentsOfFile: Self.shippedRules, encoding: .utf8)
            .replacingOccurrences(of: "[1m]", with: "[15s]")
            .replacingOccurrences(of: "for: 1m", with: "for: 15s")
            .write(toFile: rules, atomically: true, encoding: .utf8)
        let configuration = workspace.path("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files: ["\(rules)"]
        scrape_configs:
          - job_name: synwatch
            static_configs:
              - targets: [\(targets.map { "\"\($0)\"" }.joined(separator: ", "))]

        """.write(toFile: configuration, atomically: true, encoding: .utf8)
        log = workspace.path("prometheus.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process = try ChildProcess.start(
            [
                "ip", "netns", "exec", lab.monitor.name, Self.binary, "--config.file", configuration,
                "--storage.tsdb.path", workspace.path("tsdb"), "--web.listen-address", "127.0.0.1:9090",
            ],
            errors: .file(log)
        )
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
    }

    /// `GET` of the API inside the monitor namespace: the `data` member of the answer.
    func api(_ path: String) throws -> Any? {
        let result = try lab.monitor.run(["curl", "-sS", "-f", "--max-time", "5", "http://127.0.0.1:9090\(path)"])
        guard result.status == 0 else { throw LabError(command: "curl \(path)", output: result.errors) }
        let answer = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        return answer?["data"]
    }

    /// Waits until every target has been scraped successfully.
    func waitUntilScraped(targets: Int) throws {
        try waitFor(timeout: 30, "\(targets) targets up") {
            let data = try? api("/api/v1/query?query=up%3D%3D1") as? [String: Any]
            return (data?["result"] as? [Any])?.count == targets
        }
    }

    /// The alerts Prometheus holds, pending or firing: each one's labels, with its state as `state`.
    func alerts() throws -> [[String: String]] {
        let alerts = (try api("/api/v1/alerts") as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
        return alerts.map { alert in
            var labels = alert["labels"] as? [String: String] ?? [:]
            labels["state"] = alert["state"] as? String
            return labels
        }
    }

    /// The labels of the first firing alert named `name`, once there is one, or nil after `timeout` seconds.
    func waitForFiring(_ name: String, timeout: Double) throws -> [String: String]? {
        var firing: [String: String]?
        try waitFor(timeout: timeout, "\(name) firing") {
            firing = try alerts().first { $0["alertname"] == name && $0["state"] == "firing" }
            return firing != nil
        }
        return firing
    }

    private func waitFor(timeout: Double, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline, process.isRunning else {
                return XCTFail(
                    "no \(what) within \(timeout) s; alerts: \(try alerts()); \(DaemonEndToEndTests.text(log))"
                )
            }
            usleep(500_000)
        }
    }
}

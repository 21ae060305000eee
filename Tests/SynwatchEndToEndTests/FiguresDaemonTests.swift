import Foundation
import Glibc
import SynwatchCapture
import SynwatchEngine
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// The figures of a live `synwatchd` against the ground truth of a generated capture replayed on a veth of the
/// test's own (`NetworkLab`: 198.18.0.0/15 only, a namespace unique to the run, deleted afterwards): the journal's
/// entries, the response hook's stdin JSON and `/v1/attacks` (and `synwatch attacks`) agree with each other, and
/// with what tcpreplay sent, within the bounds of `FigureBounds` and `DaemonFigureBounds`.
///
/// Run once with one reading thread and once with two, each taking its share of the flows: the engine takes their
/// frames merged in capture-time order, so the figures keep to the same bounds.
final class FiguresDaemonTests: XCTestCase {
    func testLiveFiguresAgreeWithEachOtherAndTheReplay() throws {
        try checkLiveFigures(captureShards: 1)
    }

    func testTwoReadingThreadsKeepTheFigures() throws {
        try checkLiveFigures(captureShards: 2)
    }

    func checkLiveFigures(captureShards: Int) throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try TestJournald.require()
        let lab = try NetworkLab()
        let workspace = try Workspace()
        let capture = workspace.path("flood.pcap")
        let ledger = TrafficLedger()
        let truth = try Scenario(seed: 61, duration: 7)
            .background(Background(rate: 200, clientCount: 1000))
            .flood(Flood(.randomSource, rate: 3_000, start: 2, duration: 3))
            .write(to: capture, ledger: ledger)
        let flood = try XCTUnwrap(truth.floods.first)
        let service = TrafficLedger.Service(flood.victim, flood.port)

        // A hook that keeps each event's stdin JSON in a file of its own.
        let hook = workspace.path("hook.sh")
        try "#!/bin/sh\ncat > \(workspace.path("hook"))-$SYNWATCH_EVENT.json\n"
            .write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let configuration = workspace.path("synwatch.yaml")
        try """
        daemon:
          capture_shards: \(captureShards)
        detection:
          quiet_period: 2s
        hooks:
          command: [\(hook)]
          events: [attack_start, attack_end]

        """.write(toFile: configuration, atomically: true, encoding: .utf8)
        let socket = workspace.path("synwatch.sock")
        let notify = try NotifyListener(path: workspace.path("notify.sock"))
        let log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let daemon = try ChildProcess.start(
            [
                DaemonEndToEndTests.daemon.path, "--config", configuration, "--interface", lab.capturePort, "--socket",
                socket, "--user", "root",
            ],
            environment: ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 },
            output: .inherit,
            errors: .file(log)
        )
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(DaemonEndToEndTests.text(log))")

        // What reaches the capture interface, as the daemon sees it: the rates are checked against the wire, since
        // tcpreplay paces to the capture's timestamps only as closely as the machine lets it.
        let wire = workspace.path("wire.pcap")
        let wireLog = workspace.path("tcpdump.log")
        _ = FileManager.default.createFile(atPath: wireLog, contents: nil)
        let tcpdump = try ChildProcess.start(
            [
                "timeout", "-s", "INT", "60", "tcpdump", "-i", lab.capturePort, "--immediate-mode", "-n", "-U", "-s",
                "96", "-w", wire, "tcp",
            ],
            errors: .file(wireLog)
        )
        defer { if tcpdump.isRunning { kill(tcpdump.processIdentifier, SIGKILL) } }
        try DaemonEndToEndTests.waitFor(timeout: 10) { DaemonEndToEndTests.text(wireLog).contains("listening on") }

        // Replayed as captured (about 7 s), bounded: tcpreplay says how many packets it sent.
        let replay = try ChildProcess.run(
            [
                "timeout", "30", "ip", "netns", "exec", lab.name, "tcpreplay", "-i", lab.replayPort, capture,
            ],
            mergingErrors: true
        )
        XCTAssertEqual(replay.status, 0, replay.output)
        let sent = try XCTUnwrap(Self.packetsSent(replay.output), replay.output)
        XCTAssertEqual(sent, truth.packets, "tcpreplay did not send every packet: \(replay.output)")
        // tcpdump, in immediate mode, has written all its filter took once the file stops growing.
        var written = -1
        try DaemonEndToEndTests.waitFor(timeout: 10) {
            usleep(300_000)
            let size = (try? FileManager.default.attributesOfItem(atPath: wire)[.size] as? Int) ?? 0
            defer { written = size }
            return size == written
        }
        kill(tcpdump.processIdentifier, SIGINT)
        tcpdump.waitUntilExit()
        let wireReport = DaemonEndToEndTests.text(wireLog)
        XCTAssertTrue(wireReport.contains("\n\(sent) packets captured\n\(sent) packets received by filter"), wireReport)

        // The end: the quiet period (2 s) after the flood's last evidence.
        let pid = String(daemon.processIdentifier)
        var entries: [TestJournald.Fields] = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            entries = try TestJournald.entries(where: "_PID", is: pid, count: 2, timeout: 1)
                .filter { $0["SYNWATCH_EVENT"] != nil }
            if entries.contains(where: { $0["SYNWATCH_EVENT"] == "attack_end" }) { break }
            usleep(250_000)
        } while Date() < deadline
        let shown = LabDaemon.describe(entries)
        print("events of synwatchd:\n\(shown)")
        let start = try XCTUnwrap(entries.first { $0["SYNWATCH_EVENT"] == "attack_start" }, shown)
        let end = try XCTUnwrap(entries.first { $0["SYNWATCH_EVENT"] == "attack_end" }, shown)
        XCTAssertEqual(entries.filter { $0["SYNWATCH_EVENT"] == "attack_start" }.count, 1, shown)
        XCTAssertEqual(start["SYNWATCH_VICTIM"], flood.victim.description, shown)
        XCTAssertEqual(start["SYNWATCH_KIND"], "random-source", shown)

        // Every entry: the invariants, and no field carrying the text "null".
        for entry in entries {
            for (key, value) in entry where key.hasPrefix("SYNWATCH_") {
                XCTAssertNotEqual(value, "null", "\(key) in \(entry)")
            }
            let syn = try XCTUnwrap(Double(entry["SYNWATCH_SYN_PER_S"] ?? ""), "\(entry)")
            let halfOpen = try XCTUnwrap(Double(entry["SYNWATCH_HALF_OPEN_PER_S"] ?? ""), "\(entry)")
            XCTAssertLessThanOrEqual(halfOpen, syn, "\(entry)")
            XCTAssertLessThanOrEqual(
                Int(entry["SYNWATCH_DISTINCT_SOURCES"] ?? "") ?? .max,
                ledger.synPackets[service]?.count ?? 0
            )
            XCTAssertEqual(entry["SYNWATCH_TOP_SOURCES"] ?? "", "", "a spoofed storm with top sources: \(entry)")
            XCTAssertGreaterThanOrEqual(Double(end["SYNWATCH_PEAK_SYN_PER_S"] ?? "") ?? 0, syn, shown)
            XCTAssertGreaterThanOrEqual(Double(end["SYNWATCH_PEAK_HALF_OPEN_PER_S"] ?? "") ?? 0, halfOpen, shown)
            XCTAssertGreaterThanOrEqual(
                Int(end["SYNWATCH_PEAK_DISTINCT_SOURCES"] ?? "") ?? 0,
                Int(entry["SYNWATCH_DISTINCT_SOURCES"] ?? "") ?? .max,
                shown
            )
        }
        if entries.contains(where: {
            $0["SYNWATCH_EVENT"] == "attack_update" && ($0["SYNWATCH_HALF_OPEN_PER_S"] ?? "") == "0"
        }) {
            XCTAssertTrue(entries.contains { ($0["MESSAGE"] ?? "").contains("subsiding") }, shown)
        }

        // The hook got the same events, figure for figure.
        try DaemonEndToEndTests.waitFor(timeout: 5) {
            FileManager.default.fileExists(atPath: workspace.path("hook-attack_end.json"))
        }
        for (entry, type) in [(start, "attack_start"), (end, "attack_end")] {
            let json = try XCTUnwrap(
                JSONSerialization.jsonObject(
                    with: Data(DaemonEndToEndTests.text(workspace.path("hook-\(type).json")).utf8)
                )
                    as? [String: Any],
                "hook stdin for \(type)"
            )
            XCTAssertEqual(json["event"] as? String, type)
            for (key, value) in json {
                guard let number = value as? NSNumber, !(value is Bool) else { continue }
                let journal = entry["SYNWATCH_" + key.uppercased()]
                // Times are printed to the nanosecond, which a JSON double rounds: equal within a microsecond.
                XCTAssertEqual(
                    Double(journal ?? "") ?? .nan,
                    number.doubleValue,
                    accuracy: 1e-6 * max(1, abs(number.doubleValue)),
                    "\(type) \(key): hook \(number), journal \(journal ?? "none")"
                )
            }
            XCTAssertEqual((json["top_sources"] as? [Any])?.count, 0, "\(type): \(json)")
        }

        // /v1/attacks: the ended attack with the end's summary, and `synwatch attacks` showing the same total.
        // The query socket serves the daemon's latest snapshot: it may show the attack going on a moment longer.
        var attacks: [String: Any] = [:]
        try DaemonEndToEndTests.waitFor(timeout: 5) {
            let body = try DaemonEndToEndTests.get(socket, "/v1/attacks")
            attacks = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            return (attacks["recent"] as? [Any])?.isEmpty == false && (attacks["active"] as? [Any])?.isEmpty == true
        }
        XCTAssertEqual((attacks["active"] as? [Any])?.count, 0, "\(attacks)")
        let recent = try XCTUnwrap((attacks["recent"] as? [[String: Any]])?.last, "\(attacks)")
        for key in [
            "peak_syn_per_s", "peak_half_open_per_s", "peak_distinct_sources", "total_syns", "duration", "syn_per_s",
        ] {
            XCTAssertEqual(
                (recent[key] as? NSNumber)?.doubleValue,
                Double(end["SYNWATCH_" + key.uppercased()] ?? ""),
                "/v1/attacks \(key) against the journal"
            )
        }
        let total = try XCTUnwrap(Int(end["SYNWATCH_TOTAL_SYNS"] ?? ""), shown)
        let text = try Synwatch.run(["attacks", "--socket", socket])
        XCTAssertTrue(
            text.standardOutput.contains(
                "\(total.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))) SYNs"
            ),
            text.standardOutput
        )

        // Against what was replayed. The capture lost nothing (else the counts could only be lower).
        XCTAssertEqual(Double(end["SYNWATCH_KERNEL_CAPTURE_LOSS"] ?? ""), 0, shown)
        let floodStart = Int64((flood.start * 1e9).rounded())
        let synsToService = ledger.synPacketCount(to: service, from: 0, until: .max)
        let fromRevealingWindow = ledger.synPacketCount(
            to: service,
            from: floodStart - 1_000_000_000 - FigureBounds.graceCeiling,
            until: .max
        )
        print(
            "total_syns \(total); flood SYNs \(flood.synPackets), service SYNs \(synsToService) (from the revealing window at most \(fromRevealingWindow)), frames sent \(sent)"
        )
        XCTAssertGreaterThanOrEqual(total, flood.synPackets, "total_syns below the flood's SYNs:\n\(shown)")
        XCTAssertLessThanOrEqual(
            total,
            fromRevealingWindow,
            "total_syns above the SYNs sent since the revealing window:\n\(shown)"
        )
        // The busiest second on the wire, on the centisecond.
        let wireSyns = try Self.synTimes(in: wire, to: service)
        XCTAssertEqual(wireSyns.count, synsToService, "SYNs to \(service) on the wire and in the capture")
        let busiest = Self.busiestSecond(of: wireSyns)
        let peak = try XCTUnwrap(Double(end["SYNWATCH_PEAK_SYN_PER_S"] ?? ""))
        print("peak_syn_per_s \(peak); busiest second on the wire \(busiest)")
        XCTAssertLessThanOrEqual(peak, Double(busiest) * (1 + DaemonFigureBounds.windowAlignment), shown)
        XCTAssertGreaterThanOrEqual(peak, Double(busiest) * (1 - DaemonFigureBounds.windowAlignment), shown)
        let peakHalfOpen = try XCTUnwrap(Double(end["SYNWATCH_PEAK_HALF_OPEN_PER_S"] ?? ""))
        // Half-open: the flood's SYNs, less the few clients' SYNs (200/s over three services) that complete.
        XCTAssertGreaterThanOrEqual(
            peakHalfOpen,
            Double(busiest) * (1 - DaemonFigureBounds.windowAlignment) - 100,
            shown
        )
        // Distinct sources: every spoofed source once; the peak is the 5–10 s window holding the whole flood.
        let peakDistinct = Double(try XCTUnwrap(Int(end["SYNWATCH_PEAK_DISTINCT_SOURCES"] ?? "")))
        let shift = FigureBounds.samplingShift(forSynPerSecond: 1.2 * Double(busiest))
        XCTAssertLessThanOrEqual(
            abs(peakDistinct - Double(flood.distinctSources)),
            FigureBounds.hyperLogLogRelative(shift: shift, kind: .randomSource) * Double(flood.distinctSources)
                + FigureBounds.clientSampling(flood.distinctSources, shift: shift, kind: .randomSource) + 1_000,
            "peak_distinct_sources \(peakDistinct) of \(flood.distinctSources) spoofed sources (and up to 1,000 clients)"
        )

        // Every reading thread took its share.
        let status = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(try DaemonEndToEndTests.get(socket, "/v1/status").utf8))
                as? [String: Any]
        )
        let threads = ((status["capture"] as? [String: Any])?["threads"] as? [[String: Any]]) ?? []
        let readers = threads.filter { ($0["thread"] as? String)?.hasPrefix("read") == true }
        XCTAssertEqual(
            readers.map { $0["thread"] as? String },
            captureShards == 1 ? ["read"] : (1...captureShards).map { "read \($0)" },
            "\(threads)"
        )
        for reader in readers { XCTAssertGreaterThan(reader["cpu_seconds"] as? Double ?? 0, 0, "\(reader)") }

        kill(daemon.processIdentifier, SIGTERM)
        try DaemonEndToEndTests.waitFor(timeout: 10) { !daemon.isRunning }
    }

    /// The capture times of the SYNs to `service` in the capture file at `path`, in order.
    static func synTimes(in path: String, to service: TrafficLedger.Service) throws -> [Int64] {
        let victim = try XCTUnwrap(IPAddress(service.address.description))
        var times: [Int64] = []
        try CaptureFileReader(.file(path)).forEachFrame { frame in
            var segment = TCPSegment.empty
            guard PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment) == .tcp,
                segment.flags.contains(.syn), !segment.flags.contains(.ack),
                segment.destination == victim, segment.destinationPort == service.port
            else { return }
            times.append(frame.time.nanoseconds)
        }
        return times.sorted()
    }

    /// The most of the sorted `times` that one second starting on a centisecond holds.
    static func busiestSecond(of times: [Int64]) -> Int {
        var busiest = 0
        var (first, end) = (0, 0)
        var from = (times.first ?? 0) - 1_000_000_000
        while from < (times.last ?? 0) {
            while first < times.count && times[first] < from { first += 1 }
            while end < times.count && times[end] < from + 1_000_000_000 { end += 1 }
            busiest = max(busiest, end - first)
            from += FigureBounds.graceGranularity
        }
        return busiest
    }

    /// "Actual: N packets" of tcpreplay's report.
    static func packetsSent(_ output: String) -> Int? {
        guard let range = output.range(of: "Actual: ") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }
}

/// What a live replay adds to the bounds of `FigureBounds`.
enum DaemonFigureBounds {
    /// The busiest second on the wire is sought on the centisecond, the daemon's windows end on its steps (50 ms): on
    /// a steady flood the two differ by a few SYNs, more where the replay ran unevenly within a step.
    static let windowAlignment = 0.05
}

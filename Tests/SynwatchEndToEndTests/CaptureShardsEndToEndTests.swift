import Foundation
import Glibc
import SynwatchTestSupport
import XCTest

/// One reading thread and two, side by side: two `synwatchd` on the same server port in the same run, one with
/// `daemon.capture_shards: 1` and one with 2, see the same spoofed flood at a real listener (its SYN-ACKs come back
/// on the same port). The engine takes the two readers' frames merged in capture-time order, so both daemons report
/// the same attack with the same counts; only what each daemon's own random hash seed draws may differ.
final class CaptureShardsEndToEndTests: XCTestCase {
    func testOneReaderAndTwoReportTheSameAttack() throws {
        let lab = try DetectorEndToEndTests.lab()
        let listener = try LabListener.start(in: lab, port: DetectorEndToEndTests.port, backlog: 1024)
        defer { listener.terminate() }
        try lab.routeToClient(DetectorEndToEndTests.spoofedPrefix)
        // Below the rate the engine samples at (4,000 SYN/s), so every count is exact in both.
        let workspaces = try (0..<3).map { _ in try Workspace() }
        let flood = try DetectorEndToEndTests.spoofedFlood(in: workspaces[0], packets: 21_000, pps: 3_000)
        let daemons = try [1, 2].map { shards in
            try LabDaemon(lab, workspaces[shards], settings: "daemon:\n  capture_shards: \(shards)\n")
        }

        let replay = try lab.startReplayToServer(flood, pps: 3_000)
        defer { if replay.isRunning { replay.terminate() } }
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay failed")

        // The quiet period is 2 s: both ends follow soon after the flood's.
        var events: [[TestJournald.Fields]] = []
        let deadline = Date().addingTimeInterval(12)
        repeat {
            events = try daemons.map { try $0.events(atLeast: 1, settle: 0) }
            if events.allSatisfy({ $0.contains { $0["SYNWATCH_EVENT"] == "attack_end" } }) { break }
            usleep(250_000)
        } while Date() < deadline
        let shown = zip([1, 2], events).map { "\($0) reader(s):\n\(LabDaemon.describe($1))" }.joined(separator: "\n")
        print(shown)
        let ends = try events.map { events in
            XCTAssertEqual(events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }.count, 1, shown)
            return try XCTUnwrap(events.first { $0["SYNWATCH_EVENT"] == "attack_end" }, shown)
        }
        for field in ["SYNWATCH_VICTIM", "SYNWATCH_PORT", "SYNWATCH_KIND", "SYNWATCH_END_REASON"] {
            XCTAssertEqual(ends[0][field], ends[1][field], "\(field)\n\(shown)")
        }
        XCTAssertEqual(ends[0]["SYNWATCH_KIND"], "random-source", shown)
        func figure(_ name: String) -> [Double] { ends.map { Double($0["SYNWATCH_" + name] ?? "") ?? .nan } }
        // The same frames in the same steps, but for a frame a few microseconds from a step's edge in one of them.
        for name in ["TOTAL_SYNS", "PEAK_SYN_PER_S", "PEAK_HALF_OPEN_PER_S"] {
            let values = figure(name)
            XCTAssertEqual(values[0], values[1], accuracy: 0.01 * values[0] + 20, "\(name)\n\(shown)")
        }
        // Detected in the same step, or the next.
        let starts = figure("START")
        XCTAssertEqual(starts[0], starts[1], accuracy: 0.051, shown)
        // Distinct sources are HyperLogLog estimates, each with its daemon's own hash seed.
        let distinct = figure("PEAK_DISTINCT_SOURCES")
        let shift = FigureBounds.samplingShift(forSynPerSecond: 1.2 * figure("PEAK_SYN_PER_S").max()!)
        let relative = FigureBounds.hyperLogLogRelative(shift: shift, kind: .randomSource)
        XCTAssertEqual(distinct[0], distinct[1], accuracy: 2 * relative * distinct[0], shown)

        let status = try DaemonEndToEndTests.get(daemons[1].socket, "/v1/status")
        XCTAssertTrue(status.contains("\"thread\":\"read 2\""), status)
        for daemon in daemons { try daemon.stop() }
    }
}

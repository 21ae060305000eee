import Foundation
import SynwatchTrafficGen
import XCTest

/// The real attack captures, the human report, standard input, configuration and errors of
/// `synwatch analyze`, through the built binary.
final class AnalyzeCommandTests: XCTestCase {
    /// A spoofed SYN flood with ECE+CWR set, ~9,700 sources in half a second: one random-source attack.
    func testRealSpoofedFloodCapture() throws {
        let path = try SharedCaptures.path("pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng")
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 1)
        let start = try XCTUnwrap(analysis.attackStarts.first)
        XCTAssertEqual(start.victim, "10.10.10.10")
        XCTAssertEqual(start.port, 30120)
        XCTAssertEqual(start.kind, "random-source")
        // The burst begins at 1617292579.6 (first of 9,600 SYNs within 0.6 s).
        XCTAssertLessThanOrEqual(start.time - 1_617_292_579.6, 1.0)
        XCTAssertGreaterThan(start.number("distinct_sources") ?? 0, 1000)
        let end = try XCTUnwrap(analysis.events("attack_end").first)
        XCTAssertEqual(end.fields["end_reason"] as? String, "capture_end")
        XCTAssertEqual(analysis.summary["syn_packets"] as? Int, 9639)
        // The busiest services: the host as a whole, then the attacked port, with every SYN of the capture.
        let services = try XCTUnwrap(analysis.summary["services"] as? [[String: Any]])
        XCTAssertEqual(services.first?["victim"] as? String, "10.10.10.10")
        XCTAssertNil(services.first?["port"])
        let port = try XCTUnwrap(services.first { $0["port"] as? Int == 30120 })
        // Estimated: a storm this fast is sampled by client, at most 1 in 8 at its 16,000 SYN/s (4 deviations).
        XCTAssertEqual(Double(port["syn_packets"] as? Int ?? 0), 9639, accuracy: 4 * (9639.0 * 7).squareRoot())
        XCTAssertEqual(port["completions"] as? Int, 0)
    }

    /// SYN-ACK reflection: answers to SYNs spoofed with our address. A notice, never an attack.
    func testRealReflectionCaptureIsBackscatter() throws {
        let path = try SharedCaptures.path("amp.TCP.reflection.SYNACK.pcap")
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 0)
        let notices = analysis.events("backscatter")
        XCTAssertEqual(notices.count, 1)
        XCTAssertEqual(notices.first?.victim, "10.10.10.10")
        XCTAssertGreaterThan(notices.first?.number("distinct_sources") ?? 0, 1000)
    }

    func testHumanReportNamesTheAttack() throws {
        let path = try SharedCaptures.path("pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng")
        let result = try Synwatch.run(["analyze", path])
        XCTAssertEqual(result.status, 0)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "synwatch analyze: \(path)")
        XCTAssertTrue(lines.contains("Attacks: 1"), result.standardOutput)
        XCTAssertTrue(lines.contains("  #1  SYN flood on 10.10.10.10:30120  random-source"), result.standardOutput)
        // The burst's first SYN came at 15:56:19.6; the capture ends within it.
        let span =
            "      began 2021-04-01 15:56:19.600Z, detected 0.25 s in, lasted 0.46 s, to 2021-04-01 15:56:20.057Z, "
            + "not over when the capture ended"
        XCTAssertTrue(lines.contains(span), result.standardOutput)
        XCTAssertTrue(lines.contains("Notices (not attacks on us): none"), result.standardOutput)
        XCTAssertTrue(lines.contains("Decode problems: none"), result.standardOutput)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  syn packets") && $0.hasSuffix(" 9,639") }, result.standardOutput)
        XCTAssertEqual(result.standardError, "", "no progress bar when stderr is not a terminal")
    }

    /// A flood that stops before the capture does: the report says when it began and ended, not when that was told.
    func testHumanReportTellsWhenTheFloodBeganAndEnded() throws {
        let workspace = try Workspace()
        let path = workspace.path("flood.pcap")
        try Scenario(seed: 31, duration: 30)
            .background(Background(rate: 100))
            .flood(Flood(.singleSource, rate: 1_000, start: 5, duration: 10))
            .write(to: path)
        let result = try Synwatch.run(["analyze", path])
        XCTAssertEqual(result.status, 0)
        let began = try XCTUnwrap(
            result.standardOutput.split(separator: "\n").first { $0.hasPrefix("      began ") },
            result.standardOutput
        )
        // "began <time>, detected <s> s in, lasted <s> s, to <time>": the flood from 5 s to 15 s into the capture (its
        // clock starts on 2025-01-01, the generator's default), to 0.1 s; its SYNs carry no options, as hping3's, and
        // are told as soon as they mature.
        let parts = began.dropFirst("      began ".count).split(separator: ", ").map(String.init)
        XCTAssertEqual(parts.count, 4, String(began))
        guard parts.count == 4 else { return }
        func secondsIn(_ time: String) -> Double {
            XCTAssertTrue(time.hasPrefix("2025-01-01 00:00:") && time.hasSuffix("Z"), time)
            return Double(time.dropFirst("2025-01-01 00:00:".count).dropLast()) ?? .nan
        }
        func seconds(_ part: String, _ prefix: String, _ suffix: String) -> Double {
            XCTAssertTrue(part.hasPrefix(prefix) && part.hasSuffix(suffix), part)
            return Double(part.dropFirst(prefix.count).dropLast(suffix.count)) ?? .nan
        }
        XCTAssertEqual(secondsIn(parts[0]), 5, accuracy: 0.1, String(began))
        XCTAssertEqual(seconds(parts[1], "detected ", " s in"), 0.2, accuracy: 0.1, String(began))
        XCTAssertEqual(seconds(parts[2], "lasted ", " s"), 10, accuracy: 0.2, String(began))
        XCTAssertEqual(secondsIn(String(parts[3].dropFirst("to ".count))), 15, accuracy: 0.1, String(began))
    }

    func testStandardInput() throws {
        let path = try SharedCaptures.path("pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng")
        let fromFile = try Synwatch.run(["analyze", "--json", path])
        let fromStandardInput = try Synwatch.run(["analyze", "--json", "-"], input: URL(fileURLWithPath: path))
        XCTAssertEqual(fromStandardInput.status, 0, fromStandardInput.standardError)
        let events = { (output: String) in output.split(separator: "\n").dropLast() }
        XCTAssertEqual(events(fromStandardInput.standardOutput), events(fromFile.standardOutput))
    }

    func testMissingFileIsAClearError() throws {
        let result = try Synwatch.run(["analyze", "/nonexistent/capture.pcap"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("/nonexistent/capture.pcap: no such file"), result.standardError)
        XCTAssertFalse(result.standardError.contains("Backtrac"), "no stack trace")
    }

    func testNotACaptureIsAClearError() throws {
        let workspace = try Workspace()
        let path = workspace.path("notes.txt")
        try "not a capture\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Synwatch.run(["analyze", path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("not a pcap or pcapng capture file"), result.standardError)
    }

    func testTruncatedCaptureReportsWhatItReadThenFails() throws {
        let workspace = try Workspace()
        let whole = workspace.path("whole.pcap")
        try Scenario(seed: 40, duration: 10).flood(Flood(.randomSource, rate: 2000, start: 2, duration: 5)).write(
            to: whole
        )
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = workspace.path("cut.pcap")
        try data.prefix(data.count - 7).write(to: URL(fileURLWithPath: cut))
        let result = try Synwatch.run(["analyze", "--json", cut])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("truncated"), result.standardError)
        // The frames before the damage were analysed: the flood is there, and the summary says what went wrong.
        XCTAssertTrue(result.standardOutput.contains("\"event\":\"attack_start\""))
        XCTAssertTrue(result.standardOutput.contains("\"error\":"))
    }

    func testConfigurationChangesTheDecision() throws {
        let workspace = try Workspace()
        let capture = workspace.path("flood.pcap")
        try Scenario(seed: 41, duration: 12)
            .background(Background(rate: 200, clientCount: 1000))
            .flood(Flood(.randomSource, rate: 400, start: 3, duration: 6))
            .write(to: capture)
        XCTAssertEqual(try Synwatch.analyze([capture]).attackStarts.count, 1)
        let strict = workspace.path("strict.yaml")
        try "detection:\n  half_open_per_s: 5000\nbaseline:\n  enabled: false\n"
            .write(toFile: strict, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Synwatch.analyze([capture], extra: ["--config", strict]).attackStarts.count, 0)
    }

    func testInvalidConfigurationNamesKeyAndLine() throws {
        let workspace = try Workspace()
        let path = workspace.path("bad.yaml")
        try "detection:\n  half_open_per_s: -3\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Synwatch.run(["analyze", "--config", path, "/dev/null"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("detection.half_open_per_s"), result.standardError)
        XCTAssertTrue(result.standardError.contains("\(path):2:"), "the line: \(result.standardError)")
    }

    func testMissingConfigurationFileIsAnError() throws {
        let result = try Synwatch.run(["analyze", "--config", "/nonexistent/synwatch.yaml", "/dev/null"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("no such configuration file"), result.standardError)
    }
}

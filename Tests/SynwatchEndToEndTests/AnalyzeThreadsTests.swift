import Foundation
import SynwatchTrafficGen
import XCTest

/// `synwatch analyze --threads N`: every thread count prints the same bytes, events and summary alike, on varied
/// generated captures, several files read as one, the real attack captures, standard input and a damaged file.
final class AnalyzeThreadsTests: XCTestCase {
    /// One thread; two: reading and decoding apart from the engine; four: three decoding threads taking turns to read.
    static let threadCounts = [1, 2, 4]

    func testEveryThreadCountPrintsTheSame() throws {
        let workspace = try Workspace()
        var captures: [(name: String, files: [String])] = []

        // Floods of every kind beside a service's clients, a scan, backscatter and a flash crowd.
        let mixed = workspace.path("mixed.pcap")
        try Scenario(seed: 61, duration: 24)
            .background(Background(rate: 300, clientCount: 1500))
            .flood(Flood(.randomSource, rate: 4000, start: 4, duration: 5))
            .flood(Flood(.singleSource, victim: Endpoint("198.18.0.11", 443), rate: 1500, start: 6, duration: 6))
            .flood(
                Flood(.distributed, victim: Endpoint("198.18.0.11", 25), rate: 2000, start: 14, duration: 5, bots: 40)
            )
            .scan(Scan(rate: 400, start: 3))
            .backscatter(Backscatter(rate: 300, start: 8, duration: 6))
            .flashCrowd(FlashCrowd())
            .write(to: mixed)
        captures.append(("mixed", [mixed]))
        // The same traffic in two files: a batch of decoded frames never spans two captures.
        let halves = try CaptureSplitter(mixed).split(
            at: 1_735_689_600 + 10,
            into: workspace.path("first.pcap"),
            workspace.path("second.pcap")
        )
        captures.append(("two files", halves))

        // IPv6 in pcapng with nanoseconds behind stacked VLAN tags, incoming traffic only, a pulsing flood.
        let v6 = workspace.path("v6.pcapng")
        try Scenario(seed: 62, duration: 20, family: .ipv6)
            .background(Background(rate: 200, clientCount: 800))
            .flood(Flood(.randomSource, rate: 3000, start: 4, duration: 12, pulse: Pulse(on: 2, off: 2)))
            .write(
                to: v6,
                format: .pcapng,
                precision: .nanoseconds,
                linkType: .ethernet,
                vlanTags: [VLANTag(.dot1ad, id: 100), VLANTag(.dot1Q, id: 200)],
                direction: .incomingOnly
            )
        captures.append(("ipv6", [v6]))

        // Linux cooked capture of a busy service only: no attack, every handshake completing.
        let cooked = workspace.path("cooked.pcap")
        try Scenario(seed: 63, duration: 15).background(Background(rate: 600, clientCount: 3000))
            .write(to: cooked, linkType: .linuxCooked2)
        captures.append(("benign", [cooked]))

        for name in ["pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", "amp.TCP.reflection.SYNACK.pcap"] {
            captures.append((name, [try SharedCaptures.path(name)]))
        }

        for capture in captures {
            let outputs = try Self.sideBySide(
                Self.threadCounts.map { ["analyze", "--json", "--threads", "\($0)"] + capture.files }
            )
            for (threads, result) in zip(Self.threadCounts, outputs) {
                XCTAssertEqual(result.status, 0, "\(capture.name), --threads \(threads): \(result.standardError)")
                XCTAssertEqual(
                    result.standardOutput,
                    outputs[0].standardOutput,
                    "\(capture.name): --threads \(threads) printed other lines than --threads 1"
                )
            }
            XCTAssertTrue(outputs[0].standardOutput.contains("\"event\":\"summary\""), capture.name)
            if capture.name == "mixed" {
                // The floods were found, so the comparison covers attack events, not only summaries.
                let output = outputs[0].standardOutput
                XCTAssertGreaterThanOrEqual(output.components(separatedBy: "\"event\":\"attack_start\"").count - 1, 3)
                XCTAssertTrue(output.contains("\"event\":\"backscatter\""))
            }
        }

        // The human report too.
        let reports = try Self.sideBySide(Self.threadCounts.map { ["analyze", "--threads", "\($0)", mixed] })
        for report in reports.dropFirst() { XCTAssertEqual(report.standardOutput, reports[0].standardOutput) }
    }

    /// Runs `synwatch` with each list of arguments, all at once.
    static func sideBySide(_ argumentLists: [[String]]) throws -> [Synwatch.Result] {
        let lock = NSLock()
        nonisolated(unsafe) var results = [Result<Synwatch.Result, any Error>?](
            repeating: nil,
            count: argumentLists.count
        )
        DispatchQueue.concurrentPerform(iterations: argumentLists.count) { index in
            let result = Result { try Synwatch.run(argumentLists[index]) }
            lock.withLock { results[index] = result }
        }
        return try results.map { try $0!.get() }
    }

    func testStandardInputAndDamagedCaptureAreTheSame() throws {
        let workspace = try Workspace()
        let whole = workspace.path("whole.pcap")
        try Scenario(seed: 64, duration: 10).background(Background(rate: 200, clientCount: 500))
            .flood(Flood(.randomSource, rate: 2000, start: 2, duration: 5)).write(to: whole)
        let piped = try (Self.threadCounts + [3]).map { threads in
            try Synwatch.run(["analyze", "--json", "--threads", "\(threads)", "-"], input: URL(fileURLWithPath: whole))
        }
        for result in piped {
            XCTAssertEqual(result.status, 0, result.standardError)
            XCTAssertEqual(result.standardOutput, piped[0].standardOutput)
        }

        // Cut inside the last record: the frames before the damage are analysed, then the error is the same.
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = workspace.path("cut.pcap")
        try data.prefix(data.count - 7).write(to: URL(fileURLWithPath: cut))
        let damaged = try (Self.threadCounts + [3]).map {
            try Synwatch.run(["analyze", "--json", "--threads", "\($0)", cut])
        }
        XCTAssertNotEqual(damaged[0].status, 0)
        for result in damaged {
            XCTAssertEqual(result.status, damaged[0].status)
            XCTAssertEqual(result.standardError, damaged[0].standardError)
            XCTAssertEqual(result.standardOutput, damaged[0].standardOutput)
            XCTAssertTrue(result.standardOutput.contains("\"event\":\"attack_start\""))
        }
    }

    func testFewerThanOneThreadIsRefused() throws {
        for threads in ["0", "none"] {
            let result = try Synwatch.run(["analyze", "--threads", threads, "whatever.pcap"])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.standardError.contains("--threads"), result.standardError)
        }
    }
}

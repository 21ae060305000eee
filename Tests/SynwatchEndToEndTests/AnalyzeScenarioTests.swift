import Foundation
import SynwatchEngine
import SynwatchTrafficGen
import XCTest

/// `synwatch analyze --json` on generated captures whose ground truth is known: every flood found
/// with the right victim, port and kind, a strong spoofed one within 0.3 s of its first SYN, and
/// nothing raised on traffic that is not an attack on us.
final class AnalyzeScenarioTests: XCTestCase {
    /// Background traffic every scenario runs over: a busy but healthy service.
    static let background = Background(rate: 300, clientCount: 1500)
    /// Floods from a few sources that neither reset nor retransmit are decided once their attempts
    /// pass the retransmission deadline: until then they could be clients' bursts.
    static let decidedAtTheDeadline = EngineConfiguration().handshakes.retransmissionDeadline.seconds + 1

    func testRandomSourceFloodOverBackground() throws {
        try checkFlood(Flood(.randomSource, rate: 3000, start: 6, duration: 8), seed: 11)
    }

    func testSingleSourceFlood() throws {
        try checkFlood(
            Flood(.singleSource, rate: 1500, start: 5, duration: 8),
            seed: 12,
            maximumLatency: Self.decidedAtTheDeadline
        )
    }

    func testDistributedFlood() throws {
        try checkFlood(
            Flood(.distributed, rate: 2000, start: 5, duration: 10, bots: 40),
            seed: 13,
            maximumLatency: Self.decidedAtTheDeadline
        )
    }

    func testLowRateSpoofedFloodIsFound() throws {
        // Slower evidence at 200 SYN/s beside completing traffic: the 0.3 s bound is for floods of
        // thousands of SYN/s.
        try checkFlood(
            Flood(.randomSource, rate: 200, start: 5, duration: 12),
            seed: 14,
            maximumLatency: Self.decidedAtTheDeadline
        )
    }

    func testPulsingFloodIsOneAttack() throws {
        let flood = Flood(.randomSource, rate: 4000, start: 4, duration: 20, pulse: Pulse(on: 2, off: 3))
        try checkFlood(flood, seed: 15, duration: 30)
    }

    func testIPv6FloodBehindStackedVLANsSeenOnIngressOnly() throws {
        let workspace = try Workspace()
        let path = workspace.path("v6.pcapng")
        let truth = try Scenario(seed: 16, duration: 20, family: .ipv6)
            .background(Self.background)
            .flood(Flood(.randomSource, rate: 2500, start: 5, duration: 8))
            .write(
                to: path,
                format: .pcapng,
                precision: .nanoseconds,
                linkType: .ethernet,
                vlanTags: [VLANTag(.dot1ad, id: 100), VLANTag(.dot1Q, id: 200)],
                direction: .incomingOnly
            )
        try assertFinds(truth.floods[0], in: try Synwatch.analyze([path]))
    }

    /// A spoofed flood on one service seen on ingress only, over background with probes of closed ports: one attack
    /// on that service. The flood's last attempts fail at their retransmission deadline, after it stopped,
    /// when the windows no longer show it on its service; counted on the whole host, they made a second attack,
    /// "(all ports)", with a few half-open a second.
    func testSpoofedFloodSeenOnIngressOnlyIsNoHostAttackWhenItStops() throws {
        let workspace = try Workspace()
        for seed in [1, 2] as [UInt64] {
            let path = workspace.path("ingress-\(seed).pcap")
            let truth = try Scenario(seed: seed, duration: 30)
                .background(Background(rate: 500))
                .flood(Flood(.randomSource, rate: 2000, start: 5, duration: 10))
                .write(to: path, direction: .incomingOnly)
            try assertFinds(truth.floods[0], in: try Synwatch.analyze([path]), context: "seed \(seed)")
        }
    }

    func testEveryLinkTypeAndFormat() throws {
        let workspace = try Workspace()
        for (index, link) in LinkLayer.allCases.enumerated() {
            for format in CaptureFormat.allCases {
                let path = workspace.path("\(link.rawValue).\(format.rawValue)")
                let truth = try Scenario(seed: 20 + UInt64(index), duration: 12)
                    .background(Background(rate: 100, clientCount: 500))
                    .flood(Flood(.randomSource, rate: 2000, start: 3, duration: 5))
                    .write(to: path, format: format, precision: .nanoseconds, linkType: link)
                let analysis = try Synwatch.analyze([path])
                try assertFinds(truth.floods[0], in: analysis, context: "\(link) \(format)")
                XCTAssertEqual(analysis.summary["frames"] as? Int, truth.packets, "\(link) \(format)")
            }
        }
    }

    /// 80 SYN/s, below the absolute threshold of 100 half-open/s, on a service whose baseline is a few
    /// half-open a second: caught by the learned baseline, and only by it.
    func testFloodBelowTheAbsoluteThresholdIsCaughtByTheBaseline() throws {
        let workspace = try Workspace()
        let path = workspace.path("quiet-flood.pcap")
        let truth = try Scenario(seed: 17, duration: 40)
            .background(Background(rate: 200, clientCount: 1000))
            .flood(Flood(.randomSource, rate: 80, start: 25, duration: 12))
            .write(to: path)
        let learning = workspace.path("learning.yaml")
        try "baseline:\n  warmup: 15s\n  half_life: 30s\n".write(toFile: learning, atomically: true, encoding: .utf8)
        try assertFinds(
            truth.floods[0],
            in: try Synwatch.analyze([path], extra: ["--config", learning]),
            maximumLatency: Self.decidedAtTheDeadline + 0.5
        )
        let absoluteOnly = workspace.path("absolute.yaml")
        try "baseline:\n  enabled: false\n".write(toFile: absoluteOnly, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Synwatch.analyze([path], extra: ["--config", absoluteOnly]).attackStarts.count, 0)
    }

    func testFlashCrowdRaisesNothing() throws {
        let workspace = try Workspace()
        let path = workspace.path("crowd.pcap")
        let truth = try Scenario(seed: 30, duration: 25)
            .background(Self.background)
            .flashCrowd(FlashCrowd(start: 5, duration: 12, factor: 15))
            .write(to: path)
        XCTAssertTrue(truth.hasFlashCrowd)
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 0, "a flash crowd whose handshakes complete is no attack")
        XCTAssertEqual(analysis.events("scan").count, 0)
    }

    func testBackgroundAloneRaisesNothing() throws {
        let workspace = try Workspace()
        let path = workspace.path("quiet.pcap")
        try Scenario(seed: 31, duration: 30).background(Background(rate: 800, clientCount: 4000)).write(to: path)
        let analysis = try Synwatch.analyze([path])
        XCTAssertTrue(analysis.events.isEmpty, "events on benign traffic: \(analysis.events.map(\.fields))")
    }

    func testVerticalScanIsANoticeNotAnAttack() throws {
        let workspace = try Workspace()
        let path = workspace.path("scan.pcap")
        let truth = try Scenario(seed: 32, duration: 15)
            .background(Self.background)
            .scan(Scan(.vertical(ports: 1...1000), rate: 800, start: 4))
            .write(to: path)
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 0)
        let scans = analysis.events("scan")
        XCTAssertEqual(scans.count, 1)
        XCTAssertEqual(scans.first?.fields["source"] as? String, truth.scans[0].source.description)
        XCTAssertEqual(scans.first?.victim, truth.scans[0].target?.description)
    }

    func testHorizontalScanIsANoticeNotAnAttack() throws {
        let workspace = try Workspace()
        let path = workspace.path("sweep.pcap")
        let truth = try Scenario(seed: 33, duration: 15)
            .background(Self.background)
            .scan(Scan(.horizontal(port: 22, targets: 200), rate: 600, start: 4))
            .write(to: path)
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 0)
        let scans = analysis.events("scan")
        XCTAssertEqual(scans.count, 1)
        XCTAssertEqual(scans.first?.fields["source"] as? String, truth.scans[0].source.description)
        XCTAssertNil(scans.first?.victim, "a sweep has no single victim")
    }

    func testBackscatterIsANoticeNotAnAttack() throws {
        let workspace = try Workspace()
        let path = workspace.path("backscatter.pcap")
        let truth = try Scenario(seed: 34, duration: 15)
            .background(Self.background)
            .backscatter(Backscatter(rate: 400, start: 4, duration: 8))
            .write(to: path)
        let analysis = try Synwatch.analyze([path])
        XCTAssertEqual(analysis.attackStarts.count, 0)
        let notices = analysis.events("backscatter")
        XCTAssertEqual(Set(notices.compactMap(\.victim)), Set(truth.backscatter.map(\.address.description)))
        for notice in notices {
            XCTAssertGreaterThanOrEqual(notice.number("distinct_sources") ?? 0, 8)
        }
    }

    func testMixedCaptureFindsTheFloodAndOnlyTheFlood() throws {
        let workspace = try Workspace()
        let path = workspace.path("mixed.pcap")
        let truth = try Scenario(seed: 35, duration: 40)
            .background(Self.background)
            .scan(Scan(.vertical(ports: 1...500), rate: 500, start: 3))
            .flood(Flood(.randomSource, rate: 2500, start: 8, duration: 8))
            .backscatter(Backscatter(rate: 300, start: 20, duration: 6))
            .flashCrowd(FlashCrowd(start: 30, duration: 6, factor: 12))
            .write(to: path)
        let analysis = try Synwatch.analyze([path])
        try assertFinds(truth.floods[0], in: analysis, scans: 1)
        XCTAssertEqual(analysis.events("scan").first?.fields["source"] as? String, truth.scans[0].source.description)
        XCTAssertGreaterThanOrEqual(analysis.events("backscatter").count, 1)
    }

    func testSameCaptureGivesTheSameEvents() throws {
        let workspace = try Workspace()
        let path = workspace.path("repeat.pcap")
        try Scenario(seed: 36, duration: 15)
            .background(Self.background)
            .flood(Flood(.distributed, rate: 1500, start: 4, duration: 6, bots: 30))
            .write(to: path)
        let first = try Synwatch.run(["analyze", "--json", path])
        let second = try Synwatch.run(["analyze", "--json", path])
        XCTAssertEqual(first.status, 0)
        XCTAssertEqual(first.standardOutput, second.standardOutput)
    }

    func testSeveralFilesAreOneCapture() throws {
        let workspace = try Workspace()
        let whole = workspace.path("whole.pcap")
        try Scenario(seed: 37, duration: 16)
            .background(Self.background)
            .flood(Flood(.randomSource, rate: 2000, start: 5, duration: 6))
            .write(to: whole)
        // The same traffic split in two files (before and from the flood's middle) gives one attack.
        let split = try CaptureSplitter(whole).split(
            at: 1_735_689_608,
            into: workspace.path("a.pcap"),
            workspace.path("b.pcap")
        )
        let analysis = try Synwatch.analyze(split)
        XCTAssertEqual(analysis.attackStarts.count, 1)
        XCTAssertEqual(analysis.events("attack_end").count, 1)
    }

    // MARK: Checks

    private func checkFlood(_ flood: Flood, seed: UInt64, duration: Double = 25, maximumLatency: Double = 0.3) throws {
        let workspace = try Workspace()
        let path = workspace.path("flood.pcap")
        let truth = try Scenario(seed: seed, duration: duration)
            .background(Self.background)
            .flood(flood)
            .write(to: path)
        try assertFinds(truth.floods[0], in: try Synwatch.analyze([path]), maximumLatency: maximumLatency)
    }

    /// Exactly one attack, on the flood's service, of its kind, starting within `maximumLatency` of its first SYN,
    /// ending after its last one, with updates and end carrying the same id.
    private func assertFinds(
        _ flood: FloodTruth,
        in analysis: Analysis,
        context: String = "",
        maximumLatency: Double = 0.3,
        scans: Int = 0,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let starts = analysis.attackStarts
        XCTAssertEqual(starts.count, 1, "attacks \(context): \(starts.map(\.fields))", file: file, line: line)
        let start = try XCTUnwrap(starts.first, file: file, line: line)
        XCTAssertEqual(start.victim, flood.victim.description, context, file: file, line: line)
        XCTAssertEqual(start.port, Int(flood.port), context, file: file, line: line)
        XCTAssertEqual(start.kind, flood.kind.rawValue, context, file: file, line: line)
        XCTAssertGreaterThanOrEqual(start.time, flood.start, context, file: file, line: line)
        XCTAssertLessThanOrEqual(
            start.time - flood.start,
            maximumLatency + 1e-6,
            "latency \(context)",
            file: file,
            line: line
        )
        let ends = analysis.events("attack_end").filter { $0.attackID == start.attackID }
        XCTAssertEqual(ends.count, 1, context, file: file, line: line)
        if let end = ends.first { XCTAssertGreaterThanOrEqual(end.time, flood.end, context, file: file, line: line) }
        for update in analysis.events("attack_update") {
            XCTAssertEqual(update.attackID, start.attackID, context, file: file, line: line)
        }
        XCTAssertEqual(analysis.events("scan").count, scans, context, file: file, line: line)
    }
}

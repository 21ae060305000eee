import Foundation
import SynwatchTrafficGen
import XCTest

/// Every figure `synwatch analyze --json` reports, checked against the ground truth of a generated capture: the
/// generator's ledger of every SYN packet and attempt (when it completed, was refused or reset), per service.
///
/// Each event is checked against what the ledger says for the same span, within the bounds of `FigureBounds`,
/// and every event of an attack against the invariants that hold whatever the traffic.
final class FiguresGroundTruthTests: XCTestCase {
    /// Background over which every flood runs: a busy service that completes its handshakes.
    static let background = Background(rate: 300, clientCount: 1500)

    func testSpoofedStorm() throws {
        try check(Flood(.randomSource, rate: 2_000, start: 5, duration: 8), seed: 101, sampled: false)
    }

    /// 20,000 SYN/s: sampled (1 in 8 attempts tracked). 3 s, so the 65,536 spoofed addresses never repeat.
    func testSpoofedStormUnderSampling() throws {
        try check(Flood(.randomSource, rate: 20_000, start: 5, duration: 3), seed: 102, sampled: true)
    }

    /// 300 SYN/s among clients completing 300 a second: hidden by their completions when they mature, the attempts
    /// are judged at their retransmission deadline, 3.5 s later; the attack starts and ends where the flood did.
    func testSpoofedFloodJudgedAtItsDeadline() throws {
        try check(Flood(.randomSource, rate: 300, start: 5, duration: 8), seed: 107, sampled: false)
    }

    /// 40 bots, each SYN retransmitted after 1 s and 3 s: about 3,000 SYN packets a second, not sampled.
    func testBotnet() throws {
        try check(Flood(.distributed, rate: 1_000, start: 5, duration: 8, bots: 40), seed: 103, sampled: false)
    }

    /// 200 bots at 8,000 attempts a second (24,000 SYN packets with the retransmissions): sampled.
    func testBotnetUnderSampling() throws {
        try check(Flood(.distributed, rate: 8_000, start: 5, duration: 4, bots: 200), seed: 104, sampled: true)
    }

    func testSingleSource() throws {
        try check(Flood(.singleSource, rate: 1_500, start: 5, duration: 8), seed: 105, sampled: false)
    }

    func testSingleSourceUnderSampling() throws {
        try check(Flood(.singleSource, rate: 12_000, start: 5, duration: 4), seed: 106, sampled: true)
    }

    // MARK: Checks

    /// Generates the scenario, analyses it, and checks every event of the flood's service.
    private func check(_ flood: Flood, seed: UInt64, sampled: Bool) throws {
        let workspace = try Workspace()
        let path = workspace.path("figures.pcap")
        let ledger = TrafficLedger()
        let truth = try Scenario(seed: seed, duration: flood.start + flood.duration + 6)
            .background(Self.background)
            .flood(flood)
            .write(to: path, ledger: ledger)
        let floodTruth = try XCTUnwrap(truth.floods.first)
        // An update every second, so every figure is checked through the attack, not only at its start and end.
        let configuration = workspace.path("updates.yaml")
        try "detection:\n  update_interval: 1s\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        let analysis = try Synwatch.analyze([path], extra: ["--config", configuration])
        let service = TrafficLedger.Service(floodTruth.victim, floodTruth.port)
        let events = analysis.events.filter { $0.victim == service.address.description && $0.port == Int(service.port) }
        let starts = events.filter { $0.type == "attack_start" }
        XCTAssertEqual(starts.count, 1, "attacks: \(analysis.attackStarts.map(\.fields))")
        XCTAssertEqual(starts.first?.kind, floodTruth.kind.rawValue)
        let report = FigureReport(ledger: ledger, service: service, flood: floodTruth)
        for event in events { report.check(event, fastest: events.filter { $0.time <= event.time }) }
        if let end = events.first(where: { $0.type == "attack_end" }) {
            report.checkSummary(end, of: events.filter { $0.attackID == end.attackID })
        } else {
            XCTFail("no attack_end")
        }
        let peak = events.last?.number("peak_syn_per_s") ?? 0
        XCTAssertEqual(
            FigureBounds.samplingShift(forSynPerSecond: peak) > 0,
            sampled,
            "sampling at a peak of \(peak) SYN/s"
        )
        print(report.lines.joined(separator: "\n"))
    }
}

/// How far each figure may be from the truth, and why.
enum FigureBounds {
    /// The step of the windows, and where a service's learnt completion grace may lie (floor, ceiling): the
    /// window an event covers is shifted back by the grace, which the operator does not see, so a figure is
    /// checked against the truth over every grace that can be.
    static let step: Int64 = 50_000_000
    static let graceFloor: Int64 = 50_000_000
    static let graceCeiling: Int64 = 1_000_000_000
    /// Grace is counted in whole centiseconds.
    static let graceGranularity: Int64 = 10_000_000
    /// Rates and ratios are printed with two (three) decimals; a grace learnt anew between the SYNs of one window
    /// moves its edges by a few hundredths of a second: 1 % of the rate, and 2 per second.
    static let rateRelative = 0.01
    static let rateAbsolute = 2.0
    static let ratioAbsolute = 0.005
    /// An attack's start and end are told to the step its SYNs matured in, less the grace: two steps either way.
    static let edge = 0.1
    /// Under sampling (1 in 2^k attempts tracked by handshake, each counting 2^k) the half-open count of a window of N
    /// attempts is binomial: its standard deviation is sqrt(N (2^k - 1)). Four of them, so a test never fails by
    /// chance (p < 1e-4 per event).
    static let samplingDeviations = 4.0
    /// A random-source storm is sampled by client instead: one client in 2^k is kept and its SYNs count 2^k, so a
    /// count of N SYNs (or N distinct sources) is off by the same binomial deviation, sqrt(N (2^k - 1)).
    static func clientSampling(_ count: Int, shift: Int, kind: FloodKind) -> Double {
        guard kind == .randomSource else { return 0 }
        return samplingDeviations * (Double(count) * Double((1 << shift) - 1)).squareRoot()
    }
    /// HyperLogLog with 128 registers per client level (`LeveledHyperLogLog`). Sampled by client at shift k, the
    /// levels k and up count: each holds half the clients of the one before, the last all the rest, and the standard
    /// error is 1.04 / sqrt(128) × sqrt(Σ share²): 5.3 % unsampled, 9.2 % at shift 7. distinct_sources is the
    /// difference of two estimates (all sources, and those that completed): each may be off by 3 standard errors.
    static func hyperLogLogRelative(shift: Int, kind: FloodKind) -> Double {
        let levels = kind == .randomSource ? 7 - shift : 7
        let shares = (0..<levels).map { 1 / Double(2 << $0) } + [1 / Double(1 << levels)]
        return 3 * 1.04 / 128.0.squareRoot() * shares.map { $0 * $0 }.reduce(0, +).squareRoot()
    }
    /// The sources window: two epochs of 5 s, so an event covers from the start of the previous epoch.
    static let epoch: Int64 = 5_000_000_000
    /// The engine's sampling: at most this shift, while keeping 2,000 tracked attempts a second.
    static func samplingShift(forSynPerSecond rate: Double) -> Int {
        var shift = 0
        while shift < 7, rate / Double(1 << (shift + 1)) >= 2_000 { shift += 1 }
        return shift
    }
}

/// Checks events of one service against the ledger, and keeps a line per event for the log.
final class FigureReport {
    let ledger: TrafficLedger
    let service: TrafficLedger.Service
    let flood: FloodTruth
    private(set) var lines: [String] = []
    /// Clients whose handshakes complete, listed as top sources (none may be).
    private(set) var innocentListings = 0
    let file: StaticString
    let line: UInt

    init(
        ledger: TrafficLedger,
        service: TrafficLedger.Service,
        flood: FloodTruth,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        self.ledger = ledger
        self.service = service
        self.flood = flood
        self.file = file
        self.line = line
    }

    /// The event's capture time in ns, on its step.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        Int64((seconds / 0.05).rounded()) * FigureBounds.step
    }

    /// Every grace the service may have, in centiseconds.
    static var graces: [Int64] {
        Array(
            stride(
                from: FigureBounds.graceFloor,
                through: FigureBounds.graceCeiling,
                by: Int(FigureBounds.graceGranularity)
            )
        )
    }

    /// The truth of the rate window at `time`, for each possible grace: SYN packets, attempts, completed attempts and
    /// half-open attempts (neither completed nor refused by `time`) of the matured steps.
    struct Window {
        var synPackets: Int
        var attempts: Int
        var completed: Int
        var halfOpen: Int
    }

    func windows(at time: Int64) -> [Window] {
        let earliest = time - 1_000_000_000 - FigureBounds.graceCeiling
        let attempts = Array(ledger.attempts(on: service, from: earliest, until: time))
        return Self.graces.map { grace in
            let from = time - 1_000_000_000 - grace
            let until = time - grace
            var window = Window(
                synPackets: ledger.synPacketCount(to: service, from: from, until: until),
                attempts: 0,
                completed: 0,
                halfOpen: 0
            )
            for attempt in attempts where attempt.syn >= from && attempt.syn < until {
                window.attempts += 1
                if let completed = attempt.completed, completed <= time { window.completed += 1 }
                if attempt.isHalfOpen(at: time) { window.halfOpen += 1 }
            }
            return window
        }
    }

    /// The truth of the sources window at `time`: sources with a SYN in it, less those that completed in it, at most
    /// the attempts that did not close in it.
    func distinctSources(at time: Int64) -> (estimateOf: Int, all: Int, completers: Int) {
        let from = (time / FigureBounds.epoch - 1) * FigureBounds.epoch
        let attempts = ledger.attempts(on: service, from: from - 10_000_000_000, until: time)
        var all = Set<NetAddress>()
        var completers = Set<NetAddress>()
        var opened = 0
        var closed = 0
        for attempt in attempts {
            if attempt.syn >= from {
                all.insert(attempt.source)
                opened += 1
            }
            if let completed = attempt.completed, completed >= from, completed < time {
                completers.insert(attempt.source)
                closed += 1
            } else if let refused = attempt.refused, refused >= from, refused < time {
                closed += 1
            }
        }
        return (min(max(0, all.count - completers.count), max(0, opened - closed)), all.count, completers.count)
    }

    /// Checks one event; returns the sampling shift its rate implies.
    /// - Parameter fastest: the events up to this one: the sampling they imply may still be in force.
    @discardableResult
    func check(_ event: AnalyzedEvent, fastest: [AnalyzedEvent]) -> Int {
        let time = Self.nanoseconds(event.time)
        let label = "\(event.type) at \(String(format: "%.2f", event.time - (flood.start - 5)))"
        guard let syn = event.number("syn_per_s"), let halfOpen = event.number("half_open_per_s"),
            let ratio = event.number("completion_ratio"), let distinct = event.number("distinct_sources")
        else {
            XCTFail("\(label): a figure is missing: \(event.fields)", file: file, line: line)
            return 0
        }
        let truths = windows(at: time)
        let shift = FigureBounds.samplingShift(
            forSynPerSecond: 1.2 * fastest.map { $0.number("peak_syn_per_s") ?? $0.number("syn_per_s") ?? 0 }.max()!
        )
        let relative = FigureBounds.rateRelative

        // Invariants.
        XCTAssertLessThanOrEqual(halfOpen, syn + 0.01, "\(label): half-open above SYNs", file: file, line: line)
        let synsSoFar = ledger.synPacketCount(to: service, from: 0, until: time + 1)
        XCTAssertLessThanOrEqual(Int(distinct), synsSoFar, "\(label): more sources than SYNs", file: file, line: line)
        let top = (event.fields["top_sources"] as? [[String: Any]]) ?? []
        let windowStart = (time / FigureBounds.epoch - 1) * FigureBounds.epoch
        for entry in top {
            let address = NetAddress(entry["address"] as? String ?? "")
            let count = (entry["half_open"] as? NSNumber)?.intValue ?? -1
            let real = address.map {
                ledger.synPacketCount(to: service, from: windowStart, until: time + 1, source: $0)
            }
            XCTAssertLessThanOrEqual(
                count,
                real ?? -1,
                "\(label): top source \(entry) above its real SYNs",
                file: file,
                line: line
            )
        }
        // Sources listed are flooders: none of their attempts completed by then (a hook may block them). Clients whose
        // completions the source table misses under sampling are known by their ACKs. A client slower than the grace
        // whose attempts are all on their way is half-open for now, as the field says.
        if flood.kind != .randomSource, event.type != "attack_end" {
            let completers = Set(
                (ledger.attempts[service] ?? []).filter { ($0.completed ?? .max) <= time }.map(\.source)
            )
            for entry in top {
                let address = NetAddress(entry["address"] as? String ?? "")
                let innocent = address.map(completers.contains) ?? true
                if innocent { innocentListings += 1 }
                XCTAssertFalse(innocent, "\(label): a client that completes listed: \(entry)", file: file, line: line)
            }
        }
        if flood.kind == .randomSource, event.kind == "random-source" {
            XCTAssertTrue(top.isEmpty, "\(label): a spoofed storm with top sources \(top)", file: file, line: line)
        }

        // syn_per_s: the window's SYN packets, exact but for the grace and for sampling by client.
        let synRange = (truths.map(\.synPackets).min()!, truths.map(\.synPackets).max()!)
        let synSampling = FigureBounds.clientSampling(synRange.1, shift: shift, kind: flood.kind)
        XCTAssertGreaterThanOrEqual(
            syn,
            Double(synRange.0) * (1 - relative) - FigureBounds.rateAbsolute - synSampling,
            "\(label): syn_per_s \(syn), truth \(synRange)",
            file: file,
            line: line
        )
        XCTAssertLessThanOrEqual(
            syn,
            Double(synRange.1) * (1 + relative) + FigureBounds.rateAbsolute + synSampling,
            "\(label): syn_per_s \(syn), truth \(synRange)",
            file: file,
            line: line
        )

        // half_open_per_s: exact unsampled; within the binomial error of the sample when sampled.
        let halfRange = (truths.map(\.halfOpen).min()!, truths.map(\.halfOpen).max()!)
        let sampling =
            FigureBounds.samplingDeviations
            * (Double(truths.map(\.attempts).max()!) * Double((1 << shift) - 1)).squareRoot()
        XCTAssertGreaterThanOrEqual(
            halfOpen,
            Double(halfRange.0) * (1 - relative) - FigureBounds.rateAbsolute - sampling,
            "\(label): half_open_per_s \(halfOpen), truth \(halfRange) ± \(sampling)",
            file: file,
            line: line
        )
        XCTAssertLessThanOrEqual(
            halfOpen,
            Double(halfRange.1) * (1 + relative) + FigureBounds.rateAbsolute + sampling,
            "\(label): half_open_per_s \(halfOpen), truth \(halfRange) ± \(sampling)",
            file: file,
            line: line
        )

        // completion_ratio: completed / attempts of the same steps.
        let ratios = truths.map { $0.attempts > 0 ? Double($0.completed) / Double($0.attempts) : 1 }
        let attemptsLow = Double(max(1, truths.map(\.attempts).min()!))
        let ratioSampling = sampling / attemptsLow
        XCTAssertGreaterThanOrEqual(
            ratio,
            ratios.min()! - FigureBounds.ratioAbsolute - ratioSampling,
            "\(label): completion_ratio \(ratio), truth \(ratios.min()!)…\(ratios.max()!)",
            file: file,
            line: line
        )
        XCTAssertLessThanOrEqual(
            ratio,
            ratios.max()! + FigureBounds.ratioAbsolute + ratioSampling,
            "\(label): completion_ratio \(ratio), truth \(ratios.min()!)…\(ratios.max()!)",
            file: file,
            line: line
        )

        // distinct_sources: the difference of two HyperLogLog estimates.
        let sources = distinctSources(at: time)
        let hllError =
            FigureBounds.hyperLogLogRelative(shift: shift, kind: flood.kind) * Double(sources.all + sources.completers)
            + 2
            + FigureBounds.clientSampling(sources.all, shift: shift, kind: flood.kind)
        XCTAssertLessThanOrEqual(
            abs(distinct - Double(sources.estimateOf)),
            hllError,
            "\(label): distinct_sources \(Int(distinct)), truth \(sources)",
            file: file,
            line: line
        )

        lines.append(
            "\(label): syn \(syn) [\(synRange.0)…\(synRange.1)] half-open \(halfOpen) [\(halfRange.0)…\(halfRange.1)] ±\(Int(sampling)) "
                + "ratio \(ratio) [\(String(format: "%.3f…%.3f", ratios.min()!, ratios.max()!))] distinct \(Int(distinct)) "
                + "[\(sources.estimateOf) of \(sources.all)-\(sources.completers) ±\(Int(hllError))] top \(top.count) "
                + top.prefix(3).map { "\($0["address"] ?? "")=\($0["half_open"] ?? "")" }.joined(separator: ",")
        )
        return shift
    }

    /// Peaks and totals of an attack's end against every figure reported during it and the truth.
    func checkSummary(_ end: AnalyzedEvent, of events: [AnalyzedEvent]) {
        guard let peakSyn = end.number("peak_syn_per_s"), let peakHalf = end.number("peak_half_open_per_s"),
            let peakDistinct = end.number("peak_distinct_sources"), let total = end.number("total_syns"),
            let start = events.first(where: { $0.type == "attack_start" })
        else { return XCTFail("attack_end lacks a summary field: \(end.fields)", file: file, line: line) }
        for event in events {
            XCTAssertGreaterThanOrEqual(
                peakSyn,
                event.number("syn_per_s") ?? 0,
                "peak_syn_per_s below \(event.type)",
                file: file,
                line: line
            )
            XCTAssertGreaterThanOrEqual(
                peakHalf,
                event.number("half_open_per_s") ?? 0,
                "peak_half_open_per_s below \(event.type)",
                file: file,
                line: line
            )
            XCTAssertGreaterThanOrEqual(
                peakDistinct,
                event.number("distinct_sources") ?? 0,
                "peak_distinct_sources below \(event.type)",
                file: file,
                line: line
            )
        }
        let shift = FigureBounds.samplingShift(forSynPerSecond: 1.2 * peakSyn)
        // The most SYN packets any second (on the centisecond) held.
        let startTime = Self.nanoseconds(start.time)
        let endTime = Self.nanoseconds(end.time)
        var truePeak = 0
        var from = startTime - 2_000_000_000
        while from < endTime {
            truePeak = max(truePeak, ledger.synPacketCount(to: service, from: from, until: from + 1_000_000_000))
            from += FigureBounds.graceGranularity
        }
        XCTAssertLessThanOrEqual(
            peakSyn,
            Double(truePeak) * (1 + FigureBounds.rateRelative) + FigureBounds.rateAbsolute
                + FigureBounds.clientSampling(truePeak, shift: shift, kind: flood.kind),
            "peak_syn_per_s \(peakSyn) above the busiest second \(truePeak)",
            file: file,
            line: line
        )
        XCTAssertGreaterThanOrEqual(
            peakSyn,
            Double(truePeak) * 0.9 - FigureBounds.clientSampling(truePeak, shift: shift, kind: flood.kind),
            "peak_syn_per_s \(peakSyn) far below the busiest second \(truePeak)",
            file: file,
            line: line
        )
        // total_syns: from the window that revealed the attack (1 s and the grace before the start) to the end.
        let fewest = ledger.synPacketCount(
            to: service,
            from: startTime - 1_000_000_000 - FigureBounds.graceFloor,
            until: endTime + 1
        )
        let most = ledger.synPacketCount(
            to: service,
            from: startTime - 1_000_000_000 - FigureBounds.graceCeiling,
            until: endTime + 1
        )
        let totalSampling = Int(FigureBounds.clientSampling(most, shift: shift, kind: flood.kind))
        XCTAssertGreaterThanOrEqual(
            Int(total),
            fewest - totalSampling,
            "total_syns \(Int(total)), truth \(fewest)…\(most)",
            file: file,
            line: line
        )
        XCTAssertLessThanOrEqual(
            Int(total),
            most + totalSampling,
            "total_syns \(Int(total)), truth \(fewest)…\(most)",
            file: file,
            line: line
        )
        // start and duration: the flood's first SYNs and its last new ones, to a step and the grace's rounding; a
        // stack's SYNs come again after a second, at more than half the flood's peak rate (the first and the second
        // retransmissions of earlier attempts together), and the attack goes on while they do.
        guard let attackStart = end.number("start"), let duration = end.number("duration") else {
            return XCTFail("attack_end lacks start or duration: \(end.fields)", file: file, line: line)
        }
        let retransmitted = flood.synPackets > flood.attempts
        let span = "start \(attackStart), end \(attackStart + duration), flood \(flood.start)…\(flood.end)"
        XCTAssertEqual(attackStart, flood.start, accuracy: FigureBounds.edge, span, file: file, line: line)
        XCTAssertGreaterThanOrEqual(attackStart + duration, flood.end - FigureBounds.edge, span, file: file, line: line)
        XCTAssertLessThanOrEqual(
            attackStart + duration,
            flood.end + FigureBounds.edge + (retransmitted ? 1 : 0),
            span,
            file: file,
            line: line
        )
        lines.append("clients that complete listed as top sources: \(innocentListings)")
        lines.append(
            "end: peak syn \(peakSyn) (busiest second \(truePeak)) half-open \(peakHalf) distinct \(Int(peakDistinct)) total \(Int(total)) [\(fewest)…\(most)] of flood \(flood.synPackets)"
        )
    }
}

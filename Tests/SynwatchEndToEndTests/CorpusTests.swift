import Foundation
import SynwatchTestSupport
import XCTest

/// `synwatch analyze --json` on every capture of the Zeek test-suite corpus in ../shared/corpus/zeek-traces:
/// real traffic of many protocols and odd files, none of them a SYN flood.
final class CorpusTests: XCTestCase {
    /// The corpus beside this checkout.
    static var folder: URL {
        SharedCaptures.folder.deletingLastPathComponent().appendingPathComponent("corpus/zeek-traces")
    }

    /// The longest one analysis may take (the slowest takes about 0.25 s in a debug build on an idle machine).
    static let timeLimit: TimeInterval = 60
    /// Analyses run side by side: most are small files, so process start matters as much as the engine.
    static let parallelRuns = max(2, ProcessInfo.processInfo.activeProcessorCount * 2)

    /// What one analysis ended with.
    struct Outcome {
        var file: String
        var status: Int32 = 0
        var killedBySignal = false
        var timedOut = false
        var standardError = ""
        /// `attack_start` events as "victim port kind".
        var attacks = [String]()
        var unreadableOutput: String?
    }

    /// Every capture: no attack, no crash, no hang, and a refusal is one line that says why.
    func testEveryCaptureAnalysesWithoutAttackCrashOrHang() throws {
        let folder = Self.folder
        try XCTSkipUnless(
            FileManager.default.fileExists(atPath: folder.path),
            "the corpus \(folder.path) is not beside this checkout"
        )
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0 != "COPYING" && !$0.hasPrefix(".") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 768, "captures in \(folder.path)")

        let results = OutcomeList(count: files.count)
        DispatchQueue.concurrentPerform(iterations: Self.parallelRuns) { _ in
            while let index = results.nextIndex() {
                results.store(
                    Self.analyze(folder.appendingPathComponent(files[index]).path, file: files[index]),
                    at: index
                )
            }
        }
        let outcomes = results.outcomes

        let attacks = outcomes.flatMap { outcome in outcome.attacks.map { "\(outcome.file): \($0)" } }
        XCTAssertEqual(attacks, [], "attack_start in captures that hold no flood:\n" + attacks.joined(separator: "\n"))
        let crashes = outcomes.filter(\.killedBySignal).filter { !$0.timedOut }
        XCTAssertEqual(crashes.map(\.file), [], "killed by a signal")
        let hangs = outcomes.filter(\.timedOut)
        XCTAssertEqual(hangs.map(\.file), [], "still running after \(Int(Self.timeLimit)) s")
        for outcome in outcomes where outcome.status != 0 && !outcome.killedBySignal {
            let lines = outcome.standardError.split(separator: "\n", omittingEmptySubsequences: false)
            let prefix = "Error: \(folder.path)/\(outcome.file): "
            XCTAssertTrue(
                lines.count == 2 && lines[1].isEmpty && lines[0].hasPrefix(prefix) && lines[0].count > prefix.count,
                "\(outcome.file): exit \(outcome.status) must say why in one line, said: \(outcome.standardError)"
            )
        }
        for outcome in outcomes {
            if let unreadable = outcome.unreadableOutput { XCTFail("\(outcome.file): \(unreadable)") }
        }
        let refusals = outcomes.filter { $0.status != 0 && !$0.killedBySignal }
        print("corpus: \(outcomes.count) captures, \(refusals.count) refused")
        for refusal in refusals { print("  refused " + refusal.standardError.trimmingCharacters(in: .newlines)) }
    }

    /// Runs `synwatch analyze --json` on one file, killed after the time limit.
    static func analyze(_ path: String, file: String) -> Outcome {
        var outcome = Outcome(file: file)
        let result: CommandResult
        do {
            result = try ChildProcess.run([Synwatch.executable.path, "analyze", "--json", path], timeLimit: timeLimit)
        } catch {
            outcome.unreadableOutput = "could not start synwatch: \(error)"
            return outcome
        }
        outcome.status = result.status
        outcome.killedBySignal = result.killedBySignal
        outcome.timedOut = result.timedOut
        outcome.standardError = result.errors
        for line in result.output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                outcome.unreadableOutput = "not a JSON line: \(line.prefix(200))"
                continue
            }
            if object["event"] as? String == "attack_start" {
                let event = AnalyzedEvent(object)
                outcome.attacks.append(
                    "\(event.victim ?? "?") port \(event.port.map(String.init) ?? "any") \(event.kind ?? "?")"
                )
            }
        }
        return outcome
    }
}

/// The outcomes of the parallel runs, and the next file to give out.
private final class OutcomeList: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var stored: [CorpusTests.Outcome?]

    init(count: Int) { stored = Array(repeating: nil, count: count) }

    func nextIndex() -> Int? {
        lock.withLock {
            guard next < stored.count else { return nil }
            defer { next += 1 }
            return next
        }
    }

    func store(_ outcome: CorpusTests.Outcome, at index: Int) { lock.withLock { stored[index] = outcome } }

    var outcomes: [CorpusTests.Outcome] { lock.withLock { stored.compactMap { $0 } } }
}

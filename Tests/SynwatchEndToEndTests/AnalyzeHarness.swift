import Foundation
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// Runs the built `synwatch` binary and reads what it prints, as an operator or a script would.
enum Synwatch {
    /// The `synwatch` built beside this test executable (the test target depends on it).
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("synwatch")
    }

    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// Runs `synwatch` with `arguments`, optionally feeding `input` to its standard input.
    static func run(_ arguments: [String], input: URL? = nil) throws -> Result {
        let result = try ChildProcess.run([executable.path] + arguments, input: input.map { .file($0) } ?? .empty)
        return Result(status: result.status, standardOutput: result.output, standardError: result.errors)
    }

    /// `synwatch analyze --json` on `files`: the events, then the summary.
    static func analyze(_ files: [String], extra: [String] = []) throws -> Analysis {
        let result = try run(["analyze", "--json"] + extra + files)
        guard result.status == 0 else {
            throw AnalysisFailure(message: "exit \(result.status): \(result.standardError)")
        }
        let objects = try result.standardOutput.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let summary = try XCTUnwrap(objects.last, "no summary line")
        XCTAssertEqual(summary["event"] as? String, "summary")
        return Analysis(events: objects.dropLast().map(AnalyzedEvent.init), summary: summary)
    }

    struct AnalysisFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// The JSON lines of one analysis.
struct Analysis {
    var events: [AnalyzedEvent]
    var summary: [String: Any]

    func events(_ type: String) -> [AnalyzedEvent] { events.filter { $0.type == type } }
    var attackStarts: [AnalyzedEvent] { events("attack_start") }
}

/// One event line, with typed access to the fields the tests compare.
struct AnalyzedEvent {
    var fields: [String: Any]

    init(_ fields: [String: Any]) { self.fields = fields }

    var type: String { fields["event"] as? String ?? "" }
    var time: Double { (fields["time"] as? NSNumber)?.doubleValue ?? .nan }
    var victim: String? { fields["victim"] as? String }
    var port: Int? { (fields["port"] as? NSNumber)?.intValue }
    var kind: String? { fields["kind"] as? String }
    var attackID: Int? { (fields["attack_id"] as? NSNumber)?.intValue }
    func number(_ key: String) -> Double? { (fields[key] as? NSNumber)?.doubleValue }
}

/// A temporary folder for the captures of one test, removed afterwards.
final class Workspace {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("synwatch-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The real attack captures in ../shared/captures, when this checkout has them beside it.
enum SharedCaptures {
    static var folder: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/captures")
    }

    static func path(_ name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try XCTSkipUnless(FileManager.default.fileExists(atPath: url.path), "\(url.path) is not there")
        return url.path
    }
}

/// Splits a little-endian classic pcap file in two at a capture time, keeping the header in both.
struct CaptureSplitter {
    let data: Data

    init(_ path: String) throws {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// Writes the records before `seconds` to `first` and the rest to `second`; returns both paths.
    func split(at seconds: UInt32, into first: String, _ second: String) throws -> [String] {
        let bytes = [UInt8](data)
        precondition(bytes.count >= 24 && bytes[0] == 0xD4 && bytes[1] == 0xC3, "little-endian pcap expected")
        func u32(_ offset: Int) -> UInt32 {
            UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
        }
        var before = Data(bytes[0..<24])
        var after = Data(bytes[0..<24])
        var offset = 24
        while offset + 16 <= bytes.count {
            let length = Int(u32(offset + 8))
            let record = bytes[offset..<(offset + 16 + length)]
            if u32(offset) < seconds { before.append(contentsOf: record) } else { after.append(contentsOf: record) }
            offset += 16 + length
        }
        try before.write(to: URL(fileURLWithPath: first))
        try after.write(to: URL(fileURLWithPath: second))
        return [first, second]
    }
}

import Foundation
import Logging
import Synchronization
import SynwatchEngine
import SynwatchHooks
import SynwatchTestSupport
import SystemPackage
import Testing

/// One log record as a test reads it.
struct LogRecord: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: [String: String]
}

/// A swift-log handler that hands each record to an injected sink.
struct CapturingLogHandler: LogHandler {
    typealias Sink = @Sendable (LogRecord) -> Void

    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    let sink: Sink

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let own = event.metadata { merged.merge(own) { $1 } }
        let text = merged.mapValues(\.description)
        sink(LogRecord(level: event.level, message: event.message.description, metadata: text))
    }
}

/// The records a logger wrote, kept for a test.
final class LogCapture: Sendable {
    private let records = Mutex<[LogRecord]>([])

    /// A logger whose every record, at every level, lands here.
    var logger: Logger {
        Logger(label: "synwatchd.hooks") { _ in
            CapturingLogHandler { record in self.records.withLock { $0.append(record) } }
        }
    }

    var all: [LogRecord] { records.withLock { $0 } }

    /// The records with `message`.
    func records(_ message: String) -> [LogRecord] { all.filter { $0.message == message } }
}

/// A directory of its own for one test, removed when the test lets go of it.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("synwatch-hooks-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes an executable `/bin/sh` script called `name` with `body` and returns its path.
    ///
    /// The descriptor is close-on-exec: a child that another test forks meanwhile must not hold the script open
    /// for writing, or running it fails with ETXTBSY.
    func script(_ name: String, _ body: String) throws -> String {
        let file = "\(path)/\(name)"
        let descriptor = try FileDescriptor.open(
            file,
            .writeOnly,
            options: [.create, .truncate, .closeOnExec],
            permissions: [.ownerReadWriteExecute, .groupReadExecute, .otherReadExecute]
        )
        try descriptor.closeAfter { _ = try descriptor.writeAll("#!/bin/sh\n\(body)\n".utf8) }
        return file
    }

    /// The text of `name` in the directory, or `nil` when there is no such file.
    func read(_ name: String) -> String? { try? String(contentsOfFile: "\(path)/\(name)", encoding: .utf8) }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "\(path)/\(name)") }
}

/// A hook that records what it received: its standard input, its environment and its arguments, in files named
/// after the event and attack id in the directory given as its first argument, and a line per run in `runs`.
let recordingHook = """
    out=$1
    shift
    name="$SYNWATCH_EVENT.$SYNWATCH_ATTACK_ID"
    cat > "$out/$name.stdin"
    env > "$out/$name.env"
    printf '%s\\n' "$@" > "$out/$name.args"
    echo "$name" >> "$out/runs"
    """

/// Waits until `condition` holds, for at most `limit`; returns whether it did.
func eventually(within limit: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while !condition() {
        guard clock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return true
}

extension HookRunner {
    /// Waits until `runs` runs have begun and none is going on; returns whether that happened in time.
    func finished(runs: Int, within limit: Duration = .seconds(30)) async -> Bool {
        await eventually(within: limit) { counters.runs == runs && counters.running == 0 }
    }
}

/// Attack events shaped as the engine makes them.
enum Events {
    static let victim = IPAddress("198.18.0.2")!

    static let figures = VictimFigures(
        synPerSecond: 12_345.678,
        halfOpenPerSecond: 9_876.5,
        completionRatio: 0.0125,
        distinctSources: 3,
        topSources: [
            SourceCount(address: IPAddress("198.18.7.1")!, halfOpen: 5_000),
            SourceCount(address: IPAddress("2001:db8::7")!, halfOpen: 3_000),
            SourceCount(address: IPAddress("198.18.7.3")!, halfOpen: 1_000),
        ]
    )

    static func start(
        _ attackID: UInt64,
        victim: IPAddress = victim,
        port: UInt16? = 80,
        kind: FloodKind = .distributed,
        figures: VictimFigures = figures
    ) -> Event {
        Event(
            type: .attackStart,
            time: Timestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789),
            victim: victim,
            port: port,
            attackID: attackID,
            kind: kind,
            figures: figures
        )
    }

    static func update(_ attackID: UInt64) -> Event {
        var event = start(attackID)
        event.type = .attackUpdate
        event.time = Timestamp(seconds: 1_700_000_010)
        return event
    }

    static func end(_ attackID: UInt64) -> Event {
        var event = start(attackID)
        event.type = .attackEnd
        event.time = Timestamp(seconds: 1_700_000_042, nanoseconds: 500_000_000)
        event.summary = AttackSummary(
            start: Timestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789),
            duration: .seconds(42.376543211),
            peakSynPerSecond: 20_000.5,
            peakHalfOpenPerSecond: 15_000.25,
            peakDistinctSources: 4,
            totalSyns: 800_000,
            endReason: .quiet
        )
        return event
    }

    static let scan = Event(
        type: .scan,
        time: Timestamp(seconds: 1_700_000_001),
        victim: victim,
        scan: ScanFigures(source: IPAddress("198.18.9.9")!, distinctTargets: 40, distinctAddresses: 1, syns: 41)
    )

    static let backscatter = Event(
        type: .backscatter,
        time: Timestamp(seconds: 1_700_000_002),
        victim: victim,
        backscatter: BackscatterFigures(synAckPerSecond: 50, distinctSources: 12)
    )
}

/// The path of the example hook `name` in `packaging/hooks/`.
func exampleHook(_ name: String) -> String {
    var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)  // Tests/SynwatchHooksTests/Support.swift
    return (components + ["packaging", "hooks", Substring(name)]).joined(separator: "/")
}

/// Runs the example hook at `path` inside `namespace` with only `environment` and a PATH, as synwatchd would.
func runExampleHook(
    _ path: String,
    _ arguments: [String] = [],
    in namespace: NetworkNamespace,
    environment: [String: String]
) throws -> CommandResult {
    try namespace.run(
        [path] + arguments,
        environment: environment.merging(["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]) { $1 }
    )
}

/// The `NAME=value` lines of an `env` dump as a dictionary.
func environment(_ dump: String) -> [String: String] {
    var variables: [String: String] = [:]
    for line in dump.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        variables[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return variables
}

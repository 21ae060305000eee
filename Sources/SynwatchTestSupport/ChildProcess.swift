import Dispatch
import Foundation
import Glibc

/// What a finished command left: its exit status and what it wrote.
public struct CommandResult: Sendable {
    public var status: Int32
    /// Standard output; with standard error too when run with `mergingErrors`.
    public var output: String
    /// Standard error, unless merged into `output`.
    public var errors: String
    /// Whether a signal ended it (the time limit's, or another).
    public var killedBySignal: Bool
    /// Whether the time limit ended it.
    public var timedOut: Bool
}

/// The tests' child processes, started in one place: a program by path, or by name looked up on `PATH` by
/// `/usr/bin/env` (which execs into it, so the process is the program itself, for signals and journal `_PID`s).
///
/// Foundation's `Process` rather than swift-subprocess: the tests start children from synchronous code (availability
/// checks, initialisers, `deinit` clean-ups, synchronous XCTest cases) and keep long-running ones as handles beyond one
/// scope, which swift-subprocess's async, closure-scoped `run` does not offer.
public enum ChildProcess {
    /// Where a child's standard input comes from.
    public enum Input {
        /// `/dev/null`.
        case empty
        case pipe(Pipe)
        case file(URL)
    }

    /// Where a child's standard output or error goes.
    public enum Output {
        /// `/dev/null`.
        case discard
        /// The test's own.
        case inherit
        case pipe(Pipe)
        /// An existing file, written from its start.
        case file(String)
    }

    /// Starts `arguments` and returns the running process.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil: the test's.
    public static func start(
        _ arguments: [String],
        environment: [String: String]? = nil,
        input: Input = .empty,
        output: Output = .discard,
        errors: Output = .discard
    ) throws -> Process {
        let process = Process()
        if arguments[0].contains("/") {
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
        }
        if let environment { process.environment = environment }
        switch input {
        case .empty: process.standardInput = FileHandle.nullDevice
        case .pipe(let pipe): process.standardInput = pipe
        case .file(let url): process.standardInput = try FileHandle(forReadingFrom: url)
        }
        if let output = try handle(output) { process.standardOutput = output }
        if let errors = try handle(errors) { process.standardError = errors }
        try process.run()
        return process
    }

    /// Runs `arguments`, which must succeed, and returns what it wrote (standard output and error together).
    /// - Throws: `LabError` with that text when it exits with a status other than 0.
    @discardableResult
    public static func check(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let result = try run(arguments, environment: environment, mergingErrors: true)
        guard result.status == 0 else {
            throw LabError(command: arguments.joined(separator: " "), output: result.output)
        }
        return result.output
    }

    /// Runs `arguments` to its end and reads what it wrote.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil: the test's.
    ///   - mergingErrors: standard error into `output`, in the order written.
    ///   - timeLimit: seconds after which it is killed (SIGKILL); nil: none.
    public static func run(
        _ arguments: [String],
        environment: [String: String]? = nil,
        input: Input = .empty,
        mergingErrors: Bool = false,
        timeLimit: Double? = nil
    ) throws -> CommandResult {
        let output = Pipe()
        let errors = mergingErrors ? output : Pipe()
        let process = try start(
            arguments,
            environment: environment,
            input: input,
            output: .pipe(output),
            errors: .pipe(errors)
        )
        let finished = DispatchSemaphore(value: 0)
        let timedOut = Flag()
        if let timeLimit {
            let pid = process.processIdentifier
            DispatchQueue.global().async {
                if finished.wait(timeout: .now() + timeLimit) == .timedOut {
                    timedOut.set()
                    kill(pid, SIGKILL)
                }
            }
        }
        // Both pipes are read at once: a full one would block the child while the other is read.
        let errorData = Collected()
        let reading = DispatchGroup()
        if !mergingErrors {
            DispatchQueue.global().async(group: reading) {
                errorData.set(errors.fileHandleForReading.readDataToEndOfFile())
            }
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        reading.wait()
        process.waitUntilExit()
        finished.signal()
        return CommandResult(
            status: process.terminationStatus,
            output: String(decoding: outputData, as: UTF8.self),
            errors: String(decoding: errorData.get(), as: UTF8.self),
            killedBySignal: process.terminationReason == .uncaughtSignal,
            timedOut: timedOut.isSet
        )
    }

    /// What `Process` takes for `output`; nil: left as it is, the test's own.
    private static func handle(_ output: Output) throws -> Any? {
        switch output {
        case .discard: FileHandle.nullDevice
        case .inherit: nil
        case .pipe(let pipe): pipe
        case .file(let path): try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }
    }
}

/// Data handed from a reading thread.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func set(_ data: Data) { lock.withLock { self.data = data } }
    func get() -> Data { lock.withLock { data } }
}

/// A flag set from another thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// A command of a test's lab or fixture that failed, with what it said.
public struct LabError: Error, CustomStringConvertible {
    public var command: String
    public var output: String

    public init(command: String, output: String) {
        self.command = command
        self.output = output
    }

    public var description: String { "\(command): \(output)" }
}

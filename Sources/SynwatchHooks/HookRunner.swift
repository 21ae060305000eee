import Glibc
import Logging
import Synchronization
import SynwatchEngine
import SynwatchProtocol
import SynwatchSystem

/// What the hook runner did since it was created, for status and metrics.
public struct HookCounters: Sendable, Equatable {
    /// Runs begun: each spawned, or tried to.
    public var runs = 0
    /// Runs that exited with status 0.
    public var succeeded = 0
    /// Runs that did not succeed: a non-zero status, a signal, the time limit, the daemon's shutdown, or a program
    /// that could not be started.
    public var failures = 0
    /// Runs the time limit stopped, counted in `failures` too.
    public var timeouts = 0
    /// Events that ran no hook because `maxConcurrent` runs were going on, or because the daemon was stopping.
    public var dropped = 0
    /// Runs going on now.
    public var running = 0

    public init() {}

    /// The counters as status and metrics name them.
    public var contract: V1.Hooks {
        V1.Hooks(
            runs: runs,
            succeeded: succeeded,
            failures: failures,
            timeouts: timeouts,
            dropped: dropped,
            running: running
        )
    }
}

/// Runs the operator's command on attack events, at most once per attack and event type, without ever making the
/// caller wait: each run has a thread of its own, and an event that finds `maxConcurrent` runs going on is dropped,
/// counted and logged rather than queued.
///
/// A run gets the event's JSON object (exactly as `synwatch analyze --json` prints it) and a newline on standard
/// input, `Event.hookBaseEnvironment` and `Event.hookEnvironment` as its whole environment, standard output to
/// `/dev/null`, and standard error on a pipe whose first lines are logged. It is spawned with `posix_spawn` (no
/// shell), in a process group of its own that gets `SIGTERM` at the time limit and `SIGKILL` `terminationGrace`
/// later, and it is always reaped. Failures are logged, never thrown. The process must leave `SIGCHLD` at its
/// default disposition and must not reap children it did not start (`waitpid(-1, …)`), or a run's status is lost.
public final class HookRunner: Sendable {
    /// Time between `SIGTERM` and `SIGKILL` for a run past its time limit.
    public static let terminationGrace = Duration.seconds(2)
    /// Runs remembered so as not to repeat them: far more than the attacks that can be going on at once.
    public static let rememberedRuns = 1_024
    /// Lines of a run's standard error that reach the log.
    static let stderrLinesLogged = 5

    private struct State {
        var configuration: HookConfiguration
        var counters = HookCounters()
        var done = RecentRuns(capacity: HookRunner.rememberedRuns)
        var stopping = false
    }

    private let state: Mutex<State>
    /// Set when shutdown stops the runs still going on; read by each run's thread.
    private let stopRuns = Atomic<Bool>(false)
    private let logger: Logger

    /// A runner of `configuration`'s command that logs to `logger`.
    public init(configuration: HookConfiguration, logger: Logger) {
        state = Mutex(State(configuration: configuration))
        self.logger = logger
        checkCommand(configuration)
    }

    /// The configuration in force.
    public var configuration: HookConfiguration { state.withLock { $0.configuration } }

    /// What the runner did so far.
    public var counters: HookCounters { state.withLock { $0.counters } }

    /// Applies a new configuration to the events that follow; runs going on keep their time limit. What has run is
    /// remembered across the change, so a reload never runs a hook twice for one attack.
    public func reconfigure(_ configuration: HookConfiguration) {
        state.withLock { $0.configuration = configuration }
        checkCommand(configuration)
    }

    /// Starts the command for each event of a configured type that has not run for its attack yet, and returns at
    /// once. Events that are not attack events (notices have no attack id) never run a hook.
    public func handle(_ events: [Event]) {
        for event in events { handle(event) }
    }

    /// Stops starting runs, waits up to `limit` for the runs going on to end, then stops those left (as the time
    /// limit does: `SIGTERM`, then `SIGKILL` after `terminationGrace`) and waits for them to be reaped.
    /// - Returns: How many runs had to be stopped.
    public func shutdown(waitingAtMost limit: Duration) async -> Int {
        state.withLock { $0.stopping = true }
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while counters.running > 0, clock.now < deadline { await Self.pause() }
        let left = counters.running
        guard left > 0 else { return 0 }
        stopRuns.store(true, ordering: .relaxed)
        // SIGKILL cannot be refused, so the runs end within the grace; the extra second is the reaping.
        let reaped = clock.now + Self.terminationGrace + .seconds(1)
        while counters.running > 0, clock.now < reaped { await Self.pause() }
        return left
    }

    /// Sleeps briefly, even in a cancelled task, so that a wait is bounded by its own deadline and never spins.
    private static func pause() async {
        do { try await Task.sleep(for: HookProcess.checkInterval) } catch { usleep(10_000) }
    }

    /// A run already done for an attack and event type.
    struct RunKey: Hashable {
        var attackID: UInt64
        /// With the attack id, because each capture interface's engine numbers its attacks from 1.
        var victim: IPAddress?
        var port: UInt16?
        var type: EventType
    }

    private enum Decision {
        case skip
        case drop(stopping: Bool, limit: Int)
        case run(command: [String], timeout: TimeSpan)
    }

    private func handle(_ event: Event) {
        guard let attackID = event.attackID else { return }
        let key = RunKey(attackID: attackID, victim: event.victim, port: event.port, type: event.type)
        let decision = state.withLock { state -> Decision in
            let configuration = state.configuration
            guard let command = configuration.command, configuration.events.contains(event.type),
                !state.done.contains(key)
            else { return .skip }
            guard !state.stopping, state.counters.running < configuration.maxConcurrent else {
                state.counters.dropped += 1
                return .drop(stopping: state.stopping, limit: configuration.maxConcurrent)
            }
            state.done.insert(key)
            state.counters.runs += 1
            state.counters.running += 1
            return .run(command: command, timeout: configuration.timeout)
        }
        switch decision {
        case .skip:
            break
        case .drop(let stopping, let limit):
            var metadata = Self.metadata(event)
            if stopping {
                logger.notice("Response hook not run: synwatchd is stopping", metadata: metadata)
            } else {
                metadata["max_concurrent"] = "\(limit)"
                logger.warning("Response hook not run: too many hooks running", metadata: metadata)
            }
        case .run(let command, let timeout):
            do {
                try SystemCall.detachThread(named: "response hook") { [self] in
                    run(command, timeout: timeout, for: event)
                }
            } catch {
                var metadata = Self.metadata(event)
                metadata["command"] = "\(command.first ?? "")"
                record(HookResult(outcome: .spawnFailed(error), duration: .zero, stderr: []), timeout, metadata)
            }
        }
    }

    /// One run, on its own thread: spawn, wait, log, count.
    private func run(_ command: [String], timeout: TimeSpan, for event: Event) {
        let environment = (Event.hookBaseEnvironment + event.hookEnvironment).map { "\($0.name)=\($0.value)" }
        let process = HookProcess(
            arguments: command,
            environment: environment,
            input: Array((ContractJSON.text(V1.Event(event)) + "\n").utf8)
        )
        var metadata = Self.metadata(event)
        metadata["command"] = "\(command.first ?? "")"
        let result = process.run(
            deadline: ContinuousClock.now + .nanoseconds(timeout.nanoseconds),
            grace: Self.terminationGrace,
            shouldStop: { stopRuns.load(ordering: .relaxed) },
            started: { pid in
                metadata["pid"] = "\(pid)"
                logger.debug("Response hook started", metadata: metadata)
            }
        )
        record(result, timeout, metadata)
    }

    /// A run's end: logged, and counted.
    private func record(_ result: HookResult, _ timeout: TimeSpan, _ metadata: Logger.Metadata) {
        log(result, timeout: timeout, metadata: metadata)
        state.withLock { state in
            state.counters.running -= 1
            switch result.outcome {
            case .exited(0): state.counters.succeeded += 1
            case .timedOut:
                state.counters.failures += 1
                state.counters.timeouts += 1
            case .exited, .signaled, .stoppedAtShutdown, .spawnFailed: state.counters.failures += 1
            }
        }
    }

    private func log(_ result: HookResult, timeout: TimeSpan, metadata: Logger.Metadata) {
        var metadata = metadata
        metadata["duration"] = "\(Self.seconds(result.duration))"
        let stderr = Self.firstLines(of: result.stderr)
        if !stderr.isEmpty { metadata["stderr"] = "\(stderr)" }
        switch result.outcome {
        case .exited(0):
            logger.info("Response hook succeeded", metadata: metadata)
        case .exited(let status):
            metadata["status"] = "\(status)"
            logger.warning("Response hook failed", metadata: metadata)
        case .signaled(let signal):
            metadata["signal"] = "\(signal)"
            metadata["signal_name"] = "\(String(cString: strsignal(signal)))"
            logger.warning("Response hook was killed by a signal", metadata: metadata)
        case .timedOut:
            metadata["timeout"] = "\(Self.seconds(.nanoseconds(timeout.nanoseconds)))"
            logger.error("Response hook timed out and was killed", metadata: metadata)
        case .stoppedAtShutdown:
            logger.warning("Response hook stopped: synwatchd is stopping", metadata: metadata)
        case .spawnFailed(let error):
            metadata["error"] = "\(error)"
            logger.error("Response hook could not be started", metadata: metadata)
        }
    }

    /// Warns at once about a command that cannot run, rather than at the first attack.
    private func checkCommand(_ configuration: HookConfiguration) {
        guard let path = configuration.command?.first else { return }
        guard path.hasPrefix("/") else {
            logger.error("Response hook command is not an absolute path", metadata: ["command": "\(path)"])
            return
        }
        if access(path, X_OK) != 0 {
            let error = SystemCallError(call: "access", errno: errno)
            logger.warning(
                "Response hook command cannot be executed",
                metadata: ["command": "\(path)", "error": "\(error)"]
            )
        }
    }

    /// The event's identity in log records: type, attack id, victim, port and kind.
    static func metadata(_ event: Event) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["event": "\(event.type.rawValue)"]
        if let attackID = event.attackID { metadata["attack_id"] = "\(attackID)" }
        if let victim = event.victim { metadata["victim"] = "\(victim)" }
        if let port = event.port { metadata["port"] = "\(port)" }
        if let kind = event.kind { metadata["kind"] = "\(kind.rawValue)" }
        return metadata
    }

    /// `1.234`: seconds with milliseconds.
    static func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.wholeMilliseconds
        let fraction = String(milliseconds % 1_000)
        return "\(milliseconds / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// The first lines of what a run wrote to standard error, as text.
    static func firstLines(of bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline).prefix(stderrLinesLogged)
        return lines.joined(separator: "\n")
    }
}

/// The most recent runs, forgetting the oldest beyond `capacity`.
struct RecentRuns {
    private var members: Set<HookRunner.RunKey> = []
    private var order: [HookRunner.RunKey] = []
    /// Where the next key goes in `order` once it is full: the oldest.
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func contains(_ key: HookRunner.RunKey) -> Bool { members.contains(key) }

    mutating func insert(_ key: HookRunner.RunKey) {
        guard members.insert(key).inserted else { return }
        if order.count < capacity {
            order.append(key)
            return
        }
        members.remove(order[next])
        order[next] = key
        next = (next + 1) % capacity
    }
}

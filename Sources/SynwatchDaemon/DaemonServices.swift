import Dispatch
import Logging
import ServiceLifecycle
import Synchronization
import SynwatchConfig
import SynwatchEngine
import SynwatchHooks
import SynwatchProtocol
import SynwatchSystem
import SynwatchSystemd

/// Where events go: journald, the response hook, the live `/v1/events` subscribers, and the list of recent attacks.
final class EventSink: Sendable {
    static let recentAttacksKept = 50

    let state: DaemonState
    let journal = Journal()
    let hooks: HookRunner
    let logger: Logger
    private let recent = Mutex<[Event]>([])

    init(state: DaemonState, hooks: HookRunner, logger: Logger) {
        self.state = state
        self.hooks = hooks
        self.logger = logger
    }

    var recentAttacks: [Event] { recent.withLock { $0 } }

    /// Called on a capture thread: the recent list, a non-blocking fan-out, the hooks, then a datagram per event
    /// to journald.
    func deliver(_ events: [Event]) {
        let ended = events.filter { $0.type == .attackEnd }
        if !ended.isEmpty {
            recent.withLock { list in
                list.append(contentsOf: ended)
                list.removeFirst(max(0, list.count - Self.recentAttacksKept))
            }
        }
        // Subscribers and hooks before journald: a journald slow to take a datagram must not hold them back.
        state.broadcast(events)
        hooks.handle(events)
        for event in events {
            do {
                try journal.send(JournalEntry(event: event))
            } catch {
                logger.error("Alert not written to the journal", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Lets running response hooks finish when the daemon stops: started first, it is stopped last, once the
/// capture has delivered its final events.
struct HookService: Service {
    static let shutdownLimit = Duration.seconds(5)

    let hooks: HookRunner
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let stopped = await hooks.shutdown(waitingAtMost: Self.shutdownLimit)
        if stopped > 0 { logger.warning("Response hooks stopped at shutdown", metadata: ["count": "\(stopped)"]) }
    }
}

/// The capture threads, and the snapshot they publish a few times a second.
struct CaptureService: Service {
    static let publishInterval = Duration.milliseconds(250)

    let loops: [CaptureLoop]
    let state: DaemonState
    let sink: EventSink
    let started: Double
    let configurationPath: String
    let reloads: ReloadCounter
    let kernel: KernelWatch
    let listing: ServiceListing

    func run() async throws {
        let finished = try loops.map { loop in
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            for shard in loop.shards { try SystemCall.detachThread(named: shard.threadName) { shard.read() } }
            try SystemCall.detachThread(named: "capture \(loop.interface)") {
                loop.run()
                continuation.finish()
            }
            return stream
        }
        var previous = Mark(frames: 0, time: Clocks.monotonicNanoseconds())
        // Publishes until shutdown begins; the loops stop after that, and their last report is published too.
        await repeating(every: Self.publishInterval) { previous = publish(since: previous) }
        for loop in loops { loop.stopSignal.stop() }
        for stream in finished { for await _ in stream {} }
        _ = publish(since: previous)
    }

    /// What a publication measured from: rates are taken over the interval since.
    struct Mark {
        var frames: Int
        var time: Int64
    }

    /// Merges the loops' reports into one snapshot.
    private func publish(since previous: Mark) -> Mark {
        let reports = loops.map { $0.report.withLock { $0 } }
        var statistics = EngineStatistics()
        for report in reports { statistics.accumulate(report.statistics) }
        let now = Clocks.monotonicNanoseconds()
        let rate = Double(statistics.frames - previous.frames) / (Double(max(1, now - previous.time)) / 1e9)
        let threads = reports.flatMap { report in
            (report.reading + [("engine", report.engine)]).map { thread, load in
                CaptureThreadLoad(
                    interface: report.interface,
                    thread: thread,
                    cpuNanoseconds: load.cpu,
                    busy: load.busy
                )
            }
        }
        let capture = CaptureStatus(
            interfaces: reports.map(\.interface),
            // One interface: its state; several: each named.
            state: reports.count == 1
                ? reports[0].state
                : .interfaces(reports.map { InterfaceCaptureState(interface: $0.interface, state: $0.state) }),
            packets: statistics.frames,
            packetsPerSecond: rate,
            kernelDrops: reports.reduce(0) { $0 + $1.kernelDrops },
            interfaceDrops: reports.reduce(0) { $0 + $1.interfaceDrops },
            threads: threads,
            kernelSampling: reports.map { InterfaceSampling(interface: $0.interface, services: $0.kernelSampling) }
        )
        let occupancy = reports.dropFirst().reduce(reports[0].occupancy) { $0.combined(with: $1.occupancy) }
        let services = reports.flatMap(\.services).sorted { $0.synPackets > $1.synPackets }.prefix(listing.listed)
        state.publish(
            DaemonSnapshot(
                startedAt: started,
                updatedAt: Clocks.wall().seconds,
                configurationPath: configurationPath,
                reloads: reloads.value,
                capture: capture,
                statistics: statistics,
                occupancy: occupancy,
                activeAttacks: reports.flatMap(\.activeAttacks),
                recentAttacks: sink.recentAttacks,
                services: Array(services),
                sources: Array(reports.flatMap(\.sources).sorted { $0.halfOpen > $1.halfOpen }.prefix(1_000)),
                kernel: kernel.status,
                hooks: sink.hooks.counters,
                serviceLimit: listing.maxServices
            )
        )
        return Mark(frames: statistics.frames, time: now)
    }
}

/// Sends to the service manager in order, on a queue of its own: `sd_notify` blocks while the manager's socket
/// queue is full (a busy manager, or a test's socket left unread), and a service must not wait on it, at shutdown
/// least of all.
final class NotifySender: Sendable {
    /// How long the way out waits for `STOPPING=1` to leave.
    static let flushLimit = Duration.seconds(1)

    let notifier: ServiceNotifier
    private let queue = DispatchQueue(label: "synwatchd.notify")
    private let logger: Logger

    init(notifier: ServiceNotifier, logger: Logger) {
        self.notifier = notifier
        self.logger = logger
    }

    /// Queues one message; a failure is logged.
    func send(_ message: @escaping @Sendable (ServiceNotifier) throws -> Bool) {
        queue.async { [notifier, logger] in
            do { _ = try message(notifier) } catch {
                logger.warning("sd_notify failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Returns once every queued message is sent, or after `limit`.
    func flush(waitingAtMost limit: Duration = flushLimit) async {
        let (sent, done) = AsyncStream.makeStream(of: Void.self)
        queue.async { done.finish() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in sent {} }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }
}

/// systemd's view of the daemon: READY once capture and socket are up, a live STATUS line, WATCHDOG
/// only while every capture loop makes progress, STOPPING on the way out.
struct NotifyService: Service {
    static let statusInterval = Duration.seconds(2)

    let sender: NotifySender
    let loops: [CaptureLoop]
    let state: DaemonState
    let logger: Logger
    /// Returns once the query socket listens.
    let untilListening: @Sendable () async throws -> Void

    func run() async throws {
        try await untilListening()
        sender.send { try $0.ready() }
        logger.notice("synwatchd is ready", metadata: ["interfaces": "\(loops.map(\.interface))"])
        let watchdog = (try? sender.notifier.watchdogInterval) ?? nil
        let interval = watchdog.map { min(Self.statusInterval, $0 / 3) } ?? Self.statusInterval
        let tell = {
            let line = Self.statusLine(state.snapshot)
            sender.send { try $0.status(line) }
            if let watchdog, loopsAreProgressing(within: watchdog / 2) { sender.send { try $0.watchdog() } }
        }
        tell()
        await repeating(every: interval) { tell() }
        sender.send { try $0.stopping() }
        await sender.flush()
    }

    private func loopsAreProgressing(within limit: Duration) -> Bool {
        let now = Clocks.monotonicNanoseconds()
        let limit = limit.wholeNanoseconds
        return loops.allSatisfy { now - $0.heartbeat < limit }
    }

    /// "12,345 pkt/s, 0 drops, 1,234 handshakes, 1 attack: 198.18.0.2:80 random-source (kernel passes 1/64)".
    static func statusLine(_ snapshot: DaemonSnapshot) -> String {
        var line = "\(Int(snapshot.capture.packetsPerSecond.rounded())) pkt/s, \(snapshot.capture.kernelDrops) drops, "
        line += "\(snapshot.occupancy.handshakes) handshakes, "
        let attacks = snapshot.activeAttacks
        guard !attacks.isEmpty else { return line + "no attack" }
        line += "\(attacks.count) attack\(attacks.count == 1 ? "" : "s"): "
        let sampled = snapshot.capture.kernelSampling.flatMap(\.services)
        line += attacks.prefix(3).map { attack in
            let service = "\(attack.victim.serviceText(port: attack.port)) \(attack.kind.rawValue)"
            guard let sampling = sampled.first(where: { $0.covers(attack.victim, port: attack.port ?? 0) })
            else { return service }
            return service + " (kernel passes 1/\(sampling.oneIn))"
        }.joined(separator: ", ")
        return line
    }
}

/// Each request (SIGHUP) reads the configuration file again; applies it when valid, keeps the old one otherwise.
struct ReloadService<Requests: AsyncSequence & Sendable>: Service
where Requests.Element: Sendable, Requests.Failure == Never {
    let requests: Requests
    let path: String
    let overrides: @Sendable (inout SynwatchConfiguration) -> Void
    let loops: [CaptureLoop]
    let sender: NotifySender
    let reloads: ReloadCounter
    let hooks: HookRunner
    let hashSeed: UInt64
    let listing: ServiceListing
    /// Where `/metrics` listens: bound at start, so a changed list waits for a restart.
    let metricsListen: [ListenAddress]
    let logger: Logger

    func run() async throws {
        for await _ in requests.cancelOnGracefulShutdown() {
            sender.send { try $0.reloading() }
            do {
                var configuration = try SynwatchConfiguration.load(path: path).configuration
                overrides(&configuration)
                configuration.engine.hashSeed = hashSeed
                try configuration.validate()
                for loop in loops { loop.reconfigure(configuration.engine) }
                hooks.reconfigure(configuration.hooks)
                listing.maxServices = configuration.metrics.maxServices
                if configuration.metrics.listen != metricsListen {
                    logger.warning(
                        "metrics.listen takes effect only after a restart",
                        metadata: ["listening": "\(metricsListen.map(\.description))"]
                    )
                }
                reloads.increment()
                logger.notice("Configuration reloaded", metadata: ["path": "\(path)"])
            } catch {
                logger.error("Configuration not reloaded; the running one stays", metadata: ["error": "\(error)"])
            }
            sender.send { try $0.ready() }
        }
    }
}

/// Successful reloads, shared by the reload and capture services.
final class ReloadCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func increment() { count.add(1, ordering: .relaxed) }
}

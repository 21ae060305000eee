@preconcurrency import Glibc
import Logging
import Synchronization
import SynwatchCapture
import SynwatchEngine
import SynwatchKernel
import SynwatchSystem

/// What one capture loop measured last, merged into the daemon's snapshot.
struct LoopReport: Sendable {
    var interface: String
    var state: CaptureState
    var statistics: EngineStatistics
    var occupancy: TableOccupancy
    var activeAttacks: [AttackStatus]
    var services: [ServiceSummary]
    var sources: [SourceSummary]
    var kernelDrops: Int
    var interfaceDrops: Int
    /// The reading thread's CPU time (as of its latest counters) and the engine thread's.
    var reading: ThreadCPUMeter.Reading
    var engine: ThreadCPUMeter.Reading
    /// The services the kernel's filter thins now (`ClientSampling`).
    var kernelSampling: [SampledService]
}

/// The CPU time of the thread that reads it, and its share of a core since the previous reading.
struct ThreadCPUMeter {
    struct Reading: Sendable {
        var cpu: Int64 = 0
        var busy: Double = 0
    }

    private var last: (cpu: Int64, time: Int64)?

    /// Must be called on the measured thread.
    mutating func read() -> Reading {
        let cpu = Clocks.threadCPUNanoseconds()
        let time = Clocks.monotonicNanoseconds()
        defer { last = (cpu, time) }
        guard let last, time > last.time else { return Reading(cpu: cpu) }
        return Reading(cpu: cpu, busy: Double(cpu - last.cpu) / Double(time - last.time))
    }
}

/// One interface captured into one engine, on two threads of its own.
///
/// The reading thread owns the capture: it takes frames from libpcap's ring and decodes them into batches. The
/// engine's thread owns the engine and takes the batches in order, so the engine does only tracking and detection;
/// the two meet once per batch (`DecodedBatchRing`). Others only raise the stop signal, hand over a new
/// configuration, and read the heartbeat and the latest report.
final class CaptureLoop: @unchecked Sendable {  // each thread touches only its own side
    static let reportInterval: Int64 = 250_000_000
    static let reopenInterval: Int64 = 1_000_000_000
    /// Frames decoded per read; a shorter read means the ring is drained.
    static let batch = 4_096
    /// Batches the reading thread may be ahead of the engine's (libpcap's ring holds the rest).
    static let depth = 4

    /// What the reading thread tells with each batch.
    struct ReadNote: Sendable {
        /// The read returned fewer frames than a batch holds: libpcap's ring is drained.
        var drained = false
        /// Wall-clock time that every frame still to come is younger than, taken after the read.
        var settled = Timestamp(nanoseconds: 0)
        var state = CaptureState.active
        /// libpcap's counters, read about four times a second, and the reading thread's CPU time then.
        var statistics: CaptureStatistics?
        var reading: ThreadCPUMeter.Reading?
        /// The interface was reopened: libpcap's counters start again from zero.
        var reopened = false
        /// The stop signal was raised: the last batch.
        var stopped = false
        /// The services the kernel's filter thins, when that changed just before this batch was read.
        var kernelSampling: [SampledService]?
    }

    let interface: String
    let stopSignal: CaptureStopSignal
    /// CLOCK_MONOTONIC nanoseconds of each thread's latest turn: the watchdog's proof of progress.
    private let readingHeartbeat = Atomic<Int64>(0)
    private let engineHeartbeat = Atomic<Int64>(0)
    let report: Mutex<LoopReport>

    private let ring = DecodedBatchRing(batchSize: CaptureLoop.batch, depth: CaptureLoop.depth, note: ReadNote())

    // The reading thread's.
    private var capture: LiveCapture
    /// The engine's step length, fixed until a restart: how long a read may wait on an idle link.
    private let resolution: Int64
    private var lastStatisticsRead: Int64 = 0
    private var readingMeter = ThreadCPUMeter()
    /// The engine's decoding, with its hash seed: a SYN's keys are hashed here, off the engine's thread.
    private let decoder: FrameDecoder
    /// Whether the kernel's filter thins what the engine thins by client, and what it thins now.
    private let kernelSampling: Bool
    private let clientSampling: ClientSampling
    private var installedSampling: [SampledService] = []

    /// The services the engine thins by client, handed from its thread to the reading thread's filter.
    private let wantedSampling = Mutex<[SampledService]>([])

    // The engine thread's.
    private let engine: Engine
    private let pendingConfiguration = Mutex<EngineConfiguration?>(nil)
    private let pendingKernel = Mutex<KernelStatus?>(nil)
    /// Frames and capture drops at the previous kernel reading: the capture's own loss over the same interval.
    private var framesAtKernelReading = 0
    private var dropsAtKernelReading = 0
    /// Drops since the loop began: libpcap's 32-bit counters, read as differences, so that they neither wrap
    /// nor start again from zero when the interface is reopened.
    private var kernelDrops = 0
    private var interfaceDrops = 0
    private var lastStatistics = CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0)
    private let onEvents: @Sendable ([Event]) -> Void
    private let listing: ServiceListing
    private let logger: Logger
    private var state = CaptureState.active
    private var reports = 0
    /// The reading thread's latest CPU reading, and the engine thread's meter.
    private var reading = ThreadCPUMeter.Reading()
    private var engineMeter = ThreadCPUMeter()
    private var thinned: [SampledService] = []
    private var kernelSampled: [SampledService] = []

    /// - Parameters:
    ///   - capture: an activated capture; its stop signal stops the loop.
    ///   - listing: how many services each report lists.
    ///   - kernelSampling: whether the kernel's filter drops the SYNs of clients the engine leaves out.
    ///   - onEvents: called on the engine's thread with each batch of events; must not block.
    init(
        capture: LiveCapture,
        configuration: EngineConfiguration,
        listing: ServiceListing,
        kernelSampling: Bool,
        logger: Logger,
        onEvents: @escaping @Sendable ([Event]) -> Void
    ) throws(ConfigurationProblem) {
        self.capture = capture
        self.interface = capture.interface
        self.stopSignal = capture.stopSignal
        self.engine = try Engine(configuration: configuration)
        resolution = configuration.windows.resolution.nanoseconds
        decoder = engine.frameDecoder
        clientSampling = engine.clientSampling
        self.kernelSampling = kernelSampling
        self.logger = logger
        self.listing = listing
        self.onEvents = onEvents
        report = Mutex(
            LoopReport(
                interface: capture.interface,
                state: .active,
                statistics: EngineStatistics(),
                occupancy: engine.occupancy,
                activeAttacks: [],
                services: [],
                sources: [],
                kernelDrops: 0,
                interfaceDrops: 0,
                reading: ThreadCPUMeter.Reading(),
                engine: ThreadCPUMeter.Reading(),
                kernelSampling: []
            )
        )
        let now = Clocks.monotonicNanoseconds()
        readingHeartbeat.store(now, ordering: .relaxed)
        engineHeartbeat.store(now, ordering: .relaxed)
    }

    /// The older of the two threads' latest turns.
    var heartbeat: Int64 {
        min(readingHeartbeat.load(ordering: .relaxed), engineHeartbeat.load(ordering: .relaxed))
    }

    /// Hands a reloaded configuration to the loop, applied between two batches.
    func reconfigure(_ configuration: EngineConfiguration) {
        pendingConfiguration.withLock { $0 = configuration }
    }

    /// Hands the kernel's latest reading to the loop, given to the engine between two batches.
    func observeKernel(_ status: KernelStatus) {
        pendingKernel.withLock { $0 = status }
    }

    // MARK: The reading thread

    /// Reads and decodes until the stop signal is raised; the last batch says so. Runs on the reading thread.
    func read() {
        while true {
            readingHeartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
            let batch = ring.startFilling()
            readingHeartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
            var note = ReadNote()
            note.kernelSampling = installWantedSampling()
            do {
                let wait = untilNextStep()
                let frames = try capture.readFrames(timeout: wait, decodingInto: batch, with: decoder)
                note.stopped = frames == nil
                note.drained = (frames ?? 0) < batch.capacity
            } catch {
                // What was read before the failure goes to the engine first.
                note.drained = true
                note.settled = settledTime()
                note.state = .reopening(reason: "\(error)")
                batch.note = note
                ring.finishFilling()
                guard reopen(after: error) else { return }
                continue
            }
            note.settled = settledTime()
            // The last batch carries the final counters, for the last report.
            note.statistics = note.stopped ? try? capture.statistics() : statisticsDue()
            if note.statistics != nil { note.reading = readingMeter.read() }
            batch.note = note
            ring.finishFilling()
            if note.stopped { return }
        }
    }

    /// Puts the engine's latest list of services thinned by client into the kernel's filter, when it changed;
    /// returns the list now in force then. The engine drops the same packets itself, so the filter may lag.
    private func installWantedSampling() -> [SampledService]? {
        guard kernelSampling else { return nil }
        let wanted = wantedSampling.withLock { $0 }
        guard wanted != installedSampling else { return nil }
        let filter = LiveCaptureOptions.engineFilter(for: capture.linkType, thinning: wanted, sampling: clientSampling)
        do {
            try capture.setFilter(filter)
            installedSampling = wanted
            if wanted.isEmpty {
                logger.notice("Kernel filter back to every SYN", metadata: ["interface": "\(interface)"])
            } else {
                let services = wanted.map(\.description).joined(separator: ", ")
                logger.notice(
                    "Kernel filter thins a spoofed storm",
                    metadata: ["interface": "\(interface)", "services": "\(services)"]
                )
            }
        } catch {
            // The engine still thins; only the kernel's saving is lost. Tried again when the list changes.
            installedSampling = wanted
            logger.error(
                "Kernel filter not replaced",
                metadata: ["interface": "\(interface)", "error": "\(error)"]
            )
            return []
        }
        return wanted
    }

    /// libpcap's counters when a report interval has passed since they were last read.
    private func statisticsDue() -> CaptureStatistics? {
        let now = Clocks.monotonicNanoseconds()
        guard now - lastStatisticsRead >= Self.reportInterval else { return nil }
        lastStatisticsRead = now
        return try? capture.statistics()
    }

    /// Wall-clock time that every frame still to come from the kernel is younger than: the open block of the ring
    /// holds frames for up to the buffer timeout, plus timer rounding of a jiffy or two.
    private func settledTime() -> Timestamp {
        Timestamp(nanoseconds: Clocks.wall().nanoseconds - capture.options.bufferTimeout.wholeNanoseconds - 10_000_000)
    }

    /// How long the capture may wait for frames before the next step boundary passes the settled time, so an
    /// idle link still gets each step decided on time; at most the capture's idle interval.
    private func untilNextStep() -> Duration {
        let settled = settledTime().nanoseconds
        let wait = (settled / resolution + 1) * resolution - settled
        return min(capture.options.idleInterval, .nanoseconds(wait))
    }

    /// Reports the failure and reopens the interface once a second; each attempt hands the engine an empty batch,
    /// so windows slide and attacks end meanwhile. Returns false when the loop was stopped first.
    private func reopen(after error: CaptureError) -> Bool {
        logger.error("Capture failed; reopening", metadata: ["interface": "\(interface)", "error": "\(error)"])
        var state = CaptureState.reopening(reason: "\(error)")
        while !stopSignal.isRaised {
            do {
                capture = try capture.reopened()
                logger.notice("Capture reopened", metadata: ["interface": "\(interface)"])
                // Opened with the plain filter: the next turn installs the thinning again.
                installedSampling = []
                post(ReadNote(drained: true, settled: settledTime(), reopened: true, kernelSampling: []))
                return true
            } catch {
                // Each new reason is told once, and shown in the status until the interface is back.
                let reason = CaptureState.reopening(reason: "\(error)")
                if reason != state {
                    logger.error("Capture not reopened", metadata: ["interface": "\(interface)", "error": "\(error)"])
                    state = reason
                }
                post(ReadNote(drained: true, settled: Clocks.wall(), state: state))
                var pause = timespec(tv_sec: 0, tv_nsec: Int(Self.reopenInterval))
                nanosleep(&pause, nil)
            }
        }
        post(ReadNote(drained: true, settled: Clocks.wall(), state: state, stopped: true))
        return false
    }

    /// Hands the engine's thread a batch with no frames, only `note`.
    private func post(_ note: ReadNote) {
        readingHeartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
        ring.startFilling().note = note
        ring.finishFilling()
    }

    // MARK: The engine's thread

    /// Runs the engine over the reading thread's batches until the last one. Runs on the engine's thread.
    func run() {
        var lastReport: Int64 = 0
        var running = true
        while running {
            let now = Clocks.monotonicNanoseconds()
            engineHeartbeat.store(now, ordering: .relaxed)
            if let batch = ring.take(timeout: .milliseconds(250)) {
                let frames = batch.frames
                for index in 0..<batch.count { engine.process(decoded: frames + index) }
                let note = batch.note
                ring.release()
                // The ring is drained, so the windows may slide on wall time: a step is decided at its boundary
                // even when no frame follows it, and attacks end while the link is silent.
                if note.drained { engine.advance(to: note.settled) }
                if note.reopened { lastStatistics = CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0) }
                if let statistics = note.statistics { count(statistics) }
                if let reading = note.reading { self.reading = reading }
                if let sampling = note.kernelSampling { kernelSampled = sampling }
                running = !note.stopped
                if note.state != state {
                    state = note.state
                    lastReport = 0
                }
            }
            applyPendingConfiguration()
            applyPendingKernelReading()
            if engine.thinned != thinned {
                thinned = engine.thinned
                wantedSampling.withLock { [thinned] in $0 = thinned }
            }
            // Taken after every batch: a decision reaches the sinks within one batch of its step.
            if engine.hasEvents { onEvents(engine.takeEvents()) }
            if now - lastReport >= Self.reportInterval {
                publishReport()
                lastReport = now
            }
        }
        publishReport()
    }

    /// Adds the drops libpcap counted since its previous reading.
    private func count(_ statistics: CaptureStatistics) {
        kernelDrops += Int(statistics.dropped &- lastStatistics.dropped)
        interfaceDrops += Int(statistics.interfaceDropped &- lastStatistics.interfaceDropped)
        lastStatistics = statistics
    }

    private func applyPendingConfiguration() {
        guard
            let configuration = pendingConfiguration.withLock({ pending in
                defer { pending = nil }
                return pending
            })
        else { return }
        do {
            let deferred = try engine.reconfigure(configuration)
            if !deferred.isEmpty {
                logger.warning(
                    "Some settings take effect only after a restart",
                    metadata: ["interface": "\(interface)", "keys": "\(deferred.joined(separator: ", "))"]
                )
            }
        } catch {
            logger.error("Configuration not applied", metadata: ["interface": "\(interface)", "error": "\(error)"])
        }
    }

    /// The kernel's reading as the engine takes it, with the share of frames this capture lost meanwhile.
    private func applyPendingKernelReading() {
        guard
            let status = pendingKernel.withLock({ pending in
                defer { pending = nil }
                return pending
            })
        else { return }
        let frames = engine.statistics.frames
        let drops = kernelDrops
        let lost = drops - dropsAtKernelReading
        let captured = max(0, frames - framesAtKernelReading)
        (framesAtKernelReading, dropsAtKernelReading) = (frames, drops)
        let rate = { (counter: KernelTCPCounter) in status.rates?.perSecond(counter) }
        engine.observe(
            KernelObservation(
                syncookiesSentPerSecond: rate(.syncookiesSent),
                listenOverflowsPerSecond: rate(.listenOverflows),
                listenDropsPerSecond: rate(.listenDrops),
                requestQueueFullCookiesPerSecond: rate(.reqQFullDoCookies),
                requestQueueFullDropsPerSecond: rate(.reqQFullDrop),
                synproxySynPerSecond: status.rates?.perSecond(KernelSynproxyCounter.synReceived),
                synproxyCookieValidPerSecond: status.rates?.perSecond(KernelSynproxyCounter.cookieValid),
                synproxyCookieInvalidPerSecond: status.rates?.perSecond(KernelSynproxyCounter.cookieInvalid),
                synReceived: (status.listenQueues?.synReceived ?? []).compactMap { listener in
                    IPAddress(listener.endpoint.address.description).map {
                        ServiceSynReceived(address: $0, port: listener.endpoint.port, count: listener.count)
                    }
                },
                captureLoss: lost + captured > 0 ? Double(lost) / Double(lost + captured) : 0
            )
        )
    }

    private func publishReport() {
        // The lists walk whole tables: once a second is enough for the query socket.
        reports += 1
        let lists = reports % 4 == 1
        let previous = lists ? nil : report.withLock { $0 }
        let next = LoopReport(
            interface: interface,
            state: state,
            statistics: engine.statistics,
            occupancy: engine.occupancy,
            activeAttacks: engine.activeAttacks(),
            services: previous?.services ?? engine.services(limit: listing.listed).map(markingKernelSampling),
            sources: previous?.sources ?? engine.topSources(limit: 1_000),
            kernelDrops: kernelDrops,
            interfaceDrops: interfaceDrops,
            reading: reading,
            engine: engineMeter.read(),
            kernelSampling: kernelSampled
        )
        report.withLock { $0 = next }
    }

    /// A service thinned by client says whether the kernel's filter thins it too.
    private func markingKernelSampling(_ service: ServiceSummary) -> ServiceSummary {
        guard service.sampling?.by == .client else { return service }
        var marked = service
        marked.sampling?.inKernel = kernelSampled.contains { $0.covers(service.address, port: service.port ?? 0) }
        return marked
    }
}

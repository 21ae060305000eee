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
    /// Each reading thread's CPU time (as of its latest counters), by its label, and the engine thread's.
    var reading: [(label: String, load: ThreadCPUMeter.Reading)]
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

/// One interface captured into one engine: one or more reading threads (`ReadingShard`) and the engine's.
///
/// Each reading thread owns a capture: it takes frames from libpcap's ring and decodes them into batches. With
/// several, each capture takes its share of the interface's flows (`CaptureFanout`), so reading and decoding,
/// the larger part of the work, spread over cores. The engine's thread owns the engine and takes the batches
/// merged in capture-time order (`DecodedBatchMerge`, to within `mergeTolerance`), so the engine sees the same
/// stream whatever the number of shards and does only tracking and detection; the threads meet once per batch.
/// Others only raise the stop signal, hand over a new configuration, and read the heartbeat and the latest report.
final class CaptureLoop: @unchecked Sendable {  // each thread touches only its own side
    static let reportInterval: Int64 = 250_000_000
    /// Frames decoded per read; a shorter read means the ring is drained.
    static let batch = 4_096
    /// Batches each reading thread may be ahead of the engine's (libpcap's ring holds the rest).
    static let depth = 4
    /// How far out of capture-time order the engine may take frames of different shards (never of one
    /// connection): 0.1 ms, far below the finest times the engine decides on (a 50 ms step, the completion grace's
    /// 50 ms floor). At 1 M packets/s it lets runs of about 50 frames go at once.
    static let mergeTolerance: Int64 = 100_000

    let interface: String
    let stopSignal: CaptureStopSignal
    /// The reading threads, one per capture.
    let shards: [ReadingShard]
    private let engineHeartbeat = Atomic<Int64>(0)
    let report: Mutex<LoopReport>

    // The engine thread's.
    private let merge: DecodedBatchMerge<ReadingShard.Note>
    private let engine: Engine
    private let pendingConfiguration = Mutex<EngineConfiguration?>(nil)
    private let pendingKernel = Mutex<KernelStatus?>(nil)
    /// Frames and capture drops at the previous kernel reading: the capture's own loss over the same interval.
    private var framesAtKernelReading = 0
    private var dropsAtKernelReading = 0
    /// Drops since the loop began: libpcap's 32-bit counters, read as differences (per shard), so that they neither
    /// wrap nor start again from zero when the interface is reopened.
    private var kernelDrops = 0
    private var interfaceDrops = 0
    private var lastStatistics: [CaptureStatistics]
    private let onEvents: @Sendable ([Event]) -> Void
    private let listing: ServiceListing
    private let logger: Logger
    /// Each shard's capture state; the loop's is the first that is not active.
    private var states: [CaptureState]
    private var reports = 0
    private var reportDue = false
    /// Each reading thread's latest CPU reading, and the engine thread's meter.
    private var readings: [ThreadCPUMeter.Reading]
    private var engineMeter = ThreadCPUMeter()
    private var thinned: [SampledService] = []
    /// What each shard's kernel filter thins now.
    private var kernelSampled: [[SampledService]]

    /// - Parameters:
    ///   - captures: the interface's activated captures, one per reading thread, sharing one stop signal (and one
    ///     fanout group when there are several); the stop signal stops the loop.
    ///   - listing: how many services each report lists.
    ///   - kernelSampling: whether the kernel's filter drops the SYNs of clients the engine leaves out.
    ///   - onEvents: called on the engine's thread with each batch of events; must not block.
    init(
        captures: [LiveCapture],
        configuration: EngineConfiguration,
        listing: ServiceListing,
        kernelSampling: Bool,
        logger: Logger,
        onEvents: @escaping @Sendable ([Event]) -> Void
    ) throws(ConfigurationProblem) {
        precondition(!captures.isEmpty, "a capture loop reads at least one capture")
        interface = captures[0].interface
        stopSignal = captures[0].stopSignal
        let engine = try Engine(configuration: configuration)
        self.engine = engine
        let merge = DecodedBatchMerge(
            shards: captures.count,
            batchSize: Self.batch,
            depth: Self.depth,
            note: ReadingShard.Note(),
            tolerance: Self.mergeTolerance
        )
        self.merge = merge
        shards = captures.enumerated().map { index, capture in
            ReadingShard(
                index: index,
                of: captures.count,
                capture: capture,
                ring: merge.rings[index],
                engine: engine,
                kernelSampling: kernelSampling,
                logger: logger
            )
        }
        lastStatistics = Array(
            repeating: CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0),
            count: captures.count
        )
        states = Array(repeating: .active, count: captures.count)
        readings = Array(repeating: ThreadCPUMeter.Reading(), count: captures.count)
        kernelSampled = Array(repeating: [], count: captures.count)
        self.logger = logger
        self.listing = listing
        self.onEvents = onEvents
        report = Mutex(
            LoopReport(
                interface: interface,
                state: .active,
                statistics: EngineStatistics(),
                occupancy: engine.occupancy,
                activeAttacks: [],
                services: [],
                sources: [],
                kernelDrops: 0,
                interfaceDrops: 0,
                reading: shards.map { ($0.label, ThreadCPUMeter.Reading()) },
                engine: ThreadCPUMeter.Reading(),
                kernelSampling: []
            )
        )
        engineHeartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
    }

    /// The oldest of the loop's threads' latest turns.
    var heartbeat: Int64 {
        shards.reduce(engineHeartbeat.load(ordering: .relaxed)) { min($0, $1.heartbeat.load(ordering: .relaxed)) }
    }

    /// Hands a reloaded configuration to the loop, applied between two batches.
    func reconfigure(_ configuration: EngineConfiguration) {
        pendingConfiguration.withLock { $0 = configuration }
    }

    /// Hands the kernel's latest reading to the loop, given to the engine between two batches.
    func observeKernel(_ status: KernelStatus) {
        pendingKernel.withLock { $0 = status }
    }

    // MARK: The engine's thread

    /// Runs the engine over the reading threads' batches until the last ones. Runs on the engine's thread.
    func run() {
        var lastReport: Int64 = 0
        while !merge.hasEnded {
            let now = Clocks.monotonicNanoseconds()
            engineHeartbeat.store(now, ordering: .relaxed)
            let fed = merge.feed({ frames, count in
                engine.process(decoded: frames, count: count)
            }) { shard, note in take(note, of: shard) }
            if !fed { merge.wait(timeout: .milliseconds(250)) }
            // Every shard said how far it has come: the windows slide on wall time, so a step is decided at its
            // boundary even when no frame follows it, and attacks end while the link is silent.
            let settled = merge.settledTime
            if settled != .max { engine.advance(to: Timestamp(nanoseconds: settled)) }
            applyPendingConfiguration()
            applyPendingKernelReading()
            if engine.thinned != thinned {
                thinned = engine.thinned
                for shard in shards { shard.wantedSampling.withLock { [thinned] in $0 = thinned } }
            }
            // Taken after every batch: a decision reaches the sinks within one batch of its step.
            if engine.hasEvents { onEvents(engine.takeEvents()) }
            if reportDue || now - lastReport >= Self.reportInterval {
                publishReport()
                lastReport = now
                reportDue = false
            }
        }
        publishReport()
    }

    /// What a shard told with a batch, once its frames went to the engine.
    private func take(_ note: ReadingShard.Note, of shard: Int) {
        if note.reopened { lastStatistics[shard] = CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0) }
        if let statistics = note.statistics { count(statistics, of: shard) }
        if let reading = note.reading { readings[shard] = reading }
        if let sampling = note.kernelSampling { kernelSampled[shard] = sampling }
        let before = state
        states[shard] = note.state
        // A change of state is published at once.
        if state != before { reportDue = true }
    }

    /// The loop's state: the first shard's that is not active (shards of one interface fail alike).
    private var state: CaptureState { states.first { $0 != .active } ?? .active }

    /// The services every shard's kernel filter thins.
    private var kernelSampling: [SampledService] {
        kernelSampled.dropFirst().reduce(kernelSampled[0]) { common, shard in common.filter(shard.contains) }
    }

    /// Adds the drops libpcap counted since its previous reading.
    private func count(_ statistics: CaptureStatistics, of shard: Int) {
        kernelDrops += Int(statistics.dropped &- lastStatistics[shard].dropped)
        interfaceDrops += Int(statistics.interfaceDropped &- lastStatistics[shard].interfaceDropped)
        lastStatistics[shard] = statistics
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
                        ServiceSynReceived(
                            address: $0,
                            port: listener.endpoint.port,
                            count: listener.count,
                            backlog: listener.backlog.map(Int.init)
                        )
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
        let kernelSampling = kernelSampling
        let next = LoopReport(
            interface: interface,
            state: state,
            statistics: engine.statistics,
            occupancy: engine.occupancy,
            activeAttacks: engine.activeAttacks(),
            services: previous?.services
                ?? engine.services(limit: listing.listed).map { marking($0, kernelSampling: kernelSampling) },
            sources: previous?.sources ?? engine.topSources(limit: 1_000),
            kernelDrops: kernelDrops,
            interfaceDrops: interfaceDrops,
            reading: zip(shards, readings).map { ($0.label, $1) },
            engine: engineMeter.read(),
            kernelSampling: kernelSampling
        )
        report.withLock { $0 = next }
    }

    /// A service thinned by client says whether the kernel's filter (thinning `kernelSampling`) thins it too.
    private func marking(_ service: ServiceSummary, kernelSampling: [SampledService]) -> ServiceSummary {
        guard service.sampling?.by == .client else { return service }
        var marked = service
        marked.sampling?.inKernel = kernelSampling.contains { $0.covers(service.address, port: service.port ?? 0) }
        return marked
    }
}

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
}

/// One interface captured into one engine, on a thread of its own.
///
/// The thread owns the capture and the engine: frames go from libpcap's ring to the engine with no
/// hop between threads. Others only raise the stop signal, hand over a new configuration, and read
/// the heartbeat and the latest report.
final class CaptureLoop: @unchecked Sendable {  // the capture and engine are touched by the loop's thread only
    static let reportInterval: Int64 = 250_000_000
    static let reopenInterval: Int64 = 1_000_000_000
    /// Frames handed to the engine per read; a shorter read means the ring is drained.
    static let batch = 4_096

    let interface: String
    let stopSignal: CaptureStopSignal
    /// CLOCK_MONOTONIC nanoseconds of the loop's latest turn: the watchdog's proof of progress.
    let heartbeat = Atomic<Int64>(0)
    let report: Mutex<LoopReport>

    private var capture: LiveCapture
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

    /// - Parameters:
    ///   - capture: an activated capture; its stop signal stops the loop.
    ///   - listing: how many services each report lists.
    ///   - onEvents: called on the loop's thread with each batch of events; must not block.
    init(
        capture: LiveCapture,
        configuration: EngineConfiguration,
        listing: ServiceListing,
        logger: Logger,
        onEvents: @escaping @Sendable ([Event]) -> Void
    ) throws(ConfigurationProblem) {
        self.capture = capture
        self.interface = capture.interface
        self.stopSignal = capture.stopSignal
        self.engine = try Engine(configuration: configuration)
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
                interfaceDrops: 0
            )
        )
        heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
    }

    /// Hands a reloaded configuration to the loop, applied between two batches.
    func reconfigure(_ configuration: EngineConfiguration) {
        pendingConfiguration.withLock { $0 = configuration }
    }

    /// Hands the kernel's latest reading to the loop, given to the engine between two batches.
    func observeKernel(_ status: KernelStatus) {
        pendingKernel.withLock { $0 = status }
    }

    /// Captures until the stop signal is raised. Runs on the loop's own thread.
    func run() {
        var lastReport: Int64 = 0
        while !stopSignal.isRaised {
            let now = Clocks.monotonicNanoseconds()
            heartbeat.store(now, ordering: .relaxed)
            do {
                let frames = try capture.readFrames(upTo: Self.batch, timeout: untilNextStep(), engine.process)
                guard let frames else { break }
                // The ring is drained, so the windows may slide on wall time: a step is decided at its boundary
                // even when no frame follows it, and attacks end while the link is silent.
                if frames < Self.batch { engine.advance(to: settledTime()) }
                state = .active
            } catch {
                lostInterface(error)
            }
            applyPendingConfiguration()
            applyPendingKernelReading()
            // Taken after every batch: a decision reaches the sinks within one batch of its step.
            if engine.hasEvents { onEvents(engine.takeEvents()) }
            if now - lastReport >= Self.reportInterval {
                publishReport()
                lastReport = now
            }
        }
        publishReport()
    }

    /// Wall-clock time that every frame still to come from the kernel is younger than: the open block of the ring
    /// holds frames for up to the buffer timeout, plus timer rounding of a jiffy or two.
    private func settledTime() -> Timestamp {
        Timestamp(nanoseconds: Clocks.wall().nanoseconds - capture.options.bufferTimeout.wholeNanoseconds - 10_000_000)
    }

    /// How long the capture may wait for frames before the next step boundary passes the settled time, so an
    /// idle link still gets each step decided on time; at most the capture's idle interval.
    private func untilNextStep() -> Duration {
        let resolution = engine.configuration.windows.resolution.nanoseconds
        let settled = settledTime().nanoseconds
        let wait = (settled / resolution + 1) * resolution - settled
        return min(capture.options.idleInterval, .nanoseconds(wait))
    }

    /// Reports the failure and reopens the interface once a second until it is back or the loop stops.
    private func lostInterface(_ error: CaptureError) {
        logger.error("Capture failed; reopening", metadata: ["interface": "\(interface)", "error": "\(error)"])
        state = .reopening(reason: "\(error)")
        publishReport()
        while !stopSignal.isRaised {
            heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
            do {
                capture = try capture.reopened()
                lastStatistics = CaptureStatistics(received: 0, dropped: 0, interfaceDropped: 0)
                logger.notice("Capture reopened", metadata: ["interface": "\(interface)"])
                return
            } catch {
                // Each new reason is told once, and shown in the status until the interface is back.
                let reason = CaptureState.reopening(reason: "\(error)")
                if reason != state {
                    logger.error("Capture not reopened", metadata: ["interface": "\(interface)", "error": "\(error)"])
                    state = reason
                    publishReport()
                }
                engine.advance(to: Clocks.wall())
                if engine.hasEvents { onEvents(engine.takeEvents()) }
                var pause = timespec(tv_sec: 0, tv_nsec: Int(Self.reopenInterval))
                nanosleep(&pause, nil)
            }
        }
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
        if let statistics = try? capture.statistics() {
            kernelDrops += Int(statistics.dropped &- lastStatistics.dropped)
            interfaceDrops += Int(statistics.interfaceDropped &- lastStatistics.interfaceDropped)
            lastStatistics = statistics
        }
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
            services: previous?.services ?? engine.services(limit: listing.listed),
            sources: previous?.sources ?? engine.topSources(limit: 1_000),
            kernelDrops: kernelDrops,
            interfaceDrops: interfaceDrops
        )
        report.withLock { $0 = next }
    }
}

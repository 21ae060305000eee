@preconcurrency import Glibc
import Logging
import Synchronization
import SynwatchCapture
import SynwatchEngine
import SynwatchSystem

/// One reading thread of an interface: its own capture, decoded into batches for the engine's thread.
///
/// With several shards each capture is a member of the interface's fanout group, so each thread reads its share of
/// the flows; `CaptureLoop` merges their batches in capture-time order.
final class ReadingShard: @unchecked Sendable {  // its capture and state are its own thread's
    /// What the reading thread tells with each batch.
    struct Note: ShardNote {
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

        var settledTime: Int64? { drained ? settled.nanoseconds : nil }
        var isLast: Bool { stopped }
    }

    static let reopenInterval: Int64 = 1_000_000_000

    let index: Int
    /// The thread's name: `read IFACE`, or `readN IFACE` (from 1) among several.
    let threadName: String
    /// How the thread is called in the status: `read`, or `read N`.
    let label: String
    /// CLOCK_MONOTONIC nanoseconds of the thread's latest turn: the watchdog's proof of progress.
    let heartbeat = Atomic<Int64>(0)
    /// The services the engine thins by client, handed from its thread to this one's filter.
    let wantedSampling = Mutex<[SampledService]>([])

    private let ring: DecodedBatchRing<Note>
    private var capture: LiveCapture
    private let interface: String
    /// The engine's step length, fixed until a restart: how long a read may wait on an idle link.
    private let resolution: Int64
    private var lastStatisticsRead: Int64 = 0
    private var meter = ThreadCPUMeter()
    /// The engine's decoding, with its hash seed: a SYN's keys are hashed here, off the engine's thread.
    private let decoder: FrameDecoder
    /// Whether the kernel's filter thins what the engine thins by client, and what it thins now.
    private let kernelSampling: Bool
    private let clientSampling: ClientSampling
    private var installedSampling: [SampledService] = []
    private let logger: Logger

    /// - Parameters:
    ///   - index: the shard's number among `count`, from 0; shard 0 tells of the kernel filter's changes.
    ///   - capture: an activated capture, in the interface's fanout group when `count` > 1.
    ///   - ring: the ring this shard fills.
    ///   - engine: the engine it decodes for (its hash seed, client sampling and step); not touched.
    init(
        index: Int,
        of count: Int,
        capture: LiveCapture,
        ring: DecodedBatchRing<Note>,
        engine: Engine,
        kernelSampling: Bool,
        logger: Logger
    ) {
        self.index = index
        interface = capture.interface
        threadName = count == 1 ? "read \(capture.interface)" : "read\(index + 1) \(capture.interface)"
        label = count == 1 ? "read" : "read \(index + 1)"
        self.capture = capture
        self.ring = ring
        resolution = engine.configuration.windows.resolution.nanoseconds
        decoder = engine.frameDecoder
        clientSampling = engine.clientSampling
        self.kernelSampling = kernelSampling
        self.logger = logger
        heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
    }

    /// Reads and decodes until the stop signal is raised; the last batch says so. Runs on the shard's thread.
    func read() {
        while true {
            heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
            let batch = ring.startFilling()
            heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
            var note = Note()
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
            if note.statistics != nil { note.reading = meter.read() }
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
            guard index == 0 else { return wanted }
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
                metadata: ["interface": "\(interface)", "thread": "\(label)", "error": "\(error)"]
            )
            return []
        }
        return wanted
    }

    /// libpcap's counters when a report interval has passed since they were last read.
    private func statisticsDue() -> CaptureStatistics? {
        let now = Clocks.monotonicNanoseconds()
        guard now - lastStatisticsRead >= CaptureLoop.reportInterval else { return nil }
        lastStatisticsRead = now
        return try? capture.statistics()
    }

    /// Wall-clock time that every frame still to come from the kernel is younger than: the open block of the ring
    /// holds frames for up to the buffer timeout, plus timer rounding of a jiffy or two.
    private func settledTime() -> Timestamp {
        Timestamp(nanoseconds: Clocks.wall().nanoseconds - capture.options.bufferTimeout.wholeNanoseconds - 10_000_000)
    }

    /// How long the capture may wait for frames before the next step boundary passes the settled time, so an
    /// idle link still gets each step decided on time (and the other shards' frames are not held back longer);
    /// at most the capture's idle interval.
    private func untilNextStep() -> Duration {
        let settled = settledTime().nanoseconds
        let wait = (settled / resolution + 1) * resolution - settled
        return min(capture.options.idleInterval, .nanoseconds(wait))
    }

    /// Reports the failure and reopens the interface once a second; each attempt hands the engine an empty batch,
    /// so windows slide and attacks end meanwhile. Returns false when the loop was stopped first.
    private func reopen(after error: CaptureError) -> Bool {
        let metadata: Logger.Metadata = ["interface": "\(interface)", "thread": "\(label)"]
        logger.error("Capture failed; reopening", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        var state = CaptureState.reopening(reason: "\(error)")
        while !capture.stopSignal.isRaised {
            do {
                capture = try capture.reopened()
                logger.notice("Capture reopened", metadata: metadata)
                // Opened with the plain filter: the next turn installs the thinning again.
                installedSampling = []
                post(Note(drained: true, settled: settledTime(), reopened: true, kernelSampling: []))
                return true
            } catch {
                // Each new reason is told once, and shown in the status until the interface is back.
                let reason = CaptureState.reopening(reason: "\(error)")
                if reason != state {
                    logger.error("Capture not reopened", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    state = reason
                }
                post(Note(drained: true, settled: Clocks.wall(), state: state))
                var pause = timespec(tv_sec: 0, tv_nsec: Int(Self.reopenInterval))
                nanosleep(&pause, nil)
            }
        }
        post(Note(drained: true, settled: Clocks.wall(), state: state, stopped: true))
        return false
    }

    /// Hands the engine's thread a batch with no frames, only `note`.
    private func post(_ note: Note) {
        heartbeat.store(Clocks.monotonicNanoseconds(), ordering: .relaxed)
        ring.startFilling().note = note
        ring.finishFilling()
    }
}

import Dispatch
import Logging
import ServiceLifecycle
import Synchronization
import SynwatchKernel
import SynwatchSystem

/// Reads the kernel's TCP counters a few times a second and its listen queues once a second: for status, metrics,
/// alerts and the detector.
///
/// The figures are those of the daemon's network namespace: on the victim itself they are the victim's. A
/// missing `/proc/net` file (a container) or a refused sock_diag socket leaves those figures out, logged once.
final class KernelWatch: Sendable {
    /// Counters are read this often, so that an alert raised a fraction of a second into a flood already carries
    /// the kernel's figures; their rates span about `rateSpan`.
    static let interval = Duration.milliseconds(250)
    static let rateSpan = Duration.seconds(1)
    /// sock_diag dumps every request socket: listen queues are read once every this many intervals.
    static let listenQueueEvery = 4
    /// Listeners listed by SYN_RECV count and by accept queue; the totals count them all.
    static let listedListeners = 16

    private let counters = KernelTCPCounterReader()
    private let queues: KernelListenQueueReader?
    private let state = Mutex(State())
    private let reported = Mutex<Set<Reading>>([])
    private let logger: Logger

    /// The two readings, each of which may fail on its own.
    private enum Reading { case counters, listenQueues }

    private struct State {
        var status = KernelStatus()
        var monitor = KernelTCPMonitor(span: KernelWatch.rateSpan)
        var reads = 0
    }

    init(logger: Logger) {
        self.logger = logger
        do {
            queues = try KernelListenQueueReader()
        } catch {
            queues = nil
            logger.warning("Listen queues not watched: no sock_diag socket", metadata: ["error": "\(error)"])
        }
        // The first status already shows the kernel's figures.
        poll()
    }

    /// The figures of the last read.
    var status: KernelStatus { state.withLock { $0.status } }

    /// Reads the counters (and every few calls the listen queues); failures are logged the first time each kind
    /// happens, and leave that part out.
    func poll() {
        let sample: KernelTCPSample?
        do {
            sample = try counters.sample()
        } catch {
            sample = nil
            reportOnce(.counters, "Kernel TCP counters not read", error)
        }
        let readQueues = state.withLock { state in
            defer { state.reads += 1 }
            return state.reads % Self.listenQueueEvery == 0
        }
        var listenQueues: KernelListenQueues?
        if readQueues, let queues {
            do {
                listenQueues = try queues.read(limit: Self.listedListeners)
            } catch {
                reportOnce(.listenQueues, "Listen queues not read", error)
            }
        }
        state.withLock { state in
            if let sample {
                state.monitor.record(sample)
                state.status.counters = sample.counters
                state.status.rates = state.monitor.rates
            } else {
                state.status.counters = KernelTCPCounters()
                state.status.rates = nil
            }
            if readQueues { state.status.listenQueues = listenQueues }
        }
    }

    private func reportOnce(_ kind: Reading, _ message: Logger.Message, _ error: SystemCallError) {
        guard reported.withLock({ $0.insert(kind).inserted }) else { return }
        logger.warning(message, metadata: ["error": "\(error)"])
    }
}

/// Polls the kernel a few times a second and hands each reading to the capture loops' engines.
struct KernelService: Service {
    let watch: KernelWatch
    let loops: [CaptureLoop]
    /// procfs reads and sock_diag dumps block in the kernel: they run here, off the cooperative pool.
    let queue: DispatchQueue

    func run() async throws {
        await poll()
        await repeating(every: KernelWatch.interval) { await poll() }
    }

    private func poll() async {
        let watch = watch
        await blocking(on: queue) { watch.poll() }
        let status = watch.status
        for loop in loops { loop.observeKernel(status) }
    }
}

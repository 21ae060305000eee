import Logging
import ServiceLifecycle
import Synchronization
import SynwatchDaemon
import SynwatchKernel

/// Reads the kernel's TCP counters and listen queues once a second, for status, metrics, alerts and the detector.
///
/// The figures are those of the daemon's network namespace: on the victim itself they are the victim's. A
/// missing `/proc/net` file (a container) or a refused sock_diag socket leaves those figures out, logged once.
final class KernelWatch: Sendable {
    static let interval = Duration.seconds(1)
    /// Listeners listed by SYN_RECV count and by accept queue; the totals count them all.
    static let listedListeners = 16

    private let counters = KernelTCPCounterReader()
    private let queues: KernelListenQueueReader?
    private let monitor = Mutex(KernelTCPMonitor())
    private let latest = Mutex(KernelStatus())
    private let reported = Mutex<Set<String>>([])
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        do {
            queues = try KernelListenQueueReader()
        } catch {
            queues = nil
            logger.warning("Listen queues not watched: no sock_diag socket", metadata: ["error": "\(error)"])
        }
    }

    /// The figures of the last read.
    var status: KernelStatus { latest.withLock { $0 } }

    /// Reads everything once; failures are logged the first time each kind happens, and leave that part out.
    func poll() {
        var status = KernelStatus()
        do {
            let sample = try counters.sample()
            status.counters = sample.counters
            status.rates = monitor.withLock { monitor in
                monitor.record(sample)
                return monitor.rates
            }
        } catch {
            reportOnce("counters", "Kernel TCP counters not read", error)
        }
        if let queues {
            do {
                status.listenQueues = try queues.read(limit: Self.listedListeners)
            } catch {
                reportOnce("queues", "Listen queues not read", error)
            }
        }
        latest.withLock { $0 = status }
    }

    private func reportOnce(_ kind: String, _ message: Logger.Message, _ error: KernelError) {
        guard reported.withLock({ $0.insert(kind).inserted }) else { return }
        logger.warning(message, metadata: ["error": "\(error)"])
    }
}

/// Polls the kernel once a second and hands each reading to the capture loops' engines.
struct KernelService: Service {
    let watch: KernelWatch
    let loops: [CaptureLoop]

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            watch.poll()
            let status = watch.status
            for loop in loops { loop.observeKernel(status) }
            try? await Task.sleep(for: KernelWatch.interval)
        }
    }
}

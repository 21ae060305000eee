import Synchronization
import SynwatchEngine
import SynwatchHooks

/// How the capture is doing, as the daemon last saw it.
public struct CaptureStatus: Sendable, Equatable {
    /// The interfaces captured on (`any` for all).
    public var interfaces: [String]
    /// `active`, or why not (an interface down, being reopened).
    public var state: CaptureState
    /// Frames the engine received, and per second over the last status interval.
    public var packets: Int
    public var packetsPerSecond: Double
    /// Frames the kernel dropped because the capture fell behind, and frames the interface dropped.
    public var kernelDrops: Int
    public var interfaceDrops: Int
    /// Each interface's reading and engine threads.
    public var threads: [CaptureThreadLoad]
    /// What each interface's kernel filter thins now.
    public var kernelSampling: [InterfaceSampling]

    public init(
        interfaces: [String],
        state: CaptureState = .starting,
        packets: Int = 0,
        packetsPerSecond: Double = 0,
        kernelDrops: Int = 0,
        interfaceDrops: Int = 0,
        threads: [CaptureThreadLoad] = [],
        kernelSampling: [InterfaceSampling] = []
    ) {
        self.interfaces = interfaces
        self.state = state
        self.packets = packets
        self.packetsPerSecond = packetsPerSecond
        self.kernelDrops = kernelDrops
        self.interfaceDrops = interfaceDrops
        self.threads = threads
        self.kernelSampling = kernelSampling
    }
}

/// The services one interface's kernel filter thins by client.
public struct InterfaceSampling: Sendable, Equatable {
    public var interface: String
    public var services: [SampledService]
}

/// One capture thread's CPU time, and its share of a core over the last status interval.
public struct CaptureThreadLoad: Sendable, Equatable {
    public var interface: String
    /// `read` or `engine`.
    public var thread: String
    public var cpuNanoseconds: Int64
    public var busy: Double
}

/// Everything the query socket serves, published by the capture loop a few times a second.
///
/// A value, so readers never wait for the capture loop and the capture loop never waits for readers.
public struct DaemonSnapshot: Sendable {
    /// Wall-clock seconds since the epoch when the daemon started, and of this snapshot.
    public var startedAt: Double
    public var updatedAt: Double
    public var configurationPath: String
    /// Successful configuration reloads (SIGHUP) so far.
    public var reloads: Int
    public var capture: CaptureStatus
    public var statistics: EngineStatistics
    public var occupancy: TableOccupancy
    public var activeAttacks: [AttackStatus]
    /// The latest `attack_end` events, oldest first.
    public var recentAttacks: [Event]
    public var services: [ServiceSummary]
    public var sources: [SourceSummary]
    /// The kernel's TCP counters and listen queues, read beside the capture.
    public var kernel: KernelStatus
    /// What the response hook did so far.
    public var hooks: HookCounters
    /// Most services with per-service metrics (`metrics.max_services`).
    public var serviceLimit: Int

    public init(
        startedAt: Double,
        updatedAt: Double,
        configurationPath: String,
        reloads: Int = 0,
        capture: CaptureStatus,
        statistics: EngineStatistics = EngineStatistics(),
        occupancy: TableOccupancy,
        activeAttacks: [AttackStatus] = [],
        recentAttacks: [Event] = [],
        services: [ServiceSummary] = [],
        sources: [SourceSummary] = [],
        kernel: KernelStatus = KernelStatus(),
        hooks: HookCounters = HookCounters(),
        serviceLimit: Int = ServiceListing.queryServices
    ) {
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.configurationPath = configurationPath
        self.reloads = reloads
        self.capture = capture
        self.statistics = statistics
        self.occupancy = occupancy
        self.activeAttacks = activeAttacks
        self.recentAttacks = recentAttacks
        self.services = services
        self.sources = sources
        self.kernel = kernel
        self.hooks = hooks
        self.serviceLimit = serviceLimit
    }
}

/// How many services the daemon lists: the query API's hundred, or more when `metrics.max_services` asks for more.
/// Shared by the capture loops, which list them, and the snapshot, which carries the cap; a reload changes it.
public final class ServiceListing: Sendable {
    /// The services `/v1/victims` can list.
    public static let queryServices = 100

    private let cap: Atomic<Int>

    public init(maxServices: Int) { cap = Atomic(maxServices) }

    /// The cap of the per-service metrics.
    public var maxServices: Int {
        get { cap.load(ordering: .relaxed) }
        set { cap.store(newValue, ordering: .relaxed) }
    }

    /// Services each capture loop lists, busiest first.
    var listed: Int { max(Self.queryServices, maxServices) }
}

/// The daemon's shared state between the capture loop (the only writer) and the query socket.
///
/// Holds the latest snapshot and fans events out to live subscribers (`/v1/events`). Each subscriber
/// has a bounded buffer that keeps the newest events, so a slow client loses events rather than
/// stalling the capture loop or the other clients.
public final class DaemonState: Sendable {
    /// Events a subscriber may fall behind by before it loses the oldest.
    public static let subscriberBuffer = 1_024

    private let latest: Mutex<DaemonSnapshot>
    private let subscribers = Mutex<(next: UInt64, continuations: [UInt64: AsyncStream<Event>.Continuation])>(
        (0, [:])
    )

    public init(_ initial: DaemonSnapshot) {
        latest = Mutex(initial)
    }

    /// The latest snapshot.
    public var snapshot: DaemonSnapshot { latest.withLock { $0 } }

    /// Replaces the snapshot (capture loop).
    public func publish(_ snapshot: DaemonSnapshot) {
        latest.withLock { $0 = snapshot }
    }

    /// Hands events to every subscriber (capture loop). Never blocks.
    public func broadcast(_ events: [Event]) {
        guard !events.isEmpty else { return }
        let continuations = subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations {
            for event in events { continuation.yield(event) }
        }
    }

    /// A live stream of the events from now on; it ends when the subscriber stops iterating it.
    public func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self,
            bufferingPolicy: .bufferingNewest(Self.subscriberBuffer)
        )
        let id = subscribers.withLock { state in
            let id = state.next
            state.next += 1
            state.continuations[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    /// Subscribers connected now.
    public var subscriberCount: Int { subscribers.withLock { $0.continuations.count } }

    /// Ends every subscription (shutdown).
    public func finishSubscriptions() {
        let continuations = subscribers.withLock { state in
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

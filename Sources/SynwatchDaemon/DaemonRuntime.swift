import Dispatch
import Glibc
@preconcurrency import Glibc
import Logging
import ServiceLifecycle
import SynwatchCapture
import SynwatchConfig
import SynwatchEngine
import SynwatchHooks
import SynwatchSystemd
import SystemPackage
import UnixSignals

/// The daemon put together: captures opened, privileges dropped, services run until a stop signal.
public struct DaemonRuntime: Sendable {
    public let configuration: SynwatchConfiguration
    /// The configuration file, read again on each reload.
    public let path: String
    /// The daemon's version, as the query socket tells it.
    public let version: String
    /// The command-line options, applied over the file again on each reload.
    public let overrides: @Sendable (inout SynwatchConfiguration) -> Void
    public let logger: Logger
    /// The kernel's readings block in system calls: they run on this queue, off the cooperative pool.
    private let blockingQueue = DispatchQueue(label: "synwatchd.blocking")

    public init(
        configuration: SynwatchConfiguration,
        path: String,
        version: String,
        logger: Logger = Logger(label: "synwatchd"),
        overrides: @escaping @Sendable (inout SynwatchConfiguration) -> Void
    ) {
        self.configuration = configuration
        self.path = path
        self.version = version
        self.logger = logger
        self.overrides = overrides
    }

    /// Logs to journald when systemd started us (it sets JOURNAL_STREAM or INVOCATION_ID), to stderr otherwise.
    /// Once per process, before the first logger is made.
    public static func bootstrapLogging() {
        let underSystemd = getenv("JOURNAL_STREAM") != nil || getenv("INVOCATION_ID") != nil
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                underSystemd ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }

    /// What `prepare()` opened for `run(_:)`.
    public struct Prepared: Sendable {
        let started: Double
        /// The state the query socket serves.
        public let state: DaemonState
        let sink: EventSink
        let loops: [CaptureLoop]
        let server: QueryServer
        /// `/metrics` over TCP, one server per `metrics.listen` address.
        let metricsServers: [QueryServer]
        let listing: ServiceListing
    }

    /// Opens the captures, binds the metrics listeners, makes the query socket's directory, then gives up root; the
    /// socket is made by `run(_:)`.
    ///
    /// Call it on the process's main thread before that thread first suspends: Swift's async main then parks the
    /// thread for good (`dispatch_main`), and glibc no longer changes a parked main thread's credentials, which
    /// are those `ps` and `/proc/PID/status` show.
    public func prepare() throws -> Prepared {
        let daemon = configuration.daemon
        let started = Clocks.wall().seconds
        let captures = try openCaptures()
        let engine = configuration.engine
        let emptyOccupancy = try Engine(configuration: engine).occupancy
        let state = DaemonState(
            DaemonSnapshot(
                startedAt: started,
                updatedAt: started,
                configurationPath: path,
                capture: CaptureStatus(interfaces: daemon.interfaces),
                occupancy: emptyOccupancy
            )
        )
        let hooks = HookRunner(configuration: configuration.hooks, logger: logger)
        let sink = EventSink(state: state, hooks: hooks, logger: logger)
        let listing = ServiceListing(maxServices: configuration.metrics.maxServices)
        let loops = try captures.map { captures in
            try CaptureLoop(
                captures: captures,
                configuration: engine,
                listing: listing,
                kernelSampling: configuration.daemon.kernelSampling,
                logger: logger,
                onEvents: sink.deliver
            )
        }
        let endpoint = try queryEndpoint()
        let server = QueryServer(state: state, endpoint: endpoint, version: version)
        let metricsServers = try bindMetricsListeners().map {
            QueryServer(state: state, endpoint: $0, version: version, paths: .metricsOnly)
        }
        try dropPrivileges(to: daemon.user, socket: endpoint)
        return Prepared(
            started: started,
            state: state,
            sink: sink,
            loops: loops,
            server: server,
            metricsServers: metricsServers,
            listing: listing
        )
    }

    /// Runs the services until SIGTERM or SIGINT, reloading the configuration on SIGHUP.
    public func run(_ prepared: Prepared) async throws {
        try await run(
            prepared,
            reloadRequests: await UnixSignalsSequence(trapping: .sighup),
            gracefulShutdownSignals: [.sigterm, .sigint]
        )
    }

    /// Runs the services until graceful shutdown: one of `gracefulShutdownSignals`, or the caller's own (the group
    /// follows a graceful shutdown of the task it runs in).
    /// - Parameters:
    ///   - reloadRequests: each element reloads the configuration file (SIGHUP).
    ///   - gracefulShutdownSignals: the signals that stop the daemon.
    public func run<Requests: AsyncSequence & Sendable>(
        _ prepared: Prepared,
        reloadRequests: Requests,
        gracefulShutdownSignals: [UnixSignal]
    ) async throws where Requests.Element: Sendable, Requests.Failure == Never {
        let (started, state, sink, loops, server) =
            (prepared.started, prepared.state, prepared.sink, prepared.loops, prepared.server)
        let servers = [server] + prepared.metricsServers
        let reloads = ReloadCounter()
        let sender = NotifySender(notifier: ServiceNotifier(), logger: logger)
        let kernel = await blocking(on: blockingQueue) { [logger] in KernelWatch(logger: logger) }
        // Stopped in reverse order: the hooks last, once the capture has delivered its final events.
        var services: [any Service] = [
            HookService(hooks: sink.hooks, logger: logger),
            KernelService(watch: kernel, loops: loops, queue: blockingQueue),
            CaptureService(
                loops: loops,
                state: state,
                sink: sink,
                started: started,
                configurationPath: path,
                reloads: reloads,
                kernel: kernel,
                listing: prepared.listing
            ),
        ]
        services += servers.map { QueryService(server: $0) }
        services += [
            NotifyService(sender: sender, loops: loops, state: state, logger: logger) {
                for server in servers { try await server.waitUntilListening() }
            },
            ReloadService(
                requests: reloadRequests,
                path: path,
                overrides: overrides,
                loops: loops,
                sender: sender,
                reloads: reloads,
                hooks: sink.hooks,
                hashSeed: configuration.engine.hashSeed,
                listing: prepared.listing,
                metricsListen: configuration.metrics.listen,
                logger: logger
            ),
        ]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: gracefulShutdownSignals,
                logger: logger
            )
        )
        try await group.run()
        state.finishSubscriptions()
        logger.notice("synwatchd stopped")
    }

    /// The socket systemd passed (socket activation), or the configured path.
    private func queryEndpoint() throws -> QueryEndpoint {
        let activated = try SocketActivation.listenFileDescriptors()
        if let socket = activated.first {
            logger.info("Query socket from systemd", metadata: ["fd": "\(socket.rawValue)"])
            return .fileDescriptor(socket.rawValue)
        }
        return .path(configuration.daemon.socketPath, group: configuration.daemon.socketGroup)
    }

    /// Binds `/metrics`'s TCP listeners while the daemon may still bind any port.
    /// - Throws: `DaemonFailure` naming the address that could not be bound.
    private func bindMetricsListeners() throws -> [QueryEndpoint] {
        var bound: [QueryEndpoint] = []
        for address in configuration.metrics.listen {
            do {
                let fd = try QuerySocket.bindAndListen(tcp: address, backlog: QueryServer.Limits().backlog)
                bound.append(.tcp(fd, address))
                logger.info("Serving /metrics", metadata: ["address": "\(address)"])
            } catch {
                for case .tcp(let fd, _) in bound { close(fd) }
                throw DaemonFailure("cannot serve /metrics on \(address) (metrics.listen): \(error)")
            }
        }
        return bound
    }

    /// Opens every interface while still privileged (CAP_NET_RAW): a capture per reading thread, in one fanout
    /// group per interface when there are several.
    private func openCaptures() throws -> [[LiveCapture]] {
        let daemon = configuration.daemon
        let shards =
            daemon.captureShards > 0
            ? daemon.captureShards : daemon.automaticCaptureShards(cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // The readers share the configured buffer, as they share the interface's flows.
        let options = LiveCaptureOptions(
            snapLength: daemon.snapLength,
            bufferSize: max(1 << 20, daemon.bufferSize / shards),
            bufferTimeout: .nanoseconds(daemon.bufferTimeout.nanoseconds)
        )
        return try daemon.interfaces.map { interface in
            do {
                let first = try LiveCapture(
                    interface: interface,
                    options: options,
                    fanout: shards > 1 ? CaptureFanout() : nil
                )
                let others = try (1..<shards).map { _ in
                    try LiveCapture(
                        interface: interface,
                        options: options,
                        stopSignal: first.stopSignal,
                        fanout: first.fanout
                    )
                }
                logger.info(
                    "Capturing",
                    metadata: ["interface": "\(interface)", "link": "\(first.linkType)", "threads": "\(shards)"]
                )
                return [first] + others
            } catch {
                throw DaemonFailure("\(error)")
            }
        }
    }

    /// Becomes `user` (its group and supplementary groups) for good, with no capabilities left: setuid away from root clears them.
    /// The query socket's directory is made first and given to the user, who creates the socket in it.
    private func dropPrivileges(to user: String, socket: QueryEndpoint) throws {
        guard getuid() == 0, user != "root" else { return }
        guard let entry = getpwnam(user) else {
            throw DaemonFailure("user \(user) does not exist: create it, or run with --user root")
        }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        if case .path(let path, _) = socket {
            let directory = FilePath(path).removingLastComponent().string
            let created = mkdir(directory, 0o755) == 0
            guard created || errno == EEXIST else {
                throw DaemonFailure("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            // Only a directory of its own goes to the user: one just made, or one named synwatch (never /run).
            if created || FilePath(directory).lastComponent?.string == "synwatch" {
                guard chown(directory, uid, gid) == 0 else {
                    throw DaemonFailure("cannot give \(directory) to \(user): \(String(cString: strerror(errno)))")
                }
            }
        }
        // The user's own supplementary groups stay: the socket's group (daemon.socket_group) is one of them.
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw DaemonFailure("cannot become user \(user): \(String(cString: strerror(errno)))")
        }
        logger.info("Running as \(user)", metadata: ["uid": "\(uid)", "gid": "\(gid)"])
    }
}

/// A start-up failure told in one sentence.
struct DaemonFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The query server as one of the daemon's services: it serves until shutdown begins, then stops
/// taking clients (its run() ends on cancellation).
struct QueryService: Service {
    let server: QueryServer

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await server.run() }
    }
}

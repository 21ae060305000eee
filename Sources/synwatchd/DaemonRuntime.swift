import Foundation
@preconcurrency import Glibc
import Logging
import ServiceLifecycle
import SynwatchCapture
import SynwatchConfig
import SynwatchDaemon
import SynwatchEngine
import SynwatchHooks
import SynwatchSystemd

/// The daemon put together: captures opened, privileges dropped, services run until a stop signal.
struct DaemonRuntime {
    let configuration: SynwatchConfiguration
    let path: String
    let overrides: @Sendable (inout SynwatchConfiguration) -> Void
    let logger: Logger

    init(
        configuration: SynwatchConfiguration,
        path: String,
        overrides: @escaping @Sendable (inout SynwatchConfiguration) -> Void
    ) throws {
        self.configuration = configuration
        self.path = path
        self.overrides = overrides
        DaemonRuntime.bootstrapLogging()
        logger = Logger(label: "synwatchd")
    }

    /// Logs to journald when systemd started us (it sets JOURNAL_STREAM or INVOCATION_ID), to stderr otherwise.
    static func bootstrapLogging() {
        let environment = ProcessInfo.processInfo.environment
        let underSystemd = environment["JOURNAL_STREAM"] != nil || environment["INVOCATION_ID"] != nil
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                underSystemd ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
    }

    /// What `prepare()` opened for `run(_:)`.
    struct Prepared: Sendable {
        let started: Double
        let state: DaemonState
        let sink: EventSink
        let loops: [CaptureLoop]
        let server: QueryServer
    }

    /// Opens the captures and gives up root, on the main thread before any task runs: the main thread's
    /// credentials are the process's as `ps` and systemd see them.
    func prepare() throws -> Prepared {
        let daemon = configuration.daemon
        let started = Date().timeIntervalSince1970
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
        let loops = try captures.map { capture in
            try CaptureLoop(capture: capture, configuration: engine, logger: logger, onEvents: sink.deliver)
        }
        let endpoint = try queryEndpoint()
        let server = QueryServer(state: state, endpoint: endpoint, version: Synwatchd.configuration.version)
        try dropPrivileges(to: daemon.user, socket: endpoint)
        return Prepared(started: started, state: state, sink: sink, loops: loops, server: server)
    }

    /// Runs the services until SIGTERM or SIGINT.
    func run(_ prepared: Prepared) async throws {
        let (started, state, sink, loops, server) =
            (prepared.started, prepared.state, prepared.sink, prepared.loops, prepared.server)
        let engine = configuration.engine
        let reloads = ReloadCounter()
        let notifier = ServiceNotifier()
        let kernel = KernelWatch(logger: logger)
        // Stopped in reverse order: the hooks last, once the capture has delivered its final events.
        let services: [any Service] = [
            HookService(hooks: sink.hooks, logger: logger),
            KernelService(watch: kernel, loops: loops),
            CaptureService(
                loops: loops,
                state: state,
                sink: sink,
                started: started,
                configurationPath: path,
                reloads: reloads,
                kernel: kernel
            ),
            QueryService(server: server),
            NotifyService(notifier: notifier, loops: loops, state: state, logger: logger) {
                try await server.waitUntilListening()
            },
            ReloadService(
                path: path,
                overrides: overrides,
                loops: loops,
                notifier: notifier,
                reloads: reloads,
                hooks: sink.hooks,
                hashSeed: engine.hashSeed,
                logger: logger
            ),
        ]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
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

    /// Opens every interface while still privileged (CAP_NET_RAW).
    private func openCaptures() throws -> [LiveCapture] {
        let daemon = configuration.daemon
        let options = LiveCaptureOptions(
            snapLength: daemon.snapLength,
            bufferSize: daemon.bufferSize,
            bufferTimeout: .nanoseconds(daemon.bufferTimeout.nanoseconds)
        )
        return try daemon.interfaces.map { interface in
            do {
                let capture = try LiveCapture(interface: interface, options: options)
                logger.info(
                    "Capturing",
                    metadata: ["interface": "\(interface)", "link": "\(capture.linkType)"]
                )
                return capture
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
            let directory = (path as NSString).deletingLastPathComponent
            let created = mkdir(directory, 0o755) == 0
            guard created || errno == EEXIST else {
                throw DaemonFailure("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            // Only a directory of its own goes to the user: one just made, or one named synwatch (never /run).
            if created || (directory as NSString).lastPathComponent == "synwatch" {
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

import SynwatchEngine
import SynwatchHooks

/// Everything the configuration file sets: the engine's tunables and the daemon's own settings.
///
/// The defaults here are the values of the shipped `Config/synwatch.yaml`; a test keeps the two equal.
public struct SynwatchConfiguration: Sendable, Equatable {
    /// Where `synwatchd` and `synwatch` look for the file unless told otherwise.
    public static let defaultPath = "/etc/synwatch/synwatch.yaml"

    /// The detection tunables. `hashSeed` is never read from the file: the daemon draws it at random.
    public var engine: EngineConfiguration
    /// The `daemon:` section: capture and query-socket settings of `synwatchd`.
    public var daemon: DaemonConfiguration
    /// The `hooks:` section: the command `synwatchd` runs on attack events.
    public var hooks: HookConfiguration
    /// The `metrics:` section: `/metrics` over TCP for Prometheus, and its per-service series.
    public var metrics: MetricsConfiguration

    /// Creates a configuration from its parts, the built-in defaults unless given.
    public init(
        engine: EngineConfiguration = .init(),
        daemon: DaemonConfiguration = .init(),
        hooks: HookConfiguration = .init(),
        metrics: MetricsConfiguration = .init()
    ) {
        self.engine = engine
        self.daemon = daemon
        self.hooks = hooks
        self.metrics = metrics
    }

    /// Checks the values that each look valid on their own but cannot work, engine first.
    /// - Throws: `ConfigurationProblem` naming the first offending key.
    public func validate() throws(ConfigurationProblem) {
        try engine.validate()
        try daemon.validate()
        try hooks.validate()
        try metrics.validate()
    }
}

extension HookConfiguration {
    /// Checks that a hook can be run with these values.
    /// - Throws: `ConfigurationProblem` naming the first offending key.
    public func validate() throws(ConfigurationProblem) {
        if let command {
            guard let program = command.first, !program.isEmpty else {
                throw ConfigurationProblem(
                    key: "hooks.command",
                    message: "must name the program to run, or be null for no hook"
                )
            }
            guard program.hasPrefix("/") else {
                throw ConfigurationProblem(
                    key: "hooks.command",
                    message: "must start with the program's absolute path, not '\(program)'"
                )
            }
            // The arguments become C strings, which end at the first NUL.
            guard !command.contains(where: { $0.utf8.contains(0) }) else {
                throw ConfigurationProblem(key: "hooks.command", message: "must not contain a NUL character")
            }
        }
        guard !events.isEmpty else {
            throw ConfigurationProblem(
                key: "hooks.events",
                message: "must name at least one event; set command to null for no hook"
            )
        }
        guard timeout >= .milliseconds(100), timeout <= .seconds(600) else {
            throw ConfigurationProblem(key: "hooks.timeout", message: "must be between 100ms and 10m")
        }
        guard (1...64).contains(maxConcurrent) else {
            throw ConfigurationProblem(key: "hooks.max_concurrent", message: "must be between 1 and 64")
        }
    }
}

/// Settings of `synwatchd` itself: where it captures, where it answers queries, whom it runs as.
public struct DaemonConfiguration: Sendable, Equatable {
    /// Interfaces to capture on; `any` is libpcap's pseudo-interface that sees every interface.
    public var interfaces = ["any"]
    /// The query endpoint: HTTP/1.1 over this Unix stream socket.
    public var socketPath = "/run/synwatch/synwatch.sock"
    /// Group given the socket so its members can query without root; `nil` leaves the daemon's own group.
    public var socketGroup: String?
    /// Unprivileged user the daemon runs as once its captures are open; it then creates the socket.
    public var user = "synwatch"
    /// Size in bytes of the kernel capture buffer, which absorbs bursts while the engine catches up.
    public var bufferSize = 64 * 1024 * 1024
    /// Bytes kept of each frame; only the link, VLAN, IP and TCP headers are read.
    public var snapLength = 128
    /// Longest a captured frame waits in the kernel buffer before it is delivered (libpcap's timeout): short,
    /// because it adds to the delay of every alert.
    public var bufferTimeout = TimeSpan.milliseconds(10)
    /// Whether the capture's kernel filter drops the SYNs (and SYN-ACKs) of the clients the engine leaves out of a
    /// service under a random-source storm, so the flood costs user space a bounded rate.
    public var kernelSampling = true
    /// Reading threads per interface, each taking its share of the flows from the kernel (`PACKET_FANOUT`);
    /// 0 for `automaticCaptureShards`.
    public var captureShards = 0

    /// The most reading threads per interface.
    public static let maximumCaptureShards = 16

    /// Reading threads per interface when `captureShards` is 0: one per core beyond each interface's engine
    /// thread, at least 1 and at most 2. Two readers already read faster than the one engine thread takes their
    /// frames (`scripts/benchmark-live`), so a third would only wait.
    public func automaticCaptureShards(cores: Int) -> Int {
        max(1, min(2, cores / interfaces.count - 1))
    }

    /// Creates the built-in defaults.
    public init() {}

    /// Checks that the daemon can use these values.
    /// - Throws: `ConfigurationProblem` naming the first offending key.
    public func validate() throws(ConfigurationProblem) {
        guard !interfaces.isEmpty else {
            throw ConfigurationProblem(key: "daemon.interfaces", message: "must name at least one interface")
        }
        for name in interfaces {
            // IFNAMSIZ is 16 bytes with the terminating NUL.
            guard !name.isEmpty, name.utf8.count <= 15 else {
                throw ConfigurationProblem(key: "daemon.interfaces", message: "'\(name)' is not an interface name")
            }
        }
        guard Set(interfaces).count == interfaces.count else {
            throw ConfigurationProblem(key: "daemon.interfaces", message: "names an interface twice")
        }
        // Capturing on `any` and on one of its members would count every frame twice.
        guard interfaces == ["any"] || !interfaces.contains("any") else {
            throw ConfigurationProblem(key: "daemon.interfaces", message: "'any' already covers every interface")
        }
        guard socketPath.hasPrefix("/") else {
            throw ConfigurationProblem(key: "daemon.socket_path", message: "must be an absolute path")
        }
        // sun_path holds 108 bytes with the terminating NUL.
        guard socketPath.utf8.count <= 107 else {
            throw ConfigurationProblem(key: "daemon.socket_path", message: "must be at most 107 bytes long")
        }
        if let socketGroup, socketGroup.isEmpty {
            throw ConfigurationProblem(key: "daemon.socket_group", message: "must be a group name, or null for none")
        }
        guard !user.isEmpty else { throw ConfigurationProblem(key: "daemon.user", message: "must be a user name") }
        // libpcap takes the buffer size as a C int; below 1 MiB a flood overruns it at once.
        guard bufferSize >= 1 << 20, bufferSize <= Int(Int32.max) else {
            throw ConfigurationProblem(key: "daemon.buffer_size", message: "must be between 1MiB and 2047MiB")
        }
        // Ethernet (14) + two VLAN tags (8) + IPv6 (40) + TCP (20); 262144 is libpcap's largest.
        guard snapLength >= 82, snapLength <= 262_144 else {
            throw ConfigurationProblem(key: "daemon.snap_length", message: "must be between 82 and 262144")
        }
        // libpcap counts the timeout in whole milliseconds; a long one would stall the watchdog.
        guard bufferTimeout >= .milliseconds(1), bufferTimeout <= .milliseconds(1_000) else {
            throw ConfigurationProblem(key: "daemon.buffer_timeout", message: "must be between 1ms and 1s")
        }
        guard (0...Self.maximumCaptureShards).contains(captureShards) else {
            throw ConfigurationProblem(
                key: "daemon.capture_shards",
                message: "must be between 0 (one per core) and \(Self.maximumCaptureShards)"
            )
        }
    }
}

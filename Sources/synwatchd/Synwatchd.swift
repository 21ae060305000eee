import ArgumentParser
import Glibc
import SynwatchConfig
import SynwatchDaemon

/// `synwatchd`: watches the wire for SYN floods and tells systemd, journald and the query socket.
@main
struct Synwatchd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synwatchd",
        abstract: "Detect TCP SYN floods on live interfaces; alerts go to journald, state to a query socket.",
        discussion: """
            Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration file (an invalid one is \
            logged and the running configuration stays). Under systemd (Type=notify) it reports \
            READY, STATUS, WATCHDOG, RELOADING and STOPPING; the packaged unit is synwatchd.service \
            (systemctl reload synwatchd sends SIGHUP), with synwatchd.socket for socket activation.

            Every alert is a journal entry with a MESSAGE_ID per event type and SYNWATCH_* fields: \
            journalctl -u synwatchd -o verbose shows them, journalctl -x adds the catalog's \
            explanation. The query socket (default /run/synwatch/synwatch.sock) answers synwatch(1) \
            and curl --unix-socket: /v1/status, /v1/attacks, /v1/victims, /v1/sources, /v1/events \
            and /metrics.

            Prometheus scrapes /metrics over TCP where metrics.listen or --metrics-listen says \
            (off by default); that listener serves /metrics alone. Its per-service series \
            (synwatch_service_*) cover the busiest metrics.max_services services. Under the \
            packaged unit, the example drop-in synwatchd-metrics.conf (in \
            /usr/share/doc/synwatch/examples/systemd/) opens the sandbox for the listener.

            Started as root, it opens its captures and the socket, then becomes --user with no \
            capability left. Started as that user with CAP_NET_RAW (as the unit does), it keeps \
            CAP_NET_RAW to reopen an interface that goes away and comes back.

            Response hooks (hooks: in the file) run a command of yours on attack events. Two examples \
            ship in /usr/share/doc/synwatch/examples/hooks/, not enabled: nftables-block-sources blocks \
            a flood's top sources; nftables-synproxy puts the kernel's SYN proxy in front of the \
            attacked address and port while the attack lasts (undo by hand: nft delete table inet \
            synwatch_synproxy). Both need CAP_NET_ADMIN: the drop-in synwatchd-nftables-hooks.conf \
            there grants it.

            Files: /etc/synwatch/synwatch.yaml (see synwatch.yaml(5)), /run/synwatch/synwatch.sock.
            """,
        version: "0.1.0"
    )

    @Option(help: ArgumentHelp("Configuration file; built-in defaults when it does not exist.", valueName: "path"))
    var config = SynwatchConfiguration.defaultPath

    @Option(
        name: .customLong("interface"),
        help: ArgumentHelp("Interface to capture on (repeat for several; `any` for all). Overrides the file.")
    )
    var interfaces: [String] = []

    @Option(help: ArgumentHelp("Path of the query socket. Overrides the file.", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("User to run as once capture is open. Overrides the file."))
    var user: String?

    @Option(
        name: .customLong("metrics-listen"),
        help: ArgumentHelp(
            "Serve /metrics over TCP on ADDRESS:PORT (IPv6 as [ADDRESS]:PORT; repeat for several). Replaces the "
                + "file's metrics.listen; a change takes effect only after a restart.",
            valueName: "address:port"
        ),
        transform: { text in
            guard let address = ListenAddress(text) else {
                throw ValidationError("--metrics-listen: '\(text)' is not ADDRESS:PORT with an IP address and a port")
            }
            return address
        }
    )
    var metricsListen: [ListenAddress] = []

    @Flag(help: "Check the configuration file and exit.")
    var checkConfig = false

    /// Parses the command line, then opens the captures and gives up root on the process's main thread, before its
    /// first suspension (see `DaemonRuntime.prepare()`); the services then run in tasks until a stop signal.
    @MainActor
    static func main() async {
        unblockStopSignals()
        do {
            guard let (daemon, prepared) = try parse().prepare() else { return }
            try await daemon.run(prepared)
        } catch {
            exit(withError: error)
        }
    }

    /// The daemon, opened; nil when only the configuration was to be checked.
    private func prepare() throws -> (DaemonRuntime, DaemonRuntime.Prepared)? {
        let loaded = try loadConfiguration()
        if checkConfig {
            print(
                "\(config): \(loaded.fileWasMissing ? "no file; the built-in defaults are" : "configuration is") valid"
            )
            return nil
        }
        var configuration = loaded.configuration
        configuration.engine.hashSeed = UInt64.random(in: .min ... .max)
        DaemonRuntime.bootstrapLogging()
        let daemon = DaemonRuntime(
            configuration: configuration,
            path: config,
            version: Self.configuration.version,
            overrides: overrides
        )
        if loaded.fileWasMissing {
            daemon.logger.notice("No configuration file; using the built-in defaults", metadata: ["path": "\(config)"])
        }
        return (daemon, try daemon.prepare())
    }

    /// Unblocks the signals the daemon answers: a launcher may exec it with them blocked (systemd-socket-activate
    /// does), and every thread started later inherits this mask.
    static func unblockStopSignals() {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }

    /// The command-line options applied over the file.
    var overrides: @Sendable (inout SynwatchConfiguration) -> Void {
        let interfaces = interfaces, socket = socket, user = user, metricsListen = metricsListen
        return { configuration in
            if !metricsListen.isEmpty { configuration.metrics.listen = metricsListen }
            if !interfaces.isEmpty { configuration.daemon.interfaces = interfaces }
            if let socket { configuration.daemon.socketPath = socket }
            if let user { configuration.daemon.user = user }
        }
    }

    private func loadConfiguration() throws -> LoadedConfiguration {
        do {
            var loaded = try SynwatchConfiguration.load(path: config)
            overrides(&loaded.configuration)
            try loaded.configuration.validate()
            return loaded
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        } catch {
            throw ValidationError("\(config): \(error)")
        }
    }
}

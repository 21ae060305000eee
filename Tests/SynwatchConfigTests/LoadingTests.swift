import SynwatchConfig
import SynwatchEngine
import SynwatchHooks
import Testing

/// Reading files and text into a configuration, and every key reaching its field.
@Suite struct LoadingTests {
    @Test("A missing file means the built-in defaults, and says so")
    func missingFile() throws {
        let directory = TemporaryDirectory()
        for path in ["\(directory.path)/absent.yaml", "\(directory.path)/absent/synwatch.yaml"] {
            let loaded = try SynwatchConfiguration.load(path: path)
            let defaults = LoadedConfiguration(configuration: SynwatchConfiguration(), path: path, fileWasMissing: true)
            #expect(loaded == defaults)
        }
    }

    @Test(
        "Empty text, comments, an empty document and empty sections mean the defaults",
        arguments: ["", "\n\n", "# nothing set yet\n", "---\n", "~\n", "baseline:\n  # enabled: false\ndetection:\n"]
    )
    func emptyMeansDefaults(yaml: String) throws {
        let directory = TemporaryDirectory()
        let loaded = try SynwatchConfiguration.load(path: directory.write("synwatch.yaml", Array(yaml.utf8)))
        #expect(!loaded.fileWasMissing)
        #expect(loaded.configuration == SynwatchConfiguration())
    }

    @Test("capture_shards 0: a reading thread per core beyond each interface's engine thread, from 1 to 2")
    func automaticCaptureShards() throws {
        var daemon = try SynwatchConfiguration(yaml: "daemon:\n  interfaces: [eth0]\n").daemon
        #expect(daemon.captureShards == 0)
        #expect([1, 2, 3, 4, 64].map { daemon.automaticCaptureShards(cores: $0) } == [1, 1, 2, 2, 2])
        daemon.interfaces = ["eth0", "eth1"]
        #expect([2, 4, 6, 64].map { daemon.automaticCaptureShards(cores: $0) } == [1, 1, 2, 2])
    }

    @Test("An alias reads the value its anchor names")
    func aliases() throws {
        let configuration = try SynwatchConfiguration(
            yaml: "victims: {capacity: &tables 8192}\nsources: {capacity: *tables}\n"
        )
        #expect(configuration.engine.victims.capacity == 8192)
        #expect(configuration.engine.sources.capacity == 8192)
    }

    @Test("A file that exists but cannot be read is an error, never the defaults")
    func unreadableFile() {
        let directory = TemporaryDirectory()
        let error = #expect(throws: ConfigurationError.self) { try SynwatchConfiguration.load(path: directory.path) }
        #expect(error?.kind == .unreadable)
        #expect(error?.description == "\(directory.path): read: Is a directory (errno 21)")

        let latin1 = directory.write("latin1.yaml", Array("daemon:\n  user: ".utf8) + [0xE9, 0x0A])
        let notText = #expect(throws: ConfigurationError.self) { try SynwatchConfiguration.load(path: latin1) }
        #expect(notText?.kind == .unreadable)
        #expect(notText?.description == "\(latin1): is not UTF-8 text")
    }

    @Test("Errors in a file name the file")
    func errorNamesTheFile() {
        let directory = TemporaryDirectory()
        let path = directory.write("synwatch.yaml", Array("detection:\n  top_sources: 40\n".utf8))
        let error = #expect(throws: ConfigurationError.self) { try SynwatchConfiguration.load(path: path) }
        #expect(error?.path == path)
        #expect(error?.description == "\(path):2:16: detection.top_sources: must be at most 32")
    }

    /// Every key set to a value other than its default.
    static let everyKeyChanged = """
        daemon:
          interfaces: [eth0, eth1]
          socket_path: /run/synwatch-test/query.sock
          socket_group: adm
          user: nobody
          buffer_size: 256MiB
          snap_length: 192
          buffer_timeout: 20ms
          kernel_sampling: false
          capture_shards: 3
        handshakes:
          timeout: 8s
          retransmission_deadline: 3s
          min_retransmission_delay: 50ms
          retransmitted_timeout: 40s
          capacity: 1_048_576
        victims:
          capacity: 8192
        sources:
          capacity: 131072
        connections:
          capacity: 65536
          time_wait: 30s
          fin_timeout: 20s
        windows:
          resolution: 20ms
          rate: 4s
          completion_grace: 500ms
          completion_grace_floor: 100ms
          completion_grace_ceiling: 1200ms
          sources: 20s
        detection:
          half_open_per_s: 250.5
          max_completion_ratio: 0.7
          min_attempts: 50
          confirmation: 1s
          quiet_period: 30s
          end_fraction: 0.25
          update_interval: 1m
          top_sources: 10
        baseline:
          enabled: false
          half_life: 1h
          warmup: 10m
          factor: 3.5
          deviations: 6
          min_half_open_per_s: 40
          min_completion_drop: 0.3
        classification:
          single_source_share: 0.6
          random_source_distinct_ratio: 0.8
          random_source_min_sources: 64
          random_source_pool_min_sources: 4096
        scan:
          min_targets: 50
          max_completion_ratio: 0.3
          notice_interval: 5m
        backscatter:
          min_per_s: 50
          min_sources: 16
          notice_interval: 2m
          capacity: 2048
        hooks:
          command: [/usr/local/lib/synwatch/hooks/block, --table, "synwatch $(x)"]
          events: [attack_update]
          timeout: 30s
          max_concurrent: 2
        metrics:
          listen: [198.18.0.10:9464, "[2001:db8::10]:9100"]
          max_services: 20

        """

    static var everyKeyChangedExpected: SynwatchConfiguration {
        var daemon = DaemonConfiguration()
        daemon.interfaces = ["eth0", "eth1"]
        daemon.socketPath = "/run/synwatch-test/query.sock"
        daemon.socketGroup = "adm"
        daemon.user = "nobody"
        daemon.bufferSize = 256 * 1024 * 1024
        daemon.snapLength = 192
        daemon.bufferTimeout = .milliseconds(20)
        daemon.kernelSampling = false
        daemon.captureShards = 3

        var engine = EngineConfiguration()
        engine.handshakes.timeout = .seconds(8)
        engine.handshakes.retransmissionDeadline = .seconds(3)
        engine.handshakes.minRetransmissionDelay = .milliseconds(50)
        engine.handshakes.retransmittedTimeout = .seconds(40)
        engine.handshakes.capacity = 1_048_576
        engine.victims.capacity = 8192
        engine.sources.capacity = 131_072
        engine.connections.capacity = 65_536
        engine.connections.timeWait = .seconds(30)
        engine.connections.finTimeout = .seconds(20)
        engine.windows.resolution = .milliseconds(20)
        engine.windows.rate = .seconds(4)
        engine.windows.completionGrace = .milliseconds(500)
        engine.windows.completionGraceFloor = .milliseconds(100)
        engine.windows.completionGraceCeiling = .milliseconds(1_200)
        engine.windows.sources = .seconds(20)
        engine.detection.halfOpenPerSecond = 250.5
        engine.detection.maxCompletionRatio = 0.7
        engine.detection.minAttempts = 50
        engine.detection.confirmation = .seconds(1)
        engine.detection.quietPeriod = .seconds(30)
        engine.detection.endFraction = 0.25
        engine.detection.updateInterval = .seconds(60)
        engine.detection.topSources = 10
        engine.baseline.enabled = false
        engine.baseline.halfLife = .seconds(3_600)
        engine.baseline.warmup = .seconds(600)
        engine.baseline.factor = 3.5
        engine.baseline.deviations = 6
        engine.baseline.minHalfOpenPerSecond = 40
        engine.baseline.minCompletionDrop = 0.3
        engine.classification.singleSourceShare = 0.6
        engine.classification.randomSourceDistinctRatio = 0.8
        engine.classification.randomSourceMinSources = 64
        engine.classification.randomSourcePoolMinSources = 4_096
        engine.scan.minTargets = 50
        engine.scan.maxCompletionRatio = 0.3
        engine.scan.noticeInterval = .seconds(300)
        engine.backscatter.minPerSecond = 50
        engine.backscatter.minSources = 16
        engine.backscatter.noticeInterval = .seconds(120)
        engine.backscatter.capacity = 2048

        var hooks = HookConfiguration()
        hooks.command = ["/usr/local/lib/synwatch/hooks/block", "--table", "synwatch $(x)"]
        hooks.events = [.attackUpdate]
        hooks.timeout = .seconds(30)
        hooks.maxConcurrent = 2

        var metrics = MetricsConfiguration()
        metrics.listen = [
            ListenAddress(host: "198.18.0.10", port: 9464), ListenAddress(host: "2001:db8::10", port: 9100),
        ]
        metrics.maxServices = 20
        return SynwatchConfiguration(engine: engine, daemon: daemon, hooks: hooks, metrics: metrics)
    }

    @Test("Every key reaches its own field")
    func roundTrip() throws {
        let loaded = try SynwatchConfiguration(yaml: Self.everyKeyChanged)
        #expect(loaded == Self.everyKeyChangedExpected)
        #expect(loaded.engine.hashSeed == EngineConfiguration().hashSeed)
    }

    @Test("The round trip changes every field, so no field is left unmapped")
    func roundTripCoversEveryField() {
        let unchanged = unchangedFields(Self.everyKeyChangedExpected, SynwatchConfiguration())
        // The hash seed is the one field the file does not set.
        #expect(unchanged == [".engine.hashSeed"])
    }

    /// The paths of the fields, down through nested structs, that are equal in `changed` and `original`.
    private func unchangedFields(_ changed: Any, _ original: Any, path: String = "") -> [String] {
        let fields = Mirror(reflecting: changed)
        guard fields.displayStyle == .struct else { return "\(changed)" == "\(original)" ? [path] : [] }
        return zip(fields.children, Mirror(reflecting: original).children).flatMap {
            unchangedFields($0.value, $1.value, path: "\(path).\($0.label ?? "?")")
        }
    }

    @Test("Each key on its own changes the configuration")
    func eachKeyAlone() throws {
        var section = ""
        for line in Self.everyKeyChanged.split(separator: "\n") {
            if !line.hasPrefix(" ") {
                section = String(line)
                continue
            }
            let alone = try SynwatchConfiguration(yaml: "\(section)\n\(line)\n")
            #expect(alone != SynwatchConfiguration(), "\(section) \(line) changed nothing")
        }
    }

    @Test("Flow style and YAML's other spellings of true and false")
    func otherSpellings() throws {
        let loaded = try SynwatchConfiguration(yaml: "baseline: {enabled: no, factor: 2}\nvictims: {capacity: 0100}\n")
        #expect(loaded.engine.baseline.enabled == false)
        #expect(loaded.engine.baseline.factor == 2)
        // Decimal, not YAML 1.1's octal.
        #expect(loaded.engine.victims.capacity == 100)
        #expect(try SynwatchConfiguration(yaml: "baseline:\n  enabled: off\n").engine.baseline.enabled == false)
        #expect(try SynwatchConfiguration(yaml: "baseline:\n  enabled: Yes\n").engine.baseline.enabled == true)
    }

    @Test("A socket group may be set or null, and sizes take units")
    func daemonValues() throws {
        let daemon = try SynwatchConfiguration(yaml: "daemon:\n  socket_group: ~\n  buffer_size: 1GiB\n").daemon
        #expect(daemon.socketGroup == nil)
        #expect(daemon.bufferSize == 1 << 30)
        let sizes = try ["1048576", "1024KiB", "1 MiB", "'8MiB'"].map {
            try SynwatchConfiguration(yaml: "daemon:\n  buffer_size: \($0)\n").daemon.bufferSize
        }
        #expect(sizes == [1 << 20, 1 << 20, 1 << 20, 8 << 20])
    }
}

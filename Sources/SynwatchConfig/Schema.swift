import SynwatchEngine

/// One key of a section: its name and how its value is read into the configuration.
struct Setting: Sendable {
    let name: String
    let read: @Sendable (YAMLNode, inout SynwatchConfiguration) throws(ValueProblem) -> Void

    private init(
        _ name: String,
        _ read: @escaping @Sendable (YAMLNode, inout SynwatchConfiguration) throws(ValueProblem) -> Void
    ) {
        self.name = name
        self.read = read
    }

    /// A setting read by `reader` into the configuration's field at `field`.
    private static func field<Field>(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, Field> & Sendable,
        _ reader: @escaping @Sendable (YAMLNode) throws(ValueProblem) -> Field
    ) -> Setting {
        Setting(name) { node, configuration throws(ValueProblem) in configuration[keyPath: field] = try reader(node) }
    }

    static func duration(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, TimeSpan> & Sendable
    ) -> Setting {
        .field(name, field, Read.duration)
    }

    static func integer(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, Int> & Sendable) -> Setting {
        .field(name, field, Read.integer)
    }

    static func number(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, Double> & Sendable) -> Setting {
        .field(name, field, Read.number)
    }

    static func flag(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, Bool> & Sendable) -> Setting {
        .field(name, field, Read.flag)
    }

    static func byteSize(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, Int> & Sendable) -> Setting {
        .field(name, field, Read.byteSize)
    }

    static func name(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, String> & Sendable) -> Setting {
        .field(name, field, Read.name)
    }

    static func optionalName(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, String?> & Sendable
    ) -> Setting {
        .field(name, field, Read.optionalName)
    }

    static func names(_ name: String, _ field: WritableKeyPath<SynwatchConfiguration, [String]> & Sendable) -> Setting {
        .field(name, field, Read.names)
    }

    static func command(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, [String]?> & Sendable
    ) -> Setting {
        .field(name, field, Read.command)
    }

    static func listenAddresses(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, [ListenAddress]> & Sendable
    ) -> Setting {
        .field(name, field, Read.listenAddresses)
    }

    static func attackEvents(
        _ name: String,
        _ field: WritableKeyPath<SynwatchConfiguration, Set<EventType>> & Sendable
    ) -> Setting {
        .field(name, field, Read.attackEvents)
    }
}

/// A top-level section of the file and its keys.
struct Section: Sendable {
    let name: String
    let settings: [Setting]

    init(_ name: String, _ settings: [Setting]) {
        self.name = name
        self.settings = settings
    }

    func setting(named name: String) -> Setting? { settings.first { $0.name == name } }
}

/// Every key the file accepts, in the order of the shipped example.
///
/// Key names are the engine's field names in snake_case, so that `ConfigurationProblem.key` names them too.
enum Schema {
    static let sections: [Section] = [
        Section(
            "daemon",
            [
                .names("interfaces", \.daemon.interfaces),
                .name("socket_path", \.daemon.socketPath),
                .optionalName("socket_group", \.daemon.socketGroup),
                .name("user", \.daemon.user),
                .byteSize("buffer_size", \.daemon.bufferSize),
                .integer("snap_length", \.daemon.snapLength),
                .duration("buffer_timeout", \.daemon.bufferTimeout),
                .flag("kernel_sampling", \.daemon.kernelSampling),
                .integer("capture_shards", \.daemon.captureShards),
            ]
        ),
        Section(
            "handshakes",
            [
                .duration("timeout", \.engine.handshakes.timeout),
                .duration("retransmission_deadline", \.engine.handshakes.retransmissionDeadline),
                .duration("min_retransmission_delay", \.engine.handshakes.minRetransmissionDelay),
                .duration("retransmitted_timeout", \.engine.handshakes.retransmittedTimeout),
                .integer("capacity", \.engine.handshakes.capacity),
            ]
        ),
        Section("victims", [.integer("capacity", \.engine.victims.capacity)]),
        Section("sources", [.integer("capacity", \.engine.sources.capacity)]),
        Section(
            "connections",
            [
                .integer("capacity", \.engine.connections.capacity),
                .duration("time_wait", \.engine.connections.timeWait),
                .duration("fin_timeout", \.engine.connections.finTimeout),
            ]
        ),
        Section(
            "windows",
            [
                .duration("resolution", \.engine.windows.resolution),
                .duration("rate", \.engine.windows.rate),
                .duration("completion_grace", \.engine.windows.completionGrace),
                .duration("completion_grace_floor", \.engine.windows.completionGraceFloor),
                .duration("completion_grace_ceiling", \.engine.windows.completionGraceCeiling),
                .duration("sources", \.engine.windows.sources),
            ]
        ),
        Section(
            "detection",
            [
                .number("half_open_per_s", \.engine.detection.halfOpenPerSecond),
                .number("max_completion_ratio", \.engine.detection.maxCompletionRatio),
                .integer("min_attempts", \.engine.detection.minAttempts),
                .duration("confirmation", \.engine.detection.confirmation),
                .duration("quiet_period", \.engine.detection.quietPeriod),
                .number("end_fraction", \.engine.detection.endFraction),
                .duration("update_interval", \.engine.detection.updateInterval),
                .integer("top_sources", \.engine.detection.topSources),
            ]
        ),
        Section(
            "baseline",
            [
                .flag("enabled", \.engine.baseline.enabled),
                .duration("half_life", \.engine.baseline.halfLife),
                .duration("warmup", \.engine.baseline.warmup),
                .number("factor", \.engine.baseline.factor),
                .number("deviations", \.engine.baseline.deviations),
                .number("min_half_open_per_s", \.engine.baseline.minHalfOpenPerSecond),
                .number("min_completion_drop", \.engine.baseline.minCompletionDrop),
            ]
        ),
        Section(
            "classification",
            [
                .number("single_source_share", \.engine.classification.singleSourceShare),
                .number("random_source_distinct_ratio", \.engine.classification.randomSourceDistinctRatio),
                .integer("random_source_min_sources", \.engine.classification.randomSourceMinSources),
                .integer(
                    "random_source_pool_min_sources",
                    \.engine.classification.randomSourcePoolMinSources
                ),
            ]
        ),
        Section(
            "scan",
            [
                .integer("min_targets", \.engine.scan.minTargets),
                .number("max_completion_ratio", \.engine.scan.maxCompletionRatio),
                .duration("notice_interval", \.engine.scan.noticeInterval),
            ]
        ),
        Section(
            "backscatter",
            [
                .number("min_per_s", \.engine.backscatter.minPerSecond),
                .integer("min_sources", \.engine.backscatter.minSources),
                .duration("notice_interval", \.engine.backscatter.noticeInterval),
                .integer("capacity", \.engine.backscatter.capacity),
            ]
        ),
        Section(
            "hooks",
            [
                .command("command", \.hooks.command),
                .attackEvents("events", \.hooks.events),
                .duration("timeout", \.hooks.timeout),
                .integer("max_concurrent", \.hooks.maxConcurrent),
            ]
        ),
        Section(
            "metrics",
            [
                .listenAddresses("listen", \.metrics.listen),
                .integer("max_services", \.metrics.maxServices),
            ]
        ),
    ]

    /// Every dotted key, such as `detection.half_open_per_s`, in file order.
    static var keys: [String] { sections.flatMap { section in section.settings.map { "\(section.name).\($0.name)" } } }

    static func section(named name: String) -> Section? { sections.first { $0.name == name } }
}

/// One Prometheus metric family derived from a contract value: its name, type, help text and samples.
///
/// Declared beside the figures they expose (`V1.Status.metrics`), so a figure and its metric change together.
public struct MetricFamily<Root>: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge
    }

    /// One sample: its labels and value.
    public typealias Sample = (labels: [String: String], value: Double)

    public var name: String
    public var kind: Kind
    public var help: String
    public var samples: @Sendable (Root) -> [Sample]

    public init(_ name: String, _ kind: Kind, _ help: String, samples: @escaping @Sendable (Root) -> [Sample]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples
    }

    /// A family of one unlabelled sample.
    public init(_ name: String, _ kind: Kind, _ help: String, value: @escaping @Sendable (Root) -> Double) {
        self.init(name, kind, help) { [([:], value($0))] }
    }
}

extension V1.Status {
    /// The status figures as metrics, in the order `/metrics` lists them.
    public static let metrics: [MetricFamily<V1.Status>] = {
        typealias Family = MetricFamily<V1.Status>
        var families: [Family] = [
            Family("synwatch_info", .gauge, "The daemon's version.") { [(["version": $0.daemon.version], 1)] },
            Family("synwatch_start_time_seconds", .gauge, "When the daemon started, seconds since the epoch.") {
                $0.daemon.startedAt.value
            },
            Family("synwatch_reloads_total", .counter, "Successful configuration reloads.") {
                Double($0.daemon.reloads)
            },
            Family("synwatch_capture_active", .gauge, "1 while the capture is active.") {
                $0.daemon.capture.state == "active" ? 1 : 0
            },
            Family("synwatch_packets_total", .counter, "Frames the engine received.") {
                Double($0.daemon.capture.packets)
            },
            Family("synwatch_packets_per_second", .gauge, "Frames per second over the last status interval.") {
                $0.daemon.capture.packetsPerSecond.value
            },
            Family("synwatch_kernel_drops_total", .counter, "Frames the kernel dropped: the capture fell behind.") {
                Double($0.daemon.capture.kernelDrops)
            },
            Family("synwatch_interface_drops_total", .counter, "Frames the interfaces dropped.") {
                Double($0.daemon.capture.interfaceDrops)
            },
            Family(
                "synwatch_capture_thread_cpu_seconds_total",
                .counter,
                "CPU time of each capture thread (read, or read 1 … read N: libpcap and decoding; engine: tracking and detection)."
            ) {
                $0.daemon.capture.threads.map {
                    (["interface": $0.interface, "thread": $0.thread], $0.cpuSeconds.value)
                }
            },
            Family(
                "synwatch_capture_kernel_sampling_one_in",
                .gauge,
                "The kernel filter passes one client in this many of the service's spoofed storm (absent: every one)."
            ) {
                $0.daemon.capture.kernelSampling.map {
                    (
                        ["interface": $0.interface, "victim": $0.victim, "port": $0.port.map(String.init) ?? ""],
                        Double($0.oneIn)
                    )
                }
            },
        ]
        let counters: [(String, String, @Sendable (V1.Status) -> Int)] = [
            ("bytes", "Bytes of the frames received.", { $0.traffic.bytes }),
            ("syn_packets", "SYN packets.", { $0.traffic.synPackets }),
            ("syn_retransmits", "SYNs repeating a tracked attempt.", { $0.traffic.synRetransmits }),
            ("syn_acks", "SYN-ACK packets.", { $0.traffic.synAcks }),
            (
                "unsolicited_syn_acks", "SYN-ACKs answering no attempt tracked or sampled out.",
                { $0.traffic.unsolicitedSynAcks }
            ),
            ("completions", "Handshakes completed.", { $0.traffic.completions }),
            ("resets", "Attempts ended by a RST.", { $0.traffic.resets }),
            ("timeouts", "Attempts that timed out half-open.", { $0.traffic.timeouts }),
            ("attacks", "Attacks detected.", { $0.totals.attacks }),
            ("scan_notices", "Scan notices.", { $0.totals.scanNotices }),
            ("backscatter_notices", "Backscatter notices.", { $0.totals.backscatterNotices }),
            (
                "sampled_out", "Attempts on attacked services left untracked by sampling.",
                { $0.totals.tables.handshakes.sampledOut }
            ),
            (
                "thinned_out", "SYNs and SYN-ACKs of clients sampled out that the kernel's filter had not dropped.",
                { $0.totals.tables.handshakes.thinnedOut }
            ),
            (
                "untracked_syns", "SYNs to services the full victim table could not track.",
                { $0.totals.tables.victims.untrackedSyns }
            ),
        ]
        families += counters.map { name, help, value in
            Family("synwatch_\(name)_total", .counter, help) { Double(value($0)) }
        }
        families.append(
            Family("synwatch_attacks_active", .gauge, "Attacks going on.") { Double($0.live.activeAttacks) }
        )

        @Sendable func tables(_ status: V1.Status) -> [(String, V1.Table)] {
            let tables = status.totals.tables
            let handshakes = tables.handshakes
            let victims = tables.victims
            return [
                (
                    "handshakes",
                    V1.Table(
                        tracked: handshakes.tracked,
                        capacity: handshakes.capacity,
                        evictions: handshakes.evictions
                    )
                ),
                (
                    "victims",
                    V1.Table(tracked: victims.tracked, capacity: victims.capacity, evictions: victims.evictions)
                ),
                ("sources", tables.sources), ("backscatter", tables.backscatter), ("connections", tables.connections),
            ]
        }
        families += [
            Family("synwatch_table_entries", .gauge, "Entries in each bounded table.") {
                tables($0).map { (["table": $0.0], Double($0.1.tracked)) }
            },
            Family("synwatch_table_capacity", .gauge, "Capacity of each bounded table.") {
                tables($0).map { (["table": $0.0], Double($0.1.capacity)) }
            },
            Family("synwatch_table_evictions_total", .counter, "Entries evicted from each full table.") {
                tables($0).map { (["table": $0.0], Double($0.1.evictions)) }
            },
            Family("synwatch_decode_problems_total", .counter, "Malformed frames, per reason.") {
                $0.totals.problems.entries.map { (["reason": $0.name], Double($0.value)) }
            },
        ]

        let states = V1.ConnectionStates.metricStates
        families += [
            Family(
                "synwatch_connections_tracked",
                .gauge,
                "Connections whose handshake synwatch saw, by server-side TCP state."
            ) { status in states.map { (["state": $0.0], Double($0.1(status.totals.connections.states))) } },
            Family(
                "synwatch_connections_closed_total",
                .counter,
                "Graceful closes of connections whose handshake synwatch saw, by who sent the first FIN."
            ) { status in
                V1.ConnectionStates.metricCloses.map {
                    (["first": $0.0], Double($0.1(status.totals.connections.states)))
                }
            },
            Family("synwatch_connections_aborted_total", .counter, "Connections ended by a RST, by who sent it.") {
                status in
                V1.ConnectionStates.metricAborts.map { (["by": $0.0], Double($0.1(status.totals.connections.states))) }
            },
            Family(
                "synwatch_kernel_tcp_total",
                .counter,
                "The kernel's own TCP counters (TcpExt of /proc/net/netstat, Tcp of /proc/net/snmp)."
            ) { status in
                status.live.kernel.counters.entries.compactMap { entry in
                    entry.value.value.map { (["counter": entry.name], Double($0)) }
                }
            },
            Family(
                "synwatch_kernel_synproxy_total",
                .counter,
                "The kernel's SYN proxy counters (/proc/net/stat/synproxy), where the kernel has SYNPROXY."
            ) { status in
                (status.live.kernel.synproxy?.counters.entries ?? []).compactMap { entry in
                    entry.value.value.map { (["counter": entry.name], Double($0)) }
                }
            },
            Family("synwatch_kernel_syn_recv", .gauge, "Request sockets in SYN_RECV on this host, in all.") { status in
                status.live.kernel.synReceived.value.map { [([:], Double($0))] } ?? []
            },
            Family(
                "synwatch_kernel_service_syn_recv",
                .gauge,
                "Request sockets in SYN_RECV of the listeners with the most."
            ) { status in
                (status.live.kernel.synReceivedServices ?? []).map {
                    (["victim": $0.victim, "port": String($0.port)], Double($0.synReceived))
                }
            },
        ]
        let hooks: [(String, String, @Sendable (V1.Hooks) -> Int)] = [
            ("runs", "Response hook runs started.", { $0.runs }),
            ("succeeded", "Response hook runs that exited 0.", { $0.succeeded }),
            ("failures", "Response hook runs that failed, timed out or could not start.", { $0.failures }),
            ("timeouts", "Response hook runs killed at their time limit.", { $0.timeouts }),
            ("dropped", "Events that ran no hook because too many were running.", { $0.dropped }),
        ]
        families += hooks.map { name, help, value in
            Family("synwatch_hook_\(name)_total", .counter, help) { Double(value($0.live.hooks)) }
        }
        families.append(
            Family("synwatch_hooks_running", .gauge, "Response hook runs going on.") { Double($0.live.hooks.running) }
        )
        return families
    }()
}

extension V1.ConnectionStates {
    /// The `state` label of each server-side state.
    public static let metricStates: [(String, @Sendable (V1.ConnectionStates) -> Int)] = [
        ("established", { $0.established }), ("fin_wait", { $0.finWait }), ("closing", { $0.closing }),
        ("time_wait", { $0.timeWait }), ("close_wait", { $0.closeWait }), ("last_ack", { $0.lastAck }),
    ]

    /// The `first` label of graceful closes: who sent the first FIN.
    public static let metricCloses: [(String, @Sendable (V1.ConnectionStates) -> Int)] = [
        ("client", { $0.closesClientFirst }), ("server", { $0.closesServerFirst }),
        ("simultaneous", { $0.closesSimultaneous }),
    ]

    /// The `by` label of RST aborts.
    public static let metricAborts: [(String, @Sendable (V1.ConnectionStates) -> Int)] = [
        ("client", { $0.abortedByClient }), ("server", { $0.abortedByServer }),
    ]
}

extension V1.ActiveAttack {
    /// The window's figures of each attack going on and its start, labelled by attack.
    public static let metrics: [MetricFamily<[V1.ActiveAttack]>] = {
        var figures: [(name: String, help: String, value: @Sendable (V1.ActiveAttack) -> Double)] =
            V1.Event.Window.metrics.map { figure in (figure.name, figure.help, { figure.value($0.window) }) }
        figures.append(
            (
                "start_time_seconds", "When the attack started (capture time).",
                { Double($0.identity.start.timestamp.nanoseconds) / 1e9 }
            )
        )
        return figures.map { name, help, value in
            MetricFamily("synwatch_attack_\(name)", .gauge, help) { attacks in
                attacks.map { (Self.metricLabels($0.identity), value($0)) }
            }
        }
    }()

    static func metricLabels(_ identity: Identity) -> [String: String] {
        [
            "attack_id": String(identity.attackID), "victim": identity.victim,
            "port": identity.port.map(String.init) ?? "", "kind": identity.kind.rawValue,
        ]
    }
}

extension V1.Service {
    /// The services `/metrics` lists: the busiest of the victims table, up to a cap that keeps the series bounded.
    public struct Exported: Sendable {
        /// Busiest first, at most `limit`.
        public var services: [V1.Service]
        /// Services in the victims table.
        public var tracked: Int
        /// The configured cap (`metrics.max_services`).
        public var limit: Int

        /// The first `limit` of `busiest` (busiest first, as `/v1/victims` orders them) out of `tracked`.
        public init(busiest: [V1.Service], tracked: Int, limit: Int) {
            services = Array(busiest.prefix(limit))
            self.tracked = tracked
            self.limit = limit
        }

        /// Services in the table left out by the cap.
        public var unexported: Int { max(0, tracked - services.count) }
    }

    /// Per service, labelled by `victim` and `port` (empty for a whole host), never by a source; then the cap.
    public static let metrics: [MetricFamily<Exported>] = {
        typealias Family = MetricFamily<Exported>
        @Sendable func labels(_ service: V1.Service) -> [String: String] {
            ["victim": service.victim, "port": service.port.map(String.init) ?? ""]
        }
        func perService(
            _ name: String,
            _ kind: Family.Kind,
            _ help: String,
            _ value: @escaping @Sendable (V1.Service) -> Double?
        ) -> Family {
            Family("synwatch_service_\(name)", kind, help) { exported in
                exported.services.compactMap { service in value(service).map { (labels(service), $0) } }
            }
        }
        let counters: [(String, String, @Sendable (V1.Service) -> Int)] = [
            ("syn_packets", "SYN packets to the service, retransmissions included.", { $0.synPackets }),
            ("attempts", "Connection attempts on the service (estimates while it was sampled).", { $0.attempts }),
            ("completions", "Handshakes completed on the service.", { $0.completions }),
            ("refusals", "Attempts the server refused with a RST.", { $0.resets }),
            ("timeouts", "Attempts that timed out half-open.", { $0.timeouts }),
        ]
        var families = counters.map { name, help, value in
            perService("\(name)_total", .counter, help) { Double(value($0)) }
        }
        families += [
            perService(
                "half_open_per_second",
                .gauge,
                "Half-open attempts per second over the detector's current rate window."
            ) { $0.halfOpenPerSecond.value },
            perService(
                "completion_ratio",
                .gauge,
                "Share of matured attempts that completed over the current rate window (absent without attempts)."
            ) { $0.completionRatio.value?.value },
            perService(
                "distinct_sources",
                .gauge,
                "Estimated distinct sources of the attempts that did not complete, over the sources window."
            ) { Double($0.distinctSources) },
            Family(
                "synwatch_service_sampling_one_in",
                .gauge,
                "One attempt in this many is followed while the service is sampled, by handshake or by client."
            ) { exported in
                exported.services.compactMap { service in
                    service.sampling.map { (labels(service).merging(["by": $0.by]) { $1 }, Double($0.oneIn)) }
                }
            },
            Family("synwatch_service_attack_active", .gauge, "1 for each attack going on, by its kind.") { exported in
                exported.services.compactMap { service in
                    service.kind.map { labels(service).merging(["kind": $0.rawValue]) { $1 } }.map { ($0, 1) }
                }
            },
            Family(
                "synwatch_service_attacks_started_total",
                .counter,
                "Attacks started on the service while it is in the victims table, by the kind they started as."
            ) { exported in
                exported.services.flatMap { service in
                    service.attacksStarted.entries.map { entry in
                        (labels(service).merging(["kind": entry.name]) { $1 }, Double(entry.value))
                    }
                }
            },
            Family("synwatch_service_series_limit", .gauge, "Most services the per-service series list.") {
                Double($0.limit)
            },
            Family("synwatch_services_tracked", .gauge, "Services in the victims table.") { Double($0.tracked) },
            Family(
                "synwatch_services_unexported",
                .gauge,
                "Services in the victims table the per-service series leave out (over the limit)."
            ) { Double($0.unexported) },
        ]
        return families
    }()
}

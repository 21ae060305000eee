import SynwatchEngine
import SynwatchHooks
import SynwatchKernel
import SynwatchProtocol

/// The Prometheus text exposition (format 0.0.4) of a snapshot, for `GET /metrics`.
struct Metrics {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private var text = ""

    /// Every metric of `snapshot`, each family with its `# HELP` and `# TYPE` lines.
    static func render(_ snapshot: DaemonSnapshot, version: String) -> String {
        var metrics = Metrics()
        let statistics = snapshot.statistics
        let occupancy = snapshot.occupancy
        let capture = snapshot.capture

        metrics.family("synwatch_info", .gauge, "The daemon's version.", [(["version": version], 1)])
        metrics.family(
            "synwatch_start_time_seconds",
            .gauge,
            "When the daemon started, seconds since the epoch.",
            [([:], snapshot.startedAt)]
        )
        metrics.family(
            "synwatch_reloads_total",
            .counter,
            "Successful configuration reloads.",
            [([:], Double(snapshot.reloads))]
        )
        metrics.family(
            "synwatch_capture_active",
            .gauge,
            "1 while the capture is active.",
            [([:], capture.state == .active ? 1 : 0)]
        )
        metrics.family(
            "synwatch_packets_total",
            .counter,
            "Frames the engine received.",
            [([:], Double(capture.packets))]
        )
        metrics.family(
            "synwatch_packets_per_second",
            .gauge,
            "Frames per second over the last status interval.",
            [([:], capture.packetsPerSecond)]
        )
        metrics.family(
            "synwatch_kernel_drops_total",
            .counter,
            "Frames the kernel dropped: the capture fell behind.",
            [([:], Double(capture.kernelDrops))]
        )
        metrics.family(
            "synwatch_interface_drops_total",
            .counter,
            "Frames the interfaces dropped.",
            [([:], Double(capture.interfaceDrops))]
        )

        let counters: [(String, String, Int)] = [
            ("bytes", "Bytes of the frames received.", statistics.bytes),
            ("syn_packets", "SYN packets.", statistics.synPackets),
            ("syn_retransmits", "SYNs repeating a tracked attempt.", statistics.synRetransmits),
            ("syn_acks", "SYN-ACK packets.", statistics.synAcks),
            ("unsolicited_syn_acks", "SYN-ACKs answering no tracked attempt.", statistics.unsolicitedSynAcks),
            ("completions", "Handshakes completed.", statistics.completions),
            ("resets", "Attempts ended by a RST.", statistics.resets),
            ("timeouts", "Attempts that timed out half-open.", statistics.timeouts),
            ("attacks", "Attacks detected.", statistics.attacks),
            ("scan_notices", "Scan notices.", statistics.scanNotices),
            ("backscatter_notices", "Backscatter notices.", statistics.backscatterNotices),
            ("sampled_out", "Attempts on attacked services left untracked by sampling.", statistics.sampledOut),
            ("untracked_syns", "SYNs to services the full victim table could not track.", statistics.victimsUntracked),
        ]
        for (name, help, value) in counters {
            metrics.family("synwatch_\(name)_total", .counter, help, [([:], Double(value))])
        }
        metrics.family(
            "synwatch_attacks_active",
            .gauge,
            "Attacks going on.",
            [([:], Double(snapshot.activeAttacks.count))]
        )

        let tables: [(String, Int, Int, Int)] = [
            ("handshakes", occupancy.handshakes, occupancy.handshakeCapacity, statistics.handshakeEvictions),
            ("victims", occupancy.victims, occupancy.victimCapacity, statistics.victimEvictions),
            ("sources", occupancy.sources, occupancy.sourceCapacity, statistics.sourceEvictions),
            (
                "backscatter", occupancy.backscatterAddresses, occupancy.backscatterCapacity,
                statistics.backscatterEvictions
            ),
            ("connections", occupancy.connections, occupancy.connectionCapacity, statistics.connectionEvictions),
        ]
        metrics.family(
            "synwatch_table_entries",
            .gauge,
            "Entries in each bounded table.",
            tables.map { (["table": $0.0], Double($0.1)) }
        )
        metrics.family(
            "synwatch_table_capacity",
            .gauge,
            "Capacity of each bounded table.",
            tables.map { (["table": $0.0], Double($0.2)) }
        )
        metrics.family(
            "synwatch_table_evictions_total",
            .counter,
            "Entries evicted from each full table.",
            tables.map { (["table": $0.0], Double($0.3)) }
        )
        metrics.family(
            "synwatch_decode_problems_total",
            .counter,
            "Malformed frames, per reason.",
            DecodeOutcome.allCases.filter(\.isProblem).map { (["reason": $0.name], Double(statistics[$0])) }
        )

        metrics.connections(statistics, services: snapshot.services)

        let attacks = snapshot.activeAttacks
        func attackLabels(_ attack: AttackStatus) -> [String: String] {
            [
                "attack_id": String(attack.attackID), "victim": attack.victim.description,
                "port": attack.port.map(String.init) ?? "", "kind": attack.kind.rawValue,
            ]
        }
        let perAttack: [(String, String, (AttackStatus) -> Double)] = [
            ("syn_per_second", "SYNs per second to the victim, latest window.", { $0.figures.synPerSecond }),
            (
                "half_open_per_second", "Half-open attempts per second, latest window.",
                {
                    $0.figures.halfOpenPerSecond
                }
            ),
            ("completion_ratio", "Share of handshakes completed, latest window.", { $0.figures.completionRatio }),
            ("distinct_sources", "Estimated distinct sources.", { Double($0.figures.distinctSources) }),
            (
                "start_time_seconds", "When the attack started (capture time).",
                {
                    Double($0.start.nanoseconds) / 1e9
                }
            ),
        ]
        for (name, help, value) in perAttack {
            metrics.family("synwatch_attack_\(name)", .gauge, help, attacks.map { (attackLabels($0), value($0)) })
        }
        metrics.kernel(snapshot.kernel)
        let hooks = snapshot.hooks
        let hookCounters: [(String, String, Int)] = [
            ("runs", "Response hook runs started.", hooks.runs),
            ("succeeded", "Response hook runs that exited 0.", hooks.succeeded),
            ("failures", "Response hook runs that failed, timed out or could not start.", hooks.failures),
            ("timeouts", "Response hook runs killed at their time limit.", hooks.timeouts),
            ("dropped", "Events that ran no hook because too many were running.", hooks.dropped),
        ]
        for (name, help, value) in hookCounters {
            metrics.family("synwatch_hook_\(name)_total", .counter, help, [([:], Double(value))])
        }
        metrics.family("synwatch_hooks_running", .gauge, "Response hook runs going on.", [([:], Double(hooks.running))])
        return metrics.text
    }

    /// The kernel's TCP counters as it counts them, and its listen queues; absent figures (no `/proc/net` files,
    /// no sock_diag) leave their families empty.
    private mutating func kernel(_ kernel: KernelStatus) {
        family(
            "synwatch_kernel_tcp_total",
            .counter,
            "The kernel's own TCP counters (TcpExt of /proc/net/netstat, Tcp of /proc/net/snmp).",
            KernelTCPCounter.allCases.compactMap { counter in
                kernel.counters[counter].map { (["counter": counter.fieldName], Double($0)) }
            }
        )
        let queues = kernel.listenQueues
        family(
            "synwatch_kernel_syn_recv",
            .gauge,
            "Request sockets in SYN_RECV on this host, in all.",
            queues.map { [([:], Double($0.synReceivedTotal))] } ?? []
        )
        family(
            "synwatch_kernel_service_syn_recv",
            .gauge,
            "Request sockets in SYN_RECV of the listeners with the most.",
            (queues?.synReceived ?? []).map {
                (["victim": $0.endpoint.address.description, "port": String($0.endpoint.port)], Double($0.count))
            }
        )
        family(
            "synwatch_kernel_accept_queue",
            .gauge,
            "Accept queue length of the listeners with the longest queues (compare with their backlog).",
            (queues?.listeners ?? []).map {
                (["victim": $0.endpoint.address.description, "port": String($0.endpoint.port)], Double($0.acceptQueue))
            }
        )
    }

    /// Connections by server-side state and how they ended: in all, and for each listed service.
    private mutating func connections(_ statistics: EngineStatistics, services: [ServiceSummary]) {
        func states(_ counts: ConnectionCounts) -> [(String, Int)] {
            [
                ("established", counts.established), ("fin_wait", counts.finWait), ("closing", counts.closing),
                ("time_wait", counts.timeWait), ("close_wait", counts.closeWait), ("last_ack", counts.lastAck),
            ]
        }
        func closes(_ counts: ConnectionCounts) -> [(String, Int)] {
            [
                ("client", counts.closesClientFirst), ("server", counts.closesServerFirst),
                ("simultaneous", counts.closesSimultaneous),
            ]
        }
        func aborts(_ counts: ConnectionCounts) -> [(String, Int)] {
            [("client", counts.abortsByClient), ("server", counts.abortsByServer)]
        }
        let all = statistics.connections
        family(
            "synwatch_connections_tracked",
            .gauge,
            "Connections whose handshake synwatch saw, by server-side TCP state.",
            states(all).map { (["state": $0.0], Double($0.1)) }
        )
        family(
            "synwatch_connections_closed_total",
            .counter,
            "Graceful closes of connections whose handshake synwatch saw, by who sent the first FIN.",
            closes(all).map { (["first": $0.0], Double($0.1)) }
        )
        family(
            "synwatch_connections_aborted_total",
            .counter,
            "Connections ended by a RST, by who sent it.",
            aborts(all).map { (["by": $0.0], Double($0.1)) }
        )
        let listed = services.compactMap { service in
            service.connections.map {
                (["victim": service.address.description, "port": service.port.map(String.init) ?? ""], $0)
            }
        }
        func perService(
            _ label: String,
            _ values: (ConnectionCounts) -> [(String, Int)]
        ) -> [([String: String], Double)] {
            listed.flatMap { labels, counts in
                values(counts).map { (labels.merging([label: $0.0]) { $1 }, Double($0.1)) }
            }
        }
        family(
            "synwatch_connections",
            .gauge,
            "Connections of each listed service by server-side TCP state (estimates while it was sampled).",
            perService("state", states)
        )
        family(
            "synwatch_connection_closes_total",
            .counter,
            "Graceful closes on each listed service, by who sent the first FIN.",
            perService("first", closes)
        )
        family(
            "synwatch_connection_aborts_total",
            .counter,
            "RST aborts on each listed service, by who sent the RST.",
            perService("by", aborts)
        )
    }

    private enum Kind: String {
        case counter, gauge
    }

    /// One metric family; families without samples (no attack going on) keep their HELP and TYPE lines.
    private mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [([String: String], Double)])
    {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
        for (labels, value) in samples {
            text += name
            if !labels.isEmpty {
                let pairs = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escape($0.value))\"" }
                text += "{" + pairs.joined(separator: ",") + "}"
            }
            text += " " + JSONValue.number(value, decimals: 6).rendered + "\n"
        }
    }

    /// A label value with backslash, quote and newline escaped, as the format requires.
    private static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

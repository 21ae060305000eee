import SynwatchKernel
import SynwatchProtocol

/// The Prometheus text exposition (format 0.0.4) of a snapshot, for `GET /metrics`.
///
/// The families come from the contract: `V1.Status.metrics` for the status figures, `V1.ActiveAttack.metrics` per
/// attack; only what the status does not carry (connections per listed service, every listener's accept queue) is
/// declared here.
struct Metrics {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private var text = ""

    /// Every metric of `snapshot`, each family with its `# HELP` and `# TYPE` lines.
    static func render(_ snapshot: DaemonSnapshot, version: String) -> String {
        var metrics = Metrics()
        let status = snapshot.status(version: version, now: snapshot.updatedAt)
        for family in V1.Status.metrics { metrics.family(family, of: status) }
        let attacks = snapshot.activeAttacks.map(V1.ActiveAttack.init)
        for family in V1.ActiveAttack.metrics { metrics.family(family, of: attacks) }
        let services = snapshot.services.map(V1.Service.init)
        for family in Self.serviceFamilies { metrics.family(family, of: services) }
        metrics.family(Self.acceptQueues, of: snapshot.kernel.listenQueues)
        return metrics.text
    }

    /// Accept queue lengths of every listener sock_diag listed, not only the full ones the status names.
    private static let acceptQueues = MetricFamily<KernelListenQueues?>(
        "synwatch_kernel_accept_queue",
        .gauge,
        "Accept queue length of the listeners with the longest queues (compare with their backlog)."
    ) { queues in
        (queues?.listeners ?? []).map {
            (["victim": $0.endpoint.address.description, "port": String($0.endpoint.port)], Double($0.acceptQueue))
        }
    }

    /// Connections of each listed service by state and how they ended (estimates while it was sampled).
    private static let serviceFamilies: [MetricFamily<[V1.Service]>] = {
        func perService(
            _ label: String,
            _ values: [(String, @Sendable (V1.ConnectionStates) -> Int)]
        ) -> @Sendable ([V1.Service]) -> [MetricFamily<[V1.Service]>.Sample] {
            { services in
                services.flatMap { service -> [MetricFamily<[V1.Service]>.Sample] in
                    guard let counts = service.connections else { return [] }
                    return values.map { name, value in
                        (
                            ["victim": service.victim, "port": service.port.map(String.init) ?? "", label: name],
                            Double(value(counts))
                        )
                    }
                }
            }
        }
        return [
            MetricFamily(
                "synwatch_connections",
                .gauge,
                "Connections of each listed service by server-side TCP state (estimates while it was sampled).",
                samples: perService("state", V1.ConnectionStates.metricStates)
            ),
            MetricFamily(
                "synwatch_connection_closes_total",
                .counter,
                "Graceful closes on each listed service, by who sent the first FIN.",
                samples: perService("first", V1.ConnectionStates.metricCloses)
            ),
            MetricFamily(
                "synwatch_connection_aborts_total",
                .counter,
                "RST aborts on each listed service, by who sent the RST.",
                samples: perService("by", V1.ConnectionStates.metricAborts)
            ),
        ]
    }()

    /// One metric family; families without samples (no attack going on) keep their HELP and TYPE lines.
    private mutating func family<Root>(_ family: MetricFamily<Root>, of root: Root) {
        text += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
        for (labels, value) in family.samples(root) {
            text += family.name
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

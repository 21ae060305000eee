import Prometheus
import SynwatchKernel
import SynwatchProtocol

/// The Prometheus text exposition (format 0.0.4) of a snapshot, for `GET /metrics`, written by swift-prometheus.
///
/// The families come from the contract: `V1.Status.metrics` for the status figures, `V1.ActiveAttack.metrics` per
/// attack, `V1.Service.metrics` per service up to the cap; only what the status does not carry (connections per
/// listed service, every listener's accept queue) is declared here. Each rendering fills a registry of its own from
/// one snapshot, so a series that left the snapshot (a service out of the table, an attack over) is gone at once.
enum Metrics {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Every metric of `snapshot`, each family with its `# HELP` and `# TYPE` lines.
    static func render(_ snapshot: DaemonSnapshot, version: String) -> String {
        let registry = PrometheusCollectorRegistry()
        let status = snapshot.status(version: version, now: snapshot.updatedAt)
        for family in V1.Status.metrics { registry.add(family, of: status) }
        let attacks = snapshot.activeAttacks.map(V1.ActiveAttack.init)
        for family in V1.ActiveAttack.metrics { registry.add(family, of: attacks) }
        let services = snapshot.services.map(V1.Service.init)
        let exported = V1.Service.Exported(
            busiest: services,
            tracked: snapshot.occupancy.victims,
            limit: snapshot.serviceLimit
        )
        for family in V1.Service.metrics { registry.add(family, of: exported) }
        for family in Self.serviceFamilies { registry.add(family, of: exported.services) }
        registry.add(Self.acceptQueues, of: snapshot.kernel.listenQueues)
        return registry.emitToString()
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
}

extension PrometheusCollectorRegistry {
    /// Registers the samples `family` gives for `root`, labels in name order. A counter takes its value whole (a
    /// fresh counter starts at zero); a negative or non-finite count, which no contract figure is, is left out.
    func add<Root>(_ family: MetricFamily<Root>, of root: Root) {
        for (labels, value) in family.samples(root) {
            let pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            let descriptor = MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help)
            switch family.kind {
            case .gauge:
                makeGauge(descriptor: descriptor, labels: pairs).set(to: value)
            case .counter:
                guard value.isFinite, value >= 0 else { continue }
                let counter = makeCounter(descriptor: descriptor, labels: pairs)
                if value < 0x1p63, value == value.rounded(.towardZero) {
                    counter.increment(by: Int64(value))
                } else {
                    counter.increment(by: value)
                }
            }
        }
    }
}

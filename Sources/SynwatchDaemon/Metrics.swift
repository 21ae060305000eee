import Prometheus
import Synchronization
import SynwatchKernel
import SynwatchProtocol

/// The Prometheus text exposition (format 0.0.4) of snapshots, for `GET /metrics`, written by swift-prometheus.
///
/// The families come from the contract: `V1.Status.metrics` for the status figures, `V1.ActiveAttack.metrics` per
/// attack, `V1.Service.metrics` per service up to the cap; only what the status does not carry (connections per
/// listed service, every listener's accept queue) is declared here.
///
/// swift-prometheus keeps long-lived metric objects: each rendering brings its registry to one snapshot, updating
/// the series still there, registering new ones and unregistering those that left it (a service out of the table
/// or past the cap, an attack over), so none lingers. Updating in place keeps a scrape linear in its series:
/// registering one copies its family, and a registry filled afresh for every scrape took 2 s at 1,000 services.
final class MetricsExposition: Sendable {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let state = Mutex(Registry())

    /// Every metric of `snapshot`, each family with its `# HELP` and `# TYPE` lines.
    func render(_ snapshot: DaemonSnapshot, version: String) -> String {
        let status = snapshot.status(version: version, now: snapshot.updatedAt)
        let attacks = snapshot.activeAttacks.map(V1.ActiveAttack.init)
        let exported = V1.Service.Exported(
            busiest: snapshot.services.map(V1.Service.init),
            tracked: snapshot.occupancy.victims,
            limit: snapshot.serviceLimit
        )
        return state.withLock { registry in
            var seen: Set<String> = []
            for family in V1.Status.metrics { registry.update(family, of: status, seen: &seen) }
            for family in V1.ActiveAttack.metrics { registry.update(family, of: attacks, seen: &seen) }
            for family in V1.Service.metrics { registry.update(family, of: exported, seen: &seen) }
            for family in Self.serviceFamilies { registry.update(family, of: exported.services, seen: &seen) }
            registry.update(Self.acceptQueues, of: snapshot.kernel.listenQueues, seen: &seen)
            registry.unregister(allBut: seen)
            return registry.prometheus.emitToString()
        }
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

/// A swift-prometheus registry and what it holds, by series (name and labels): what one rendering updates.
private struct Registry {
    enum Metric {
        case counter(Counter)
        case gauge(Gauge)
    }

    /// A registered series, with the count a counter has reached (a counter can only be incremented).
    struct Series {
        let metric: Metric
        var value: Double
    }

    let prometheus = PrometheusCollectorRegistry()
    var series: [String: Series] = [:]

    /// Sets the series `family` gives for `root`, labels in name order, and adds their keys to `seen`. A counter that
    /// went down (its service left the table and came back) starts again from zero; a negative or non-finite count,
    /// which no contract figure is, is left out.
    mutating func update<Root>(_ family: MetricFamily<Root>, of root: Root, seen: inout Set<String>) {
        for (labels, value) in family.samples(root) {
            let pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            let key = family.name + "{" + pairs.map { "\($0)=\($1)" }.joined(separator: ",") + "}"
            // A series given twice (a service seen on two interfaces) keeps its first sample.
            guard family.kind == .gauge || (value.isFinite && value >= 0), seen.insert(key).inserted else { continue }
            let existing = series[key] ?? Series(metric: register(family, pairs), value: 0)
            switch existing.metric {
            case .gauge(let gauge): gauge.set(to: value)
            case .counter(let counter):
                var from = existing.value
                if value < from {
                    counter.reset()
                    from = 0
                }
                let step = value - from
                if step < 0x1p63, step == step.rounded(.towardZero) {
                    counter.increment(by: Int64(step))
                } else {
                    counter.increment(by: step)
                }
            }
            series[key] = Series(metric: existing.metric, value: value)
        }
    }

    /// Unregisters every series whose key is not in `kept`.
    mutating func unregister(allBut kept: Set<String>) {
        for (key, gone) in series where !kept.contains(key) {
            switch gone.metric {
            case .counter(let counter): prometheus.unregisterCounter(counter)
            case .gauge(let gauge): prometheus.unregisterGauge(gauge)
            }
            series.removeValue(forKey: key)
        }
    }

    private func register<Root>(_ family: MetricFamily<Root>, _ labels: [(String, String)]) -> Metric {
        let descriptor = MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help)
        return switch family.kind {
        case .counter: .counter(prometheus.makeCounter(descriptor: descriptor, labels: labels))
        case .gauge: .gauge(prometheus.makeGauge(descriptor: descriptor, labels: labels))
        }
    }
}

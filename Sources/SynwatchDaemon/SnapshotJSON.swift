import SynwatchEngine
import SynwatchProtocol

extension CaptureStatus {
    /// The capture as `/v1/status` shows it.
    public var contract: V1.Capture {
        V1.Capture(
            interfaces: interfaces,
            state: state.rawValue,
            packets: packets,
            packetsPerSecond: Rate(packetsPerSecond),
            kernelDrops: kernelDrops,
            interfaceDrops: interfaceDrops,
            threads: threads.map {
                V1.CaptureThread(
                    interface: $0.interface,
                    thread: $0.thread,
                    cpuSeconds: Seconds(Double($0.cpuNanoseconds) / 1e9),
                    busy: Ratio($0.busy)
                )
            },
            kernelSampling: kernelSampling.flatMap { sampling in
                sampling.services.map {
                    V1.KernelSampling(
                        interface: sampling.interface,
                        victim: $0.address.description,
                        port: $0.port == 0 ? nil : $0.port,
                        oneIn: $0.oneIn
                    )
                }
            }
        )
    }
}

extension DaemonSnapshot {
    /// What `GET /v1/status` answers: the daemon, its capture, the engine's totals, the attacks going on, the
    /// kernel's view and the hooks.
    /// - Parameters:
    ///   - version: the daemon's version.
    ///   - now: wall-clock seconds since the epoch, for the uptime.
    public func status(version: String, now: Double) -> V1.Status {
        V1.Status(
            daemon: V1.Daemon(
                version: version,
                startedAt: Seconds(startedAt),
                updatedAt: Seconds(updatedAt),
                uptime: Seconds(max(0, now - startedAt)),
                configuration: configurationPath,
                reloads: reloads,
                capture: capture.contract
            ),
            traffic: V1.Traffic(statistics),
            totals: V1.EngineTotals(statistics, occupancy: occupancy),
            live: V1.Live(activeAttacks: activeAttacks.count, kernel: kernel.contract, hooks: hooks.contract)
        )
    }

    /// What `GET /v1/attacks` answers: attacks going on, and the latest that ended.
    public var attacks: V1.Attacks {
        V1.Attacks(active: activeAttacks.map(V1.ActiveAttack.init), recent: recentAttacks.map(V1.Event.init))
    }

    /// What `GET /v1/victims` answers: the busiest services, at most `limit`.
    public func victims(limit: Int) -> V1.Victims {
        V1.Victims(victims: services.prefix(limit).map(V1.Service.init))
    }

    /// What `GET /v1/sources` answers: the sources with the most half-open attempts, at most `limit`.
    public func sources(limit: Int) -> V1.Sources {
        let top = sources.enumerated().sorted { lhs, rhs in
            // Stable among equals: the table's own order breaks ties.
            lhs.element.halfOpen != rhs.element.halfOpen
                ? lhs.element.halfOpen > rhs.element.halfOpen : lhs.offset < rhs.offset
        }
        return V1.Sources(sources: top.prefix(limit).map { V1.Source($0.element) })
    }
}

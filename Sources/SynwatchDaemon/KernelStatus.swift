import SynwatchKernel
import SynwatchProtocol

/// The kernel's own view of TCP on this host, as the daemon last read it: the counters of `/proc/net/netstat`,
/// `/proc/net/snmp` and `/proc/net/stat/synproxy`, their rates over the last interval, and the listen queues (sock_diag).
public struct KernelStatus: Sendable, Equatable {
    public var counters: KernelTCPCounters
    /// Per-second rates over the last read interval; nil until two reads.
    public var rates: KernelTCPRates?
    /// Listen queues and SYN_RECV request sockets; nil when sock_diag could not be read.
    public var listenQueues: KernelListenQueues?

    public init(
        counters: KernelTCPCounters = KernelTCPCounters(),
        rates: KernelTCPRates? = nil,
        listenQueues: KernelListenQueues? = nil
    ) {
        self.counters = counters
        self.rates = rates
        self.listenQueues = listenQueues
    }

    /// Whether anything was read: in a container without `/proc/net` files nothing is, and that is no error.
    public var isAvailable: Bool { counters.isAvailable || listenQueues != nil }

    /// `kernel` in `GET /v1/status`.
    public var contract: V1.Kernel {
        V1.Kernel(
            available: isAvailable,
            counters: NamedCounts(
                KernelTCPCounter.allCases.map { ($0.fieldName, Nullable(counters[$0].map { Int(clamping: $0) })) }
            ),
            perSecond: NamedCounts(
                KernelTCPCounter.allCases.map { counter in
                    (counter.fieldName, Nullable(rates?.perSecond(counter).map { KernelRate($0) }))
                }
            ),
            listeners: Nullable(listenQueues?.listenerCount),
            listenersFull: listenQueues?.listeners.filter(\.isAcceptQueueFull).map {
                V1.Kernel.Listener(
                    victim: $0.endpoint.address.description,
                    port: $0.endpoint.port,
                    acceptQueue: Int($0.acceptQueue),
                    backlog: Int($0.backlog)
                )
            },
            synReceived: Nullable(listenQueues?.synReceivedTotal),
            synReceivedServices: listenQueues?.synReceived.map {
                V1.Kernel.SynReceived(
                    victim: $0.endpoint.address.description,
                    port: $0.endpoint.port,
                    synReceived: $0.count
                )
            },
            synproxy: counters.synproxy.map { synproxy in
                V1.Kernel.Synproxy(
                    counters: NamedCounts(
                        KernelSynproxyCounter.allCases.map {
                            ($0.kernelName, Nullable(synproxy[$0].map { Int(clamping: $0) }))
                        }
                    ),
                    perSecond: NamedCounts(
                        KernelSynproxyCounter.allCases.map { counter in
                            (counter.kernelName, Nullable(rates?.perSecond(counter).map { KernelRate($0) }))
                        }
                    )
                )
            }
        )
    }
}

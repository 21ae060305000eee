import SynwatchKernel
import SynwatchProtocol

/// The kernel's own view of TCP on this host, as the daemon last read it: the counters of `/proc/net/netstat`
/// and `/proc/net/snmp`, their rates over the last interval, and the listen queues (sock_diag).
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

    /// The body of `kernel` in `GET /v1/status`.
    public var fields: [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("available", .bool(isAvailable))]
        fields.append(
            ("counters", .object(KernelTCPCounter.allCases.map { ($0.fieldName, counters[$0].map(json) ?? .null) }))
        )
        fields.append(
            (
                "per_s",
                .object(
                    KernelTCPCounter.allCases.map { counter in
                        (counter.fieldName, rates?.perSecond(counter).map { .number($0, decimals: 1) } ?? .null)
                    }
                )
            )
        )
        if let queues = listenQueues {
            fields += [
                ("listeners", .int(queues.listenerCount)),
                ("listeners_full", .array(queues.listeners.filter(\.isAcceptQueueFull).map(\.json))),
                ("syn_recv", .int(queues.synReceivedTotal)),
                ("syn_recv_services", .array(queues.synReceived.map(\.json))),
            ]
        } else {
            fields += [("listeners", .null), ("syn_recv", .null)]
        }
        return fields
    }

    private func json(_ value: UInt64) -> JSONValue { .int(Int(clamping: value)) }
}

extension KernelListener {
    var json: JSONValue {
        .object([
            ("victim", .string(endpoint.address.description)),
            ("port", .int(Int(endpoint.port))),
            ("accept_queue", .int(Int(acceptQueue))),
            ("backlog", .int(Int(backlog))),
        ])
    }
}

extension KernelSynReceived {
    var json: JSONValue {
        .object([
            ("victim", .string(endpoint.address.description)),
            ("port", .int(Int(endpoint.port))),
            ("syn_recv", .int(count)),
        ])
    }
}

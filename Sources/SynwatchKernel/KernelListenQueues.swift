/// A listening TCP socket and its accept queue.
public struct KernelListener: Equatable, Sendable {
    /// The address and port it listens on (a wildcard address for `0.0.0.0` or `::`).
    public var endpoint: KernelEndpoint
    /// Completed connections waiting for `accept(2)` (`idiag_rqueue`).
    public var acceptQueue: UInt32
    /// The backlog it listens with, after the kernel's cap (`idiag_wqueue`).
    public var backlog: UInt32

    public init(endpoint: KernelEndpoint, acceptQueue: UInt32, backlog: UInt32) {
        self.endpoint = endpoint
        self.acceptQueue = acceptQueue
        self.backlog = backlog
    }

    /// Whether the accept queue is full, as the kernel judges it: a new connection would overflow it.
    public var isAcceptQueueFull: Bool { acceptQueue > backlog }
}

/// How many sockets in SYN_RECV (half-open handshakes the kernel keeps state for) one local service has.
public struct KernelSynReceived: Equatable, Sendable {
    /// The local address and port the handshakes are for.
    public var endpoint: KernelEndpoint
    public var count: Int
    /// The backlog of the listeners they queue on, nil when the dump held none: the SYN queue is full at as many.
    /// Those bound to the endpoint's address, else to every address of its family (an IPv4 client of a dual-stack
    /// `::` listener has an IPv4-mapped address), summed over listeners that share a port (`SO_REUSEPORT`).
    public var backlog: UInt32?

    public init(endpoint: KernelEndpoint, count: Int, backlog: UInt32? = nil) {
        self.endpoint = endpoint
        self.count = count
        self.backlog = backlog
    }

    /// Whether the SYN queue is full: the kernel answers the next SYNs with cookies, or drops them.
    public var isSynQueueFull: Bool { backlog.map { count >= Int($0) } ?? false }
}

/// The kernel's listeners and half-open handshakes at one moment, as `ss -tln` and `ss -tn state syn-recv` show
/// them, bounded in size whatever the number of sockets.
public struct KernelListenQueues: Equatable, Sendable {
    /// Listeners, the longest accept queue first (then by endpoint), at most the limit asked for.
    public var listeners: [KernelListener] = []
    /// All listening sockets seen, also those not in `listeners`.
    public var listenerCount = 0
    /// Services with SYN_RECV sockets, those whose SYN queue is full first, then the most (then by endpoint), at most
    /// the limit asked for: a slow flood that fills a small queue is listed on a host whose busy services hold more.
    public var synReceived: [KernelSynReceived] = []
    /// All SYN_RECV sockets seen, also those of services not in `synReceived`.
    public var synReceivedTotal = 0
    /// The services with SYN_RECV sockets that were counted one by one.
    public var synReceivedServiceCount = 0
    /// SYN_RECV sockets of services beyond the tracking capacity: in the total, but in no service's count.
    public var synReceivedUntracked = 0
    /// Whether the kernel said a table changed during the dump, so entries may be missing or repeated.
    public var dumpInterrupted = false

    public init() {}

    /// The SYN_RECV count of `endpoint`, 0 if it is not among `synReceived`.
    public func synReceivedCount(for endpoint: KernelEndpoint) -> Int {
        synReceived.first { $0.endpoint == endpoint }?.count ?? 0
    }
}

/// Counts listeners and SYN_RECV sockets as a dump delivers them, within fixed capacities.
struct ListenQueueTally {
    let capacity: Int
    var listeners: [KernelListener] = []
    var listenerCount = 0
    var synReceived: [KernelEndpoint: Int] = [:]
    var synReceivedTotal = 0
    var synReceivedUntracked = 0
    var dumpInterrupted = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func addListener(_ listener: KernelListener) {
        listenerCount += 1
        if listeners.count < capacity { listeners.append(listener) }
    }

    mutating func addSynReceived(at endpoint: KernelEndpoint) {
        synReceivedTotal += 1
        if let count = synReceived[endpoint] {
            synReceived[endpoint] = count + 1
        } else if synReceived.count < capacity {
            synReceived[endpoint] = 1
        } else {
            synReceivedUntracked += 1
        }
    }

    /// The result, with the `limit` largest of each list.
    func result(limit: Int) -> KernelListenQueues {
        var result = KernelListenQueues()
        result.listeners = Array(
            listeners.sorted {
                ($0.acceptQueue, $1.endpoint) > ($1.acceptQueue, $0.endpoint)
            }.prefix(limit)
        )
        result.listenerCount = listenerCount
        var backlogs: [KernelEndpoint: Int] = [:]
        for listener in listeners { backlogs[listener.endpoint, default: 0] += Int(listener.backlog) }
        let services = synReceived.map { endpoint, count in
            let everyAddress = KernelEndpoint(address: .unspecified(ipv6: endpoint.address.isIPv6), port: endpoint.port)
            let backlog = (backlogs[endpoint] ?? backlogs[everyAddress]).map { UInt32(clamping: $0) }
            return KernelSynReceived(endpoint: endpoint, count: count, backlog: backlog)
        }
        result.synReceived = Array(
            services.sorted {
                ($0.isSynQueueFull ? 1 : 0, $0.count, $1.endpoint) > ($1.isSynQueueFull ? 1 : 0, $1.count, $0.endpoint)
            }.prefix(limit)
        )
        result.synReceivedTotal = synReceivedTotal
        result.synReceivedServiceCount = synReceived.count
        result.synReceivedUntracked = synReceivedUntracked
        result.dumpInterrupted = dumpInterrupted
        return result
    }
}

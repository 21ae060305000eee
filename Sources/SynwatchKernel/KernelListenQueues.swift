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
    /// The backlog of the listener they queue on (bound to the endpoint's address, else to every address), nil
    /// when the dump held none: the SYN queue is full at as many.
    public var backlog: UInt32?

    public init(endpoint: KernelEndpoint, count: Int, backlog: UInt32? = nil) {
        self.endpoint = endpoint
        self.count = count
        self.backlog = backlog
    }
}

/// The kernel's listeners and half-open handshakes at one moment, as `ss -tln` and `ss -tn state syn-recv` show
/// them, bounded in size whatever the number of sockets.
public struct KernelListenQueues: Equatable, Sendable {
    /// Listeners, the longest accept queue first (then by endpoint), at most the limit asked for.
    public var listeners: [KernelListener] = []
    /// All listening sockets seen, also those not in `listeners`.
    public var listenerCount = 0
    /// Services with SYN_RECV sockets, the most first (then by endpoint), at most the limit asked for.
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

    /// The backlog of the listener that handshakes for `endpoint` queue on: the one bound to its address, else one
    /// bound to every address on its port.
    func backlog(of endpoint: KernelEndpoint) -> UInt32? {
        listeners.first { $0.endpoint == endpoint }?.backlog
            ?? listeners.first { $0.endpoint.port == endpoint.port && $0.endpoint.address.isUnspecified }?.backlog
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
        // The listener of each service listed only: a walk of every listener each.
        result.synReceived = synReceived.map { KernelSynReceived(endpoint: $0.key, count: $0.value) }.sorted {
            ($0.count, $1.endpoint) > ($1.count, $0.endpoint)
        }.prefix(limit).map {
            KernelSynReceived(endpoint: $0.endpoint, count: $0.count, backlog: backlog(of: $0.endpoint))
        }
        result.synReceivedTotal = synReceivedTotal
        result.synReceivedServiceCount = synReceived.count
        result.synReceivedUntracked = synReceivedUntracked
        result.dumpInterrupted = dumpInterrupted
        return result
    }
}

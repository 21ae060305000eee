/// A connection attempt's 4-tuple, oriented from the client (who sent the SYN) to the server.

struct HandshakeKey: Equatable, Sendable {
    var client: IPAddress
    var server: IPAddress
    /// Client port in the high half, server port in the low half.
    var ports: UInt32

    @inline(__always)
    init(client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16) {
        self.client = client
        self.server = server
        self.ports = UInt32(clientPort) << 16 | UInt32(serverPort)
    }

    var serverPort: UInt16 { UInt16(truncatingIfNeeded: ports) }

    static let empty = HandshakeKey(client: .zero, clientPort: 0, server: .zero, serverPort: 0)
}

/// Every handshake between its SYN and its completing ACK, RST or time-out.
///
/// Bounded: when the bucket of a new attempt is full, the attempt with the oldest SYN in that
/// bucket is evicted and counted. Under a spoofed flood that fills the table this keeps the most
/// recent attempts, which are the ones that may still complete.

final class HandshakeTable {
    let index: BucketedIndex<HandshakeKey>
    /// The client's initial sequence number (the SYN's seq).
    let clientISN: UnsafeMutablePointer<UInt32>
    /// The server's initial sequence number, once its SYN-ACK was seen.
    let serverISN: UnsafeMutablePointer<UInt32>
    let synAckSeen: UnsafeMutablePointer<Bool>
    let hasher: KeyedHasher
    /// Next bucket the time-out sweep looks at.
    var sweepCursor = 0

    init(capacity: Int, hasher: KeyedHasher) {
        index = BucketedIndex(capacity: capacity, emptyKey: .empty)
        let slots = index.capacity
        clientISN = .allocate(capacity: slots)
        clientISN.initialize(repeating: 0, count: slots)
        serverISN = .allocate(capacity: slots)
        serverISN.initialize(repeating: 0, count: slots)
        synAckSeen = .allocate(capacity: slots)
        synAckSeen.initialize(repeating: false, count: slots)
        self.hasher = hasher
    }

    deinit {
        clientISN.deallocate()
        serverISN.deallocate()
        synAckSeen.deallocate()
    }

    @inline(__always)
    func hash(_ key: HandshakeKey) -> UInt64 { hasher.hash(key.client, key.server, ports: key.ports) }

    /// Time of the SYN that opened the attempt in `slot`.
    @inline(__always)
    func synTime(_ slot: Int) -> Int64 { index.ages[slot] }

    /// Records a new attempt in the free `slot`.
    @inline(__always)
    func open(_ slot: Int, key: HandshakeKey, hash: UInt64, isn: UInt32, time: Int64) {
        index.occupy(slot, key: key, hash: hash, age: time)
        clientISN[slot] = isn
        synAckSeen[slot] = false
    }

    /// Buckets to sweep per resolution step so the whole table is swept once per time-out.
    func bucketsPerSweep(resolution: TimeSpan, timeout: TimeSpan) -> Int {
        let buckets = index.bucketMask + 1
        let steps = max(1, timeout.nanoseconds / max(1, resolution.nanoseconds))
        return max(1, (buckets + Int(steps) - 1) / Int(steps))
    }
}

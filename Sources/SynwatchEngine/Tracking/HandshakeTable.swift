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

    /// The attempt `segment` belongs to, sent by its client (SYN, ACK, the client's RST) or its server (SYN-ACK,
    /// the server's RST).
    @inline(__always)
    init(_ segment: TCPSegment, sentBy sender: Sender) {
        switch sender {
        case .client:
            self.init(
                client: segment.source,
                clientPort: segment.sourcePort,
                server: segment.destination,
                serverPort: segment.destinationPort
            )
        case .server:
            self.init(
                client: segment.destination,
                clientPort: segment.destinationPort,
                server: segment.source,
                serverPort: segment.sourcePort
            )
        }
    }

    enum Sender {
        case client
        case server
    }

    var serverPort: UInt16 { UInt16(truncatingIfNeeded: ports) }

    /// Whether a service sampled at `shift` tracks the attempt with this fingerprint and client ISN: one in 2^shift,
    /// by the top bits of the two mixed. The SYN carries the ISN, its SYN-ACK as ack − 1 and the completing ACK as
    /// seq − 1, so a handshake is kept or left whole, its retransmissions with it. The ISN makes it one attempt in
    /// 2^shift even where a flood keeps to one 4-tuple (by 4-tuple alone, such a flood was all kept or all left, and
    /// its attack ended while it went on); the secret fingerprint keeps a flood from choosing ISNs never kept.
    @inline(__always)
    static func isSampled(fingerprint: UInt64, isn: UInt32, shift: UInt8) -> Bool {
        let mixed = (fingerprint ^ UInt64(isn)) &* 0x9E37_79B9_7F4A_7C15
        return (mixed >> 57) & ((1 << UInt64(shift)) - 1) == 0
    }

    /// The key's bucket hash and fingerprint in the handshake table; also taken off the engine's thread (`KeyHashes`).
    @inline(__always)
    func hashed(by hasher: KeyedHasher) -> (hash: UInt64, fingerprint: UInt64) {
        hasher.hash(client, server, ports: ports)
    }
}

/// One tracked attempt: 32 bytes, two to a cache line.
///
/// The 4-tuple is kept as a 64-bit fingerprint, independent of the bucket hash: two attempts
/// would be confused only if bucket, tag and fingerprint all collide (about 2^-71 per lookup).
struct HandshakeEntry: Sendable {
    var fingerprint: UInt64
    /// The client's initial sequence number (the SYN's seq).
    var clientISN: UInt32 = 0
    /// The server's initial sequence number, once its SYN-ACK was seen.
    var serverISN: UInt32 = 0
    /// Capture time of the SYN that opened the attempt.
    var synTime: Int64 = 0
    /// The victim table slot of the attempt's service plus one (0: untracked), for time-outs.
    var victim: UInt32 = 0
    /// The attempts this one stands for: 1, or more when its service was sampled under attack.
    var weight: UInt8 = 1
    /// The service's completion grace when the SYN came, in 10 ms: the attempt is judged at
    /// `synTime` plus this, and its outcome is counted in the step of that moment.
    var graceCentiseconds: UInt8 = 0
    /// How often its SYN came, retransmissions and copies included, up to `maximumSends`.
    var sends: UInt8 = 1
    /// `synAckSeen`, `retransmitted` and `optionless`, a bit each, so that `sends` fits in the 32 bytes.
    fileprivate var marks: UInt8 = 0

    /// The most SYNs one attempt is sent: a stack sends at most 11 in the minute it is followed (FreeBSD and macOS
    /// after 1, 2, 3, 4, 5, 7, 11, 19, 35 and 67 s; Linux 7), and four times that allows for a capture that shows each
    /// frame more than once. A SYN repeated more often is a flood repeating one packet, and each further one a new
    /// attempt.
    static let maximumSends: UInt8 = 44

    /// Whether the server's SYN-ACK was seen.
    var synAckSeen: Bool {
        get { marks & 1 != 0 }
        set { marks = newValue ? marks | 1 : marks & ~1 }
    }

    /// Whether the client retransmitted the SYN: a live TCP stack, not (yet) a failure.
    var retransmitted: Bool {
        get { marks & 2 != 0 }
        set { marks = newValue ? marks | 2 : marks & ~2 }
    }

    /// Whether its SYN carried no TCP options, which no stack sends (`StepCounters.optionless`).
    var optionless: Bool {
        get { marks & 4 != 0 }
        set { marks = newValue ? marks | 4 : marks & ~4 }
    }

    /// The victim table slot of the attempt's service, when it had one.
    @inline(__always)
    var victimSlot: Int? { victim == 0 ? nil : Int(victim) - 1 }

    /// The resolution step in which the attempt matures (its grace runs out).
    @inline(__always)
    func maturityStep(resolution: Int64) -> Int64 {
        (synTime &+ Int64(graceCentiseconds) &* 10_000_000) / resolution
    }
}

/// Every handshake between its SYN and its completing ACK, RST or time-out.
///
/// Bounded: when the bucket of a new attempt is full, the bucket evicts in rotation (close to its
/// oldest attempt) and the eviction is counted. Under a spoofed flood that fills the table this
/// keeps the most recent attempts, which are the ones that may still complete.
final class HandshakeTable {
    let slots: BucketedSlots
    let entries: FlatArray<HandshakeEntry>
    let hasher: KeyedHasher
    /// Next bucket the time-out sweep looks at.
    var sweepCursor = 0

    init(capacity: Int, hasher: KeyedHasher) {
        slots = BucketedSlots(capacity: capacity)
        entries = FlatArray(zeroedCount: slots.capacity)
        self.hasher = hasher
    }

    deinit { entries.deallocate() }

    @inline(__always)
    func hash(_ key: HandshakeKey) -> (hash: UInt64, fingerprint: UInt64) { key.hashed(by: hasher) }

    /// The slot of the attempt with this hash and fingerprint.
    @inline(__always)
    func find(_ hashed: (hash: UInt64, fingerprint: UInt64)) -> Int? {
        slots.find(hash: hashed.hash) { entries.base[$0].fingerprint == hashed.fingerprint }
    }

    /// Records a new attempt in the free `slot`.
    @inline(__always)
    func open(
        _ slot: Int,
        _ hashed: (hash: UInt64, fingerprint: UInt64),
        isn: UInt32,
        time: Int64,
        victim: Int?,
        weight: UInt8,
        graceCentiseconds: UInt8,
        sends: UInt8,
        optionless: Bool
    ) {
        slots.occupy(slot, hash: hashed.hash)
        entries[slot] = HandshakeEntry(
            fingerprint: hashed.fingerprint,
            clientISN: isn,
            synTime: time,
            victim: victim.map { UInt32(truncatingIfNeeded: $0 + 1) } ?? 0,
            weight: weight,
            graceCentiseconds: graceCentiseconds,
            sends: sends
        )
        entries[slot].optionless = optionless
    }

    /// Buckets to sweep per resolution step so the whole table is swept once per time-out.
    func bucketsPerSweep(resolution: TimeSpan, timeout: TimeSpan) -> Int {
        let buckets = slots.bucketMask + 1
        let steps = max(1, timeout.nanoseconds / max(1, resolution.nanoseconds))
        return max(1, (buckets + Int(steps) - 1) / Int(steps))
    }
}

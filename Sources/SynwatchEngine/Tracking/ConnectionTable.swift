/// Where a connection stands on the server, in the states its kernel would show (`ss -tan` names them).
///
/// The server is the side that received the SYN. Client FIN first: ESTABLISHED → CLOSE_WAIT → (server FIN)
/// LAST_ACK → (its ACK) closed. Server FIN first: FIN_WAIT_1 → (its ACK) FIN_WAIT_2 → (client FIN)
/// TIME_WAIT. Both FINs crossing: FIN_WAIT_1 → CLOSING → (ACK) TIME_WAIT.
enum ConnectionState: UInt8, Sendable {
    case established = 1
    case finWait1
    case finWait2
    case closing
    case timeWait
    case closeWait
    case lastAck
}

/// One connection whose handshake completed: 32 bytes, two to a cache line.
///
/// The 4-tuple is kept as a 64-bit fingerprint of its endpoints in a fixed order (`Engine.connectionHash`),
/// so a segment finds its connection whichever way it travels; `serverIsLow` says which endpoint is the server.
struct ConnectionEntry: Sendable {
    var fingerprint: UInt64
    /// Capture time of the latest change of state: TIME_WAIT and the closing time-outs run from it.
    var since: Int64 = 0
    /// Sequence number of the server's FIN, once seen: the ACK acknowledging it carries this plus one.
    var serverFin: UInt32 = 0
    /// The victim table slot of the connection's service plus one, and that service's serial number: counts
    /// go to the service only while the slot still holds it.
    var victim: UInt32 = 0
    var victimSerial: UInt32 = 0
    var state = ConnectionState.established
    var serverIsLow = false
    /// The connections this one stands for: more than one when its handshake was sampled under attack.
    var weight: UInt8 = 1
}

/// How a connection closed (both FINs seen, by who sent the first) or was aborted (by who sent the RST).
enum ConnectionClose {
    case clientFirst
    case serverFirst
    case simultaneous
    case abortedByClient
    case abortedByServer
}

/// Why a connection left the table.
enum ConnectionEnd {
    /// After a graceful close: the server's last ACK came, its TIME_WAIT ran out, a RST ended the TIME_WAIT,
    /// or a new handshake on the same 4-tuple took its place.
    case closed
    /// A RST from either side while it was open or closing.
    case aborted
    /// A closing state outlived the FIN time-out, or a new handshake replaced it before its close was seen.
    case expired
    /// Its bucket was full when another connection needed the room.
    case evicted
}

/// Every connection whose handshake the engine saw complete, until it is closed, aborted or times out.
///
/// Bounded: when the bucket of a new connection is full, the oldest TIME_WAIT connection of the bucket goes
/// first (its server has already closed it), else the one whose state changed least recently; evictions are
/// counted. ESTABLISHED and CLOSE_WAIT never time out, as on the server: they end only with a FIN, a RST or
/// an eviction.
final class ConnectionTable {
    let slots: BucketedSlots
    let entries: FlatArray<ConnectionEntry>
    /// Next bucket the expiry sweep looks at.
    var sweepCursor = 0

    init(capacity: Int) {
        slots = BucketedSlots(capacity: capacity)
        entries = FlatArray(zeroedCount: slots.capacity)
    }

    deinit { entries.deallocate() }

    /// The slot of the connection with this hash and fingerprint.
    @inline(__always)
    func find(_ hashed: (hash: UInt64, fingerprint: UInt64)) -> Int? {
        slots.find(hash: hashed.hash) { entries.base[$0].fingerprint == hashed.fingerprint }
    }

    /// The slot of the full bucket of `hash` to give up: its oldest TIME_WAIT connection, else the one whose
    /// state changed least recently.
    func evictionSlot(hash: UInt64) -> Int {
        let entries = self.entries
        // TIME_WAIT ages sort before every other state's (capture times are far below 2^62); every slot is a choice.
        return slots.oldestSlot(hash: hash) { slot in
            entries[slot].state == .timeWait ? entries[slot].since &- (1 << 62) : entries[slot].since
        }!
    }

    /// Buckets to sweep per resolution step so the whole table is swept once a second (or once a step).
    func bucketsPerSweep(resolution: TimeSpan) -> Int {
        let buckets = slots.bucketMask + 1
        let steps = max(1, 1_000_000_000 / max(1, resolution.nanoseconds))
        return max(1, (buckets + Int(steps) - 1) / Int(steps))
    }
}

/// Scalar state of one of our addresses receiving SYN-ACKs we never asked for.

struct BackscatterState: Sendable {
    var firstSeen: Int64 = 0
    var epoch: Int64 = 0
    var synAcks = EpochPair()
    var lastNotice: Int64 = .min
}

/// Per destination address: unsolicited SYN-ACKs per one-second epoch and their distinct senders.
///
/// Bounded: a full bucket evicts its least recently hit address.

final class BackscatterTable {
    static var epochLength: Int64 { 1_000_000_000 }

    let index: BucketedIndex<IPAddress>
    let states: UnsafeMutablePointer<BackscatterState>
    let sketches: UnsafeMutablePointer<UInt8>
    let distinct = HyperLogLog(precision: 8)
    let hasher: KeyedHasher

    init(capacity: Int, hasher: KeyedHasher) {
        index = BucketedIndex(capacity: capacity, emptyKey: .zero)
        states = .allocate(capacity: index.capacity)
        states.initialize(repeating: BackscatterState(), count: index.capacity)
        sketches = .allocate(capacity: index.capacity * 2 * distinct.registerCount)
        sketches.initialize(repeating: 0, count: index.capacity * 2 * distinct.registerCount)
        self.hasher = hasher
    }

    deinit {
        states.deallocate()
        sketches.deallocate()
    }

    @inline(__always)
    func sketch(_ slot: Int, parity: Int) -> UnsafeMutablePointer<UInt8> {
        sketches + (slot &* 2 &+ parity) &* distinct.registerCount
    }

    /// Starts one-second epoch `epoch` for `slot`, clearing what is two epochs old.
    @inline(__always)
    func advanceEpoch(_ slot: Int, to epoch: Int64) {
        let current = states[slot].epoch
        guard epoch > current else { return }
        for parity in 0..<2 where epoch - current >= 2 || parity == Int(epoch & 1) {
            states[slot].synAcks[parity] = 0
            sketch(slot, parity: parity).update(repeating: 0, count: distinct.registerCount)
        }
        states[slot].epoch = epoch
    }
}

/// One of our addresses receiving SYN-ACKs we never asked for.
struct BackscatterEntry: Sendable {
    var address: IPAddress
    var firstSeen: Int64 = 0
    var epoch: Int64 = 0
    var synAcks = EpochPair()
    var lastNotice: Int64 = .min

}

/// Per destination address: unsolicited SYN-ACKs per one-second epoch and their distinct senders.
///
/// Bounded: a full bucket evicts in rotation, and the evictions are counted.
final class BackscatterTable {
    static let epochLength: Int64 = 1_000_000_000

    let slots: BucketedSlots
    let entries: FlatArray<BackscatterEntry>
    let sketches: FlatArray<UInt8>
    let distinct = HyperLogLog(precision: 8)

    init(capacity: Int) {
        slots = BucketedSlots(capacity: capacity)
        entries = FlatArray(zeroedCount: slots.capacity)
        sketches = FlatArray(zeroedCount: slots.capacity * 2 * distinct.registerCount)
    }

    deinit {
        entries.deallocate()
        sketches.deallocate()
    }

    /// The slot of `address`.
    @inline(__always)
    func find(_ address: IPAddress, hash: UInt64) -> Int? {
        slots.find(hash: hash) { entries.base[$0].address == address }
    }

    @inline(__always)
    func sketch(_ slot: Int, parity: Int) -> UnsafeMutablePointer<UInt8> {
        sketches.pointer((slot &* 2 &+ parity) &* distinct.registerCount)
    }

    /// Starts one-second epoch `epoch` for `slot`, clearing what is two epochs old.
    @inline(__always)
    func advanceEpoch(_ slot: Int, to epoch: Int64) {
        let current = entries[slot].epoch
        guard epoch > current else { return }
        for parity in 0..<2 where epoch - current >= 2 || parity == Int(epoch & 1) {
            entries.pointer(slot).pointee.synAcks[parity] = 0
            sketch(slot, parity: parity).update(repeating: 0, count: distinct.registerCount)
        }
        entries.pointer(slot).pointee.epoch = epoch
    }
}

/// One of our addresses receiving SYN-ACKs we never asked for.
struct BackscatterEntry: Sendable {
    var address: IPAddress
    var epoch: Int64 = 0
    var synAcks = EpochPair()
    var lastNotice: Int64 = .min
}

/// An unsolicited SYN-ACK counted as backscatter, until its connection shows that it was none.
struct UnsolicitedSynAck: Sendable {
    /// The handshake key's fingerprint from the SYN-ACK's sender; 0 for none.
    var fingerprint: UInt64 = 0
    var serverISN: UInt32 = 0
    /// The backscatter slot and epoch it was counted in.
    var slot: Int32 = 0
    var epoch: Int64 = 0
}

/// Per destination address: unsolicited SYN-ACKs per one-second epoch and their distinct senders.
///
/// A SYN-ACK whose sender goes on with the connection (an ACK or data from the first window of its ISN) answered a
/// SYN the capture did not hold, as when routing is asymmetric or a capture sees one direction only: it is taken out
/// of the count again. The last SYN-ACKs counted are remembered for that, in a fixed array indexed by their key.
///
/// Bounded: a full bucket evicts in rotation, and the evictions are counted.
final class BackscatterTable {
    static let epochLength: Int64 = 1_000_000_000
    /// SYN-ACKs remembered for their connection's next segment: a power of two.
    static let rememberedSynAcks = 4_096
    /// How long after a second its SYN-ACKs are judged: their connection's next segment comes a round trip after
    /// them, well within half a second.
    static let followUpGrace: Int64 = 500_000_000

    let slots: BucketedSlots
    let entries: FlatArray<BackscatterEntry>
    let sketches: FlatArray<UInt8>
    let distinct = HyperLogLog(precision: 8)
    let remembered: FlatArray<UnsolicitedSynAck>
    /// When every count a remembered SYN-ACK could be taken out of is gone: two epochs after the last one's.
    var rememberedUntil: Int64 = .min

    init(capacity: Int) {
        slots = BucketedSlots(capacity: capacity)
        entries = FlatArray(zeroedCount: slots.capacity)
        sketches = FlatArray(zeroedCount: slots.capacity * 2 * distinct.registerCount)
        remembered = FlatArray(zeroedCount: Self.rememberedSynAcks)
    }

    deinit {
        entries.deallocate()
        sketches.deallocate()
        remembered.deallocate()
    }

    /// Remembers the SYN-ACK just counted in `slot`, keyed from its sender.
    @inline(__always)
    func remember(_ key: (hash: UInt64, fingerprint: UInt64), serverISN: UInt32, slot: Int) {
        let epoch = entries[slot].epoch
        remembered[Int(truncatingIfNeeded: key.hash) & (Self.rememberedSynAcks - 1)] = UnsolicitedSynAck(
            fingerprint: key.fingerprint | 1,
            serverISN: serverISN,
            slot: Int32(truncatingIfNeeded: slot),
            epoch: epoch
        )
        rememberedUntil = (epoch + 2) * Self.epochLength
    }

    /// Takes the remembered SYN-ACK of the connection `key` to `address` out of its count, when `sequence` continues
    /// it (its sender's next segment).
    @inline(__always)
    func forget(_ key: (hash: UInt64, fingerprint: UInt64), to address: IPAddress, sequence: UInt32) {
        let index = Int(truncatingIfNeeded: key.hash) & (Self.rememberedSynAcks - 1)
        let held = remembered[index]
        guard held.fingerprint == key.fingerprint | 1,
            Engine.isInFirstWindow(sequence, of: held.serverISN)
        else { return }
        remembered[index] = UnsolicitedSynAck()
        let slot = Int(held.slot)
        // Counted in an epoch the entry still holds, unless the slot went to another address since.
        let entry = entries.pointer(slot)
        guard slots.isOccupied(slot), entry.pointee.address == address, entry.pointee.epoch - held.epoch < 2 else {
            return
        }
        let parity = Int(held.epoch & 1)
        entry.pointee.synAcks[parity] = max(1, entry.pointee.synAcks[parity]) - 1
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

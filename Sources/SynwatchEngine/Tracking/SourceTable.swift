/// Scalar state of one source address.

struct SourceState: Sendable {
    var epoch: Int64 = 0
    var attempts = EpochPair()
    var completions = EpochPair()
    var resetsReceived = EpochPair()
    /// The destination of the latest attempt: the scanned host when there is only one.
    var lastTarget = IPAddress.zero
    /// Distinct (address, port) targets per epoch parity, 128-bit linear counters (two words each).
    var targets: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Distinct destination addresses per epoch parity.
    var addresses: (UInt64, UInt64) = (0, 0)
    var lastNotice: Int64 = .min
    var scanCandidate = false
}

/// Per source address: attempts, closed attempts and targets per sources epoch, for scan notices
/// and the daemon's top sources.
///
/// Bounded: a full bucket evicts its least recently seen source. A spoofed flood churns this
/// table by design; the evictions are counted.

final class SourceTable {
    let index: BucketedIndex<IPAddress>
    let states: UnsafeMutablePointer<SourceState>
    let hasher: KeyedHasher

    init(capacity: Int, hasher: KeyedHasher) {
        index = BucketedIndex(capacity: capacity, emptyKey: .zero)
        states = .allocate(capacity: index.capacity)
        states.initialize(repeating: SourceState(), count: index.capacity)
        self.hasher = hasher
    }

    deinit { states.deallocate() }

    /// Starts sources epoch `epoch` for `slot`, clearing what is two epochs old.
    @inline(__always)
    func advanceEpoch(_ slot: Int, to epoch: Int64) {
        let current = states[slot].epoch
        guard epoch > current else { return }
        for parity in 0..<2 where epoch - current >= 2 || parity == Int(epoch & 1) {
            states[slot].attempts[parity] = 0
            states[slot].completions[parity] = 0
            states[slot].resetsReceived[parity] = 0
            if parity == 0 {
                states[slot].targets.0 = 0
                states[slot].targets.1 = 0
                states[slot].addresses.0 = 0
            } else {
                states[slot].targets.2 = 0
                states[slot].targets.3 = 0
                states[slot].addresses.1 = 0
            }
        }
        states[slot].epoch = epoch
    }

    /// Records a target (destination address and port) of `slot` in the current epoch.
    @inline(__always)
    func addTarget(_ slot: Int, targetHash: UInt64, addressHash: UInt64, parity: Int) {
        // The low bit of the hash picks the word, the top six bits the bit in it.
        let bit = UInt64(1) << (targetHash >> 58)
        if parity == 0 {
            if targetHash & 1 == 0 { states[slot].targets.0 |= bit } else { states[slot].targets.1 |= bit }
            LinearCounter.add(addressHash, to: &states[slot].addresses.0)
        } else {
            if targetHash & 1 == 0 { states[slot].targets.2 |= bit } else { states[slot].targets.3 |= bit }
            LinearCounter.add(addressHash, to: &states[slot].addresses.1)
        }
    }

    /// Bits set in the union of both epochs' target counters: a cheap stand-in for the estimate.
    @inline(__always)
    func targetBits(_ slot: Int) -> Int {
        let targets = states[slot].targets
        return (targets.0 | targets.2).nonzeroBitCount + (targets.1 | targets.3).nonzeroBitCount
    }

    /// Estimated distinct targets of `slot` over both epochs (a 128-bit linear counter).
    func distinctTargets(_ slot: Int) -> Int {
        LinearCounter.estimate(bitsSet: targetBits(slot), of: 128)
    }

    /// Estimated distinct destination addresses of `slot` over both epochs.
    func distinctAddresses(_ slot: Int) -> Int {
        LinearCounter.estimate(states[slot].addresses.0, states[slot].addresses.1)
    }
}

/// One source address and what it did in the current and the previous sources epoch.
struct SourceEntry: Sendable {
    var address: IPAddress
    var epoch: Int64 = 0
    var attempts = EpochPair()
    var completions = EpochPair()
    /// Distinct (address, port) targets per epoch parity (64-bit linear counters).
    var targets = WordPair()
    /// Distinct destination addresses per epoch parity.
    var addresses = WordPair()
    /// The destination of the latest attempt: the scanned host when there is only one.
    var lastTarget = IPAddress.zero
    var lastNotice: Int64 = .min
    var scanCandidate = false
    /// Whether it acknowledged on a connection of a service whose attempts were sampled out: it completes
    /// handshakes, even if none of those this table counts.
    var acknowledged = false

    /// Attempts of both epochs that neither completed nor were refused (read after `advanceEpoch`).
    var halfOpen: Int { max(0, attempts.total - completions.total) }
}

/// Two 64-bit linear counters indexed by epoch parity.
struct WordPair: Sendable {
    var even: UInt64 = 0
    var odd: UInt64 = 0

    subscript(parity: Int) -> UInt64 {
        @inline(__always) get { parity == 0 ? even : odd }
        @inline(__always) set { if parity == 0 { even = newValue } else { odd = newValue } }
    }

    var union: UInt64 { even | odd }
}

/// Per source address: attempts, completions and targets per sources epoch, for scan notices.
///
/// Sources enter on their second SYN (`SourceAdmission`), so spoofed one-shot sources stay out.
/// Bounded: a full bucket evicts in rotation, and the evictions are counted.
final class SourceTable {
    let slots: BucketedSlots
    let entries: FlatArray<SourceEntry>

    init(capacity: Int) {
        slots = BucketedSlots(capacity: capacity)
        entries = FlatArray(zeroedCount: slots.capacity)
    }

    deinit { entries.deallocate() }

    /// The slot of `address`.
    @inline(__always)
    func find(_ address: IPAddress, hash: UInt64) -> Int? {
        slots.find(hash: hash) { entries.base[$0].address == address }
    }

    /// Starts sources epoch `epoch` for `slot`, clearing what is two epochs old.
    @inline(__always)
    func advanceEpoch(_ slot: Int, to epoch: Int64) {
        let entry = entries.pointer(slot)
        let current = entry.pointee.epoch
        guard epoch > current else { return }
        for parity in 0..<2 where epoch - current >= 2 || parity == Int(epoch & 1) {
            entry.pointee.attempts[parity] = 0
            entry.pointee.completions[parity] = 0
            entry.pointee.targets[parity] = 0
            entry.pointee.addresses[parity] = 0
        }
        entry.pointee.epoch = epoch
    }

    /// Estimated distinct targets of `slot` over both epochs: never more than its SYNs over them.
    func distinctTargets(_ slot: Int) -> Int {
        min(LinearCounter.estimate(entries[slot].targets.union), entries[slot].attempts.total)
    }

    /// Estimated distinct destination addresses of `slot` over both epochs: never more than its targets.
    func distinctAddresses(_ slot: Int) -> Int {
        min(LinearCounter.estimate(entries[slot].addresses.union), distinctTargets(slot))
    }
}

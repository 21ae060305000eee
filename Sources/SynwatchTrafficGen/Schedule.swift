/// The segments generators have planned but not yet written, ordered by capture time.
///
/// A binary min-heap of small keys (time, insertion order, slot) over segments parked in reusable slots:
/// sifting moves 24-byte keys, never whole segments. Ties keep the order in which segments were planned,
/// so the output does not depend on heap internals and a seed always gives the same file.
struct Schedule {
    private struct Key {
        var time: Int64
        var order: UInt64
        var slot: Int32

        @inline(__always)
        func precedes(_ other: Key) -> Bool {
            time != other.time ? time < other.time : order < other.order
        }
    }

    /// Whether segments away from our network are kept; an incoming-only capture never plans them.
    let keepsOutbound: Bool
    private var keys: [Key] = []
    private var slots: [Segment] = []
    private var freeSlots: [Int32] = []
    private var nextOrder: UInt64 = 0

    init(keepsOutbound: Bool = true) {
        self.keepsOutbound = keepsOutbound
    }

    /// The capture time of the earliest planned segment.
    var earliestTime: Int64? { keys.first?.time }

    /// Plans `segment` for writing at its `time`.
    ///
    /// - Complexity: O(log n).
    mutating func add(_ segment: Segment) {
        guard keepsOutbound || segment.inbound else { return }
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slots[Int(free)] = segment
        } else {
            slot = Int32(slots.count)
            slots.append(segment)
        }
        let key = Key(time: segment.time, order: nextOrder, slot: slot)
        nextOrder += 1
        keys.append(key)
        // Move parents down into the hole until the new key fits.
        var hole = keys.count - 1
        while hole > 0 {
            let parent = (hole - 1) / 2
            guard key.precedes(keys[parent]) else { break }
            keys[hole] = keys[parent]
            hole = parent
        }
        keys[hole] = key
    }

    /// Removes and returns the earliest segment.
    ///
    /// - Complexity: O(log n).
    mutating func removeEarliest() -> Segment? {
        guard let earliest = keys.first else { return nil }
        let last = keys.removeLast()
        if !keys.isEmpty {
            // Move the smaller child up into the hole until the last key fits.
            var hole = 0
            while true {
                var child = 2 * hole + 1
                guard child < keys.count else { break }
                if child + 1 < keys.count && keys[child + 1].precedes(keys[child]) { child += 1 }
                guard keys[child].precedes(last) else { break }
                keys[hole] = keys[child]
                hole = child
            }
            keys[hole] = last
        }
        freeSlots.append(earliest.slot)
        return slots[Int(earliest.slot)]
    }
}

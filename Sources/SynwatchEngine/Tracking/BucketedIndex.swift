/// The slot index of a flat, set-associative hash table with a hard capacity.
///
/// Slots come in buckets of eight. Each bucket keeps its eight one-byte tags in one word, so a
/// lookup reads one word, compares the tags at once and checks full keys only where a tag matches.
/// A full bucket makes room by evicting the slot with the smallest age that the caller allows
/// (oldest first): memory is fixed at creation, whatever the traffic. Tables keep their per-slot
/// data in parallel arrays indexed by the slot number this index hands out.

final class BucketedIndex<Key: Equatable> {
    static var ways: Int { 8 }

    let bucketMask: Int
    let tags: UnsafeMutablePointer<UInt64>
    let keys: UnsafeMutablePointer<Key>
    /// Eviction order: the slot with the smallest age in a full bucket goes first.
    let ages: UnsafeMutablePointer<Int64>
    /// Occupied slots.
    private(set) var count = 0

    /// - Parameters:
    ///   - capacity: slots wanted; rounded up to a power of two of at least one bucket.
    ///   - emptyKey: the value unoccupied key slots hold.
    init(capacity: Int, emptyKey: Key) {
        var buckets = 1
        while buckets * Self.ways < capacity { buckets <<= 1 }
        bucketMask = buckets - 1
        tags = .allocate(capacity: buckets)
        tags.initialize(repeating: 0, count: buckets)
        keys = .allocate(capacity: buckets * Self.ways)
        keys.initialize(repeating: emptyKey, count: buckets * Self.ways)
        ages = .allocate(capacity: buckets * Self.ways)
        ages.initialize(repeating: 0, count: buckets * Self.ways)
    }

    deinit {
        tags.deallocate()
        keys.deinitialize(count: capacity)
        keys.deallocate()
        ages.deallocate()
    }

    /// Total slots.
    var capacity: Int { (bucketMask + 1) * Self.ways }

    @inline(__always)
    static func tag(_ hash: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: hash >> 57) | 0x80 }

    /// Bytes of `word` equal to zero, flagged by their top bit. Bytes above a true zero may be
    /// flagged falsely, so callers either check keys or take only the lowest flag.
    @inline(__always)
    static func zeroBytes(_ word: UInt64) -> UInt64 {
        (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
    }

    /// The slot holding `key`, or -1.
    /// - Complexity: O(1): one bucket.
    @inline(__always)
    func find(_ key: Key, hash: UInt64) -> Int {
        let bucket = Int(truncatingIfNeeded: hash) & bucketMask
        var matches = Self.zeroBytes(tags[bucket] ^ (UInt64(Self.tag(hash)) &* 0x0101_0101_0101_0101))
        while matches != 0 {
            let slot = bucket &* Self.ways &+ matches.trailingZeroBitCount >> 3
            if keys[slot] == key { return slot }
            matches &= matches &- 1
        }
        return -1
    }

    /// An unoccupied slot in the bucket of `hash`, or -1 when the bucket is full.
    @inline(__always)
    func freeSlot(hash: UInt64) -> Int {
        let bucket = Int(truncatingIfNeeded: hash) & bucketMask
        let empty = Self.zeroBytes(tags[bucket])
        return empty == 0 ? -1 : bucket &* Self.ways &+ empty.trailingZeroBitCount >> 3
    }

    /// The occupied slot with the smallest age in the (full) bucket of `hash` among those `evictable`
    /// allows, or -1 when it allows none.
    func oldestSlot(hash: UInt64, evictable: (Int) -> Bool = { _ in true }) -> Int {
        let first = (Int(truncatingIfNeeded: hash) & bucketMask) &* Self.ways
        var oldest = -1
        var oldestAge = Int64.max
        for slot in first..<(first + Self.ways) where ages[slot] < oldestAge && evictable(slot) {
            oldest = slot
            oldestAge = ages[slot]
        }
        return oldest
    }

    /// Whether `slot` holds a key.
    @inline(__always)
    func isOccupied(_ slot: Int) -> Bool {
        (tags[slot >> 3] >> UInt64((slot & 7) << 3)) & 0xFF != 0
    }

    /// Puts `key` into the unoccupied `slot`, which must be in the bucket of `hash`.
    @inline(__always)
    func occupy(_ slot: Int, key: Key, hash: UInt64, age: Int64) {
        let shift = UInt64((slot & 7) << 3)
        tags[slot >> 3] |= UInt64(Self.tag(hash)) << shift
        keys[slot] = key
        ages[slot] = age
        count &+= 1
    }

    /// Frees `slot`.
    @inline(__always)
    func vacate(_ slot: Int) {
        let shift = UInt64((slot & 7) << 3)
        tags[slot >> 3] &= ~(0xFF << shift)
        count &-= 1
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The slot index of a flat, set-associative hash table with a hard capacity.
///
/// Slots come in buckets of eight. Each bucket keeps its eight one-byte tags in one word (the
/// tag array is small enough to stay in cache), so a lookup compares eight tags at once and reads
/// an entry only where a tag matches. A full bucket makes room by evicting one of its slots:
/// memory is fixed at creation, whatever the traffic. Tables keep their entries in their own flat
/// arrays indexed by the slot numbers handed out here.
final class BucketedSlots {
    static let ways = 8

    let bucketMask: Int
    let tags: FlatArray<UInt64>
    /// Per bucket, the way to evict next: buckets evict in rotation, close to insertion order.
    let rotation: FlatArray<UInt8>
    /// Occupied slots.
    private(set) var count = 0
    /// Entries given up to make room (`claim`): what the table dropped.
    private(set) var evictions = 0

    /// - Parameter capacity: slots wanted; rounded up to a power of two of at least one bucket.
    init(capacity: Int) {
        var buckets = 1
        while buckets * Self.ways < capacity { buckets <<= 1 }
        bucketMask = buckets - 1
        tags = FlatArray<UInt64>(zeroedCount: buckets)
        rotation = FlatArray<UInt8>(zeroedCount: buckets)
    }

    deinit {
        tags.deallocate()
        rotation.deallocate()
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

    /// The first slot of the bucket of `hash`.
    @inline(__always)
    func firstSlot(_ hash: UInt64) -> Int { (Int(truncatingIfNeeded: hash) & bucketMask) &* Self.ways }

    /// The slot whose tag matches `hash` and for which `matches` holds.
    /// - Complexity: O(1): one bucket.
    @inline(__always)
    func find(hash: UInt64, matches: (Int) -> Bool) -> Int? {
        let bucket = Int(truncatingIfNeeded: hash) & bucketMask
        var candidates = Self.zeroBytes(tags[bucket] ^ (UInt64(Self.tag(hash)) &* 0x0101_0101_0101_0101))
        while candidates != 0 {
            let slot = bucket &* Self.ways &+ candidates.trailingZeroBitCount >> 3
            if matches(slot) { return slot }
            candidates &= candidates &- 1
        }
        return nil
    }

    /// An unoccupied slot in the bucket of `hash`, nil when the bucket is full.
    @inline(__always)
    func freeSlot(hash: UInt64) -> Int? {
        let bucket = Int(truncatingIfNeeded: hash) & bucketMask
        let empty = Self.zeroBytes(tags[bucket])
        return empty == 0 ? nil : bucket &* Self.ways &+ empty.trailingZeroBitCount >> 3
    }

    /// A slot for a new entry in the bucket of `hash`, not yet occupied: a free one, else the one `evicting` picks
    /// from the full bucket, vacated and counted; nil when it picks none.
    @inline(__always)
    func claim(hash: UInt64, evicting: (UInt64) -> Int?) -> Int? {
        if let free = freeSlot(hash: hash) { return free }
        guard let slot = evicting(hash) else { return nil }
        vacate(slot)
        evictions &+= 1
        return slot
    }

    /// A slot for a new entry in the bucket of `hash`: a free one, else the next in rotation, evicted and counted.
    @inline(__always)
    func claim(hash: UInt64) -> Int {
        // Evicting in rotation reads nothing of the old entry: under a flood its line is not in cache.
        claim(hash: hash, evicting: rotationSlot(hash:))!
    }

    /// The slot of the full bucket of `hash` to evict next in rotation.
    @inline(__always)
    func rotationSlot(hash: UInt64) -> Int {
        let bucket = Int(truncatingIfNeeded: hash) & bucketMask
        let way = Int(rotation[bucket])
        rotation[bucket] = UInt8((way + 1) & (Self.ways - 1))
        return bucket &* Self.ways &+ way
    }

    /// The slot of the full bucket of `hash` with the smallest `age` among those `evictable` allows.
    func oldestSlot(hash: UInt64, age: (Int) -> Int64, evictable: (Int) -> Bool = { _ in true }) -> Int? {
        let first = firstSlot(hash)
        var oldest: Int?
        var oldestAge = Int64.max
        for slot in first..<(first + Self.ways) where evictable(slot) {
            let slotAge = age(slot)
            if slotAge < oldestAge {
                oldest = slot
                oldestAge = slotAge
            }
        }
        return oldest
    }

    /// Whether `slot` holds an entry.
    @inline(__always)
    func isOccupied(_ slot: Int) -> Bool {
        (tags[slot >> 3] >> UInt64((slot & 7) << 3)) & 0xFF != 0
    }

    /// Marks the unoccupied `slot`, which must be in the bucket of `hash`, as holding an entry.
    @inline(__always)
    func occupy(_ slot: Int, hash: UInt64) {
        tags[slot >> 3] |= UInt64(Self.tag(hash)) << UInt64((slot & 7) << 3)
        count &+= 1
    }

    /// Frees `slot`.
    @inline(__always)
    func vacate(_ slot: Int) {
        tags[slot >> 3] &= ~(0xFF << UInt64((slot & 7) << 3))
        count &-= 1
    }
}

/// Cache-line-aligned flat storage for table entries, zeroed lazily.
///
/// The memory comes from `calloc`, whose large blocks are fresh zero pages that become resident
/// only when written: a table the traffic never fills costs no memory. Elements must be plain
/// values for which all-zero bytes are a valid value; tables never read an unoccupied slot.
struct FlatArray<Element: BitwiseCopyable> {
    let base: UnsafeMutablePointer<Element>
    private let allocation: UnsafeMutableRawPointer
    /// Checked by debug builds (and the fuzz targets) on every access: an index out of range writes another
    /// table's memory, which nothing else would notice.
    private let count: Int

    init(zeroedCount count: Int) {
        guard let memory = calloc(MemoryLayout<Element>.stride * max(1, count) + 64, 1) else {
            fatalError("synwatch: cannot allocate \(count) table entries")
        }
        allocation = memory
        self.count = count
        let aligned = (Int(bitPattern: memory) + 63) & ~63
        base = UnsafeMutableRawPointer(bitPattern: aligned)!.bindMemory(to: Element.self, capacity: count)
    }

    func deallocate() { free(allocation) }

    /// In place: `states[slot].field += 1` touches one field, never a copy of the element.
    @inline(__always)
    subscript(index: Int) -> Element {
        unsafeAddress { UnsafePointer(pointer(index)) }
        nonmutating unsafeMutableAddress { pointer(index) }
    }

    /// The element at `index` and those after it (a victim's ring, a sketch's registers).
    @inline(__always)
    func pointer(_ index: Int) -> UnsafeMutablePointer<Element> {
        assert(index >= 0 && index < count, "index \(index) outside a table of \(count)")
        return base + index
    }
}

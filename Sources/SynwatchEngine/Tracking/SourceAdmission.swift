/// Admits a source to the source table on its second SYN within a short window.
///
/// A spoofed flood sends about one SYN per source: giving each a table entry would only churn
/// the table and cost a cache miss per packet. Two bitmaps remember which sources sent a SYN
/// recently (current and previous generation); a source found in either is admitted. The current
/// one becomes the previous after `maximumAge` or once an eighth of its bits are set, so each holds at
/// most an eighth of the bits and false admissions stay under one in four whatever the rate; the
/// window shrinks only under floods.
struct SourceAdmission {
    static let bitCount = 1 << 20
    static let wordCount = bitCount / 64

    private let bitmaps: FlatArray<UInt64>
    private var current = 0
    private var insertedSinceRotation = 0
    private var rotatedAt: Int64 = 0
    let maximumAge: Int64

    init(maximumAge: TimeSpan) {
        bitmaps = FlatArray(zeroedCount: 2 * Self.wordCount)
        self.maximumAge = maximumAge.nanoseconds
    }

    func deallocate() { bitmaps.deallocate() }

    /// Whether the source of `hash` sent a SYN within the window; records this one either way.
    /// - Complexity: O(1); O(bitmap) on the rare rotation.
    @inline(__always)
    mutating func admit(_ hash: UInt64, at time: Int64) -> Bool {
        // Bits 36…55: independent of the table's bucket (low bits) and tag (top bits).
        let bit = Int(truncatingIfNeeded: hash >> 36) & (Self.bitCount - 1)
        let word = bit >> 6
        let mask = UInt64(1) << UInt64(bit & 63)
        let mine = bitmaps.pointer(current * Self.wordCount)
        let other = bitmaps.pointer((current ^ 1) * Self.wordCount)
        if mine[word] & mask != 0 || other[word] & mask != 0 { return true }
        mine[word] |= mask
        insertedSinceRotation += 1
        if insertedSinceRotation >= Self.bitCount / 8 || time - rotatedAt >= maximumAge {
            rotate(at: time)
        }
        return false
    }

    private mutating func rotate(at time: Int64) {
        current ^= 1
        (bitmaps.pointer(current * Self.wordCount)).update(repeating: 0, count: Self.wordCount)
        insertedSinceRotation = 0
        rotatedAt = time
    }
}

/// One source of a source sample; `hash` is `UInt64.max` while the place is free.

struct SampledSource: Sendable {
    var address: IPAddress
    var hash: UInt64
    /// A handshake of the source completed: a client, no flood's source.
    var completed = false

    static let empty = SampledSource(address: .zero, hash: .max)
}

/// A uniform sample of the distinct sources of a stream: the `k` with the smallest hashes (a bottom-k sketch), in a
/// table's flat storage, smallest first.
///
/// Every source has the same chance to be in it, however often it comes back: unlike heavy hitters (Space-Saving),
/// which keep the sources that repeat most, it shows the range a flood's sources are drawn from
/// (`DetectorInputs.isDrawnFromPool`). Most sources are turned away by one comparison with the largest hash kept.
/// A source that completes stays, marked: taken out, its place would go to whichever source came next, and the
/// clients in the middle of their handshakes would fill the sample.
enum SourceSample {
    /// Adds `address`, hashed `hash`.
    /// - Complexity: O(1) for most sources, O(k) for those that enter.
    @inline(__always)
    static func add(_ address: IPAddress, hash: UInt64, to entries: UnsafeMutablePointer<SampledSource>, k: Int) {
        guard hash < entries[k - 1].hash else { return }
        var index = k - 1
        while index > 0, entries[index - 1].hash >= hash {
            if entries[index - 1].hash == hash { return }
            index -= 1
        }
        // The larger ones move up, and the largest leaves.
        var position = k - 1
        while position > index {
            entries[position] = entries[position - 1]
            position -= 1
        }
        entries[index] = SampledSource(address: address, hash: hash)
    }

    /// Marks `address`, hashed `hash`, as a client whose handshake completed, if it is in the sample.
    /// - Complexity: O(k).
    static func markCompleted(
        _ address: IPAddress,
        hash: UInt64,
        in entries: UnsafeMutablePointer<SampledSource>,
        k: Int
    ) {
        guard hash <= entries[k - 1].hash else { return }
        for index in 0..<k where entries[index].hash == hash && entries[index].address == address {
            entries[index].completed = true
            return
        }
    }
}

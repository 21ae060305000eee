/// A decaying histogram of handshake completion delays (SYN to completing ACK) in flat storage.
///
/// Buckets double in width: bucket 0 holds delays under 1 ms, bucket `b` delays in [2^(b-1), 2^b) ms.
/// When the total reaches `decayAt`, every bucket halves, so the histogram follows the latest
/// thousand or so handshakes and forgets a path that changed.

enum DelayHistogram {
    static let buckets = 16
    /// The buckets, then their total.
    static let storage = buckets + 1
    static let decayAt = 1_024
    /// Fewest handshakes before a quantile is trusted.
    static let minimumSamples = 16

    /// Counts one handshake that completed `delay` nanoseconds after its SYN.
    /// - Complexity: O(1), or O(buckets) when it decays.
    @inline(__always)
    static func add(_ delay: Int64, to counts: UnsafeMutablePointer<UInt16>) {
        let milliseconds = UInt64(max(0, delay)) / 1_000_000
        let bucket = milliseconds == 0 ? 0 : min(buckets - 1, 64 - milliseconds.leadingZeroBitCount)
        counts[bucket] &+= 1
        counts[buckets] &+= 1
        guard counts[buckets] >= decayAt else { return }
        var total: UInt16 = 0
        for index in 0..<buckets {
            counts[index] /= 2
            total += counts[index]
        }
        counts[buckets] = total
    }

    /// The upper edge of the bucket holding the `quantile` of the delays, in nanoseconds; nil while
    /// fewer than `minimumSamples` handshakes were counted.
    static func upperBound(quantile: Double, of counts: UnsafeMutablePointer<UInt16>) -> Int64? {
        let total = Int(counts[buckets])
        guard total >= minimumSamples else { return nil }
        let wanted = Int((quantile * Double(total)).rounded(.up))
        var seen = 0
        for index in 0..<buckets {
            seen += Int(counts[index])
            if seen >= wanted { return (Int64(1) << Int64(index)) * 1_000_000 }
        }
        return (Int64(1) << Int64(buckets - 1)) * 1_000_000
    }
}

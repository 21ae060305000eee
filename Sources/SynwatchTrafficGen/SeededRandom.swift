import Foundation

/// A small, fast, seeded generator (SplitMix64) with its own bounded and real-valued draws: the traffic generator's,
/// and the one every seeded test uses, so a random test replays exactly from its seed.
///
/// The draws are implemented here rather than through the standard library's `random(in:using:)`, whose
/// algorithms may change between releases: the same seed must give a byte-identical capture.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// An independent stream for the `index`-th generator of a scenario.
    init(seed: UInt64, stream index: Int) {
        var mixer = SeededRandom(seed: seed ^ (0xD6E8_FEB8_6659_FD93 &* UInt64(index + 1)))
        state = mixer.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next() >> 32) }

    /// A value in `0..<bound` (multiply-high; the bias is below 2^-32 for the bounds used here).
    mutating func below(_ bound: UInt64) -> UInt64 {
        bound == 0 ? 0 : next().multipliedFullWidth(by: bound).high
    }

    /// An integer in `range`.
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(below(UInt64(range.upperBound - range.lowerBound) + 1))
    }

    /// A uniform value in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    /// An exponential draw: the gap before the next event of a Poisson process of `rate` per second, in ns.
    mutating func exponentialGap(rate: Double) -> Int64 {
        Int64((-log1p(-unit()) / rate * 1e9).rounded(.up))
    }

    /// A log-normal draw with the given median and shape.
    mutating func logNormal(median: Double, sigma: Double) -> Double {
        // Box–Muller; 1 - unit() avoids log(0).
        let normal = (-2 * log(1 - unit())).squareRoot() * cos(2 * Double.pi * unit())
        return median * exp(sigma * normal)
    }
}

/// A stateless 64-bit mix of a value: per-host properties (RTT, TTL, clock base) derived from an index
/// without storing a table.
func mix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

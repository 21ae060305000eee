#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// HyperLogLog distinct counting over registers that live in a table's flat storage.
///
/// The registers of a sketch are `1 << precision` bytes; this type only knows how to update and
/// read them, so tables can keep thousands of sketches in one allocation.

struct HyperLogLog: Sendable {
    let precision: Int
    let registerCount: Int
    let alpha: Double

    init(precision: Int) {
        precondition((4...16).contains(precision))
        self.precision = precision
        self.registerCount = 1 << precision
        switch registerCount {
        case 16: alpha = 0.673
        case 32: alpha = 0.697
        case 64: alpha = 0.709
        default: alpha = 0.7213 / (1 + 1.079 / Double(registerCount))
        }
    }

    /// Records one hashed item.
    /// - Complexity: O(1).
    @inline(__always)
    func add(_ hash: UInt64, to registers: UnsafeMutablePointer<UInt8>) {
        let index = Int(truncatingIfNeeded: hash >> UInt64(64 - precision))
        // The sentinel bit bounds the rank when the remaining bits are all zero.
        let rest = (hash << UInt64(precision)) | (1 << UInt64(precision - 1))
        let rank = UInt8(truncatingIfNeeded: rest.leadingZeroBitCount + 1)
        if registers[index] < rank { registers[index] = rank }
    }

    /// Estimates the distinct items of the union of several sketches.
    /// - Complexity: O(registers × sketches).
    func estimate(_ sketches: UnsafeMutablePointer<UInt8>...) -> Int {
        Int(cardinality(of: sketches, offset: 0).rounded())
    }

    /// The distinct items of the union of the sketches that start `offset` registers into each of `sketches`.
    func cardinality(of sketches: [UnsafeMutablePointer<UInt8>], offset: Int) -> Double {
        var sum = 0.0
        var zeros = 0
        // Indexed through one buffer: an array iterator per register was most of a debug build's report time.
        sketches.withUnsafeBufferPointer { sketches in
            for index in offset..<(offset + registerCount) {
                var register: UInt8 = 0
                for sketch in 0..<sketches.count { register = max(register, sketches[sketch][index]) }
                sum += 1.0 / Double(UInt64(1) << UInt64(register))
                if register == 0 { zeros += 1 }
            }
        }
        let m = Double(registerCount)
        let raw = alpha * m * m / sum
        // Linear counting is the better estimator while many registers are still empty.
        if raw <= 2.5 * m, zeros > 0 {
            return m * log(m / Double(zeros))
        }
        return raw
    }
}

/// Distinct counting in one 64-bit word (linear counting): close for a few dozen, saturates near 260.

enum LinearCounter {
    @inline(__always)
    static func add(_ hash: UInt64, to word: inout UInt64) {
        word |= 1 << (hash >> 58)
    }

    static func estimate(_ word: UInt64) -> Int {
        estimate(bitsSet: word.nonzeroBitCount, of: 64)
    }

    /// The linear-counting estimate for `bitsSet` of `bits` bits (saturated bitmaps count as one zero left).
    static func estimate(bitsSet: Int, of bits: Int) -> Int {
        let zeros = max(1, bits - bitsSet)
        return Int((Double(bits) * log(Double(bits) / Double(zeros))).rounded())
    }

    /// The fewest bits set whose estimate reaches `count`.
    static func bitsNeeded(for count: Int, of bits: Int) -> Int {
        (0...bits).first { estimate(bitsSet: $0, of: bits) >= count } ?? bits
    }
}

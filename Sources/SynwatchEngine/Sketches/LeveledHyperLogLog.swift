/// Distinct counting of clients that sampling by client may thin (`ClientSampling`): one HyperLogLog per client
/// level, side by side in a sketch's registers.
///
/// A client's level is the highest shift that keeps it (`ClientSampling.level(of:)`). The clients kept at shift k are
/// those of level k and up, and they are one in 2^k of all: so the clients kept at the highest shift a window was fed
/// at, counted level by level and scaled by 2^shift, estimate all the window's clients without bias, whatever lower
/// shifts the rest of the window had. (Counting each kept client as 2^k stand-ins at the shift of the moment counts
/// sources that repeat across a step up once per shift: up to 2.5 times their number.)
struct LeveledHyperLogLog: Sendable {
    static let levels = Int(ClientSampling.maximumShift) + 1
    /// The registers of one level.
    let level: HyperLogLog
    let registerCount: Int

    init(precisionPerLevel: Int) {
        level = HyperLogLog(precision: precisionPerLevel)
        registerCount = level.registerCount * Self.levels
    }

    /// Records a client hashed `hash` whose level is `clientLevel`.
    /// - Complexity: O(1).
    @inline(__always)
    func add(_ hash: UInt64, level clientLevel: UInt8, to registers: UnsafeMutablePointer<UInt8>) {
        level.add(hash, to: registers + Int(clientLevel) &* level.registerCount)
    }

    /// Estimates the distinct clients of the union of `sketches`, fed at sampling shifts up to `shift`.
    /// - Complexity: O(registers × sketches).
    func estimate(shift: UInt8, _ sketches: UnsafeMutablePointer<UInt8>...) -> Int {
        var kept = 0.0
        for clientLevel in Int(shift)..<Self.levels {
            kept += level.cardinality(of: sketches, offset: clientLevel * level.registerCount)
        }
        return Int((kept * Double(1 << Int(shift))).rounded())
    }
}

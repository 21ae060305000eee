/// Keyed 64-bit hashing of fixed-width values for the flat tables and sketches.
///
/// The multiply-fold step (as in wyhash) mixes two words per multiplication; the seed keeps an
/// attacker who can choose addresses from aiming at one bucket.

struct KeyedHasher: Sendable {
    let seed: UInt64

    init(seed: UInt64) { self.seed = seed }

    @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// An address alone: the same value as the address with port 0, so a host's victim hash serves for both.
    @inline(__always)
    func hash(_ address: IPAddress) -> UInt64 { hash(address, port: 0) }

    @inline(__always)
    func hash(_ address: IPAddress, port: UInt16) -> UInt64 {
        let mixed = KeyedHasher.fold(address.high ^ seed ^ 0xA076_1D64_78BD_642F, address.low ^ 0xE703_7ED1_A0B4_28DB)
        return KeyedHasher.fold(mixed ^ UInt64(port) ^ 0x8EBC_6AF0_9C88_C6E3, seed ^ 0x5899_65CC_7537_4CC3)
    }

    @inline(__always)
    func hash(_ a: IPAddress, _ b: IPAddress, ports: UInt32) -> (hash: UInt64, fingerprint: UInt64) {
        let first = KeyedHasher.fold(a.high ^ seed ^ 0xA076_1D64_78BD_642F, a.low ^ 0xE703_7ED1_A0B4_28DB)
        let second = KeyedHasher.fold(b.high ^ 0x8EBC_6AF0_9C88_C6E3, b.low ^ seed ^ 0x5899_65CC_7537_4CC3)
        return (
            KeyedHasher.fold(first ^ UInt64(ports) ^ 0x1D8E_4E27_C47D_124F, second ^ 0xA076_1D64_78BD_642F),
            KeyedHasher.fold(first ^ 0xE703_7ED1_A0B4_28DB, second ^ UInt64(ports) ^ 0x8EBC_6AF0_9C88_C6E3)
        )
    }
}

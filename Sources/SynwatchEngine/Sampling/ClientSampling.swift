/// Which clients of a service under a spoofed flood the engine follows: those whose address passes a keyed
/// multiplicative hash test, so the test fits a kernel socket filter (`LiveCaptureOptions.engineFilter`) and
/// a SYN, its SYN-ACK and the completing ACK are kept or dropped together.
///
/// A client is kept at shift k when the top k bits of its address mixed by a multiplier (`mixed(_:)`) are zero: one
/// client in 2^k of a random-source storm. The multiplier is odd and drawn from the engine's secret hash seed,
/// so a flood cannot pick addresses that are always kept or always dropped. Only random-source attacks are
/// thinned this way: a single-source or distributed flood would be all in or all out.
public struct ClientSampling: Sendable, Hashable {
    /// The most halvings, as for sampled handshakes: a tracked attempt's weight is a byte.
    public static let maximumShift = Detector.maximumSamplingShift
    /// Most services thinned at once; the filter grows with each.
    public static let maximumServices = 8

    public let multiplier: UInt32

    public init(multiplier: UInt32) { self.multiplier = multiplier | 1 }

    init(seed: UInt64) {
        self.init(
            multiplier: UInt32(
                truncatingIfNeeded: KeyedHasher.fold(seed ^ 0x2D35_8DCC_AA6C_78A5, 0x8BB8_4B93_962E_ACC9)
            )
        )
    }

    /// Calls `body` with a kept client's source hash and 2^shift − 1 stand-ins derived from it, so a step's
    /// few-or-many sources counter (`StepCounters.sources`) counts each kept client as the 2^shift it stands for.
    @inline(__always)
    static func forEachStandIn(of hash: UInt64, shift: UInt8, _ body: (UInt64) -> Void) {
        body(hash)
        guard shift > 0 else { return }
        for copy in 1..<(UInt64(1) << UInt64(shift)) {
            body(KeyedHasher.fold(hash ^ 0xE703_7ED1_A0B4_28DB, copy &* 0x9E37_79B9_7F4A_7C15))
        }
    }

    /// Whether a client is kept at `shift`: whether its level is at least `shift`.
    @inline(__always)
    public func keeps(_ client: IPAddress, shift: UInt8) -> Bool {
        shift == 0 || mixed(client) >> UInt32(32 - Int(shift)) == 0
    }

    /// The highest shift that keeps `client` (`maximumShift` for the clients every shift keeps): it sorts the client
    /// into the distinct-sources sketches (`LeveledHyperLogLog`).
    @inline(__always)
    func level(of client: IPAddress) -> UInt8 {
        UInt8(truncatingIfNeeded: Swift.min(mixed(client).leadingZeroBitCount, Int(Self.maximumShift)))
    }

    /// An IPv4 address times the multiplier (mod 2³²); an IPv6 address's four 32-bit words folded in turn, each
    /// added (exclusive or) to the product so far before it is multiplied, as the filter computes it. Every bit of an
    /// IPv6 address counts: a storm whose sources share their last 32 bits (random prefixes, one interface ID)
    /// would otherwise be all kept or all left.
    @inline(__always)
    func mixed(_ client: IPAddress) -> UInt32 {
        let last = UInt32(truncatingIfNeeded: client.low)
        guard !client.isIPv4 else { return last &* multiplier }
        var value = UInt32(truncatingIfNeeded: client.high >> 32) &* multiplier
        value = (value ^ UInt32(truncatingIfNeeded: client.high)) &* multiplier
        value = (value ^ UInt32(truncatingIfNeeded: client.low >> 32)) &* multiplier
        return (value ^ last) &* multiplier
    }
}

/// A service (or a whole host, port 0) whose clients are sampled at `shift`: one client in 2^shift is kept.
public struct SampledService: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    /// 0 for every port of the host.
    public var port: UInt16
    public var shift: UInt8

    public init(address: IPAddress, port: UInt16, shift: UInt8) {
        self.address = address
        self.port = port
        self.shift = shift
    }

    /// One client in this many is kept.
    public var oneIn: Int { 1 << Int(shift) }

    /// Whether a SYN to `address` and `port` is of this service, or of this host when `port` is 0.
    @inline(__always)
    public func covers(_ address: IPAddress, port: UInt16) -> Bool {
        self.address == address && (self.port == port || self.port == 0)
    }

    public var description: String { "\(address) port \(port) 1/\(oneIn)" }
}

extension [SampledService] {
    /// The shift a SYN to `address` and `port` is thinned at by client: its service's or its host's, 0 for none.
    @inline(__always)
    func shift(of address: IPAddress, port: UInt16) -> UInt8 {
        var shift: UInt8 = 0
        for service in self where service.covers(address, port: port) {
            shift = Swift.max(shift, service.shift)
        }
        return shift
    }
}

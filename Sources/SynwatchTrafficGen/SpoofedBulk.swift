/// A large spoofed SYN flood written as fast as possible, for benchmarks: SYNs only, no other traffic.
///
/// Every SYN is a full Linux SYN (74-byte Ethernet frame over IPv4), or a tool's without options (`style`), from the
/// next of `sources` distinct spoofed addresses, with a random source port, ISN, IP ID and TTL, at an even `rate` of
/// capture time.
/// The frames are patched from one template with incremental checksums, so writing costs a copy and a
/// few stores per packet.
public struct SpoofedBulk: Sendable {
    public var seed: UInt64
    public var packets: Int
    public var sources: Int
    /// SYNs per second of capture time.
    public var rate: Double
    /// The attacked service; by default port 80 of the first server.
    public var victim: Endpoint?
    /// Where the spoofed sources come from; by default the plan's spoofed prefix.
    public var sourcePrefix: NetPrefix?
    public var family: AddressFamily
    /// Capture time of the first SYN, in whole seconds since the epoch.
    public var startTime: Int64
    /// How the SYNs look: a Linux stack's by default.
    public var style: SYNStyle

    /// A flood of `packets` SYNs from `sources` distinct spoofed addresses, cycling through them.
    ///
    /// - Parameters:
    ///   - seed: the random seed.
    ///   - packets: SYNs to write.
    ///   - sources: distinct source addresses; at most the size of the source prefix.
    ///   - rate: SYNs per second of capture time.
    ///   - victim: the attacked service (nil: port 80 of the first server).
    ///   - sourcePrefix: the spoofed prefix (nil: 198.19.0.0/16 or 2001:db8:8000::/33).
    ///   - family: IPv4 or IPv6.
    ///   - startTime: capture time of the first SYN (default 2025-01-01T00:00:00Z).
    ///   - style: how the SYNs look.
    public init(
        seed: UInt64 = 1,
        packets: Int,
        sources: Int,
        rate: Double = 1_000_000,
        victim: Endpoint? = nil,
        sourcePrefix: NetPrefix? = nil,
        family: AddressFamily = .ipv4,
        startTime: Int64 = 1_735_689_600,
        style: SYNStyle = .linux
    ) {
        self.seed = seed
        self.packets = packets
        self.sources = sources
        self.rate = rate
        self.victim = victim
        self.sourcePrefix = sourcePrefix
        self.family = family
        self.startTime = startTime
        self.style = style
    }

    /// Writes the flood as a capture file.
    ///
    /// - Parameters:
    ///   - path: the capture file to create or replace.
    ///   - format: pcap or pcapng.
    ///   - precision: microsecond or nanosecond timestamps.
    ///   - linkType: the link-layer framing.
    ///   - vlanTags: 802.1Q/802.1ad tags, outermost first (Ethernet only).
    /// - Returns: the ground truth: one random-source flood.
    /// - Throws: `TrafficGenError.invalidConfiguration` when the sources do not fit the prefix, `.system` for
    ///   I/O errors.
    @discardableResult
    public func write(
        to path: String,
        format: CaptureFormat = .pcap,
        precision: TimestampPrecision = .microseconds,
        linkType: LinkLayer = .ethernet,
        vlanTags: [VLANTag] = []
    ) throws -> GroundTruth {
        let plan = AddressPlan.default(for: family)
        let victim = self.victim ?? Endpoint(plan.servers[0], 80)
        let prefix = sourcePrefix ?? plan.spoofed
        guard victim.address.family == family, prefix.family == family else {
            throw TrafficGenError.invalidConfiguration("the victim and the source prefix must be \(family.rawValue)")
        }
        guard packets > 0, rate > 0, sources > 0, UInt64(sources) <= prefix.capacity else {
            throw TrafficGenError.invalidConfiguration(
                "\(sources) distinct sources do not fit in \(prefix) (\(prefix.capacity) addresses), or the packet "
                    + "count or rate is not above 0: use a shorter source prefix or IPv6"
            )
        }
        guard vlanTags.isEmpty || linkType == .ethernet else {
            throw TrafficGenError.invalidConfiguration(
                "VLAN tags need the ethernet link type, not \(linkType.rawValue)"
            )
        }

        let encoder = FrameEncoder(linkType: linkType, vlanTags: vlanTags)
        var template = Segment(
            time: 0,
            from: prefix.base,
            0,
            to: victim.address,
            victim.port,
            sequence: 0,
            flags: .syn,
            window: 64240,
            inbound: true
        )
        switch style {
        case .bare: template.window = 512
        case .eceCwr: (template.flags, template.window) = ([.syn, .ece, .cwr], 65535)
        case .linux:
            template.options = .linux(mss: family == .ipv4 ? 1460 : 1440, windowScale: 7, tsval: 0, tsecr: 0)
        }
        // Only a Linux SYN carries a time stamp, written per packet.
        let stamped = style == .linux
        template.ttl = 0
        let length = encoder.frameLength(template)
        let ip = encoder.linkHeaderLength()
        let tcp = ip + encoder.ipHeaderLength(template)
        var bytes = [UInt8](repeating: 0, count: length)
        bytes.withUnsafeMutableBytes { encoder.encode(template, into: $0.baseAddress!) }

        // Checksums of the template with every per-packet field zeroed; each packet adds its own fields.
        let sourceOffset = ip + (family == .ipv4 ? 12 : 8)
        let sourceLength = family == .ipv4 ? 4 : 16
        for offset in sourceOffset..<(sourceOffset + sourceLength) { bytes[offset] = 0 }
        for offset in [tcp + 16, tcp + 17] { bytes[offset] = 0 }
        if family == .ipv4 { (bytes[ip + 10], bytes[ip + 11]) = (0, 0) }
        let ipBase = bytes.withUnsafeBytes { internetSum($0.baseAddress! + ip, count: 20) }
        let tcpBase = bytes.withUnsafeBytes { buffer in
            internetSum(buffer.baseAddress! + tcp, count: length - tcp, adding: internetSum(of: victim.address))
                &+ 6 &+ UInt64(length - tcp)
        }

        let writer = try CaptureWriter(path: path, format: format, precision: precision, linkType: linkType)
        var rng = SeededRandom(seed: seed)
        let salt = rng.next()
        let origin = startTime * 1_000_000_000
        let period = 1e9 / rate
        var sourceIndex = 0
        try bytes.withUnsafeBytes { template in
            for packet in 0..<packets {
                let time = origin + Int64(Double(packet) * period)
                let source = prefix.permutedAddress(UInt64(sourceIndex) ^ salt)
                sourceIndex = sourceIndex + 1 == sources ? 0 : sourceIndex + 1
                let random = rng.next()
                let more = rng.next()
                let port = UInt16(1024 + ((random & 0xFFFF) * 64512) >> 16)
                let identification = UInt16(truncatingIfNeeded: random >> 16)
                let sequence = UInt32(truncatingIfNeeded: random >> 32)
                let ttl = UInt8(40 + (more & 0xFF) % 25)
                let tsval =
                    stamped ? UInt32(truncatingIfNeeded: mix64(source.low) &+ UInt64(time / 1_000_000)) : 0

                let frame = try writer.reserveRecord(at: time, length: length)
                frame.copyMemory(from: template.baseAddress!, byteCount: length)
                let addressSum = internetSum(of: source)
                if family == .ipv4 {
                    frame.storeBE32(source.ipv4, at: sourceOffset)
                    frame.storeBE16(identification, at: ip + 4)
                    frame.storeByte(ttl, at: ip + 8)
                    let sum = ipBase &+ addressSum &+ UInt64(identification) &+ UInt64(ttl) << 8
                    frame.storeBE16(checksum(folding: sum), at: ip + 10)
                } else {
                    frame.storeBE64(source.high, at: sourceOffset)
                    frame.storeBE64(source.low, at: sourceOffset + 8)
                    frame.storeByte(ttl, at: ip + 7)
                }
                frame.storeBE16(port, at: tcp)
                frame.storeBE32(sequence, at: tcp + 4)
                if stamped { frame.storeBE32(tsval, at: tcp + 28) }
                let tcpSum =
                    tcpBase &+ addressSum &+ UInt64(port) &+ UInt64(sequence >> 16) &+ UInt64(sequence & 0xFFFF)
                    &+ UInt64(tsval >> 16) &+ UInt64(tsval & 0xFFFF)
                frame.storeBE16(checksum(folding: tcpSum), at: tcp + 16)
            }
        }
        try writer.close()

        var truth = GroundTruth(seed: seed, family: family)
        truth.packets = packets
        truth.firstPacket = seconds(origin)
        truth.lastPacket = seconds(origin + Int64(Double(packets - 1) * period))
        truth.floods = [
            FloodTruth(
                victim: victim.address,
                port: victim.port,
                kind: .randomSource,
                start: truth.firstPacket!,
                end: truth.lastPacket!,
                synPerSecond: rate,
                attempts: packets,
                synPackets: packets,
                distinctSources: min(sources, packets),
                style: style,
                pulse: nil
            )
        ]
        return truth
    }
}

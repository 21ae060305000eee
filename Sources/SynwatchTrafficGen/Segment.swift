/// TCP header flags, in their bit positions of byte 13 of the header.
struct TCPFlags: OptionSet, Hashable {
    let rawValue: UInt8

    static let fin = TCPFlags(rawValue: 0x01)
    static let syn = TCPFlags(rawValue: 0x02)
    static let rst = TCPFlags(rawValue: 0x04)
    static let psh = TCPFlags(rawValue: 0x08)
    static let ack = TCPFlags(rawValue: 0x10)
    static let ece = TCPFlags(rawValue: 0x40)
    static let cwr = TCPFlags(rawValue: 0x80)

    static let synAck: TCPFlags = [.syn, .ack]
    static let rstAck: TCPFlags = [.rst, .ack]
    static let finAck: TCPFlags = [.fin, .ack]
    static let pshAck: TCPFlags = [.psh, .ack]
}

/// The TCP options of a segment, laid out in the order real stacks use.
enum TCPOptions {
    case none
    /// MSS only: what Linux answers to a SYN without options, and what nmap's SYN scan sends.
    case mss(UInt16)
    /// Linux: MSS, SACK permitted, timestamps, NOP, window scale (20 bytes).
    case linux(mss: UInt16, windowScale: UInt8, tsval: UInt32, tsecr: UInt32)
    /// Windows: MSS, NOP, window scale, NOP, NOP, SACK permitted (12 bytes).
    case windows(mss: UInt16, windowScale: UInt8)
    /// Timestamps on an established connection: NOP, NOP, timestamps (12 bytes).
    case timestamps(tsval: UInt32, tsecr: UInt32)

    var length: Int {
        switch self {
        case .none: 0
        case .mss: 4
        case .linux: 20
        case .windows, .timestamps: 12
        }
    }

    /// Stores the options at `pointer`; returns nothing because `length` is known beforehand.
    func store(at pointer: UnsafeMutableRawPointer) {
        switch self {
        case .none:
            break
        case .mss(let mss):
            pointer.storeBE16(0x0204, at: 0)
            pointer.storeBE16(mss, at: 2)
        case .linux(let mss, let scale, let tsval, let tsecr):
            pointer.storeBE16(0x0204, at: 0)
            pointer.storeBE16(mss, at: 2)
            pointer.storeBE16(0x0402, at: 4)  // SACK permitted
            pointer.storeBE16(0x080A, at: 6)  // timestamps
            pointer.storeBE32(tsval, at: 8)
            pointer.storeBE32(tsecr, at: 12)
            pointer.storeByte(1, at: 16)  // NOP
            pointer.storeBE16(0x0303, at: 17)  // window scale
            pointer.storeByte(scale, at: 19)
        case .windows(let mss, let scale):
            pointer.storeBE16(0x0204, at: 0)
            pointer.storeBE16(mss, at: 2)
            pointer.storeByte(1, at: 4)
            pointer.storeBE16(0x0303, at: 5)
            pointer.storeByte(scale, at: 7)
            pointer.storeBE32(0x0101_0402, at: 8)  // NOP, NOP, SACK permitted
        case .timestamps(let tsval, let tsecr):
            pointer.storeBE32(0x0101_080A, at: 0)
            pointer.storeBE32(tsval, at: 4)
            pointer.storeBE32(tsecr, at: 8)
        }
    }
}

/// Uncommon IP headers a segment carries, so decoders meet them in realistic traffic.
struct ExtraHeaders: OptionSet {
    let rawValue: UInt8

    /// IPv4 Router Alert option (4 bytes, IHL 6).
    static let ipv4Options = ExtraHeaders(rawValue: 1)
    /// IPv6 hop-by-hop options header (8 bytes, PadN).
    static let hopByHop = ExtraHeaders(rawValue: 2)
    /// IPv6 destination options header (8 bytes, PadN), placed before the routing header.
    static let destinationOptions = ExtraHeaders(rawValue: 4)
    /// IPv6 segment routing header with no segments left (24 bytes), which receivers process as a no-op.
    static let routing = ExtraHeaders(rawValue: 8)

    static let ipv6Chain: ExtraHeaders = [.hopByHop, .destinationOptions, .routing]
}

/// Which part of a fragmented TCP segment an IP packet carries.
enum FragmentPart {
    case whole
    /// The first fragment: offset 0, more fragments, the TCP header and `tcpBytes` bytes of the segment.
    case first(tcpBytes: Int)
    /// A later fragment: the segment's bytes from `tcpOffset` on (a multiple of 8), no TCP header.
    case rest(tcpOffset: Int)
}

/// One TCP segment to be written at a capture time: everything needed to encode its frame.
///
/// A plain value of fixed size, so the schedule holds millions of them without per-packet allocation.
struct Segment {
    /// Capture time, nanoseconds since the epoch.
    var time: Int64
    var source: NetAddress
    var destination: NetAddress
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: TCPFlags
    var window: UInt16
    var options: TCPOptions = .none
    var payloadLength: Int = 0
    /// Offset in the sender's byte stream of the first payload byte (selects the payload text).
    var payloadOffset: UInt32 = 0
    var ttl: UInt8 = 64
    /// IPv4 identification (low 16 bits), IPv6 fragment identification.
    var ipIdentification: UInt32 = 0
    var dontFragment = true
    /// Whether the packet travels towards our network (kept in incoming-only captures).
    var inbound: Bool
    var extras: ExtraHeaders = []
    var fragment: FragmentPart = .whole

    init(
        time: Int64,
        from source: NetAddress,
        _ sourcePort: UInt16,
        to destination: NetAddress,
        _ destinationPort: UInt16,
        sequence: UInt32,
        acknowledgment: UInt32 = 0,
        flags: TCPFlags,
        window: UInt16,
        inbound: Bool
    ) {
        self.time = time
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.inbound = inbound
    }

    var tcpLength: Int { 20 + options.length + payloadLength }
}

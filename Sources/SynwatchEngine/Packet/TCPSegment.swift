/// TCP header flags (the low byte of the flags field).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// The fields of one TCP segment the engine needs, decoded from the captured bytes.
public struct TCPSegment: Hashable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgement: UInt32
    public var flags: TCPFlags
    /// Payload bytes according to the IP length fields (not limited by the snap length).
    public var payloadLength: Int
    /// Whether the header carries options (a data offset above five words). Every TCP stack puts at least its MSS in
    /// a SYN; a tool that writes its own SYNs often puts nothing.
    public var hasOptions: Bool

    public init(
        source: IPAddress,
        destination: IPAddress,
        sourcePort: UInt16,
        destinationPort: UInt16,
        sequence: UInt32,
        acknowledgement: UInt32,
        flags: TCPFlags,
        payloadLength: Int,
        hasOptions: Bool = true
    ) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgement = acknowledgement
        self.flags = flags
        self.payloadLength = payloadLength
        self.hasOptions = hasOptions
    }

    /// All fields zero: a value to decode into.
    public static let empty = TCPSegment(
        source: .zero,
        destination: .zero,
        sourcePort: 0,
        destinationPort: 0,
        sequence: 0,
        acknowledgement: 0,
        flags: [],
        payloadLength: 0
    )
}

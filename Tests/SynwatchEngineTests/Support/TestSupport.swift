import SynwatchTrafficGen

@testable import SynwatchEngine

/// The traffic generator's seeded random, so every random test replays exactly from its seed. Named here alone: the
/// traffic generator's other public types would meet the engine's in every test file that imported it.
typealias SeededRandom = SynwatchTrafficGen.SeededRandom

/// Builds frames field by field in network order, so fixtures spell out every byte they contain.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(128) }

    mutating func u8(_ values: UInt8...) { bytes.append(contentsOf: values) }

    mutating func u16(_ values: UInt16...) {
        for value in values { bytes.append(contentsOf: [UInt8(value >> 8), UInt8(value & 0xFF)]) }
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16), UInt16(value & 0xFFFF))
    }

    /// A 32-bit value in little-endian order: a DLT_NULL family written by a little-endian host.
    mutating func le32(_ value: UInt32) {
        u8(UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24))
    }

    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    mutating func append(_ values: [UInt8]) { bytes.append(contentsOf: values) }
}

/// One TCP segment the stream tests send, as raw IPv4 or IPv6 depending on its addresses.
struct Packet: Hashable {
    var source: IPAddress
    var destination: IPAddress
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgement: UInt32 = 0
    var flags: TCPFlags
    /// Payload bytes the IP length declares; like a capture cut by its snap length, none are written.
    var payload: UInt16 = 0
    /// A SYN or SYN-ACK without the MSS option every stack sends: written by a tool, as hping3's are.
    var optionless = false

    /// Calls `body` with the packet as a raw IP datagram (LINKTYPE_RAW) with a 20-byte TCP header, 24 with an MSS
    /// option for a SYN or SYN-ACK not `optionless`, written in place: the stream tests send hundreds of thousands.
    func withRawIPBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let isIPv4 = source.isIPv4 && destination.isIPv4
        let tcpLength = flags.contains(.syn) && !optionless ? 24 : 20
        let length = (isIPv4 ? 20 : 40) + tcpLength
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 8) { buffer in
            func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
                buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Value.self)
            }
            if isIPv4 {
                put(0x4500_0000 | UInt32(length + Int(payload)), at: 0)
                put(0x0000_4000 as UInt32, at: 4)
                put(0x4006_0000 as UInt32, at: 8)
                put(UInt32(truncatingIfNeeded: source.low), at: 12)
                put(UInt32(truncatingIfNeeded: destination.low), at: 16)
            } else {
                put(0x6000_0000 as UInt32, at: 0)
                put(UInt32(tcpLength + Int(payload)) << 16 | 0x0640, at: 4)
                put(source.high, at: 8)
                put(source.low, at: 16)
                put(destination.high, at: 24)
                put(destination.low, at: 32)
            }
            let tcp = length - tcpLength
            put(sourcePort, at: tcp)
            put(destinationPort, at: tcp + 2)
            put(sequence, at: tcp + 4)
            put(acknowledgement, at: tcp + 8)
            put(UInt16(tcpLength / 4) << 12 | UInt16(flags.rawValue), at: tcp + 12)
            put(0xFFFF_0000 as UInt32, at: tcp + 14)
            put(0 as UInt16, at: tcp + 18)
            if tcpLength == 24 { put(0x0204_05B4 as UInt32, at: tcp + 20) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// The server's answer to this SYN: a SYN-ACK with server ISN `isn`.
    func synAck(isn: UInt32) -> Packet {
        Packet(
            source: destination,
            destination: source,
            sourcePort: destinationPort,
            destinationPort: sourcePort,
            sequence: isn,
            acknowledgement: sequence &+ 1,
            flags: [.syn, .ack]
        )
    }

    /// The client's ACK completing this SYN after a SYN-ACK with server ISN `serverISN`.
    func completingAck(serverISN: UInt32) -> Packet {
        Packet(
            source: source,
            destination: destination,
            sourcePort: sourcePort,
            destinationPort: destinationPort,
            sequence: sequence &+ 1,
            acknowledgement: serverISN &+ 1,
            flags: .ack
        )
    }

    /// The client's RST after this SYN, as its kernel sends for a SYN-ACK it never asked for (a scanner's raw SYNs, a
    /// flood from a real host).
    var reset: Packet {
        var reset = self
        reset.sequence = sequence &+ 1
        reset.flags = .rst
        return reset
    }

    /// The server's RST/ACK refusing this SYN (a closed port).
    var refusal: Packet {
        Packet(
            source: destination,
            destination: source,
            sourcePort: destinationPort,
            destinationPort: sourcePort,
            sequence: 0,
            acknowledgement: sequence &+ 1,
            flags: [.rst, .ack]
        )
    }
}

extension Engine {
    /// Builds the engine the tests use, failing loudly on a configuration the engine rejects.
    static func make(_ configure: (inout EngineConfiguration) -> Void = { _ in }) -> Engine {
        var configuration = EngineConfiguration()
        configure(&configuration)
        do {
            return try Engine(configuration: configuration)
        } catch {
            fatalError("test configuration rejected: \(error)")
        }
    }

    /// Feeds one packet captured at `time` nanoseconds since the epoch.
    func feed(_ packet: Packet, at time: Int64) {
        packet.withRawIPBytes { bytes in
            process(Frame(time: Timestamp(nanoseconds: time), linkType: .raw, bytes: bytes, wireLength: bytes.count))
        }
    }
}

/// IPv4 address from four literal octets.
func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> IPAddress {
    IPAddress(ipv4: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
}

/// An address in 2001:db8::/32 whose last 64 bits are `low`.
func v6(_ low: UInt64) -> IPAddress { IPAddress(high: 0x2001_0DB8_0000_0000, low: low) }

/// Nanoseconds in a second and a millisecond, for readable scenario times.
let second: Int64 = 1_000_000_000
let millisecond: Int64 = 1_000_000

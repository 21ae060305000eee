import Foundation

/// One record of a capture file, as the tests read it back.
struct CapturedFrame {
    /// Capture time in nanoseconds since the epoch.
    var time: Int64
    var bytes: [UInt8]
}

/// A capture file read by an implementation that shares no code with the writer under test.
struct Capture {
    var linkType: UInt32
    /// Units per second of the stored timestamps: 1e6 or 1e9.
    var resolution: Int64
    var frames: [CapturedFrame]

    enum ReadError: Error { case truncated, badMagic(UInt32), unknownBlock(UInt32) }

    init(path: String) throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func le32(_ offset: Int) throws -> UInt32 {
            guard offset + 4 <= data.count else { throw ReadError.truncated }
            return UInt32(data[offset]) | UInt32(data[offset + 1]) << 8 | UInt32(data[offset + 2]) << 16
                | UInt32(data[offset + 3]) << 24
        }
        frames = []
        let magic = try le32(0)
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D:
            resolution = magic == 0xA1B2_C3D4 ? 1_000_000 : 1_000_000_000
            linkType = try le32(20)
            var offset = 24
            while offset < data.count {
                let seconds = Int64(try le32(offset))
                let fraction = Int64(try le32(offset + 4))
                let captured = Int(try le32(offset + 8))
                guard offset + 16 + captured <= data.count else { throw ReadError.truncated }
                frames.append(
                    CapturedFrame(
                        time: seconds * 1_000_000_000 + fraction * (1_000_000_000 / resolution),
                        bytes: Array(data[(offset + 16)..<(offset + 16 + captured)])
                    )
                )
                offset += 16 + captured
            }
        case 0x0A0D_0D0A:
            linkType = 0
            resolution = 1_000_000
            var offset = 0
            while offset < data.count {
                let type = try le32(offset)
                let length = Int(try le32(offset + 4))
                guard length >= 12, offset + length <= data.count, try le32(offset + length - 4) == length else {
                    throw ReadError.truncated
                }
                switch type {
                case 0x0A0D_0D0A:
                    guard try le32(offset + 8) == 0x1A2B_3C4D else { throw ReadError.badMagic(try le32(offset + 8)) }
                case 1:
                    linkType = try le32(offset + 8) & 0xFFFF
                    var option = offset + 16
                    while option + 4 <= offset + length - 4 {
                        let code = Int(data[option]) | Int(data[option + 1]) << 8
                        let size = Int(data[option + 2]) | Int(data[option + 3]) << 8
                        if code == 0 { break }
                        if code == 9 {
                            var units: Int64 = 1
                            for _ in 0..<data[option + 4] { units *= 10 }
                            resolution = units
                        }
                        option += 4 + (size + 3) & ~3
                    }
                case 6:
                    let stamp = Int64(try le32(offset + 12)) << 32 | Int64(try le32(offset + 16))
                    let captured = Int(try le32(offset + 20))
                    let start = offset + 28
                    frames.append(
                        CapturedFrame(
                            time: stamp / resolution * 1_000_000_000 + stamp % resolution
                                * (1_000_000_000 / resolution),
                            bytes: Array(data[start..<(start + captured)])
                        )
                    )
                default:
                    throw ReadError.unknownBlock(type)
                }
                offset += length
            }
        default:
            throw ReadError.badMagic(magic)
        }
    }
}

/// The TCP header fields of a decoded packet.
struct TCPHeader {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: UInt8
    var window: UInt16
    var headerLength: Int
    var payloadLength: Int

    var isSYN: Bool { flags & 0x12 == 0x02 }
    var isSYNACK: Bool { flags & 0x12 == 0x12 }
    var isRST: Bool { flags & 0x04 != 0 }
    var isFIN: Bool { flags & 0x01 != 0 }
    var isACK: Bool { flags & 0x10 != 0 }
}

/// A frame decoded down to TCP, with its checksums verified by `referenceChecksum`.
struct DecodedPacket {
    var time: Int64
    var vlanIDs: [UInt16] = []
    var isIPv6: Bool
    var source: [UInt8]
    var destination: [UInt8]
    var ipHeaderChecksumOK = true
    /// Fragment offset in bytes, the more-fragments flag and the identification.
    var fragmentOffset = 0
    var moreFragments = false
    var identification: UInt32 = 0
    var isFragment: Bool { fragmentOffset != 0 || moreFragments }
    var extensionHeaders: [UInt8] = []
    var hasIPv4Options = false
    /// The transport bytes carried (the whole TCP segment, or a fragment's share of it).
    var transport: [UInt8]
    /// Nil for a non-first fragment, which carries no TCP header.
    var tcp: TCPHeader?
    /// Nil for fragments: their checksum covers the reassembled segment.
    var tcpChecksumOK: Bool?

    var sourceText: String { addressText(source) }
    var destinationText: String { addressText(destination) }
}

/// RFC 1071 checksum over `bytes`, written plainly (a byte pair at a time) as an oracle for the writer.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index < bytes.count {
        let high = UInt32(bytes[index])
        let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
        sum += high << 8 | low
        index += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// Whether a TCP segment's checksum is right for its addresses.
func tcpChecksumIsValid(_ segment: [UInt8], source: [UInt8], destination: [UInt8]) -> Bool {
    var pseudo = source + destination
    if source.count == 4 {
        pseudo += [0, 6, UInt8(segment.count >> 8), UInt8(segment.count & 0xFF)]
    } else {
        pseudo += [0, 0, UInt8(segment.count >> 8), UInt8(segment.count & 0xFF), 0, 0, 0, 6]
    }
    return referenceChecksum(pseudo + segment) == 0
}

func addressText(_ bytes: [UInt8]) -> String {
    if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
    return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        .joined(separator: ":")
}

enum DecodeError: Error { case unknownLinkType(UInt32), unknownProtocol(Int), truncated }

/// Decodes a frame of `linkType` down to TCP.
func decode(_ frame: CapturedFrame, linkType: UInt32) throws -> DecodedPacket {
    let bytes = frame.bytes
    func be16(_ offset: Int) -> Int { Int(bytes[offset]) << 8 | Int(bytes[offset + 1]) }
    func be32(_ offset: Int) -> UInt32 { UInt32(be16(offset)) << 16 | UInt32(be16(offset + 2)) }
    var offset: Int
    var etherType: Int
    var vlans: [UInt16] = []
    switch linkType {
    case 1:
        offset = 12
        etherType = be16(offset)
        while etherType == 0x8100 || etherType == 0x88A8 {
            vlans.append(UInt16(be16(offset + 2) & 0x0FFF))
            offset += 4
            etherType = be16(offset)
        }
        offset += 2
    case 113:
        etherType = be16(14)
        offset = 16
    case 276:
        etherType = be16(0)
        offset = 20
    case 101:
        etherType = bytes[0] >> 4 == 6 ? 0x86DD : 0x0800
        offset = 0
    case 0:
        let family = Int(bytes[0]) | Int(bytes[1]) << 8
        etherType = family == 2 ? 0x0800 : [24, 28, 30].contains(family) ? 0x86DD : -1
        offset = 4
    default:
        throw DecodeError.unknownLinkType(linkType)
    }
    var packet: DecodedPacket
    if etherType == 0x0800 {
        let headerLength = Int(bytes[offset] & 0x0F) * 4
        let totalLength = be16(offset + 2)
        guard offset + totalLength <= bytes.count else { throw DecodeError.truncated }
        let fragment = be16(offset + 6)
        packet = DecodedPacket(
            time: frame.time,
            isIPv6: false,
            source: Array(bytes[(offset + 12)..<(offset + 16)]),
            destination: Array(bytes[(offset + 16)..<(offset + 20)]),
            transport: Array(bytes[(offset + headerLength)..<(offset + totalLength)])
        )
        packet.ipHeaderChecksumOK = referenceChecksum(Array(bytes[offset..<(offset + headerLength)])) == 0
        packet.fragmentOffset = (fragment & 0x1FFF) * 8
        packet.moreFragments = fragment & 0x2000 != 0
        packet.identification = UInt32(be16(offset + 4))
        packet.hasIPv4Options = headerLength > 20
        guard bytes[offset + 9] == 6 else { throw DecodeError.unknownProtocol(Int(bytes[offset + 9])) }
    } else if etherType == 0x86DD {
        let payloadLength = be16(offset + 4)
        guard offset + 40 + payloadLength <= bytes.count else { throw DecodeError.truncated }
        var next = Int(bytes[offset + 6])
        var position = offset + 40
        var chain: [UInt8] = []
        var fragmentOffset = 0
        var more = false
        var identification: UInt32 = 0
        while [0, 43, 44, 60].contains(next) {
            chain.append(UInt8(next))
            let length = next == 44 ? 8 : (Int(bytes[position + 1]) + 1) * 8
            if next == 44 {
                fragmentOffset = be16(position + 2) & 0xFFF8
                more = be16(position + 2) & 1 != 0
                identification = be32(position + 4)
            }
            next = Int(bytes[position])
            position += length
        }
        guard next == 6 else { throw DecodeError.unknownProtocol(next) }
        packet = DecodedPacket(
            time: frame.time,
            isIPv6: true,
            source: Array(bytes[(offset + 8)..<(offset + 24)]),
            destination: Array(bytes[(offset + 24)..<(offset + 40)]),
            transport: Array(bytes[position..<(offset + 40 + payloadLength)])
        )
        packet.extensionHeaders = chain
        packet.fragmentOffset = fragmentOffset
        packet.moreFragments = more
        packet.identification = identification
    } else {
        throw DecodeError.unknownProtocol(etherType)
    }
    packet.vlanIDs = vlans
    if packet.fragmentOffset == 0 {
        let tcp = packet.transport
        let headerLength = Int(tcp[12] >> 4) * 4
        packet.tcp = TCPHeader(
            sourcePort: UInt16(tcp[0]) << 8 | UInt16(tcp[1]),
            destinationPort: UInt16(tcp[2]) << 8 | UInt16(tcp[3]),
            sequence: UInt32(tcp[4]) << 24 | UInt32(tcp[5]) << 16 | UInt32(tcp[6]) << 8 | UInt32(tcp[7]),
            acknowledgment: UInt32(tcp[8]) << 24 | UInt32(tcp[9]) << 16 | UInt32(tcp[10]) << 8 | UInt32(tcp[11]),
            flags: tcp[13],
            window: UInt16(tcp[14]) << 8 | UInt16(tcp[15]),
            headerLength: headerLength,
            payloadLength: tcp.count - headerLength
        )
        if !packet.moreFragments {
            packet.tcpChecksumOK = tcpChecksumIsValid(tcp, source: packet.source, destination: packet.destination)
        }
    }
    return packet
}

/// Reads and decodes every frame of a capture file.
func decodeCapture(_ path: String) throws -> (capture: Capture, packets: [DecodedPacket]) {
    let capture = try Capture(path: path)
    return (capture, try capture.frames.map { try decode($0, linkType: capture.linkType) })
}

/// Why a frame yielded no TCP segment. Problems are malformed or truncated frames; the other
/// reasons are ordinary traffic the engine does not look at.
public enum DecodeOutcome: UInt8, CaseIterable, Sendable {
    case tcp
    // Ordinary traffic the engine skips.
    case notIP
    case notTCP
    case laterFragment
    // Problems: counted per reason and reported, never fatal.
    case truncatedLinkHeader
    /// A link header field no sender writes: an NFLOG TLV shorter than its own header, a PPPoE session header
    /// of another version or code.
    case badLinkHeader
    case truncatedIPHeader
    case badIPVersion
    case badIPHeaderLength
    case ipv6ExtensionChainTooLong
    case truncatedTCPHeader
    case badTCPHeaderLength

    /// Whether the frame was malformed (as opposed to valid traffic that is not TCP).
    public var isProblem: Bool { rawValue >= DecodeOutcome.truncatedLinkHeader.rawValue }

    /// The name used in reports and JSON.
    public var name: String {
        switch self {
        case .tcp: "tcp"
        case .notIP: "not_ip"
        case .notTCP: "not_tcp"
        case .laterFragment: "later_fragment"
        case .truncatedLinkHeader: "truncated_link_header"
        case .badLinkHeader: "bad_link_header"
        case .truncatedIPHeader: "truncated_ip_header"
        case .badIPVersion: "bad_ip_version"
        case .badIPHeaderLength: "bad_ip_header_length"
        case .ipv6ExtensionChainTooLong: "ipv6_extension_chain_too_long"
        case .truncatedTCPHeader: "truncated_tcp_header"
        case .badTCPHeaderLength: "bad_tcp_header_length"
        }
    }
}

/// Decodes link, IP and TCP headers from captured bytes in place: no copies, no allocation.
public enum PacketDecoder {
    /// The most VLAN tags read before giving up on a frame (802.1ad QinQ uses two).
    static let maximumVLANTags = 4
    /// Labels of an MPLS stack read before giving up (provider networks use two or three).
    static let maximumMPLSLabels = 8
    /// The most IPv6 extension headers followed before the frame counts as malformed.
    static let maximumExtensionHeaders = 8

    /// Decodes one frame.
    /// - Parameters:
    ///   - bytes: the captured bytes, starting at the link header.
    ///   - linkType: how the frame is framed.
    ///   - segment: receives the TCP fields when the outcome is `.tcp`.
    /// - Returns: `.tcp`, or why there is no TCP segment.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer,
        linkType: LinkType,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        var offset = 0
        var etherType: UInt16
        switch linkType {
        case .ethernet:
            guard bytes.count >= 14 else { return .truncatedLinkHeader }
            etherType = bytes.u16(12)
            offset = 14
        case .linuxCooked:
            guard bytes.count >= 16 else { return .truncatedLinkHeader }
            etherType = bytes.u16(14)
            offset = 16
        case .linuxCooked2:
            guard bytes.count >= 20 else { return .truncatedLinkHeader }
            etherType = bytes.u16(0)
            offset = 20
        case .bsdLoopback, .openBSDLoopback:
            guard bytes.count >= 4 else { return .truncatedLinkHeader }
            // DLT_NULL stores the family in the capturing host's order; accept either.
            var family = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            if family > 0xFFFF { family = family.byteSwapped }
            switch family {
            case 2: etherType = 0x0800
            case 10, 24, 28, 30: etherType = 0x86DD
            default: return .notIP
            }
            offset = 4
        case .raw, .rawIP:
            guard bytes.count >= 1 else { return .truncatedIPHeader }
            etherType = bytes[0] >> 4 == 6 ? 0x86DD : 0x0800
        case .ipv4:
            etherType = 0x0800
        case .ipv6:
            etherType = 0x86DD
        case .ppp:
            // Address and control (ff 03) may be left out (RFC 1662 address-and-control-field compression).
            if bytes.count >= 1 && bytes[0] == 0xFF {
                guard bytes.count >= 2 else { return .truncatedLinkHeader }
                if bytes[1] == 0x03 { offset = 2 }
            }
            guard let type = pppEtherType(bytes, at: &offset) else { return .truncatedLinkHeader }
            etherType = type
        case .nflog:
            return decodeNFLOG(bytes, into: &segment)
        }
        return decodeEtherPayload(bytes, etherType: etherType, at: offset, tunnels: 0, into: &segment)
    }

    /// An Ethernet frame inside a tunnel, from its destination address on.
    static func decodeEthernet(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        guard bytes.count >= start + 14 else { return .truncatedLinkHeader }
        return decodeEtherPayload(
            bytes,
            etherType: bytes.u16(start + 12),
            at: start + 14,
            tunnels: tunnels,
            into: &segment
        )
    }

    /// What follows a link header that named `etherType`: VLAN tags, PPPoE or MPLS, then IP.
    /// - Parameter tunnels: the tunnels this frame is already inside.
    static func decodeEtherPayload(
        _ bytes: UnsafeRawBufferPointer,
        etherType: UInt16,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        var etherType = etherType
        var offset = start
        // 802.1Q, 802.1ad and the old QinQ 0x9100: a 4-byte tag whose last two bytes are the next type.
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
            tags += 1
            guard tags <= maximumVLANTags else { return .notIP }
            guard bytes.count >= offset + 4 else { return .truncatedLinkHeader }
            etherType = bytes.u16(offset + 2)
            offset += 4
        }
        if etherType == 0x8864 {
            // PPPoE session (RFC 2516): version and type 0x11, code 0, session id, length, then the PPP protocol.
            guard bytes.count >= offset + 6 else { return .truncatedLinkHeader }
            guard bytes[offset] == 0x11, bytes[offset + 1] == 0 else { return .badLinkHeader }
            offset += 6
            guard let type = pppEtherType(bytes, at: &offset) else { return .truncatedLinkHeader }
            etherType = type
        } else if etherType == 0x8847 || etherType == 0x8848 {
            // MPLS (RFC 3032), as a provider's links carry it: 4-byte labels up to the one marked bottom of stack,
            // then a payload that names no type; IP is told by its version.
            var labels = 0
            repeat {
                labels += 1
                guard labels <= maximumMPLSLabels else { return .notIP }
                guard bytes.count >= offset + 4 else { return .truncatedLinkHeader }
                offset += 4
            } while bytes[offset - 2] & 1 == 0
            guard bytes.count >= offset + 1 else { return .truncatedIPHeader }
            switch bytes[offset] >> 4 {
            case 4: etherType = 0x0800
            case 6: etherType = 0x86DD
            default: return .notIP
            }
        }
        return decodeIP(bytes, etherType: etherType, at: offset, tunnels: tunnels, into: &segment)
    }

    static func decodeIP(
        _ bytes: UnsafeRawBufferPointer,
        etherType: UInt16,
        at offset: Int,
        tunnels: Int = 0,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        switch etherType {
        case 0x0800: decodeIPv4(bytes, at: offset, tunnels: tunnels, into: &segment)
        case 0x86DD: decodeIPv6(bytes, at: offset, tunnels: tunnels, into: &segment)
        default: .notIP
        }
    }

    /// Reads a PPP protocol field of 1 or 2 bytes (a 1-byte field is odd: RFC 1661 protocol-field compression).
    /// - Returns: the EtherType of the IP version it carries, 0 for anything else, `nil` when cut short.
    static func pppEtherType(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> UInt16? {
        guard bytes.count >= offset + 1 else { return nil }
        let proto: UInt16
        if bytes[offset] & 1 == 1 {
            proto = UInt16(bytes[offset])
            offset += 1
        } else {
            guard bytes.count >= offset + 2 else { return nil }
            proto = bytes.u16(offset)
            offset += 2
        }
        switch proto {
        case 0x0021: return 0x0800
        case 0x0057: return 0x86DD
        default: return 0
        }
    }

    /// NFLOG: family, version, resource id, then TLVs (length including its 4-byte header, type) padded to 4
    /// bytes; the payload TLV (type 9) holds the IP packet.
    static func decodeNFLOG(_ bytes: UnsafeRawBufferPointer, into segment: inout TCPSegment) -> DecodeOutcome {
        guard bytes.count >= 4 else { return .truncatedLinkHeader }
        let etherType: UInt16
        switch bytes[0] {
        case 2: etherType = 0x0800
        case 10: etherType = 0x86DD
        default: return .notIP
        }
        var offset = 4
        while true {
            guard bytes.count >= offset + 4 else { return .truncatedLinkHeader }
            // Length and type are in the capturing host's order (only libpcap swaps them when it reads a file).
            // Types are below 256, so a zero first and non-zero second type byte means big-endian.
            let bigEndian = bytes[offset + 2] == 0 && bytes[offset + 3] != 0
            var length = bytes.u16(offset)
            var type = bytes.u16(offset + 2)
            if !bigEndian {
                length = length.byteSwapped
                type = type.byteSwapped
            }
            guard length >= 4 else { return .badLinkHeader }
            if type == 9 {
                // The TLV bounds the packet; a snap length may cut it shorter.
                let end = min(offset + Int(length), bytes.count)
                let packet = UnsafeRawBufferPointer(rebasing: bytes[..<end])
                return decodeIP(packet, etherType: etherType, at: offset + 4, into: &segment)
            }
            offset += (Int(length) + 3) & ~3
        }
    }

    static func decodeIPv4(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    )
        -> DecodeOutcome
    {
        guard bytes.count >= start + 20 else { return .truncatedIPHeader }
        let versionAndLength = bytes[start]
        guard versionAndLength >> 4 == 4 else { return .badIPVersion }
        let headerLength = Int(versionAndLength & 0x0F) * 4
        // A zero total length is what TCP segmentation offload leaves in locally sent frames.
        let declaredLength = Int(bytes.u16(start + 2))
        let totalLength = declaredLength == 0 ? bytes.count - start : declaredLength
        guard headerLength >= 20, totalLength >= headerLength else { return .badIPHeaderLength }
        // Only the first fragment (offset 0) carries the TCP header.
        let fragmentField = bytes.u16(start + 6)
        guard fragmentField & 0x1FFF == 0 else { return .laterFragment }
        guard bytes[start + 9] == 6 else {
            // A whole datagram may carry a tunnel; the traffic is what it carries.
            guard fragmentField & 0x2000 == 0 else { return .notTCP }
            let end = declaredLength == 0 ? bytes.count : min(bytes.count, start + totalLength)
            return decodeTunnel(
                UnsafeRawBufferPointer(rebasing: bytes[..<end]),
                protocol: bytes[start + 9],
                at: start + headerLength,
                tunnels: tunnels,
                into: &segment
            )
        }
        segment.source = IPAddress(ipv4: bytes.u32(start + 12))
        segment.destination = IPAddress(ipv4: bytes.u32(start + 16))
        return decodeTCP(
            bytes,
            at: start + headerLength,
            ipPayloadLength: totalLength - headerLength,
            lengthFromCapture: declaredLength == 0,
            moreFragments: fragmentField & 0x2000 != 0,
            into: &segment
        )
    }

    static func decodeIPv6(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    )
        -> DecodeOutcome
    {
        guard bytes.count >= start + 40 else { return .truncatedIPHeader }
        guard bytes[start] >> 4 == 6 else { return .badIPVersion }
        // A zero payload length is a jumbogram or, in locally sent frames, segmentation offload.
        let declaredLength = Int(bytes.u16(start + 4))
        var remaining = declaredLength == 0 ? bytes.count - start - 40 : declaredLength
        var nextHeader = bytes[start + 6]
        var offset = start + 40
        var followed = 0
        var moreFragments = false
        while nextHeader != 6 {
            var length: Int
            switch nextHeader {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination, mobility, HIP, shim6
                guard bytes.count >= offset + 2 else { return .truncatedIPHeader }
                length = (Int(bytes[offset + 1]) + 1) * 8
            case 44:  // fragment: only the first one carries TCP
                guard bytes.count >= offset + 8 else { return .truncatedIPHeader }
                guard bytes.u16(offset + 2) & 0xFFF8 == 0 else { return .laterFragment }
                moreFragments = bytes[offset + 3] & 1 == 1
                length = 8
            case 51:  // authentication header counts 4-byte words
                guard bytes.count >= offset + 2 else { return .truncatedIPHeader }
                length = (Int(bytes[offset + 1]) + 2) * 4
            default:
                // A whole datagram may carry a tunnel; the traffic is what it carries.
                guard !moreFragments else { return .notTCP }
                let end = declaredLength == 0 ? bytes.count : min(bytes.count, offset + remaining)
                return decodeTunnel(
                    UnsafeRawBufferPointer(rebasing: bytes[..<end]),
                    protocol: nextHeader,
                    at: offset,
                    tunnels: tunnels,
                    into: &segment
                )
            }
            followed += 1
            guard followed <= maximumExtensionHeaders else { return .ipv6ExtensionChainTooLong }
            guard remaining >= length else { return .badIPHeaderLength }
            nextHeader = bytes[offset]
            offset += length
            remaining -= length
        }
        segment.source = IPAddress(high: bytes.u64(start + 8), low: bytes.u64(start + 16))
        segment.destination = IPAddress(high: bytes.u64(start + 24), low: bytes.u64(start + 32))
        return decodeTCP(
            bytes,
            at: offset,
            ipPayloadLength: remaining,
            lengthFromCapture: declaredLength == 0,
            moreFragments: moreFragments,
            into: &segment
        )
    }

    /// The most tunnels a frame is decoded through (GRE within GRE, IPv6 in IPv4 in a VXLAN...).
    static let maximumTunnels = 3

    /// The IP payload of protocol `proto` at `start` when it is a tunnel whose traffic synwatch reads: IP in IP (4 and
    /// 41), GRE (47: IP, Ethernet, ERSPAN I to III, MPLS), and over UDP, VXLAN (4789) and GENEVE (6081). Mirror
    /// sessions, scrubbing centres' clean-traffic tunnels and overlay networks deliver traffic so. `bytes` ends with
    /// the datagram.
    static func decodeTunnel(
        _ bytes: UnsafeRawBufferPointer,
        protocol proto: UInt8,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        guard tunnels < maximumTunnels else { return .notTCP }
        let inside = tunnels + 1
        switch proto {
        case 4:
            return decodeIPv4(bytes, at: start, tunnels: inside, into: &segment)
        case 41:
            return decodeIPv6(bytes, at: start, tunnels: inside, into: &segment)
        case 47:
            return decodeGRE(bytes, at: start, tunnels: inside, into: &segment)
        case 17:
            // The destination port names the tunnel: a header cut before it may be one's.
            guard bytes.count >= start + 4 else { return .truncatedLinkHeader }
            let header = start + 8
            switch bytes.u16(start + 2) {
            case 4789:
                // VXLAN (RFC 7348): flags with the VNI bit, then an Ethernet frame.
                guard bytes.count >= header + 8 else { return .truncatedLinkHeader }
                guard bytes[header] & 0x08 != 0 else { return .notTCP }
                return decodeEthernet(bytes, at: header + 8, tunnels: inside, into: &segment)
            case 6081:
                // GENEVE (RFC 8926): version 0, options in 4-byte words, then the protocol it names.
                guard bytes.count >= header + 8 else { return .truncatedLinkHeader }
                guard bytes[header] >> 6 == 0 else { return .notTCP }
                let payload = header + 8 + Int(bytes[header] & 0x3F) * 4
                let type = bytes.u16(header + 2)
                return type == 0x6558
                    ? decodeEthernet(bytes, at: payload, tunnels: inside, into: &segment)
                    : decodeEtherPayload(bytes, etherType: type, at: payload, tunnels: inside, into: &segment)
            default:
                return .notTCP
            }
        default:
            return .notTCP
        }
    }

    /// GRE (RFC 2784 and 2890) version 0: flags, the protocol, then a checksum, a key and a sequence number as the
    /// flags say. ERSPAN type I (no sequence number) and II carry the mirrored Ethernet frame behind 0 and 8 bytes,
    /// type III behind 12, or 20 with its platform subheader.
    static func decodeGRE(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        tunnels: Int,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        guard bytes.count >= start + 4 else { return .truncatedLinkHeader }
        let flags = bytes.u16(start)
        guard flags & 0x0007 == 0 else { return .notTCP }
        let sequenced = flags & 0x1000 != 0
        // 4 bytes for each of the checksum (0x8000), key (0x2000) and sequence number (0x1000) present.
        let offset = start + 4 + 4 * (flags & 0xB000).nonzeroBitCount
        switch bytes.u16(start + 2) {
        case 0x6558:
            return decodeEthernet(bytes, at: offset, tunnels: tunnels, into: &segment)
        case 0x88BE:
            return decodeEthernet(bytes, at: offset + (sequenced ? 8 : 0), tunnels: tunnels, into: &segment)
        case 0x22EB:
            guard bytes.count >= offset + 12 else { return .truncatedLinkHeader }
            // Frame type (bits 6 to 2 of byte 10) 0 is Ethernet; the last bit of byte 11 says a platform subheader
            // follows.
            guard bytes[offset + 10] & 0x7C == 0 else { return .notIP }
            let subheader = bytes[offset + 11] & 1 == 1 ? 8 : 0
            return decodeEthernet(bytes, at: offset + 12 + subheader, tunnels: tunnels, into: &segment)
        case let type:
            return decodeEtherPayload(bytes, etherType: type, at: offset, tunnels: tunnels, into: &segment)
        }
    }

    /// - Parameters:
    ///   - lengthFromCapture: the IP header gave no length, so `ipPayloadLength` is only what was captured.
    ///   - moreFragments: the datagram is a first fragment, whose header may go on in the next one.
    static func decodeTCP(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        ipPayloadLength: Int,
        lengthFromCapture: Bool,
        moreFragments: Bool,
        into segment: inout TCPSegment
    ) -> DecodeOutcome {
        // Ports, sequence numbers, data offset and flags: the first 14 bytes. Options may be cut by the snap length.
        guard bytes.count >= start + 14 else { return .truncatedTCPHeader }
        let headerLength = Int(bytes[start + 12] >> 4) * 4
        // The IP length is authoritative: bytes past the datagram (Ethernet padding) are no TCP header. A first
        // fragment may end inside the header (`hping3 -f` sends 16 bytes of it): its first 14 are all that is read.
        guard headerLength >= 20,
            lengthFromCapture || ipPayloadLength >= headerLength || (moreFragments && ipPayloadLength >= 14)
        else {
            return .badTCPHeaderLength
        }
        segment.sourcePort = bytes.u16(start)
        segment.destinationPort = bytes.u16(start + 2)
        segment.sequence = bytes.u32(start + 4)
        segment.acknowledgement = bytes.u32(start + 8)
        segment.flags = TCPFlags(rawValue: bytes[start + 13])
        segment.payloadLength = max(0, ipPayloadLength - headerLength)
        segment.hasOptions = headerLength > 20
        return .tcp
    }
}

extension UnsafeRawBufferPointer {
    func u16(_ offset: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }

    func u32(_ offset: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }

    func u64(_ offset: Int) -> UInt64 { UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}

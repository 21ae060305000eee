/// The one's-complement sum of the big-endian 16-bit words at `pointer` (RFC 1071), not yet folded.
@inline(__always)
func internetSum(_ pointer: UnsafeRawPointer, count: Int, adding initial: UInt64 = 0) -> UInt64 {
    var sum = initial
    var index = 0
    while index + 8 <= count {
        // Adding 64-bit big-endian words as 16-bit halves keeps carries exact without a loop per word.
        let word = UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        sum &+= (word >> 48) &+ ((word >> 32) & 0xFFFF) &+ ((word >> 16) & 0xFFFF) &+ (word & 0xFFFF)
        index += 8
    }
    while index + 2 <= count {
        sum &+= UInt64(UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: index, as: UInt16.self)))
        index += 2
    }
    if index < count { sum &+= UInt64(pointer.load(fromByteOffset: index, as: UInt8.self)) << 8 }
    return sum
}

/// Folds a one's-complement sum to 16 bits and complements it: the checksum field's value.
@inline(__always)
func checksum(folding sum: UInt64) -> UInt16 {
    var folded = sum
    while folded >> 16 != 0 { folded = (folded & 0xFFFF) &+ (folded >> 16) }
    return ~UInt16(folded)
}

/// The one's-complement sum of an address's 16-bit words.
@inline(__always)
func internetSum(of address: NetAddress) -> UInt64 {
    func words(_ value: UInt64) -> UInt64 {
        (value >> 48) &+ ((value >> 32) & 0xFFFF) &+ ((value >> 16) & 0xFFFF) &+ (value & 0xFFFF)
    }
    return address.family == .ipv4 ? words(address.low & 0xFFFF_FFFF) : words(address.high) &+ words(address.low)
}

/// The MAC address of our host's interface: a QEMU-range unicast address, fixed so captures are stable.
let hostMAC: UInt64 = 0x5254_0012_3456
/// The MAC address of the gateway every remote packet arrives through.
let gatewayMAC: UInt64 = 0x5254_00AB_CDEF

/// Encodes segments into complete frames (link header, IP header and extensions, TCP) with correct checksums.
final class FrameEncoder {
    let linkType: LinkLayer
    let vlanTags: [VLANTag]
    /// A fragmented segment is built whole here first, because its checksum covers all of it.
    private let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 17, alignment: 16)

    init(linkType: LinkLayer, vlanTags: [VLANTag]) {
        precondition(vlanTags.isEmpty || linkType == .ethernet, "VLAN tags need Ethernet framing")
        self.linkType = linkType
        self.vlanTags = vlanTags
    }

    deinit { scratch.deallocate() }

    func linkHeaderLength() -> Int {
        switch linkType {
        case .ethernet: 14 + 4 * vlanTags.count
        case .linuxCooked: 16
        case .linuxCooked2: 20
        case .rawIP: 0
        case .bsdLoopback: 4
        }
    }

    /// The length of the IP header with its options or extension headers, up to the carried TCP bytes.
    func ipHeaderLength(_ segment: Segment) -> Int {
        if segment.source.family == .ipv4 { return segment.extras.contains(.ipv4Options) ? 24 : 20 }
        var length = 40
        if segment.extras.contains(.hopByHop) { length += 8 }
        if segment.extras.contains(.destinationOptions) { length += 8 }
        if segment.extras.contains(.routing) { length += 24 }
        if case .whole = segment.fragment {} else { length += 8 }
        return length
    }

    /// The TCP bytes (header and payload) the IP packet carries, as a range of the whole segment.
    func carriedRange(_ segment: Segment) -> Range<Int> {
        switch segment.fragment {
        case .whole: 0..<segment.tcpLength
        case .first(let bytes): 0..<bytes
        case .rest(let offset): offset..<segment.tcpLength
        }
    }

    func frameLength(_ segment: Segment) -> Int {
        linkHeaderLength() + ipHeaderLength(segment) + carriedRange(segment).count
    }

    /// Stores the frame of `segment` at `frame`, which must hold `frameLength(segment)` bytes.
    func encode(_ segment: Segment, into frame: UnsafeMutableRawPointer) {
        let ipv6 = segment.source.family == .ipv6
        let link = linkHeaderLength()
        storeLinkHeader(ipv6: ipv6, inbound: segment.inbound, into: frame)
        let ipLength = ipHeaderLength(segment)
        let carried = carriedRange(segment)
        if ipv6 {
            storeIPv6Header(segment, headerLength: ipLength, carried: carried, into: frame + link)
        } else {
            storeIPv4Header(segment, headerLength: ipLength, carried: carried, into: frame + link)
        }
        let tcp = frame + link + ipLength
        if case .whole = segment.fragment {
            storeTCP(segment, into: tcp)
        } else {
            storeTCP(segment, into: scratch)
            tcp.copyMemory(from: scratch + carried.lowerBound, byteCount: carried.count)
        }
    }

    private func storeLinkHeader(ipv6: Bool, inbound: Bool, into frame: UnsafeMutableRawPointer) {
        let etherType: UInt16 = ipv6 ? 0x86DD : 0x0800
        let sourceMAC = inbound ? gatewayMAC : hostMAC
        switch linkType {
        case .ethernet:
            storeMAC(inbound ? hostMAC : gatewayMAC, at: frame)
            storeMAC(sourceMAC, at: frame + 6)
            var offset = 12
            for tag in vlanTags {
                frame.storeBE16(tag.kind.tpid, at: offset)
                frame.storeBE16(tag.tci, at: offset + 2)
                offset += 4
            }
            frame.storeBE16(etherType, at: offset)
        case .linuxCooked:
            frame.storeBE16(inbound ? 0 : 4, at: 0)  // PACKET_HOST or PACKET_OUTGOING
            frame.storeBE16(1, at: 2)  // ARPHRD_ETHER
            frame.storeBE16(6, at: 4)
            storeMAC(sourceMAC, at: frame + 6)
            frame.storeBE16(0, at: 12)
            frame.storeBE16(etherType, at: 14)
        case .linuxCooked2:
            frame.storeBE16(etherType, at: 0)
            frame.storeBE16(0, at: 2)
            frame.storeBE32(2, at: 4)  // interface index
            frame.storeBE16(1, at: 8)
            frame.storeByte(inbound ? 0 : 4, at: 10)
            frame.storeByte(6, at: 11)
            storeMAC(sourceMAC, at: frame + 12)
            frame.storeBE16(0, at: 18)
        case .rawIP:
            break
        case .bsdLoopback:
            frame.storeLE32(ipv6 ? 30 : 2, at: 0)
        }
    }

    private func storeMAC(_ mac: UInt64, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBE16(UInt16(truncatingIfNeeded: mac >> 32), at: 0)
        pointer.storeBE32(UInt32(truncatingIfNeeded: mac), at: 2)
    }

    private func storeIPv4Header(
        _ segment: Segment,
        headerLength: Int,
        carried: Range<Int>,
        into header: UnsafeMutableRawPointer
    ) {
        var fragmentField: UInt16
        switch segment.fragment {
        case .whole: fragmentField = segment.dontFragment ? 0x4000 : 0
        case .first: fragmentField = 0x2000
        case .rest(let offset): fragmentField = UInt16(offset / 8)
        }
        header.storeByte(UInt8(0x40 | headerLength / 4), at: 0)
        header.storeByte(0, at: 1)
        header.storeBE16(UInt16(headerLength + carried.count), at: 2)
        header.storeBE16(UInt16(truncatingIfNeeded: segment.ipIdentification), at: 4)
        header.storeBE16(fragmentField, at: 6)
        header.storeByte(segment.ttl, at: 8)
        header.storeByte(6, at: 9)
        header.storeBE16(0, at: 10)
        header.storeBE32(segment.source.ipv4, at: 12)
        header.storeBE32(segment.destination.ipv4, at: 16)
        if headerLength > 20 { header.storeBE32(0x9404_0000, at: 20) }  // Router Alert
        header.storeBE16(checksum(folding: internetSum(header, count: headerLength)), at: 10)
    }

    private func storeIPv6Header(
        _ segment: Segment,
        headerLength: Int,
        carried: Range<Int>,
        into header: UnsafeMutableRawPointer
    ) {
        let flowLabel =
            UInt32(
                truncatingIfNeeded: mix64(segment.source.low ^ segment.destination.low ^ UInt64(segment.sourcePort))
            ) & 0xF_FFFF
        header.storeBE32(0x6000_0000 | flowLabel, at: 0)
        header.storeBE16(UInt16(headerLength - 40 + carried.count), at: 4)
        header.storeByte(segment.ttl, at: 7)
        header.storeBE64(segment.source.high, at: 8)
        header.storeBE64(segment.source.low, at: 16)
        header.storeBE64(segment.destination.high, at: 24)
        header.storeBE64(segment.destination.low, at: 32)
        // Each header's first byte is the next header's protocol number: fill it in as the chain grows.
        var nextHeaderAt = 6
        var offset = 40
        func chain(_ protocolNumber: UInt8, length: Int) {
            header.storeByte(protocolNumber, at: nextHeaderAt)
            nextHeaderAt = offset
            offset += length
        }
        if segment.extras.contains(.hopByHop) {
            chain(0, length: 8)
            header.storeBE64(0x0000_0104_0000_0000, at: offset - 8)  // PadN of 4 bytes
        }
        if segment.extras.contains(.destinationOptions) {
            chain(60, length: 8)
            header.storeBE64(0x0000_0104_0000_0000, at: offset - 8)
        }
        if segment.extras.contains(.routing) {
            chain(43, length: 24)
            // Segment routing header, type 4: one segment (the destination), none left, last entry 0.
            header.storeBE64(0x0002_0400_0000_0000, at: offset - 24)
            header.storeBE64(segment.destination.high, at: offset - 16)
            header.storeBE64(segment.destination.low, at: offset - 8)
        }
        switch segment.fragment {
        case .whole:
            break
        case .first, .rest:
            chain(44, length: 8)
            var field: UInt16 = 0
            if case .first = segment.fragment { field = 1 }  // M flag: more fragments
            if case .rest(let tcpOffset) = segment.fragment { field = UInt16(tcpOffset) }  // offset << 3, M clear
            header.storeBE16(0, at: offset - 8)
            header.storeBE16(field, at: offset - 6)
            header.storeBE32(segment.ipIdentification, at: offset - 4)
        }
        header.storeByte(6, at: nextHeaderAt)
    }

    private func storeTCP(_ segment: Segment, into tcp: UnsafeMutableRawPointer) {
        let headerLength = 20 + segment.options.length
        tcp.storeBE16(segment.sourcePort, at: 0)
        tcp.storeBE16(segment.destinationPort, at: 2)
        tcp.storeBE32(segment.sequence, at: 4)
        tcp.storeBE32(segment.acknowledgment, at: 8)
        tcp.storeBE16(UInt16(headerLength / 4) << 12 | UInt16(segment.flags.rawValue), at: 12)
        tcp.storeBE16(segment.window, at: 14)
        tcp.storeBE32(0, at: 16)  // checksum and urgent pointer
        segment.options.store(at: tcp + 20)
        if segment.payloadLength > 0 {
            Payload.store(
                count: segment.payloadLength,
                streamOffset: segment.payloadOffset,
                request: segment.inbound,
                at: tcp + headerLength
            )
        }
        let length = segment.tcpLength
        var sum = internetSum(of: segment.source) &+ internetSum(of: segment.destination)
        sum &+= 6 &+ UInt64(length)
        sum = internetSum(tcp, count: length, adding: sum)
        tcp.storeBE16(checksum(folding: sum), at: 16)
    }
}

/// The bytes of data segments: an HTTP exchange repeated, chosen by the offset in the sender's stream so
/// that every segment (and every fragment) of a stream agrees with its neighbours.
enum Payload {
    private static let request = Array(
        ("GET /api/v1/items?page=2 HTTP/1.1\r\nHost: service.example\r\nUser-Agent: curl/8.5.0\r\n"
            + "Accept: */*\r\nConnection: keep-alive\r\n\r\n").utf8
    )
    private static let response = Array(
        ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n"
            + "{\"items\":[{\"id\":1,\"name\":\"alpha\"},{\"id\":2,\"name\":\"beta\"},"
            + "{\"id\":3,\"name\":\"gamma\"}]}\n")
            .utf8
    )

    static func store(count: Int, streamOffset: UInt32, request isRequest: Bool, at target: UnsafeMutableRawPointer) {
        let text = isRequest ? request : response
        text.withUnsafeBytes { source in
            var written = 0
            var position = Int(streamOffset % UInt32(source.count))
            while written < count {
                let chunk = min(count - written, source.count - position)
                (target + written).copyMemory(from: source.baseAddress! + position, byteCount: chunk)
                written += chunk
                position = 0
            }
        }
    }
}

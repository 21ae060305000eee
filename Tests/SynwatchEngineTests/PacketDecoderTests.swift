import Testing

@testable import SynwatchEngine

/// One captured frame and what the decoder must make of it, every expected field written out.
struct DecoderFixture: Sendable, CustomTestStringConvertible {
    var name: String
    var linkType: LinkType
    var bytes: [UInt8]
    var outcome: DecodeOutcome
    /// The decoded fields when the outcome is `.tcp`.
    var segment: TCPSegment?
    /// Captured bytes up to the end of the TCP flags: fewer must never decode as TCP.
    var tcpNeeds = 0
    /// For frames whose IP length is zero (TSO), where the TCP payload starts: the payload is what was captured.
    var payloadFromCapture: Int?

    var testDescription: String { name }
}

// MARK: Headers

/// Header writers with every value passed in literally by the fixture.
extension ByteWriter {
    /// Destination and source MAC, then the EtherType (or the first tag's TPID).
    mutating func ethernet(_ etherType: UInt16) {
        u8(0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01)
        u16(etherType)
    }

    /// The rest of a VLAN tag after its TPID: TCI, then the next EtherType.
    mutating func tag(_ tci: UInt16, then etherType: UInt16) { u16(tci, etherType) }

    /// Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
    mutating func linuxCooked(_ proto: UInt16) {
        u16(0x0000, 0x0001, 6)
        u8(0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00)
        u16(proto)
    }

    /// Linux cooked v2: protocol, reserved, interface index, ARPHRD, packet type, address length, 8 address bytes.
    mutating func linuxCooked2(_ proto: UInt16) {
        u16(proto, 0)
        u32(2)
        u16(0x0001)
        u8(0x00, 6)
        u8(0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00)
    }

    /// IPv4 from 198.18.0.1 to 198.18.0.2.
    mutating func ipv4(
        totalLength: UInt16,
        versionAndLength: UInt8 = 0x45,
        flagsAndOffset: UInt16 = 0x4000,
        proto: UInt8 = 6,
        options: [UInt8] = []
    ) {
        u8(versionAndLength, 0)
        u16(totalLength, 0x1234, flagsAndOffset)
        u8(64, proto)
        u16(0)
        u8(198, 18, 0, 1, 198, 18, 0, 2)
        append(options)
    }

    /// IPv6 from 2001:db8::1 to 2001:db8::2.
    mutating func ipv6(payloadLength: UInt16, nextHeader: UInt8) {
        u8(0x60, 0, 0, 0)
        u16(payloadLength)
        u8(nextHeader, 64)
        u16(0x2001, 0x0DB8, 0, 0, 0, 0, 0, 1)
        u16(0x2001, 0x0DB8, 0, 0, 0, 0, 0, 2)
    }

    /// A SYN from port 40000 to 80, ISN 0x11223344, no options.
    mutating func tcpSyn(dataOffset: UInt8 = 0x50) {
        u16(40000, 80)
        u32(0x1122_3344)
        u32(0)
        u8(dataOffset, 0x02)
        u16(65535, 0, 0)
    }

    /// A PSH/ACK from port 40000 to 80 with six payload bytes.
    mutating func tcpData() {
        u16(40000, 80)
        u32(0x1122_3345)
        u32(0x5566_7788)
        u8(0x50, 0x18)
        u16(502, 0, 0)
        u8(0x73, 0x79, 0x6E, 0x77, 0x61, 0x74)
    }

    /// The first `count` bytes of `tcpSyn()`: what a first fragment that ends inside the header carries.
    mutating func tcpSynPrefix(_ count: Int) {
        var whole = ByteWriter()
        whole.tcpSyn()
        append(Array(whole.bytes.prefix(count)))
    }

    /// A later IPv4 fragment's data: bytes that only look like the middle of a segment.
    mutating func fragmentData() { u8(0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) }

    /// An 8-byte IPv6 options header (hop-by-hop or destination) with a PadN option.
    mutating func optionsHeader(next: UInt8) { u8(next, 0, 1, 4, 0, 0, 0, 0) }

    /// A PPPoE session header (version and type 0x11, code 0, session 0x1234) for a PPP frame of `length` bytes.
    mutating func pppoe(length: UInt16, versionAndType: UInt8 = 0x11, code: UInt8 = 0) {
        u8(versionAndType, code)
        u16(0x1234, length)
    }

    /// An MPLS label stack entry: label, traffic class 0, bottom-of-stack bit, TTL 64.
    mutating func mplsLabel(_ label: UInt32, bottom: Bool) {
        u32(label << 12 | (bottom ? 0x100 : 0) | 64)
    }

    /// The NFLOG header: family, version 0, resource id 42 (network order).
    mutating func nflog(family: UInt8) {
        u8(family, 0)
        u16(42)
    }

    /// An NFLOG TLV header, its length (header included) and type in either byte order.
    mutating func tlv(length: UInt16, type: UInt16, bigEndian: Bool = false) {
        if bigEndian {
            u16(length, type)
        } else {
            u8(UInt8(length & 0xFF), UInt8(length >> 8), UInt8(type & 0xFF), UInt8(type >> 8))
        }
    }

    /// NFLOG TLVs before the payload as the kernel writes them: the packet header (hardware protocol 0x0800,
    /// hook 3) and a 5-byte prefix `"drop"` padded to 12 bytes.
    mutating func nflogMetadata(bigEndian: Bool = false) {
        tlv(length: 8, type: 1, bigEndian: bigEndian)
        u16(0x0800)
        u8(3, 0)
        tlv(length: 9, type: 10, bigEndian: bigEndian)
        u8(0x64, 0x72, 0x6F, 0x70, 0, 0, 0, 0)
    }
}

let v4Source = IPAddress(ipv4: 0xC612_0001)
let v4Destination = IPAddress(ipv4: 0xC612_0002)
let v6Source = IPAddress(high: 0x2001_0DB8_0000_0000, low: 1)
let v6Destination = IPAddress(high: 0x2001_0DB8_0000_0000, low: 2)

let syn4 = TCPSegment(
    source: v4Source,
    destination: v4Destination,
    sourcePort: 40000,
    destinationPort: 80,
    sequence: 0x1122_3344,
    acknowledgement: 0,
    flags: .syn,
    payloadLength: 0,
    hasOptions: false
)
/// `syn4` as a TCP stack sends it: with its MSS.
var synWithMSS4: TCPSegment {
    var segment = syn4
    segment.hasOptions = true
    return segment
}
let syn6 = TCPSegment(
    source: v6Source,
    destination: v6Destination,
    sourcePort: 40000,
    destinationPort: 80,
    sequence: 0x1122_3344,
    acknowledgement: 0,
    flags: .syn,
    payloadLength: 0,
    hasOptions: false
)
let data4 = TCPSegment(
    source: v4Source,
    destination: v4Destination,
    sourcePort: 40000,
    destinationPort: 80,
    sequence: 0x1122_3345,
    acknowledgement: 0x5566_7788,
    flags: [.psh, .ack],
    payloadLength: 6,
    hasOptions: false
)

func fixture(
    _ name: String,
    _ linkType: LinkType,
    _ outcome: DecodeOutcome,
    _ segment: TCPSegment? = nil,
    tcpNeeds: Int = 0,
    payloadFromCapture: Int? = nil,
    _ build: (inout ByteWriter) -> Void
) -> DecoderFixture {
    var writer = ByteWriter()
    build(&writer)
    return DecoderFixture(
        name: name,
        linkType: linkType,
        bytes: writer.bytes,
        outcome: outcome,
        segment: segment,
        tcpNeeds: tcpNeeds,
        payloadFromCapture: payloadFromCapture
    )
}

// MARK: Fixtures

let linkFixtures: [DecoderFixture] =
    [
        fixture("Ethernet IPv4 SYN", .ethernet, .tcp, syn4, tcpNeeds: 48) {
            $0.ethernet(0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("Ethernet IPv4 SYN with an MSS option", .ethernet, .tcp, synWithMSS4, tcpNeeds: 48) {
            $0.ethernet(0x0800)
            $0.ipv4(totalLength: 44)
            $0.tcpSyn(dataOffset: 0x60)
            $0.u8(2, 4, 0x05, 0xB4)
        },
        fixture("Ethernet IPv4 data", .ethernet, .tcp, data4, tcpNeeds: 48) {
            $0.ethernet(0x0800)
            $0.ipv4(totalLength: 46)
            $0.tcpData()
        },
        fixture("Ethernet padding to 60 bytes is not payload", .ethernet, .tcp, syn4, tcpNeeds: 48) {
            $0.ethernet(0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
            $0.zeros(6)
        },
        fixture("Ethernet IPv6 SYN", .ethernet, .tcp, syn6, tcpNeeds: 68) {
            $0.ethernet(0x86DD)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("802.1Q IPv4", .ethernet, .tcp, syn4, tcpNeeds: 52) {
            $0.ethernet(0x8100)
            $0.tag(0x0064, then: 0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("802.1Q IPv6", .ethernet, .tcp, syn6, tcpNeeds: 72) {
            $0.ethernet(0x8100)
            $0.tag(0x0064, then: 0x86DD)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("802.1ad outer and 802.1Q inner tag", .ethernet, .tcp, syn4, tcpNeeds: 56) {
            $0.ethernet(0x88A8)
            $0.tag(0x00C8, then: 0x8100)
            $0.tag(0x0064, then: 0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("802.1ad QinQ IPv6", .ethernet, .tcp, syn6, tcpNeeds: 76) {
            $0.ethernet(0x88A8)
            $0.tag(0x00C8, then: 0x8100)
            $0.tag(0x0064, then: 0x86DD)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("four stacked tags are still read", .ethernet, .tcp, syn4, tcpNeeds: 64) {
            $0.ethernet(0x88A8)
            $0.tag(0x0001, then: 0x88A8)
            $0.tag(0x0002, then: 0x8100)
            $0.tag(0x0003, then: 0x8100)
            $0.tag(0x0004, then: 0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("five stacked tags are given up on", .ethernet, .notIP) {
            $0.ethernet(0x88A8)
            $0.tag(0x0001, then: 0x88A8)
            $0.tag(0x0002, then: 0x8100)
            $0.tag(0x0003, then: 0x8100)
            $0.tag(0x0004, then: 0x8100)
            $0.tag(0x0005, then: 0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("Linux cooked v1 IPv4", .linuxCooked, .tcp, syn4, tcpNeeds: 50) {
            $0.linuxCooked(0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("Linux cooked v1 IPv6", .linuxCooked, .tcp, syn6, tcpNeeds: 70) {
            $0.linuxCooked(0x86DD)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("Linux cooked v1 with an 802.1Q tag", .linuxCooked, .tcp, syn4, tcpNeeds: 54) {
            $0.linuxCooked(0x8100)
            $0.tag(0x0064, then: 0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("Linux cooked v2 IPv4", .linuxCooked2, .tcp, syn4, tcpNeeds: 54) {
            $0.linuxCooked2(0x0800)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("Linux cooked v2 IPv6", .linuxCooked2, .tcp, syn6, tcpNeeds: 74) {
            $0.linuxCooked2(0x86DD)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("raw IPv4 (DLT_RAW)", .raw, .tcp, syn4, tcpNeeds: 34) {
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("raw IPv6 (DLT_RAW)", .raw, .tcp, syn6, tcpNeeds: 54) {
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("raw IPv4 (LINKTYPE_RAW)", .rawIP, .tcp, syn4, tcpNeeds: 34) {
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("raw IPv6 (LINKTYPE_RAW)", .rawIP, .tcp, syn6, tcpNeeds: 54) {
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("LINKTYPE_IPV4", .ipv4, .tcp, syn4, tcpNeeds: 34) {
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("LINKTYPE_IPV6", .ipv6, .tcp, syn6, tcpNeeds: 54) {
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
        fixture("BSD loopback AF_INET little-endian", .bsdLoopback, .tcp, syn4, tcpNeeds: 38) {
            $0.le32(2)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("BSD loopback AF_INET big-endian", .bsdLoopback, .tcp, syn4, tcpNeeds: 38) {
            $0.u32(2)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
    ]
    // The three AF_INET6 values of the BSDs, each as written by a little- and a big-endian host.
    + [24, 28, 30].flatMap { (family: UInt32) in
        [false, true].map { bigEndian in
            fixture(
                "BSD loopback family \(family) \(bigEndian ? "big" : "little")-endian",
                .bsdLoopback,
                .tcp,
                syn6,
                tcpNeeds: 58
            ) {
                if bigEndian { $0.u32(family) } else { $0.le32(family) }
                $0.ipv6(payloadLength: 20, nextHeader: 6)
                $0.tcpSyn()
            }
        }
    }
    + [
        fixture("BSD loopback family 7 is not IP", .bsdLoopback, .notIP) {
            $0.le32(7)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("OpenBSD loopback AF_INET", .openBSDLoopback, .tcp, syn4, tcpNeeds: 38) {
            $0.u32(2)
            $0.ipv4(totalLength: 40)
            $0.tcpSyn()
        },
        fixture("OpenBSD loopback AF_INET6", .openBSDLoopback, .tcp, syn6, tcpNeeds: 58) {
            $0.u32(24)
            $0.ipv6(payloadLength: 20, nextHeader: 6)
            $0.tcpSyn()
        },
    ]

let pppFixtures: [DecoderFixture] = [
    fixture("PPP address, control, IPv4", .ppp, .tcp, syn4, tcpNeeds: 38) {
        $0.u8(0xFF, 0x03)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("PPP IPv6 without address and control", .ppp, .tcp, syn6, tcpNeeds: 56) {
        $0.u16(0x0057)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("PPP 1-byte protocol IPv4", .ppp, .tcp, data4, tcpNeeds: 35) {
        $0.u8(0x21)
        $0.ipv4(totalLength: 46)
        $0.tcpData()
    },
    fixture("PPP address, control, 1-byte protocol IPv6", .ppp, .tcp, syn6, tcpNeeds: 57) {
        $0.u8(0xFF, 0x03, 0x57)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("PPP LCP is not IP", .ppp, .notIP) {
        $0.u8(0xFF, 0x03)
        $0.u16(0xC021)
        $0.u8(1, 1, 0, 4)
    },
    fixture("PPP VJ-compressed TCP is not read", .ppp, .notIP) {
        $0.u16(0x002D)
        $0.zeros(20)
    },
    fixture("PPPoE session IPv4", .ethernet, .tcp, syn4, tcpNeeds: 56) {
        $0.ethernet(0x8864)
        $0.pppoe(length: 42)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("PPPoE session IPv6 under 802.1Q", .ethernet, .tcp, syn6, tcpNeeds: 80) {
        $0.ethernet(0x8100)
        $0.tag(0x0064, then: 0x8864)
        $0.pppoe(length: 62)
        $0.u16(0x0057)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("PPPoE session under QinQ", .ethernet, .tcp, data4, tcpNeeds: 64) {
        $0.ethernet(0x88A8)
        $0.tag(0x00C8, then: 0x8100)
        $0.tag(0x0064, then: 0x8864)
        $0.pppoe(length: 48)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 46)
        $0.tcpData()
    },
    fixture("PPPoE session in Linux cooked v1", .linuxCooked, .tcp, syn4, tcpNeeds: 58) {
        $0.linuxCooked(0x8864)
        $0.pppoe(length: 42)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("PPPoE discovery is not IP", .ethernet, .notIP) {
        $0.ethernet(0x8863)
        $0.u8(0x11, 0x09)
        $0.u16(0, 4, 0x0101, 0)
    },
    fixture("PPPoE session carrying LCP", .ethernet, .notIP) {
        $0.ethernet(0x8864)
        $0.pppoe(length: 6)
        $0.u16(0xC021)
        $0.u8(1, 1, 0, 4)
    },
    fixture("PPPoE session of version 2", .ethernet, .badLinkHeader) {
        $0.ethernet(0x8864)
        $0.pppoe(length: 42, versionAndType: 0x21)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("PPPoE session with a discovery code", .ethernet, .badLinkHeader) {
        $0.ethernet(0x8864)
        $0.pppoe(length: 42, code: 0x07)
        $0.u16(0x0021)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
]

let mplsFixtures: [DecoderFixture] = [
    fixture("MPLS one label, IPv4", .ethernet, .tcp, syn4, tcpNeeds: 52) {
        $0.ethernet(0x8847)
        $0.mplsLabel(16, bottom: true)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("MPLS two labels under 802.1Q, IPv6", .ethernet, .tcp, syn6, tcpNeeds: 80) {
        $0.ethernet(0x8100)
        $0.tag(0x0064, then: 0x8847)
        $0.mplsLabel(1_000, bottom: false)
        $0.mplsLabel(17, bottom: true)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("MPLS multicast, IPv4 data", .ethernet, .tcp, data4, tcpNeeds: 52) {
        $0.ethernet(0x8848)
        $0.mplsLabel(20, bottom: true)
        $0.ipv4(totalLength: 46)
        $0.tcpData()
    },
    fixture("MPLS carrying Ethernet behind a control word is not IP", .ethernet, .notIP) {
        $0.ethernet(0x8847)
        $0.mplsLabel(30, bottom: true)
        $0.u32(0)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("MPLS stack of nine labels", .ethernet, .notIP) {
        $0.ethernet(0x8847)
        for label in 0..<9 { $0.mplsLabel(UInt32(100 + label), bottom: label == 8) }
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
]

/// Tunnels whose traffic is read: IP in IP, GRE (with ERSPAN), VXLAN and GENEVE. The outer and inner headers share
/// their addresses; the segment is the inner one's.
let tunnelFixtures: [DecoderFixture] = [
    fixture("IPv4 in IPv4", .raw, .tcp, syn4, tcpNeeds: 54) {
        $0.ipv4(totalLength: 60, proto: 4)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("IPv6 in IPv4", .raw, .tcp, syn6, tcpNeeds: 74) {
        $0.ipv4(totalLength: 80, proto: 41)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("IPv4 in IPv6", .raw, .tcp, syn4, tcpNeeds: 74) {
        $0.ipv6(payloadLength: 60, nextHeader: 4)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("IPv4 in IPv4, three tunnels deep", .raw, .tcp, syn4, tcpNeeds: 94) {
        $0.ipv4(totalLength: 100, proto: 4)
        $0.ipv4(totalLength: 80, proto: 4)
        $0.ipv4(totalLength: 60, proto: 4)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("IPv4 in IPv4, four tunnels deep", .raw, .notTCP) {
        $0.ipv4(totalLength: 120, proto: 4)
        $0.ipv4(totalLength: 100, proto: 4)
        $0.ipv4(totalLength: 80, proto: 4)
        $0.ipv4(totalLength: 60, proto: 4)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("IPv4 in the first fragment of an IPv4 datagram", .raw, .notTCP) {
        $0.ipv4(totalLength: 60, flagsAndOffset: 0x2000, proto: 4)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("GRE with a key and a sequence number, IPv4", .ethernet, .tcp, syn4, tcpNeeds: 80) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 72, proto: 47)
        $0.u16(0x3000, 0x0800)
        $0.u32(0x0000_0007)
        $0.u32(0x0000_0100)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("GRE of Ethernet with a VLAN tag", .raw, .tcp, syn4, tcpNeeds: 76) {
        $0.ipv4(totalLength: 82, proto: 47)
        $0.u16(0x0000, 0x6558)
        $0.ethernet(0x8100)
        $0.tag(0x0064, then: 0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("GRE version 1 (PPTP) is not read", .raw, .notTCP) {
        $0.ipv4(totalLength: 68, proto: 47)
        $0.u16(0x2001, 0x880B)
        $0.u32(0x0004_0001)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("ERSPAN type I", .raw, .tcp, syn4, tcpNeeds: 72) {
        $0.ipv4(totalLength: 78, proto: 47)
        $0.u16(0x0000, 0x88BE)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("ERSPAN type II, IPv6", .ethernet, .tcp, syn6, tcpNeeds: 118) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 110, proto: 47)
        $0.u16(0x1000, 0x88BE)
        $0.u32(0x0000_0704)
        $0.u32(0x1000_0064)
        $0.u32(0)
        $0.ethernet(0x86DD)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("ERSPAN type III with its platform subheader", .raw, .tcp, syn4, tcpNeeds: 92) {
        $0.ipv4(totalLength: 98, proto: 47)
        $0.u16(0x0000, 0x22EB)
        $0.u32(0x2000_0064)
        $0.u32(0x1234_5678)
        $0.u16(0)
        $0.u8(0x00, 0x01)
        $0.u32(0)
        $0.u32(0)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("ERSPAN type III of frame type 2 is not read", .raw, .notIP) {
        $0.ipv4(totalLength: 90, proto: 47)
        $0.u16(0x0000, 0x22EB)
        $0.u32(0x2000_0064)
        $0.u32(0x1234_5678)
        $0.u16(0)
        $0.u8(0x08, 0x00)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("VXLAN", .ethernet, .tcp, syn4, tcpNeeds: 98) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 90, proto: 17)
        $0.u16(53_000, 4789, 70, 0)
        $0.u8(0x08, 0, 0, 0)
        $0.u32(123 << 8)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("VXLAN without the VNI flag is not read", .raw, .notTCP) {
        $0.ipv4(totalLength: 90, proto: 17)
        $0.u16(53_000, 4789, 70, 0)
        $0.u8(0x00, 0, 0, 0)
        $0.u32(123 << 8)
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("GENEVE with an option, Ethernet with IPv6, over IPv6", .raw, .tcp, syn6, tcpNeeds: 132) {
        $0.ipv6(payloadLength: 98, nextHeader: 17)
        $0.u16(53_000, 6081, 98, 0)
        $0.u8(0x02, 0x00)
        $0.u16(0x6558)
        $0.u32(0x0000_0100)
        $0.u32(0x0101_8001)
        $0.u32(0)
        $0.ethernet(0x86DD)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("GENEVE of IPv4", .raw, .tcp, syn4, tcpNeeds: 70) {
        $0.ipv4(totalLength: 76, proto: 17)
        $0.u16(53_000, 6081, 56, 0)
        $0.u8(0x00, 0x00)
        $0.u16(0x0800)
        $0.u32(0x0000_0100)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("UDP to another port", .raw, .notTCP) {
        $0.ipv4(totalLength: 36, proto: 17)
        $0.u16(5353, 53, 16, 0)
        $0.u32(0x1234_0100)
        $0.u32(0)
    },
]

let nflogFixtures: [DecoderFixture] = [
    fixture("NFLOG IPv4, little-endian TLVs", .nflog, .tcp, syn4, tcpNeeds: 62) {
        $0.nflog(family: 2)
        $0.nflogMetadata()
        $0.tlv(length: 44, type: 9)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("NFLOG IPv6, big-endian TLVs", .nflog, .tcp, syn6, tcpNeeds: 82) {
        $0.nflog(family: 10)
        $0.nflogMetadata(bigEndian: true)
        $0.tlv(length: 64, type: 9, bigEndian: true)
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("NFLOG payload first, padding and TLVs after it", .nflog, .tcp, data4, tcpNeeds: 42) {
        $0.nflog(family: 2)
        $0.tlv(length: 50, type: 9)
        $0.ipv4(totalLength: 46)
        $0.tcpData()
        $0.zeros(2)
        $0.tlv(length: 8, type: 11)
        $0.u32(1000)
    },
    fixture("NFLOG of family 7 (bridge) is not IP", .nflog, .notIP) {
        $0.nflog(family: 7)
        $0.nflogMetadata()
        $0.tlv(length: 44, type: 9)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("NFLOG TLV shorter than its header", .nflog, .badLinkHeader) {
        $0.nflog(family: 2)
        $0.tlv(length: 2, type: 1)
        $0.tlv(length: 44, type: 9)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("NFLOG TLV longer than the frame", .nflog, .truncatedLinkHeader) {
        $0.nflog(family: 2)
        $0.tlv(length: 256, type: 1)
        $0.zeros(4)
    },
    fixture("NFLOG payload TLV too short for an IPv4 header", .nflog, .truncatedIPHeader) {
        $0.nflog(family: 2)
        $0.tlv(length: 20, type: 9)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
]

let ipv4Fixtures: [DecoderFixture] = [
    fixture("IPv4 with a 4-byte router-alert option", .ethernet, .tcp, syn4, tcpNeeds: 52) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 44, versionAndLength: 0x46, options: [0x94, 0x04, 0x00, 0x00])
        $0.tcpSyn()
    },
    fixture("IPv4 with the longest header (40 option bytes)", .ethernet, .tcp, data4, tcpNeeds: 88) {
        $0.ethernet(0x0800)
        $0.ipv4(
            totalLength: 86,
            versionAndLength: 0x4F,
            options: [UInt8](repeating: 0x01, count: 39) + [0x00]
        )
        $0.tcpData()
    },
    fixture("IPv4 first fragment carries TCP", .ethernet, .tcp, data4, tcpNeeds: 48) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 46, flagsAndOffset: 0x2000)
        $0.tcpData()
    },
    fixture("IPv4 first fragment ending inside the TCP header (hping3 -f)", .ethernet, .tcp, syn4, tcpNeeds: 48) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 36, flagsAndOffset: 0x2000)
        $0.tcpSynPrefix(16)
    },
    fixture("IPv4 first fragment of 8 bytes holds no flags", .ethernet, .badTCPHeaderLength) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 28, flagsAndOffset: 0x2000)
        // Ethernet padding that looks like the rest of the SYN.
        $0.tcpSyn()
    },
    fixture("IPv4 middle fragment", .ethernet, .laterFragment) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40, flagsAndOffset: 0x20B9)
        $0.fragmentData()
    },
    fixture("IPv4 last fragment", .ethernet, .laterFragment) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40, flagsAndOffset: 0x00B9)
        $0.fragmentData()
    },
    fixture("IPv4 later fragment of UDP", .raw, .laterFragment) {
        $0.ipv4(totalLength: 40, flagsAndOffset: 0x0001, proto: 17)
        $0.fragmentData()
    },
    fixture(
        "IPv4 total length 0 (TSO) takes the captured length",
        .ethernet,
        .tcp,
        data4,
        tcpNeeds: 48,
        payloadFromCapture: 54
    ) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 0)
        $0.tcpData()
    },
    fixture("IPv4 UDP", .ethernet, .notTCP) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 28, proto: 17)
        $0.u16(53, 53, 8, 0)
    },
    fixture("IPv4 ICMP echo", .ethernet, .notTCP) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 28, proto: 1)
        $0.u8(8, 0, 0, 0, 0, 1, 0, 1)
    },
    fixture("ARP", .ethernet, .notIP) {
        $0.ethernet(0x0806)
        $0.u16(1, 0x0800)
        $0.u8(6, 4)
        $0.u16(1)
        $0.u8(0x02, 0, 0, 0, 0, 1, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2)
    },
    fixture("ARP in Linux cooked v1", .linuxCooked, .notIP) {
        $0.linuxCooked(0x0806)
        $0.u16(1, 0x0800)
    },
    fixture("802.3 length field (LLC)", .ethernet, .notIP) {
        $0.ethernet(0x0026)
        $0.u8(0x42, 0x42, 0x03)
        $0.zeros(35)
    },
    fixture("IPv6 bytes on LINKTYPE_IPV4", .ipv4, .badIPVersion) {
        $0.ipv6(payloadLength: 20, nextHeader: 6)
        $0.tcpSyn()
    },
    fixture("IPv4 bytes on LINKTYPE_IPV6", .ipv6, .badIPVersion) {
        $0.ipv4(totalLength: 40)
        $0.tcpSyn()
    },
    fixture("IP version 5 on raw", .raw, .badIPVersion) {
        $0.ipv4(totalLength: 40, versionAndLength: 0x55)
        $0.tcpSyn()
    },
    fixture("IPv4 header length 16", .ethernet, .badIPHeaderLength) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40, versionAndLength: 0x44)
        $0.tcpSyn()
    },
    fixture("IPv4 total length shorter than its header", .ethernet, .badIPHeaderLength) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 16)
        $0.tcpSyn()
    },
    fixture("TCP data offset 4", .ethernet, .badTCPHeaderLength) {
        $0.ethernet(0x0800)
        $0.ipv4(totalLength: 40)
        $0.tcpSyn(dataOffset: 0x40)
    },
]

let ipv6Fixtures: [DecoderFixture] = [
    fixture("IPv6 hop-by-hop", .raw, .tcp, syn6, tcpNeeds: 62) {
        $0.ipv6(payloadLength: 28, nextHeader: 0)
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 routing (24 bytes)", .raw, .tcp, syn6, tcpNeeds: 78) {
        $0.ipv6(payloadLength: 44, nextHeader: 43)
        $0.u8(6, 2, 2, 1, 0, 0, 0, 0)
        $0.u16(0x2001, 0x0DB8, 0, 0, 0, 0, 0, 3)
        $0.tcpSyn()
    },
    fixture("IPv6 destination options", .raw, .tcp, syn6, tcpNeeds: 62) {
        $0.ipv6(payloadLength: 28, nextHeader: 60)
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 first fragment carries TCP", .raw, .tcp, syn6, tcpNeeds: 62) {
        $0.ipv6(payloadLength: 28, nextHeader: 44)
        $0.u8(6, 0, 0x00, 0x01, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.tcpSyn()
    },
    fixture("IPv6 first fragment ending inside the TCP header", .raw, .tcp, syn6, tcpNeeds: 62) {
        $0.ipv6(payloadLength: 24, nextHeader: 44)
        $0.u8(6, 0, 0x00, 0x01, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.tcpSynPrefix(16)
    },
    fixture("IPv6 whole datagram ending inside the TCP header", .raw, .badTCPHeaderLength) {
        $0.ipv6(payloadLength: 24, nextHeader: 44)
        $0.u8(6, 0, 0x00, 0x00, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.tcpSyn()
    },
    fixture("IPv6 later fragment", .raw, .laterFragment) {
        $0.ipv6(payloadLength: 28, nextHeader: 44)
        $0.u8(6, 0, 0x05, 0xC9, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.fragmentData()
    },
    fixture("IPv6 last fragment", .raw, .laterFragment) {
        $0.ipv6(payloadLength: 28, nextHeader: 44)
        $0.u8(6, 0, 0x05, 0xC8, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.fragmentData()
    },
    fixture("IPv6 authentication header (24 bytes)", .raw, .tcp, syn6, tcpNeeds: 78) {
        $0.ipv6(payloadLength: 44, nextHeader: 51)
        $0.u8(6, 4, 0, 0)
        $0.u32(0x0000_1000)
        $0.u32(1)
        $0.zeros(12)
        $0.tcpSyn()
    },
    fixture("IPv6 chain of six extension headers", .ethernet, .tcp, syn6, tcpNeeds: 148) {
        $0.ethernet(0x86DD)
        $0.ipv6(payloadLength: 100, nextHeader: 0)
        $0.optionsHeader(next: 60)
        $0.optionsHeader(next: 43)
        $0.u8(44, 2, 2, 1, 0, 0, 0, 0)
        $0.u16(0x2001, 0x0DB8, 0, 0, 0, 0, 0, 3)
        $0.u8(51, 0, 0x00, 0x00, 0xCA, 0xFE, 0xF0, 0x0D)
        $0.u8(60, 4, 0, 0)
        $0.u32(0x0000_1000)
        $0.u32(1)
        $0.zeros(12)
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 eight destination options headers (the limit)", .raw, .tcp, syn6, tcpNeeds: 118) {
        $0.ipv6(payloadLength: 84, nextHeader: 60)
        for _ in 0..<7 { $0.optionsHeader(next: 60) }
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 nine destination options headers", .raw, .ipv6ExtensionChainTooLong) {
        $0.ipv6(payloadLength: 92, nextHeader: 60)
        for _ in 0..<8 { $0.optionsHeader(next: 60) }
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 extension header longer than the payload", .raw, .badIPHeaderLength) {
        $0.ipv6(payloadLength: 4, nextHeader: 0)
        $0.optionsHeader(next: 6)
        $0.tcpSyn()
    },
    fixture("IPv6 UDP", .raw, .notTCP) {
        $0.ipv6(payloadLength: 8, nextHeader: 17)
        $0.u16(53, 53, 8, 0)
    },
    fixture("IPv6 UDP after hop-by-hop", .raw, .notTCP) {
        $0.ipv6(payloadLength: 16, nextHeader: 0)
        $0.optionsHeader(next: 17)
        $0.u16(53, 53, 8, 0)
    },
    fixture("ICMPv6", .raw, .notTCP) {
        $0.ipv6(payloadLength: 8, nextHeader: 58)
        $0.u8(128, 0, 0, 0, 0, 1, 0, 1)
    },
    fixture("IPv6 ESP", .raw, .notTCP) {
        $0.ipv6(payloadLength: 8, nextHeader: 50)
        $0.u32(0x0000_1000)
        $0.u32(1)
    },
    fixture("IPv6 no next header", .raw, .notTCP) {
        $0.ipv6(payloadLength: 0, nextHeader: 59)
    },
]

let allFixtures =
    linkFixtures + pppFixtures + mplsFixtures + tunnelFixtures + nflogFixtures + ipv4Fixtures + ipv6Fixtures

/// A segment no decoder would produce, so fields the decoder forgets to write show up.
let poisonSegment = TCPSegment(
    source: IPAddress(high: 0xDEAD, low: 0xBEEF),
    destination: IPAddress(high: 0xBAD, low: 0xF00D),
    sourcePort: 1,
    destinationPort: 2,
    sequence: 3,
    acknowledgement: 4,
    flags: [.fin, .urg],
    payloadLength: -1
)

func decode(_ bytes: ArraySlice<UInt8>, as linkType: LinkType) -> (DecodeOutcome, TCPSegment) {
    var segment = poisonSegment
    // A copy of exactly the captured length, so any read past it is out of bounds.
    let copy = Array(bytes)
    let outcome = copy.withUnsafeBytes { PacketDecoder.decode($0, linkType: linkType, into: &segment) }
    return (outcome, segment)
}

@Suite("Packet decoder")
struct PacketDecoderTests {
    @Test(arguments: allFixtures)
    func decodesFixture(_ fixture: DecoderFixture) {
        let (outcome, segment) = decode(fixture.bytes[...], as: fixture.linkType)
        #expect(outcome == fixture.outcome)
        if let expected = fixture.segment {
            #expect(segment == expected)
        }
    }

    /// Every prefix of a frame: a snap length may cut it anywhere.
    @Test(arguments: allFixtures)
    func truncatedFramesNeverDecodeWrongly(_ fixture: DecoderFixture) {
        for length in 0..<fixture.bytes.count {
            let (outcome, segment) = decode(fixture.bytes[..<length], as: fixture.linkType)
            guard var expected = fixture.segment, length >= fixture.tcpNeeds else {
                #expect(outcome != .tcp, "\(length) bytes")
                if fixture.outcome == .tcp {
                    #expect(outcome.isProblem, "\(length) bytes gave \(outcome.name)")
                }
                continue
            }
            if let payloadStart = fixture.payloadFromCapture {
                expected.payloadLength = max(0, length - payloadStart)
            }
            #expect(outcome == .tcp, "\(length) bytes gave \(outcome.name)")
            #expect(segment == expected, "\(length) bytes")
        }
    }

    /// IP datagrams too short to hold a TCP header, followed by bytes that would complete one (the IP length is
    /// authoritative: `badTCPHeaderLength`).
    static let datagramsShorterThanTCP: [DecoderFixture] = [
        fixture("Ethernet padding that looks like the rest of a SYN", .ethernet, .badTCPHeaderLength) {
            $0.ethernet(0x0800)
            $0.ipv4(totalLength: 24)
            $0.u8(0x9C, 0x40, 0x00, 0x50)
            $0.u8(0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0)
        },
        fixture("IPv6 payload length shorter than the SYN captured after it", .raw, .badTCPHeaderLength) {
            $0.ipv6(payloadLength: 12, nextHeader: 6)
            $0.tcpSyn()
        },
    ]

    /// An IP datagram too short to hold a TCP header must not be read from the bytes that follow it.
    @Test(arguments: datagramsShorterThanTCP)
    func tcpHeaderBeyondTheIPDatagramIsNotRead(_ fixture: DecoderFixture) {
        let (outcome, _) = decode(fixture.bytes[...], as: fixture.linkType)
        #expect(outcome.isProblem, "decoded as \(outcome.name)")
    }

    /// Random corruption of every fixture: the decoder must never read out of bounds.
    @Test
    func corruptedFramesNeverCrash() {
        var random = SeededRandom(seed: 0xDEC0DE)
        var counts = [DecodeOutcome: Int]()
        for fixture in allFixtures {
            for _ in 0..<300 {
                var bytes = fixture.bytes
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                let length = Int.random(in: 0...bytes.count, using: &random)
                counts[decode(bytes[..<length], as: fixture.linkType).0, default: 0] += 1
            }
        }
        for linkType in LinkType.allCases {
            for _ in 0..<300 {
                let length = Int.random(in: 0...96, using: &random)
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                counts[decode(bytes[...], as: linkType).0, default: 0] += 1
            }
        }
        // The corruption reached well past the first checks.
        #expect(counts[.tcp, default: 0] > 1000)
        #expect(counts.keys.count >= 9)
    }

    /// An NFLOG payload whose IP header gives no length (segmentation offload) ends with its TLV, not the frame.
    @Test
    func nflogPayloadEndsWithItsTLV() {
        var frame = ByteWriter()
        frame.nflog(family: 2)
        frame.tlv(length: 50, type: 9)
        frame.ipv4(totalLength: 0)
        frame.tcpData()
        frame.zeros(2)
        frame.tlv(length: 8, type: 11)
        frame.u32(1000)
        let (outcome, segment) = decode(frame.bytes[...], as: .nflog)
        #expect(outcome == .tcp)
        #expect(segment == data4)
    }

    @Test
    func outcomeNamesAndProblems() {
        #expect(
            DecodeOutcome.allCases.filter(\.isProblem).map(\.name) == [
                "truncated_link_header", "bad_link_header", "truncated_ip_header", "bad_ip_version",
                "bad_ip_header_length", "ipv6_extension_chain_too_long", "truncated_tcp_header",
                "bad_tcp_header_length",
            ]
        )
        #expect(
            DecodeOutcome.allCases.filter { !$0.isProblem }.map(\.name) == [
                "tcp", "not_ip", "not_tcp", "later_fragment",
            ]
        )
    }
}

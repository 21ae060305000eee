import Foundation
import SynwatchTrafficGen
import Testing

@Suite("Spoofed bulk flood")
struct SpoofedBulkTests {
    @Test("74-byte Linux SYNs from exactly the requested number of sources, evenly spaced")
    func bulk() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/bulk.pcap"
            let truth = try SpoofedBulk(seed: 5, packets: 50_000, sources: 20_000, rate: 1_000_000)
                .write(to: path, precision: .nanoseconds)
            let (_, packets) = try decodeCapture(path)
            let capture = try Capture(path: path)
            #expect(packets.count == 50_000 && truth.packets == 50_000)
            #expect(capture.frames.allSatisfy { $0.bytes.count == 74 })
            #expect(packets.allSatisfy { $0.ipHeaderChecksumOK && $0.tcpChecksumOK == true })
            #expect(packets.allSatisfy { $0.tcp!.flags == 0x02 && $0.tcp!.headerLength == 40 })
            #expect(packets.allSatisfy { $0.destination == [198, 18, 0, 10] && $0.tcp!.destinationPort == 80 })
            let sources = Set(packets.map(\.source))
            #expect(sources.count == 20_000)
            let spoofed: NetPrefix = "198.19.0.0/16"
            #expect(sources.allSatisfy { spoofed.contains(NetAddress(addressText($0))!) })
            #expect(zip(capture.frames, capture.frames.dropFirst()).allSatisfy { $1.time - $0.time == 1000 })

            let flood = try #require(truth.floods.first)
            #expect(flood.kind == .randomSource && flood.distinctSources == 20_000 && flood.synPackets == 50_000)
            #expect(flood.synPerSecond == 1_000_000)
        }
    }

    @Test("IPv6 bulk frames verify as well")
    func bulkIPv6() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/bulk6.pcapng"
            try SpoofedBulk(packets: 2000, sources: 2000, family: .ipv6)
                .write(to: path, format: .pcapng, vlanTags: [VLANTag(id: 7)])
            let (_, packets) = try decodeCapture(path)
            #expect(packets.count == 2000 && Set(packets.map(\.source)).count == 2000)
            #expect(packets.allSatisfy { $0.isIPv6 && $0.vlanIDs == [7] && $0.tcpChecksumOK == true })
        }
    }

    @Test("A tool's SYNs: 54-byte frames without options, checksums right for IPv4 and IPv6", arguments: [false, true])
    func bareStyle(ipv6: Bool) throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/bare.pcap"
            let truth = try SpoofedBulk(packets: 2000, sources: 500, family: ipv6 ? .ipv6 : .ipv4, style: .bare)
                .write(to: path)
            let (_, packets) = try decodeCapture(path)
            let capture = try Capture(path: path)
            #expect(packets.count == 2000 && Set(packets.map(\.source)).count == 500)
            #expect(capture.frames.allSatisfy { $0.bytes.count == (ipv6 ? 74 : 54) })
            #expect(packets.allSatisfy { ($0.isIPv6 || $0.ipHeaderChecksumOK) && $0.tcpChecksumOK == true })
            #expect(packets.allSatisfy { $0.tcp!.flags == 0x02 && $0.tcp!.headerLength == 20 })
            #expect(truth.floods.first?.style == .bare)
        }
    }

    @Test("more sources than the prefix holds is an error, not a silent repeat")
    func tooManySources() throws {
        try withScratchDirectory { directory -> Void in
            #expect(throws: TrafficGenError.self) {
                try SpoofedBulk(packets: 10, sources: 70_000).write(to: "\(directory)/x.pcap")
            }
        }
    }
}

import Foundation
import SynwatchTrafficGen
import Testing

@Suite("Capture files")
struct CaptureFormatTests {
    @Test("file headers: magic, link type and timestamp resolution", arguments: CaptureFormat.allCases)
    func fileHeaders(format: CaptureFormat) throws {
        try withScratchDirectory { directory in
            for precision in TimestampPrecision.allCases {
                for link in LinkLayer.allCases {
                    let path = "\(directory)/header.\(format.rawValue)"
                    let writer = try CaptureWriter(path: path, format: format, precision: precision, linkType: link)
                    try writer.close()
                    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                    let capture = try Capture(path: path)
                    #expect(capture.linkType == UInt32(link.linkTypeNumber))
                    #expect(capture.resolution == (precision == .microseconds ? 1_000_000 : 1_000_000_000))
                    #expect(capture.frames.isEmpty)
                    switch format {
                    case .pcap:
                        let magic: [UInt8] =
                            precision == .microseconds ? [0xD4, 0xC3, 0xB2, 0xA1] : [0x4D, 0x3C, 0xB2, 0xA1]
                        #expect(Array(bytes.prefix(4)) == magic)
                        #expect(bytes.count == 24)
                    case .pcapng:
                        #expect(Array(bytes.prefix(4)) == [0x0A, 0x0D, 0x0D, 0x0A])
                        #expect(bytes.count == 28 + 32)
                    }
                }
            }
        }
    }

    @Test("frames and timestamps survive a round trip; microseconds truncate", arguments: CaptureFormat.allCases)
    func roundTrip(format: CaptureFormat) throws {
        try withScratchDirectory { directory in
            let frames: [[UInt8]] = [Array(0..<60), Array(repeating: 0xAB, count: 61), [1, 2, 3], []]
            let times: [Int64] = [1_735_689_600_123_456_789, 1_735_689_601_000_000_001, 5, 1_735_689_602_999_999_999]
            for precision in TimestampPrecision.allCases {
                let path = "\(directory)/trip.\(format.rawValue)"
                let writer = try CaptureWriter(path: path, format: format, precision: precision, linkType: .rawIP)
                for (frame, time) in zip(frames, times) { try writer.append(frame, at: time) }
                #expect(writer.packetCount == frames.count)
                try writer.close()
                let capture = try Capture(path: path)
                #expect(capture.frames.map(\.bytes) == frames)
                let expected = precision == .nanoseconds ? times : times.map { $0 / 1000 * 1000 }
                #expect(capture.frames.map(\.time) == expected)
            }
        }
    }

    @Test("a writer's buffer flushes whole records across many megabytes")
    func largeFile() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/large.pcapng"
            let writer = try CaptureWriter(path: path, format: .pcapng, linkType: .ethernet)
            for index in 0..<20_000 {
                let frame = [UInt8](repeating: UInt8(index % 251), count: 60 + index % 1400)
                try writer.append(frame, at: Int64(index) * 1000)
            }
            try writer.close()
            let capture = try Capture(path: path)
            #expect(capture.frames.count == 20_000)
            #expect(
                capture.frames.enumerated().allSatisfy { index, frame in
                    frame.bytes.count == 60 + index % 1400 && frame.bytes.allSatisfy { $0 == UInt8(index % 251) }
                        && frame.time == Int64(index) * 1000
                }
            )
        }
    }

    @Test("writing to a missing directory names the failing call")
    func openFailure() {
        #expect(throws: TrafficGenError.system(call: "open", path: "/nonexistent/x.pcap", errno: ENOENT)) {
            _ = try CaptureWriter(path: "/nonexistent/x.pcap")
        }
    }

    static let combinations: [(CaptureFormat, TimestampPrecision, LinkLayer, AddressFamily)] =
        CaptureFormat.allCases.flatMap { format in
            TimestampPrecision.allCases.flatMap { precision in
                LinkLayer.allCases.flatMap { link in [AddressFamily.ipv4, .ipv6].map { (format, precision, link, $0) } }
            }
        }

    @Test(
        "every format, precision, link type and family decodes, verifies and reads in tcpdump",
        .enabled(if: Tcpdump.isAvailable, "tcpdump is not installed"),
        arguments: combinations
    )
    func everyCombination(
        format: CaptureFormat,
        precision: TimestampPrecision,
        link: LinkLayer,
        family: AddressFamily
    ) throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/all.\(format.rawValue)"
            let truth = try Scenario(seed: 11, duration: 1, family: family)
                .background(Background(rate: 40, unusualHeaderShare: 0.3, fragmentedShare: 0.3))
                .flood(Flood(.randomSource, rate: 200, start: 0.2, duration: 0.5))
                .write(to: path, format: format, precision: precision, linkType: link)
            let (capture, packets) = try decodeCapture(path)
            #expect(capture.linkType == UInt32(link.linkTypeNumber))
            #expect(packets.count == truth.packets)
            #expect(packets.allSatisfy { $0.isIPv6 == (family == .ipv6) })
            #expect(packets.allSatisfy { $0.ipHeaderChecksumOK })
            #expect(packets.allSatisfy { $0.isFragment || $0.tcpChecksumOK == true })
            #expect(zip(packets, packets.dropFirst()).allSatisfy { $0.time <= $1.time })

            let lines = try Tcpdump.read(path)
            #expect(lines.count == truth.packets)
            let synCount = packets.filter { $0.tcp?.isSYN == true }.count
            #expect(lines.filter { $0.contains("Flags [S],") }.count == synCount)
            #expect(lines.contains { $0.contains("Flags [S.],") })
            // tcpdump checks IPv4 header and TCP checksums itself at -vv.
            let verbose = try Tcpdump.read(path, ["-vv"])
            #expect(!verbose.contains { $0.contains("incorrect") || $0.contains("bad cksum") })
        }
    }

    @Test("stacked 802.1ad/802.1Q tags are written outermost first", .enabled(if: Tcpdump.isAvailable))
    func vlanTags() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/vlan.pcap"
            let tags = [VLANTag(.dot1ad, id: 200), VLANTag(.dot1Q, id: 100, priority: 3)]
            let truth = try Scenario(seed: 3, duration: 0.5)
                .background(Background(rate: 50))
                .write(to: path, vlanTags: tags)
            let (_, packets) = try decodeCapture(path)
            #expect(packets.count == truth.packets)
            #expect(packets.allSatisfy { $0.vlanIDs == [200, 100] })
            let lines = try Tcpdump.read(path, ["-e"])
            #expect(lines.count == truth.packets)
            #expect(
                lines.allSatisfy {
                    $0.contains("ethertype 802.1Q-QinQ (0x88a8)") && $0.contains("vlan 200, p 0")
                        && $0.contains("vlan 100, p 3")
                }
            )
            #expect(throws: TrafficGenError.self) {
                try Scenario(seed: 3, duration: 0.5).background().write(to: path, linkType: .rawIP, vlanTags: tags)
            }
        }
    }

    @Test("link headers carry the direction and the family", .enabled(if: Tcpdump.isAvailable))
    func linkHeaderDetails() throws {
        try withScratchDirectory { directory in
            for family in [AddressFamily.ipv4, .ipv6] {
                let sll = "\(directory)/sll.pcap"
                try Scenario(seed: 5, duration: 0.3, family: family).background(Background(rate: 30))
                    .write(to: sll, linkType: .linuxCooked)
                let lines = try Tcpdump.read(sll, ["-e"])
                #expect(lines.contains { $0.contains(" In ") } && lines.contains { $0.contains(" Out ") })

                let null = "\(directory)/null.pcap"
                try Scenario(seed: 5, duration: 0.3, family: family).background(Background(rate: 30))
                    .write(to: null, linkType: .bsdLoopback)
                let capture = try Capture(path: null)
                let expected: [UInt8] = family == .ipv4 ? [2, 0, 0, 0] : [30, 0, 0, 0]
                #expect(capture.frames.allSatisfy { Array($0.bytes.prefix(4)) == expected })
            }
        }
    }
}

import Foundation
import SynwatchTrafficGen
import Testing

@Suite("Traffic model")
struct ScenarioTests {
    private static let victim: [UInt8] = [198, 18, 0, 10]

    @Test("benign handshakes, data and closes follow TCP's sequence numbers")
    func handshakes() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/benign.pcap"
            let truth = try Scenario(seed: 21, duration: 4)
                .background(
                    Background(
                        rate: 150,
                        closedPortShare: 0.05,
                        lostSynAckShare: 0.05,
                        resetShare: 0.1,
                        simultaneousCloseShare: 0.1
                    )
                )
                .write(to: path)
            let (_, packets) = try decodeCapture(path)
            #expect(packets.count == truth.packets)
            var byFlow: [FourTuple: [DecodedPacket]] = [:]
            for packet in packets { byFlow[FourTuple(packet), default: []].append(packet) }

            var complete = 0, refused = 0, retried = 0, closed = 0, reset = 0
            for (flow, sent) in byFlow where sent[0].tcp!.isSYN {
                let syns = sent.filter { $0.tcp!.isSYN }
                let clientISN = syns[0].tcp!.sequence
                #expect(syns.allSatisfy { $0.tcp!.sequence == clientISN }, "a retransmitted SYN keeps its ISN")
                if syns.count > 1 {
                    retried += 1
                    #expect(syns[1].time - syns[0].time >= 1_000_000_000)
                }
                let answers = byFlow[flow.reversed] ?? []
                if answers.count == 1, answers[0].tcp!.isRST {
                    refused += 1
                    #expect(answers[0].tcp!.acknowledgment == clientISN &+ 1 && answers[0].tcp!.isACK)
                    continue
                }
                let synAck = try #require(answers.first { $0.tcp!.isSYNACK })
                #expect(synAck.tcp!.acknowledgment == clientISN &+ 1)
                let serverISN = synAck.tcp!.sequence
                let ack = try #require(sent.first { !$0.tcp!.isSYN })
                #expect(ack.tcp!.flags == 0x10)
                #expect(ack.tcp!.sequence == clientISN &+ 1 && ack.tcp!.acknowledgment == serverISN &+ 1)
                complete += 1

                // Every later segment sits inside the stream each side has sent, counting SYN and FIN.
                var clientNext = clientISN &+ 1
                var serverNext = serverISN &+ 1
                let afterHandshake = (sent + answers).filter { $0.tcp!.flags & 0x02 == 0 }
                for packet in afterHandshake.sorted(by: { $0.time < $1.time }) {
                    let tcp = packet.tcp!
                    let fromClient = packet.source == flow.source
                    #expect(tcp.sequence == (fromClient ? clientNext : serverNext), "in-order sequence numbers")
                    if tcp.isACK && !tcp.isRST {
                        // Never acknowledges more than the other side has sent by then.
                        let (otherISN, otherNext) = fromClient ? (serverISN, serverNext) : (clientISN, clientNext)
                        #expect(tcp.acknowledgment &- otherISN >= 1 && otherNext &- tcp.acknowledgment < 1 << 31)
                    }
                    let advance = UInt32(tcp.payloadLength) &+ (tcp.isFIN ? 1 : 0)
                    if fromClient { clientNext &+= advance } else { serverNext &+= advance }
                }
                let all = sent + answers
                if all.contains(where: { $0.tcp!.isRST }) {
                    reset += 1
                } else {
                    #expect(all.filter { $0.tcp!.isFIN }.count == 2, "both sides close")
                    let lastACK = all.max { $0.time < $1.time }!.tcp!
                    #expect(lastACK.flags == 0x10)
                    closed += 1
                }
            }
            #expect(complete + refused == truth.backgroundConnections)
            #expect(refused > 0 && retried > 0 && reset > 0 && closed > 0)
        }
    }

    @Test("the same seed gives the same bytes; another seed does not")
    func determinism() throws {
        try withScratchDirectory { directory in
            func build(_ seed: UInt64, _ name: String) throws -> (Data, GroundTruth) {
                let path = "\(directory)/\(name).pcapng"
                let truth = try Scenario(seed: seed, duration: 3, family: .ipv6)
                    .background(Background(rate: 100, unusualHeaderShare: 0.1, fragmentedShare: 0.1))
                    .flood(Flood(.distributed, rate: 300, start: 1, duration: 1, bots: 20))
                    .scan(Scan(.vertical(ports: 1...100), rate: 200, start: 0.5))
                    .backscatter(Backscatter(rate: 50, start: 1, duration: 1))
                    .flashCrowd(FlashCrowd(start: 2, duration: 0.5))
                    .write(to: path, format: .pcapng, precision: .nanoseconds, linkType: .linuxCooked2)
                return (try Data(contentsOf: URL(fileURLWithPath: path)), truth)
            }
            let (first, firstTruth) = try build(42, "a")
            let (second, secondTruth) = try build(42, "b")
            let (other, _) = try build(43, "c")
            #expect(first == second)
            #expect(firstTruth == secondTruth)
            #expect(first != other)
        }
    }

    @Test(
        "a flood's ground truth matches the SYNs in the file",
        arguments: [FloodKind.randomSource, .singleSource, .distributed]
    )
    func floodTruth(kind: FloodKind) throws {
        try withScratchDirectory { directory in
            for direction in CaptureDirection.allCases {
                let path = "\(directory)/flood.pcap"
                let truth = try Scenario(seed: 8, duration: 5)
                    .background(Background(rate: 100))
                    .flood(Flood(kind, rate: 800, start: 1, duration: 2, bots: 30))
                    .write(to: path, direction: direction)
                let flood = try #require(truth.floods.first)
                #expect(truth.floods.count == 1 && flood.kind == kind && flood.port == 80)
                #expect(flood.victim == "198.18.0.10")
                let (_, packets) = try decodeCapture(path)
                #expect(packets.count == truth.packets)

                let attackers: NetPrefix = kind == .randomSource ? "198.19.0.0/16" : "198.18.32.0/19"
                let syns = packets.filter {
                    $0.tcp?.isSYN == true && $0.destination == Self.victim
                        && attackers.contains(NetAddress(addressText($0.source))!)
                }
                #expect(syns.count == flood.synPackets)
                let attempts = Set(syns.map { Attempt(flow: FourTuple($0), isn: $0.tcp!.sequence) })
                #expect(attempts.count == flood.attempts)
                #expect(Set(syns.map(\.source)).count == flood.distinctSources)
                #expect(abs(Double(syns.first!.time) / 1e9 - flood.start) < 1e-6)
                #expect(abs(flood.synPerSecond - 800) < 100)
                switch kind {
                case .randomSource: #expect(flood.distinctSources == flood.attempts)
                case .singleSource: #expect(flood.distinctSources == 1)
                case .distributed:
                    #expect(flood.distinctSources == 30)
                    #expect(flood.synPackets == 3 * flood.attempts, "bots retransmit after 1 s and 3 s")
                }

                // No attacker ever completes a handshake.
                let flows = Set(syns.map(FourTuple.init))
                #expect(!packets.contains { $0.tcp?.flags == 0x10 && flows.contains(FourTuple($0)) })
                let synAcks = packets.filter { $0.tcp?.isSYNACK == true && flows.contains(FourTuple($0).reversed) }
                switch direction {
                case .both: #expect(synAcks.count >= flood.synPackets)
                case .incomingOnly:
                    #expect(synAcks.isEmpty)
                    #expect(!packets.contains { $0.source == Self.victim || $0.source == [198, 18, 0, 11] })
                }
            }
        }
    }

    @Test("a flood at a closed port: every SYN to it is refused, and background clients connect elsewhere")
    func closedPortFlood() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/closed.pcap"
            let truth = try Scenario(seed: 10, duration: 5)
                .background(Background(rate: 300))
                .flood(Flood(.singleSource, rate: 400, start: 1, duration: 2, closedPort: true))
                .write(to: path)
            let (_, packets) = try decodeCapture(path)
            let toVictim = packets.filter { $0.destination == Self.victim && $0.tcp?.destinationPort == 80 }
            let fromVictim = packets.filter { $0.source == Self.victim && $0.tcp?.sourcePort == 80 }
            let syns = toVictim.filter { $0.tcp!.isSYN }
            #expect(syns.count == truth.floods[0].synPackets)
            #expect(Set(toVictim.map(\.source)).count == 1, "only the flood's source comes to the closed port")
            #expect(!fromVictim.isEmpty && fromVictim.allSatisfy { $0.tcp!.isRST && !$0.tcp!.isSYNACK })
            #expect(packets.contains { $0.destination == Self.victim && $0.tcp?.destinationPort == 443 })
        }
    }

    @Test("a pulsing flood is silent while off")
    func pulse() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/pulse.pcap"
            let truth = try Scenario(seed: 9, duration: 6)
                .flood(Flood(.randomSource, rate: 500, start: 1, duration: 4, pulse: Pulse(on: 0.5, off: 1)))
                .write(to: path, direction: .incomingOnly)
            let (_, packets) = try decodeCapture(path)
            let origin = Int64(1_735_689_601) * 1_000_000_000
            let phases = packets.map { ($0.time - origin) % 1_500_000_000 }
            #expect(phases.allSatisfy { $0 < 500_000_000 })
            #expect(packets.count == truth.floods[0].synPackets)
            #expect(abs(truth.floods[0].synPerSecond - 500) < 80)
            #expect(truth.floods[0].pulse == Pulse(on: 0.5, off: 1))
        }
    }

    @Test("a vertical scan: open ports answer SYN-ACK and get the scanner's RST; closed ones RST/ACK")
    func verticalScan() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/scan.pcap"
            let truth = try Scenario(seed: 4, duration: 3)
                .scan(Scan(.vertical(ports: 1...200), openPorts: [22, 80, 443], rate: 400, start: 0))
                .write(to: path)
            let scan = try #require(truth.scans.first)
            #expect(scan.shape == .vertical && scan.probes == 200 && scan.ports == 200 && scan.targets == 1)
            let (_, packets) = try decodeCapture(path)
            let source = [UInt8](scan.source.description.split(separator: ".").map { UInt8($0)! })
            let probes = packets.filter { $0.source == source && $0.tcp!.isSYN }
            #expect(probes.count == 200)
            #expect(Set(probes.map(\.tcp!.destinationPort)) == Set(1...200))
            let synAcks = packets.filter { $0.tcp!.isSYNACK }
            #expect(Set(synAcks.map(\.tcp!.sourcePort)) == [22, 80])
            let resets = packets.filter { $0.source == source && $0.tcp!.isRST }
            #expect(resets.count == 2 && resets.allSatisfy { $0.tcp!.flags == 0x04 })
            #expect(packets.filter { $0.destination == source && $0.tcp!.flags == 0x14 }.count == 198)
        }
    }

    @Test("a horizontal scan probes one port across consecutive addresses")
    func horizontalScan() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/hscan.pcap"
            let truth = try Scenario(seed: 4, duration: 3, family: .ipv6)
                .scan(Scan(.horizontal(port: 22, targets: 50), rate: 400, start: 0))
                .write(to: path)
            let scan = try #require(truth.scans.first)
            #expect(scan.shape == .horizontal && scan.port == 22 && scan.targets == 50 && scan.probes == 50)
            let (_, packets) = try decodeCapture(path)
            let probes = packets.filter { $0.tcp!.isSYN }
            let expected = (1...50).map { "2001:db8:0:0:0:0:0:\(String($0, radix: 16))" }
            #expect(Set(probes.map(\.destinationText)) == Set(expected))
            #expect(probes.allSatisfy { $0.tcp!.destinationPort == 22 })
        }
    }

    @Test("backscatter: SYN-ACKs and RSTs to our address that answer no SYN of ours")
    func backscatter() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/backscatter.pcap"
            let truth = try Scenario(seed: 6, duration: 4)
                .backscatter(Backscatter(rate: 200, start: 0.5, duration: 2, reflectorCount: 100))
                .write(to: path)
            let entry = try #require(truth.backscatter.first)
            #expect(entry.address == "198.18.0.11")
            let (_, packets) = try decodeCapture(path)
            #expect(packets.allSatisfy { $0.destination == [198, 18, 0, 11] })
            #expect(!packets.contains { $0.tcp!.isSYN })
            #expect(packets.filter { $0.tcp!.isSYNACK }.count == entry.synAcks)
            #expect(packets.filter { $0.tcp!.isRST }.count == entry.resets)
            #expect(Set(packets.map(\.source)).count == entry.reflectors)
            #expect(entry.reflectors <= 100 && entry.resets > 0)
        }
    }

    @Test("a flash crowd's connections all complete")
    func flashCrowd() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/crowd.pcap"
            let truth = try Scenario(seed: 10, duration: 3)
                .background(Background(rate: 50))
                .flashCrowd(FlashCrowd(start: 1, duration: 1))
                .write(to: path, direction: .incomingOnly)
            #expect(truth.hasFlashCrowd && truth.floods.isEmpty)
            let crowd = try #require(truth.flashCrowds.first)
            #expect(abs(crowd.connectionsPerSecond - 500) < 100, "ten times the background")
            let (_, packets) = try decodeCapture(path)
            let prefix: NetPrefix = "198.18.64.0/18"
            let fromCrowd = packets.filter { prefix.contains(NetAddress(addressText($0.source))!) }
            let syns = fromCrowd.filter { $0.tcp!.isSYN }
            #expect(syns.count == crowd.connections)
            var acked = Set<FourTuple>()
            for packet in fromCrowd where packet.tcp!.flags == 0x10 { acked.insert(FourTuple(packet)) }
            #expect(syns.allSatisfy { acked.contains(FourTuple($0)) })
        }
    }

    @Test("IPv4 options, IPv6 extension headers and fragments decode, and fragments reassemble correctly")
    func unusualHeaders() throws {
        try withScratchDirectory { directory in
            for family in [AddressFamily.ipv4, .ipv6] {
                let path = "\(directory)/headers.pcap"
                try Scenario(seed: 12, duration: 2, family: family)
                    .background(Background(rate: 60, unusualHeaderShare: 0.5, fragmentedShare: 0.5))
                    .write(to: path)
                let (_, packets) = try decodeCapture(path)
                if family == .ipv4 {
                    #expect(packets.contains { $0.hasIPv4Options })
                } else {
                    #expect(packets.contains { $0.extensionHeaders.starts(with: [0, 60, 43]) })
                    #expect(packets.contains { $0.extensionHeaders == [44] })
                }
                let firsts = packets.filter { $0.moreFragments && $0.fragmentOffset == 0 }
                let rests = packets.filter { $0.fragmentOffset > 0 }
                #expect(!firsts.isEmpty && firsts.count == rests.count)
                #expect(firsts.allSatisfy { $0.tcp?.isACK == true } && rests.allSatisfy { $0.tcp == nil })
                for first in firsts {
                    let rest = try #require(
                        rests.first { $0.identification == first.identification && $0.source == first.source }
                    )
                    #expect(rest.fragmentOffset == first.transport.count && !rest.moreFragments)
                    let segment = first.transport + rest.transport
                    #expect(tcpChecksumIsValid(segment, source: first.source, destination: first.destination))
                }
            }
        }
    }

    @Test("configurations that cannot be played are rejected with a reason")
    func invalidConfigurations() throws {
        try withScratchDirectory { directory in
            let path = "\(directory)/bad.pcap"
            #expect(throws: TrafficGenError.self) {
                try Scenario(seed: 1, duration: 5).flood(Flood(start: 6)).write(to: path)
            }
            #expect(throws: TrafficGenError.self) {
                try Scenario(seed: 1, duration: 5).flood(Flood(victim: Endpoint("2001:db8::a", 80))).write(to: path)
            }
            #expect(throws: TrafficGenError.self) {
                try Scenario(seed: 1, duration: 5).flood(Flood(.distributed, sources: "198.18.32.0/28", bots: 17))
                    .write(to: path)
            }
        }
    }

    @Test("ground truth JSON uses the event field names and reads back")
    func truthJSON() throws {
        try withScratchDirectory { directory in
            let truth = try Scenario(seed: 2, duration: 2)
                .flood(Flood(rate: 100, start: 0.5, duration: 1))
                .scan(Scan(.vertical(ports: 1...10), rate: 100, start: 0.1))
                .write(to: "\(directory)/truth.pcap")
            let data = try truth.jsonData()
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let flood = try #require((object["floods"] as? [[String: Any]])?.first)
            #expect(flood["kind"] as? String == "random-source")
            #expect(flood["victim"] as? String == "198.18.0.10")
            #expect(flood["syn_per_s"] != nil && flood["distinct_sources"] != nil)
            #expect(object["has_flash_crowd"] as? Bool == false)
            #expect(try GroundTruth.decode(data) == truth)
        }
    }
}

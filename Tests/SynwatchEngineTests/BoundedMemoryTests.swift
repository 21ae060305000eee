import Testing

@testable import SynwatchEngine

/// Small tables under streams far larger than they are: occupancy stays within capacity and the
/// counters account for every entry that had to go.
@Suite("Bounded memory")
struct BoundedMemoryTests {
    static let configuration: EngineConfiguration = {
        var configuration = EngineConfiguration()
        configuration.handshakes.capacity = 64
        configuration.victims.capacity = 16
        configuration.sources.capacity = 64
        configuration.backscatter.capacity = 16
        return configuration
    }()

    struct Recent {
        var syn: Packet
        var serverISN: UInt32?
    }

    /// A handshake is one aligned 32-byte entry: two to a cache line, and the prefetch of one (`Engine`) fetches it
    /// whole. A field added must fit.
    @Test
    func handshakeEntriesStayWithinHalfACacheLine() {
        #expect(MemoryLayout<HandshakeEntry>.stride == 32)
    }

    func checkCapacity(_ engine: Engine) throws {
        let occupancy = engine.occupancy
        try #require(occupancy.handshakeCapacity == 64 && occupancy.handshakes <= 64)
        try #require(occupancy.victimCapacity == 16 && occupancy.victims <= 16)
        try #require(occupancy.sourceCapacity == 64 && occupancy.sources <= 64)
        try #require(occupancy.backscatterCapacity == 16 && occupancy.backscatterAddresses <= 16)
    }

    /// A SYN is a retransmission, sampled out (on a service under attack), or a new attempt, and
    /// every attempt ends up in exactly one place. Holds because no 4-tuple here comes back with a
    /// new ISN: such a replacement is counted nowhere.
    func checkAttempts(_ engine: Engine) throws {
        let statistics = engine.statistics
        let attempts = statistics.synPackets - statistics.synRetransmits - statistics.sampledOut
        let accounted =
            statistics.completions + statistics.resets + statistics.timeouts + statistics.handshakeEvictions
            + engine.occupancy.handshakes
        try #require(attempts == accounted, "\(statistics)")
    }

    /// A spoofed flood over 40 services mixed with real clients that retransmit, complete and reset,
    /// SYN-ACKs for evicted attempts and unsolicited ones to many addresses.
    @Test
    func spoofedStreamStaysWithinCapacity() throws {
        let engine = try Engine(configuration: Self.configuration)
        var random = SeededRandom(seed: 64)
        let services: [(IPAddress, UInt16)] = (0..<40).map { (index: Int) in
            (IPAddress(ipv4: 0xC612_000A + UInt32(index / 5)), UInt16(80 + index % 5))
        }
        let clients = (0..<500).map { (index: UInt32) in IPAddress(ipv4: 0xC613_0000 + index) }
        var recent = [Recent]()
        var nextSpoofed: UInt32 = 0xC612_1000
        var nextClientPort: UInt16 = 1024
        var time = 1_700_000_000 * second
        for _ in 0..<60_000 {
            time +=
                random.chance(0.0005)
                ? Int64.random(in: second...(8 * second), using: &random)
                : Int64.random(in: 0...(400_000), using: &random)
            let pick = Int.random(in: 0..<100, using: &random)
            if pick < 70 || recent.isEmpty {
                let service = services.randomElement(using: &random)!
                let source: IPAddress
                if random.chance(0.7) {
                    source = IPAddress(ipv4: nextSpoofed)
                    nextSpoofed += 1
                } else {
                    source = clients.randomElement(using: &random)!
                }
                // A fresh client port every time: no 4-tuple is reused with a new ISN.
                nextClientPort = nextClientPort == .max ? 1024 : nextClientPort + 1
                let syn = Packet(
                    source: source,
                    destination: service.0,
                    sourcePort: nextClientPort,
                    destinationPort: service.1,
                    sequence: random.next32(),
                    flags: .syn
                )
                engine.feed(syn, at: time)
                recent.append(Recent(syn: syn))
                if recent.count > 200 { recent.removeFirst(100) }
            } else if pick < 94 {
                let index = Int.random(in: 0..<recent.count, using: &random)
                let attempt = recent[index]
                switch pick {
                case 70..<76:
                    engine.feed(attempt.syn, at: time)
                case 76..<84:
                    let isn = random.next32()
                    engine.feed(attempt.syn.synAck(isn: isn), at: time)
                    recent[index].serverISN = isn
                case 84..<90:
                    engine.feed(attempt.syn.completingAck(serverISN: attempt.serverISN ?? 0), at: time)
                default:
                    engine.feed(attempt.syn.reset, at: time)
                }
            } else {
                let reflector = v4(198, 18, 200, UInt8.random(in: 1...254, using: &random))
                let target = IPAddress(ipv4: 0xC613_8000 + UInt32.random(in: 0..<30_000, using: &random))
                engine.feed(
                    Packet(
                        source: reflector,
                        destination: target,
                        sourcePort: 443,
                        destinationPort: 5555,
                        sequence: random.next32(),
                        acknowledgement: random.next32(),
                        flags: [.syn, .ack]
                    ),
                    at: time
                )
            }
            try checkCapacity(engine)
            try checkAttempts(engine)
            _ = engine.takeEvents()
        }
        engine.finish()
        try checkCapacity(engine)
        try checkAttempts(engine)
        let statistics = engine.statistics
        #expect(statistics.handshakeEvictions > 1_000)
        #expect(statistics.timeouts > 0)
        #expect(statistics.completions > 0)
        #expect(statistics.resets > 0)
        #expect(statistics.synRetransmits > 0)
        #expect(statistics.victimEvictions + statistics.victimsUntracked > 0)
        #expect(statistics.sourceEvictions > 0)
        #expect(statistics.backscatterEvictions > 0)
    }

    /// Each new key takes a free slot or evicts one (or, for services, is left untracked).
    @Test
    func everyNewKeyIsStoredOrAccountedFor() throws {
        let engine = try Engine(configuration: Self.configuration)
        var time = 1_700_000_000 * second
        let scanner = v4(198, 18, 50, 5)
        // 5000 services on 100 hosts, one SYN each: 5100 keys with each host's aggregate (port 0).
        for index in 0..<5_000 {
            time += 200_000
            engine.feed(
                Packet(
                    source: scanner,
                    destination: IPAddress(ipv4: 0xC612_4000 + UInt32(index / 50)),
                    sourcePort: 50_000,
                    destinationPort: UInt16(1 + index % 50),
                    sequence: UInt32(index),
                    flags: .syn
                ),
                at: time
            )
            try checkCapacity(engine)
        }
        var statistics = engine.statistics
        #expect(engine.occupancy.victims + statistics.victimEvictions + statistics.victimsUntracked == 5_100)
        #expect(statistics.victimEvictions > 4_000)

        // 5000 sources, each sending three SYNs in a row, so each enters the table once.
        for index in 0..<5_000 {
            for port in UInt16(1)...3 {
                time += 50_000
                engine.feed(
                    Packet(
                        source: IPAddress(ipv4: 0xC613_0000 + UInt32(index)),
                        destination: v4(198, 18, 0, 10),
                        sourcePort: port,
                        destinationPort: 80,
                        sequence: 7,
                        flags: .syn
                    ),
                    at: time
                )
                try checkCapacity(engine)
            }
        }
        statistics = engine.statistics
        // The scanner may still hold a slot.
        #expect((5_000...5_001).contains(engine.occupancy.sources + statistics.sourceEvictions))

        // 5000 addresses, one unsolicited SYN-ACK each.
        for index in 0..<5_000 {
            time += 100_000
            engine.feed(
                Packet(
                    source: v4(198, 18, 200, 1),
                    destination: IPAddress(ipv4: 0xC613_8000 + UInt32(index)),
                    sourcePort: 80,
                    destinationPort: 40_000,
                    sequence: 1,
                    acknowledgement: 1,
                    flags: [.syn, .ack]
                ),
                at: time
            )
            try checkCapacity(engine)
        }
        statistics = engine.statistics
        #expect(engine.occupancy.backscatterAddresses + statistics.backscatterEvictions == 5_000)
        try checkAttempts(engine)
        // The 15 000 SYNs to one service are a flood: most of its attempts were sampled out.
        #expect(statistics.attacks == 1)
        #expect(statistics.sampledOut > 0)
    }
}

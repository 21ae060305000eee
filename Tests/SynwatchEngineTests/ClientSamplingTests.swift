import Testing

@testable import SynwatchEngine

/// Which floods are sampled by client (what a kernel filter can do) and which by handshake, and what the engine does
/// with a client it leaves out.
@Suite("Client sampling")
struct ClientSamplingTests {
    let victim = v4(198, 18, 0, 10)

    /// 20,000 spoofed SYN/s from 5 s to `until`, over the service's own completing clients.
    func storm(until end: Double) -> Scenario {
        var scenario = Scenario(seed: 41)
        scenario.background(to: victim, port: 80, from: 0, to: end)
        scenario.flood(to: victim, port: 80, rate: 20_000, from: 5, to: end) { $0.spoofedSource(like: victim) }
        return scenario
    }

    @Test("A fast random-source storm is sampled by client, and its unkept clients' SYNs and SYN-ACKs are left whole")
    func spoofedStormIsSampledByClient() throws {
        let engine = Engine.make()
        let all = storm(until: 9).run(on: engine, until: 9)
        #expect(all.first { $0.type == .attackStart }?.kind == .randomSource)
        // 20,000 SYN/s keeps 2,000 a second at 1 in 8.
        let sampled = try #require(engine.thinned.first)
        #expect(engine.thinned.count == 1)
        #expect(sampled == SampledService(address: victim, port: 80, shift: 3))
        let service = try #require(engine.services(limit: 5).first { $0.address == victim && $0.port == 80 })
        #expect(service.sampling == ServiceSampling(by: .client, shift: 3))
        #expect(engine.statistics.thinnedOut > 0)

        // A client the test left is counted as left, SYN and SYN-ACK; a kept one is tracked.
        let sampling = engine.clientSampling
        var scenario = Scenario(seed: 42)
        var unkept = scenario.spoofedSource(like: victim)
        while sampling.keeps(unkept, shift: 3) { unkept = scenario.spoofedSource(like: victim) }
        var kept = scenario.spoofedSource(like: victim)
        while !sampling.keeps(kept, shift: 3) { kept = scenario.spoofedSource(like: victim) }
        let time = Scenario.time(9)
        let before = engine.statistics
        let left = scenario.newSyn(from: unkept, to: victim, port: 80)
        engine.feed(left, at: time)
        engine.feed(left.synAck(isn: 7), at: time + 1_000)
        engine.feed(scenario.newSyn(from: kept, to: victim, port: 80), at: time + 2_000)
        let after = engine.statistics
        #expect(after.thinnedOut - before.thinnedOut == 2)
        #expect(after.synPackets - before.synPackets == 2, "every SYN seen is counted as traffic")
        #expect(after.synAcks - before.synAcks == 1)
        #expect(engine.occupancy.handshakes > 0)
    }

    @Test("Once the storm's attack ends, no service is sampled and every SYN counts again")
    func samplingEndsWithTheAttack() {
        let engine = Engine.make()
        let quiet = EngineConfiguration().detection.quietPeriod.seconds
        let all = storm(until: 9).run(on: engine, until: 9 + quiet + 8)
        #expect(all.contains { $0.type == .attackEnd })
        #expect(engine.thinned.isEmpty)
        #expect(engine.services(limit: 5).allSatisfy { $0.sampling == nil })
    }

    @Test("An IPv6 storm whose sources differ only in their prefix keeps its rate once sampled by client")
    func prefixOnlyStormKeepsItsRate() throws {
        let victim = v6(0x10)
        var scenario = Scenario(seed: 44)
        scenario.background(to: victim, port: 80, from: 0, to: 14)
        // Random /64 prefixes, one interface ID: while the client test read the last 32 bits, the whole storm was
        // left once sampled (its rate read 0 from then on) or kept whole.
        scenario.flood(to: victim, port: 80, rate: 20_000, from: 2, to: 14) { scenario in
            IPAddress(high: 0x2001_0DB8_0000_0000 | scenario.random.next() >> 32, low: 1)
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 14)
        #expect(all.first { $0.type == .attackStart }?.kind == .randomSource)
        #expect(engine.thinned.first?.shift ?? 0 > 0)
        let late = try #require(all.last { $0.type == .attackUpdate && $0.scenarioTime > 10 }?.figures)
        #expect((16_000...24_000).contains(late.synPerSecond), "\(late)")
    }

    @Test("A fast botnet is sampled by handshake, never by client: its few sources would be all in or all out")
    func botnetIsSampledByHandshake() throws {
        let bots = (1...50).map { v4(198, 18, 100, UInt8($0)) }
        var scenario = Scenario(seed: 43)
        scenario.background(to: victim, port: 80, from: 0, to: 9)
        for bot in bots { scenario.flood(to: victim, port: 80, rate: 200, from: 5, to: 9) { _ in bot } }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 9)
        #expect(all.first { $0.type == .attackStart }?.kind == .distributed)
        #expect(engine.thinned.isEmpty)
        #expect(engine.statistics.thinnedOut == 0)
        let service = try #require(engine.services(limit: 5).first { $0.address == victim && $0.port == 80 })
        #expect(service.sampling?.by == .handshake)
    }

    /// 20,000 SYN/s from one address and port to the service from 5 s to 45 s, unanswered, over its own clients: a
    /// new ISN each (`hping3 -k`), or the one SYN again and again (`repeating`). Run to 60 s.
    func oneFourTupleFlood(repeating: Bool) -> (events: [Event], engine: Engine) {
        var scenario = Scenario(seed: 44)
        scenario.background(to: victim, port: 80, from: 0, to: 60)
        var syn = scenario.newSyn(from: v4(198, 18, 66, 6), to: victim, port: 80)
        var time = Scenario.time(5)
        while time < Scenario.time(45) {
            if !repeating { syn.sequence = scenario.random.next32() }
            scenario.add(syn, at: time)
            time += 50_000
        }
        let engine = Engine.make()
        return (scenario.run(on: engine, until: 60), engine)
    }

    /// The flood's attack is one for its 40 s, and every update reads its half-open rate, never above its SYNs.
    func expectOneAttackThroughout(_ events: [Event], tolerance: Double) throws {
        let summary = events.map { "\($0.type.rawValue)@\($0.scenarioTime)" }.joined(separator: " ")
        try #require(events.filter { $0.type == .attackStart }.count == 1, "\(summary)")
        let end = try #require(events.first { $0.type == .attackEnd }, "\(summary)")
        #expect(end.scenarioTime > 45, "ended while the flood went on: \(summary)")
        let during = events.filter { $0.type == .attackUpdate && $0.scenarioTime < 45 }
        #expect(during.count >= 3, "\(summary)")
        for update in during {
            let figures = try #require(update.figures)
            #expect(abs(figures.halfOpenPerSecond - 20_000) <= tolerance * 20_000, "\(figures)")
            #expect(figures.halfOpenPerSecond <= figures.synPerSecond, "\(figures)")
        }
    }

    @Test("A flood that keeps to one 4-tuple, a new ISN each time, is sampled by attempt: one attack throughout")
    func oneFourTupleFloodIsSampledByAttempt() throws {
        let (events, engine) = oneFourTupleFlood(repeating: false)
        // Sampled by 4-tuple alone, it was all kept or all left (left for 7 hash seeds in 8 at 1 in 8): 4 attacks here.
        try expectOneAttackThroughout(events, tolerance: 0.1)
        #expect(engine.statistics.sampledOut > 0)
    }

    @Test("A flood repeating one SYN is tracked whole under sampling: each SYN a new attempt, counted once")
    func repeatedSynIsTrackedWholeUnderSampling() throws {
        let (events, engine) = oneFourTupleFlood(repeating: true)
        try expectOneAttackThroughout(events, tolerance: 0.02)
        #expect(engine.statistics.synRetransmits < Int(HandshakeEntry.maximumSends))
    }
}

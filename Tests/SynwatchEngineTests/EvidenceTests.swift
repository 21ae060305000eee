import Testing

@testable import SynwatchEngine

/// The detector's evidence against what real TCP does: clients retransmit, paths lose packets,
/// crowds surge, and strong floods must be told within a few hundred milliseconds.
@Suite("Evidence")
struct EvidenceTests {
    let defaults = EngineConfiguration()

    func summary(_ events: [Event]) -> String {
        events.map {
            "\($0.type.rawValue)@\($0.scenarioTime) \($0.kind?.rawValue ?? "") \($0.figures.map { "\($0)" } ?? "")"
        }
        .joined(separator: "\n")
    }

    /// One client opens 500 connections at once into a full listen queue: the kernel drops 241 SYNs,
    /// the client sends them again after 1 s (and some after 3 s), and every handshake completes. With `copies` of
    /// one more connection's SYN in the capture (a mirror that repeats a frame), completing among them: as many as
    /// a stack never sends, and an attempt whose step never counted it as one packet repeated. Closing it must leave
    /// the step's count of such attempts at zero, not wrapped to every undecided attempt of the burst.
    @Test(arguments: [1, Int(HandshakeEntry.maximumSends)])
    func burstIntoAFullListenQueueIsNoFlood(copies: Int) {
        let victim = v4(198, 18, 0, 10)
        let client = v4(198, 18, 5, 5)
        var scenario = Scenario(seed: 21)
        scenario.background(to: victim, port: 8080, from: 0, to: 12)
        let start = Scenario.time(5)
        let copied = scenario.newSyn(from: client, to: victim, port: 8080)
        for copy in 0..<copies { scenario.add(copied, at: start + 1_000_000 + Int64(copy) * 10_000) }
        scenario.add(copied.synAck(isn: 7), at: start + 2_000_000)
        scenario.add(copied.completingAck(serverISN: 7), at: start + 3_000_000)
        for index in 0..<500 {
            let dropped = index % 2 == 1 && index < 482
            scenario.lossyConnection(
                from: client,
                to: victim,
                port: 8080,
                at: start + Int64(index) * 20_000,
                lostSyns: dropped ? (index % 5 == 0 ? 2 : 1) : 0,
                roundTrip: millisecond
            )
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 20)
        #expect(all.isEmpty, "\(summary(all))")
        #expect(engine.statistics.completions >= 500)
    }

    /// One client at `client` opening about `rate` connections a second to port 443 of 198.18.0.10 from 5 s to 15 s,
    /// among the service's own clients, each connection losing `lostSynAcks(scenario, time)` of the server's answers.
    func oneClient(
        _ client: IPAddress,
        rate: Double,
        seed: UInt64,
        roundTrip: Int64,
        stack: ClientStack,
        lostSynAcks: (inout Scenario, Int64) -> Int
    ) -> [Event] {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: seed)
        scenario.background(to: victim, port: 443, from: 0, to: 20)
        var time = Scenario.time(5)
        while time < Scenario.time(15) {
            let lost = lostSynAcks(&scenario, time)
            scenario.lossyConnection(
                from: client,
                to: victim,
                port: 443,
                at: time,
                lostSynAcks: lost,
                roundTrip: roundTrip,
                stack: stack
            )
            time += Int64(1e9 / rate * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        return scenario.run(on: Engine.make(), until: 30)
    }

    /// One client opens 300 connections a second for 10 s: far away (a 900 ms round trip: the server's answers are
    /// acknowledged just within the longest a handshake may take), or through a path that loses half of the server's
    /// answers (its stack asks again after 1 s or 3 s). An answer it ignores is no flood's while it completes as many.
    @Test(arguments: [(900, 0.0, ClientStack.linux), (100, 0.5, .linux), (100, 0.5, .windows)])
    func oneClientSlowToAcknowledgeIsNoFlood(roundTripMilliseconds: Int64, answerLoss: Double, stack: ClientStack) {
        let all = oneClient(
            v4(198, 18, 5, 5),
            rate: 300,
            seed: 33,
            roundTrip: roundTripMilliseconds * millisecond,
            stack: stack
        ) { scenario, _ in scenario.random.chance(answerLoss) ? 1 : 0 }
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// A NAT of Windows hosts, one address, opens 600 connections a second to a service, and its return path loses
    /// every answer for 1.5 s: its hosts ask again only after 3 s, and then complete. A client's trouble, which its
    /// retransmission deadline tells from a flood that ignores its answers: the address completed before.
    @Test
    func natOfWindowsHostsThroughABriefOutageIsNoFlood() {
        let all = oneClient(v4(198, 18, 5, 5), rate: 600, seed: 34, roundTrip: 50 * millisecond, stack: .windows) {
            _,
            time in time >= Scenario.time(9) && time < Scenario.time(10.5) ? 1 : 0
        }
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// A crowd of fresh clients through a path that loses 15 % of SYNs and 10 %, a third or half of SYN-ACKs
    /// between the capture point and the hosts: clients retransmit, and every connection completes, some only
    /// after their second retransmission, past the retransmission deadline. Windows clients send their first
    /// retransmission after 3 s, Linux ones after 1 s: by the deadline, both have.
    @Test(
        arguments: ClientStack.allCases.flatMap { stack in
            [(300.0, 0.1), (3_000.0, 0.1), (3_000.0, 0.33), (3_000.0, 0.5)].map { ($0, $1, stack) }
        }
    )
    func flashCrowdOverALossyPathIsNoFlood(rate: Double, synAckLoss: Double, stack: ClientStack) {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 22)
        scenario.background(to: victim, port: 443, from: 0, to: 20)
        var time = Scenario.time(5)
        while time < Scenario.time(15) {
            let client = scenario.spoofedSource(like: victim)
            let lostSyns = scenario.random.chance(0.15) ? (scenario.random.chance(0.15) ? 2 : 1) : 0
            let lostSynAcks =
                scenario.random.chance(synAckLoss) ? (scenario.random.chance(synAckLoss) ? 2 : 1) : 0
            scenario.lossyConnection(
                from: client,
                to: victim,
                port: 443,
                at: time,
                lostSyns: lostSyns,
                lostSynAcks: lostSynAcks,
                roundTrip: Int64.random(in: 5...60, using: &scenario.random) * millisecond,
                stack: stack
            )
            time += Int64(1e9 / rate * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// A spoofed storm told at once, 3 s long, under a quiet period shorter than the retransmission deadline: its
    /// attack ends before its last attempts fail past their deadline, and those failures, its own evidence, start
    /// no second attack.
    @Test
    func failuresPastTheDeadlineOfAnEndedAttackStartNoOther() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 29)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 80, rate: 10_000, from: 5, to: 8) { $0.spoofedSource(like: victim) }
        let engine = Engine.make { $0.detection.quietPeriod = .seconds(1) }
        let all = scenario.run(on: engine, until: 20)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .randomSource)
        #expect(starts[0].scenarioTime < 5.3, "\(summary(all))")
    }

    /// 6,000 SYNs in a tenth of a second from one address that never answers (nping's burst), alone on the link or
    /// among the service's clients: one `single-source` attack at the burst's retransmission deadline either way. Its
    /// failures are decided a deadline after it, when the rate window no longer holds it; judged by that window, it
    /// would raise nothing alone (too few attempts to judge), and among clients an attack reading a few SYN/s.
    @Test(arguments: [false, true])
    func shortBurstFromOneAddressIsAnAttackReadAtItsRate(amongClients: Bool) throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 25)
        if amongClients { scenario.background(to: victim, port: 80, from: 0, to: 12) }
        var time = Scenario.time(5)
        while time < Scenario.time(5.1) {
            let syn = scenario.newSyn(from: v4(198, 18, 66, 6), to: victim, port: 80)
            scenario.add(syn, at: time)
            time += 16_667
        }
        let events = scenario.run(on: Engine.make(), until: 12)
        let starts = events.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(events))")
        #expect(starts[0].kind == .singleSource)
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(starts[0].scenarioTime < 5 + deadline + 0.5, "\(summary(events))")
        // Over the rate window (1 s) that held the burst, or over its tenth of a second where nothing came before.
        #expect(try #require(starts[0].figures).synPerSecond >= 1_000, "\(summary(events))")
    }

    /// A spoofed flood while a crowd connects to the same service: one attack, random-source from
    /// its first event, whatever the crowd's completing sources.
    @Test
    func spoofedFloodInACrowdIsRandomSourceFromTheStart() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 23)
        let crowd = (0..<300).map { v4(198, 19, UInt8($0 / 200), UInt8($0 % 200 + 1)) }
        scenario.connections(to: victim, port: 80, rate: 800, from: 0, to: 20, within: 0.04) {
            crowd.randomElement(using: &$0.random)!
        }
        scenario.flood(to: victim, port: 80, rate: 1_500, from: 8, to: 14) { $0.spoofedSource(like: victim) }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .randomSource, "\(summary(all))")
        #expect(all.allSatisfy { $0.kind == .randomSource }, "\(summary(all))")
        // Fewer undecided attempts than nine per completed one wait for the retransmission deadline.
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(starts[0].scenarioTime - 8 <= deadline + 0.3, "\(summary(all))")
    }

    /// Forty bots that retransmit their SYNs as a real stack would, and never complete: many sources, a
    /// few attempts each per step, nothing completing. A distributed flood, found without waiting.
    @Test
    func retransmittingBotnetIsFoundAtOnce() throws {
        let victim = v4(198, 18, 0, 10)
        let bots = (1...40).map { v4(198, 18, 77, UInt8($0)) }
        var scenario = Scenario(seed: 26)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 80, rate: 2_000, from: 5, to: 12, retransmitting: true) {
            bots.randomElement(using: &$0.random)!
        }
        let all = scenario.run(on: Engine.make(), until: 20)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .distributed)
        #expect(starts[0].scenarioTime - 5 <= 0.3, "\(summary(all))")
    }

    /// One host floods a service through its own TCP stack, the SYN-ACKs it is answered with dropped by its firewall:
    /// its kernel retransmits every SYN after 1 s and 3 s and completes none. A client waiting in a full listen queue
    /// retransmits too, but it is not answered; this one is, and sends its SYN again all the same. A single-source
    /// flood, once its attempts pass the retransmission deadline.
    @Test
    func hostRetransmittingWhatItIsAnsweredIsASingleSourceFlood() throws {
        let victim = v4(198, 18, 0, 10)
        let host = v4(198, 18, 44, 7)
        var scenario = Scenario(seed: 27)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 80, rate: 600, from: 5, to: 11, retransmitting: true) { _ in host }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .singleSource, "\(summary(all))")
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(starts[0].scenarioTime - 5 <= deadline + 0.5, "\(summary(all))")
    }

    /// 4,000 bots behind real stacks, 400 SYNs a second in all, each retransmitted after 1 s and 3 s though answered:
    /// most bots send one attempt in the sources window, as a spoofed storm's addresses do. Their retransmissions
    /// tell live hosts: the attack is distributed once they pass the retransmission deadline.
    @Test
    func botnetOfLiveStacksIsDistributedHoweverRarelyEachBotRepeats() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 28)
        scenario.background(to: victim, port: 80, from: 0, to: 25)
        scenario.flood(to: victim, port: 80, rate: 400, from: 5, to: 15, retransmitting: true) {
            v4(198, 18, UInt8(64 + $0.random.next32() % 16), UInt8(1 + $0.random.next32() % 250))
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        let told = try #require(all.first { $0.kind == .distributed }, "\(summary(all))")
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(told.scenarioTime - starts[0].scenarioTime <= deadline + 1, "\(summary(all))")
        #expect(all.last?.type == .attackEnd && all.last?.kind == .distributed, "\(summary(all))")
    }

    /// 300 bots with real stacks, 300 SYNs a second in all, each retransmitted though answered, on a service whose
    /// own clients complete 600 connections a second beside them, a few of those after a lost SYN-ACK: the flood
    /// is fewer attempts than the service completes, but none of its answered retransmissions ever completes.
    @Test
    func retransmittingBotnetAmongBusyClientsIsFound() throws {
        let victim = v4(198, 18, 0, 10)
        let bots = (0..<300).map { v4(198, 18, 90 + UInt8($0 / 250), UInt8($0 % 250 + 1)) }
        let clients = (0..<2_000).map { v4(198, 19, UInt8($0 / 250), UInt8($0 % 250 + 1)) }
        var scenario = Scenario(seed: 29)
        var time = Scenario.time(0)
        while time < Scenario.time(25) {
            let client = clients.randomElement(using: &scenario.random)!
            let lostSynAcks = scenario.random.chance(0.03) ? 1 : 0
            scenario.lossyConnection(from: client, to: victim, port: 443, at: time, lostSynAcks: lostSynAcks)
            time += Int64(1e9 / 600 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        scenario.flood(to: victim, port: 443, rate: 300, from: 8, to: 18, retransmitting: true) {
            bots.randomElement(using: &$0.random)!
        }
        let all = scenario.run(on: Engine.make(), until: 35)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .distributed, "\(summary(all))")
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(starts[0].scenarioTime - 8 <= deadline + 1, "\(summary(all))")
    }

    /// Strong spoofed floods are announced within 0.3 s of capture time, on a service whose handshakes
    /// are known and on one never seen before. A marginal one beside completing traffic is decided
    /// once its attempts pass the retransmission deadline.
    @Test(arguments: [(10_000.0, true), (10_000.0, false), (2_000.0, true), (250.0, true)])
    func strongerFloodsAreConfirmedSooner(rate: Double, history: Bool) throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 24)
        if history { scenario.background(to: victim, port: 80, from: 0, to: 14) }
        scenario.flood(to: victim, port: 80, rate: rate, from: 10, to: 14) { $0.spoofedSource(like: victim) }
        let all = scenario.run(on: Engine.make(), until: 16)
        let starts = all.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .randomSource)
        let delay = starts[0].scenarioTime - 10
        let bound = rate >= 2_000 ? 0.3 : defaults.handshakes.retransmissionDeadline.seconds + 0.5
        #expect(delay > 0 && delay <= bound, "\(rate) SYN/s announced after \(delay) s")
    }

    /// Half-open never exceeds SYNs, nor distinct sources the attempts they come from, in any event.
    @Test
    func figuresOfOneEventAgree() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 25)
        scenario.background(to: victim, port: 80, from: 0, to: 30)
        scenario.flood(to: victim, port: 80, rate: 20_000, from: 5, to: 8) { $0.spoofedSource(like: victim) }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        try #require(all.contains { $0.type == .attackStart }, "\(summary(all))")
        let syns = engine.services(limit: 1).first?.synPackets ?? 0
        for event in all {
            let figures = try #require(event.figures)
            #expect(figures.halfOpenPerSecond <= figures.synPerSecond, "\(event)")
            #expect(figures.distinctSources <= syns, "\(event)")
            #expect(figures.topSources.isEmpty, "a spoofed storm has no top source: \(event)")
            if let summary = event.summary {
                #expect(summary.peakHalfOpenPerSecond <= summary.peakSynPerSecond * 1.05, "\(summary)")
                #expect(summary.peakDistinctSources <= summary.totalSyns, "\(summary)")
            }
        }
    }
}

import Testing

@testable import SynwatchEngine

/// What is a retransmission of a SYN, the sign of a live client that keeps an attempt from counting as failed: the
/// same SYN again from a client's timer, however late, and never a copy of the same frame.
@Suite("Retransmissions")
struct RetransmissionTests {
    func summary(_ events: [Event]) -> String {
        events.map { "\($0.type.rawValue)@\($0.scenarioTime)" }.joined(separator: " ")
    }

    /// Every frame of a capture seen twice, microseconds apart (a mirror port, merged captures): a flood is still
    /// the same attack from the same moment, with the same half-open rate. Taken for retransmissions, the copies
    /// made every attempt of a flood look like a live client's, and no flood of any kind was ever reported.
    @Test(arguments: [FloodKind.randomSource, .singleSource])
    func copiedFramesAreNoRetransmissions(kind: FloodKind) throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 21)
        scenario.background(to: victim, port: 80, from: 0, to: 30)
        scenario.flood(to: victim, port: 80, rate: 2_000, from: 10, to: 25) {
            kind == .singleSource ? attacker : $0.spoofedSource(like: victim)
        }
        let once = scenario.run(on: Engine.make(), until: 45).filter { $0.type == .attackStart }
        let twice = scenario.withCopies(after: millisecond / 50).run(on: Engine.make(), until: 45)
        let reference = try #require(once.first?.figures)

        let starts = twice.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(twice))")
        #expect(starts[0].kind == kind)
        #expect(starts[0].time == once[0].time, "started at \(starts[0].scenarioTime), not \(once[0].scenarioTime)")
        let figures = try #require(starts[0].figures)
        #expect(figures.halfOpenPerSecond == reference.halfOpenPerSecond, "\(figures) against \(reference)")
        // The copies are SYN packets all the same.
        #expect(figures.synPerSecond == 2 * reference.synPerSecond, "\(figures) against \(reference)")
    }

    /// A crowd of live clients waiting in a full listen queue: 400 new connections a second for 10 s from 300
    /// clients, which the server answers at the client's first SYN or only at its retransmission after 1, 3, 7 or
    /// 15 s, or never (the client retransmits after 1, 3, 7, 15 and 31 s, then gives up). Every unanswered SYN is
    /// retransmitted, so nothing is a flood. The SYNs 7 s and more after the first are the same attempts still:
    /// taken for new ones once the 5 s time-out had dropped the attempt, each failed at its retransmission
    /// deadline and the crowd became an attack.
    @Test
    func crowdWaitingInAFullQueueRaisesNothing() {
        let victim = v4(198, 18, 0, 10)
        let clients = (0..<300).map { v4(198, 19, UInt8($0 / 200), UInt8($0 % 200 + 1)) }
        var scenario = Scenario(seed: 22)
        scenario.background(to: victim, port: 80, from: 0, to: 60)
        let tries: [Int64] = [0, 1, 3, 7, 15, 31]
        var retransmissions = 0
        var time = Scenario.time(10)
        while time < Scenario.time(20) {
            let syn = scenario.newSyn(from: clients.randomElement(using: &scenario.random)!, to: victim, port: 80)
            // The try answered: a fifth at once, a fifth at 1 s, a tenth each at 3 s and 7 s, a fifth at 15 s, a
            // fifth never.
            let answered = [0, 0, 1, 1, 2, 3, 4, 4, nil, nil].randomElement(using: &scenario.random)!
            for (index, delay) in tries.enumerated() {
                let sent = time + delay * second
                scenario.add(syn, at: sent)
                if index > 0 { retransmissions += 1 }
                guard index == answered else { continue }
                let serverISN = scenario.random.next32()
                scenario.add(syn.synAck(isn: serverISN), at: sent + millisecond)
                scenario.add(syn.completingAck(serverISN: serverISN), at: sent + 2 * millisecond)
                break
            }
            time += Int64(1e9 / 400 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 90)
        #expect(all.isEmpty, "\(summary(all))")
        #expect(engine.statistics.synRetransmits == retransmissions)
    }

    /// One SYN sent again and again, the same ports and ISN (a tool repeating one packet), 2,000 times a second and
    /// never answered: no stack sends a SYN that often, so every one past `HandshakeEntry.maximumSends` is a new
    /// attempt, decided when it matures, and the flood one `single-source` attack within a few steps. Taken for
    /// retransmissions of one attempt, a live client's, it raised nothing; taken for undecided attempts of one
    /// source, it waited for their retransmission deadline.
    @Test
    func oneSynRepeatedAsAFloodIsASingleSourceAttack() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 23)
        scenario.background(to: victim, port: 80, from: 0, to: 30)
        let syn = scenario.newSyn(from: v4(198, 18, 66, 6), to: victim, port: 80)
        var time = Scenario.time(10)
        while time < Scenario.time(20) {
            scenario.add(syn, at: time)
            time += millisecond / 2
        }
        let events = scenario.run(on: Engine.make(), until: 45)
        let starts = events.filter { $0.type == .attackStart }
        try #require(starts.count == 1, "\(summary(events))")
        #expect(starts[0].kind == .singleSource)
        #expect(starts[0].scenarioTime < 10.5, "\(summary(events))")
        let end = try #require(events.first { $0.type == .attackEnd }?.summary, "\(summary(events))")
        #expect(end.peakHalfOpenPerSecond > 1_500, "\(end)")
    }

    /// A stack's every try of one attempt (macOS: the SYN at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35 and 67 s, followed here
    /// that long), each seen four times (a capture that shows every frame more than once): all the same attempt, the
    /// most that `maximumSends` allows.
    @Test
    func aStacksEveryTryCopiedIsStillOneAttempt() {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 24)
        let syn = scenario.newSyn(from: v4(198, 19, 3, 3), to: victim, port: 80)
        let tries: [Int64] = [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]
        for delay in tries {
            for copy in 0..<4 { scenario.add(syn, at: Scenario.time(10) + delay * second + Int64(copy) * 20_000) }
        }
        let engine = Engine.make { $0.handshakes.retransmittedTimeout = .seconds(75) }
        let events = scenario.run(on: engine, until: 100)
        #expect(events.isEmpty, "\(summary(events))")
        #expect(Int(HandshakeEntry.maximumSends) == tries.count * 4)
        #expect(engine.statistics.synRetransmits == tries.count * 4 - 1)
    }
}

import Testing

@testable import SynwatchEngine

/// The detector on synthetic traffic: what a flood, a botnet, a crowd, a scan and backscatter must raise.
@Suite("Detector")
struct DetectorTests {
    let defaults = EngineConfiguration()
    let attackTypes: Set<EventType> = [.attackStart, .attackUpdate, .attackEnd]

    func events(_ type: EventType, in events: [Event]) -> [Event] { events.filter { $0.type == type } }

    /// `count` real sources for a botnet, 198.18.100.1 on, 200 to a /24.
    func botAddresses(_ count: Int) -> [IPAddress] {
        (0..<count).map { v4(198, 18, 100 + UInt8($0 / 200), UInt8(1 + $0 % 200)) }
    }

    func summary(_ events: [Event]) -> String {
        events.map { "\($0.type.rawValue)@\($0.scenarioTime)" }.joined(separator: " ")
    }

    /// 2000 spoofed SYN/s for 30 s over 20 completing connections per second.
    @Test(arguments: [v4(198, 18, 0, 10), v6(0x10)])
    func spoofedFloodIsOneRandomSourceAttack(victim: IPAddress) throws {
        var scenario = Scenario(seed: 1)
        scenario.background(to: victim, port: 80, from: 0, to: 50)
        scenario.flood(to: victim, port: 80, rate: 2_000, from: 20, to: 50) { $0.spoofedSource(like: victim) }
        let quiet = defaults.detection.quietPeriod.seconds
        let all = scenario.run(on: Engine.make(), until: 50 + quiet + 5)
        #expect(all.allSatisfy { attackTypes.contains($0.type) }, "\(summary(all))")

        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let start = starts[0]
        #expect(start.kind == .randomSource)
        #expect(start.victim == victim)
        #expect(start.port == 80)
        #expect(start.scenarioTime > 20 && start.scenarioTime <= 21, "started at \(start.scenarioTime)")

        let interval = defaults.detection.updateInterval.seconds
        let updates = events(.attackUpdate, in: all)
        #expect(updates.count >= 2, "\(summary(all))")
        for (index, update) in updates.enumerated() {
            #expect(abs(update.scenarioTime - start.scenarioTime - Double(index + 1) * interval) < 1e-6)
            #expect(update.attackID == start.attackID)
            #expect(update.kind == .randomSource, "\(update)")
        }
        let figures = try #require(updates.first?.figures)
        #expect(abs(figures.synPerSecond - 2_020) <= 0.1 * 2_020, "\(figures)")
        #expect(abs(figures.halfOpenPerSecond - 2_000) <= 0.15 * 2_000, "\(figures)")
        #expect(figures.completionRatio < 0.05, "\(figures)")
        let sourcesWindow = defaults.windows.sources.seconds
        #expect(figures.distinctSources >= Int(0.8 * 2_000 * sourcesWindow / 2), "\(figures)")
        #expect(figures.distinctSources <= Int(1.2 * 2_020 * sourcesWindow), "\(figures)")

        let ends = events(.attackEnd, in: all)
        try #require(ends.count == 1, "\(summary(all))")
        let end = ends[0]
        #expect(end.attackID == start.attackID)
        let window = defaults.windows.rate.seconds + defaults.windows.completionGrace.seconds
        #expect(end.scenarioTime >= 50 + quiet, "ended at \(end.scenarioTime)")
        #expect(end.scenarioTime <= 50 + quiet + window + 0.5, "ended at \(end.scenarioTime)")
        #expect(end.kind == .randomSource)
        let attack = try #require(end.summary)
        #expect(attack.endReason == .quiet)
        // The flood's first and last SYNs, to two steps.
        #expect(abs(Double(attack.start.nanoseconds - Scenario.origin) / 1e9 - 20) <= 0.1, "\(attack)")
        #expect(abs(attack.duration.seconds - 30) <= 0.1, "\(attack)")
        #expect(abs(Double(attack.totalSyns) - 60_600) <= 0.05 * 60_600, "\(attack)")
        #expect(abs(attack.peakSynPerSecond - 2_020) <= 0.2 * 2_020, "\(attack)")
        #expect(attack.peakDistinctSources >= figures.distinctSources)
    }

    @Test
    func floodFromOneSourceIsSingleSource() throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 2)
        scenario.background(to: victim, port: 443, from: 0, to: 15)
        scenario.flood(to: victim, port: 443, rate: 2_000, from: 5, to: 15) { _ in attacker }
        let all = scenario.run(on: Engine.make(), until: 30)
        #expect(all.allSatisfy { attackTypes.contains($0.type) }, "\(summary(all))")
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .singleSource)
        #expect(starts[0].port == 443)
        // One source that ignores the server's answers, neither acknowledging, nor resetting, nor asking again, is
        // decided once its client had the longest a handshake may take, after its grace: a client's burst into a full
        // listen queue is not answered, and one whose answers are lost asks again.
        let windows = EngineConfiguration().windows
        let answered = windows.completionGrace.seconds + windows.completionGraceCeiling.seconds
        #expect(starts[0].scenarioTime > 5 && starts[0].scenarioTime <= 5 + answered + 0.2, "\(summary(all))")
        #expect(starts[0].figures?.topSources.first?.address == attacker)
        #expect(events(.attackEnd, in: all).count == 1)
    }

    /// The same flood from a tool that writes its SYNs without the MSS option every stack sends (hping3, nping, scapy),
    /// with the server's answers in the capture or without them (an ingress capture): no client's stack sent those
    /// SYNs, so they are told as soon as they mature. With the option, the same flood waits a second for its
    /// unacknowledged answers, or without them for its retransmission deadline.
    @Test(arguments: [true, false])
    func toolsFloodFromOneSourceIsToldAsItMatures(answered: Bool) throws {
        let windows = EngineConfiguration().windows
        func attackStart(optionless: Bool) throws -> Event {
            var scenario = Scenario(seed: 2)
            scenario.background(to: v4(198, 18, 0, 10), port: 443, from: 0, to: 15)
            scenario.flood(
                to: v4(198, 18, 0, 10),
                port: 443,
                rate: 2_000,
                from: 5,
                to: 15,
                answered: answered,
                optionless: optionless
            ) { _ in v4(198, 18, 66, 6) }
            let all = scenario.run(on: Engine.make(), until: 30)
            let starts = events(.attackStart, in: all)
            try #require(starts.count == 1, "\(summary(all))")
            #expect(starts[0].kind == .singleSource, "\(summary(all))")
            return starts[0]
        }
        let tool = try attackStart(optionless: true)
        #expect(tool.scenarioTime > 5 && tool.scenarioTime <= 5 + windows.completionGrace.seconds + 0.2)
        let stack = try attackStart(optionless: false)
        #expect(stack.scenarioTime > 5 + windows.completionGraceCeiling.seconds, "\(stack.scenarioTime)")
    }

    /// A tool of one's own (a load generator with its own TCP, its SYNs without options) opening 1,000 connections a
    /// second from 50 addresses, all completing, three in ten only 400 ms after the server's answer, long after their
    /// service's grace: those are undecided when they mature, but beside seven that completed by then, as no flood
    /// completes. It raises nothing.
    @Test
    func toolThatCompletesItsHandshakesIsNoFlood() {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 26)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        var time = Scenario.time(5)
        while time < Scenario.time(15) {
            let syn = scenario.newSyn(
                from: v4(198, 18, 70, UInt8(time % 50 + 1)),
                to: victim,
                port: 80,
                optionless: true
            )
            let serverISN = scenario.random.next32()
            let roundTrip = scenario.random.chance(0.3) ? 400 * millisecond : millisecond
            scenario.add(syn, at: time)
            scenario.add(syn.synAck(isn: serverISN), at: time + 100_000)
            scenario.add(syn.completingAck(serverISN: serverISN), at: time + 100_000 + roundTrip)
            time += Int64(1e6 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// One source flooding a service that 1,000 new clients a second connect to: its distinct sources are all
    /// sources less completing ones, two estimates of some 10,000 whose difference is mostly error. Events named the
    /// source and said 0 distinct sources.
    @Test
    func namedSourcesCountAmongDistinctSources() throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 24)
        scenario.connections(to: victim, port: 443, rate: 1_000, from: 0, to: 40) { $0.spoofedSource(like: victim) }
        scenario.flood(to: victim, port: 443, rate: 300, from: 5, to: 35) { _ in attacker }
        let attack = scenario.run(on: Engine.make(), until: 40).filter { $0.type != .attackEnd }
        try #require(attack.count >= 3, "\(summary(attack))")
        for event in attack {
            let figures = try #require(event.figures)
            #expect(figures.topSources.first?.address == attacker, "\(figures)")
            #expect(figures.distinctSources >= figures.topSources.count, "\(figures)")
        }
    }

    @Test
    func botnetThatNeverCompletesIsDistributed() throws {
        let victim = v4(198, 18, 0, 10)
        let bots = botAddresses(50)
        var scenario = Scenario(seed: 3)
        scenario.background(to: victim, port: 80, from: 0, to: 15)
        for bot in bots {
            scenario.flood(to: victim, port: 80, rate: 40, from: 5, to: 15) { _ in bot }
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        #expect(all.allSatisfy { attackTypes.contains($0.type) }, "\(summary(all))")
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .distributed)
        #expect(starts[0].scenarioTime > 5 && starts[0].scenarioTime <= 6)
        let top = try #require(starts[0].figures?.topSources)
        #expect(!top.isEmpty && top.allSatisfy { bots.contains($0.address) }, "\(top)")
        for update in events(.attackUpdate, in: all) {
            #expect(update.kind == .distributed)
        }
        #expect(events(.attackEnd, in: all).count == 1)
    }

    /// 600 bots at 5 SYN/s each: in the first steps each has sent one SYN, and the flood looks spoofed. Its kind is
    /// told again as soon as the bots repeat, not only at the first update ten seconds later, and from then on
    /// its sources are followed.
    @Test
    func botnetOfSlowBotsIsToldDistributedWithinASecond() throws {
        let victim = v4(198, 18, 0, 10)
        let bots = botAddresses(600)
        var scenario = Scenario(seed: 7)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        for bot in bots {
            scenario.flood(to: victim, port: 80, rate: 5, from: 5, to: 20) { _ in bot }
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let told = try #require(
            all.first { $0.attackID == starts[0].attackID && $0.kind == .distributed },
            "\(summary(all))"
        )
        #expect(told.scenarioTime < starts[0].scenarioTime + 1, "\(summary(all))")
        let later = events(.attackUpdate, in: all).filter { $0.scenarioTime > told.scenarioTime }
        #expect(!later.isEmpty && later.allSatisfy { $0.kind == .distributed }, "\(summary(all))")
        // Followed since: the next update names bots.
        let top = try #require(later.first?.figures?.topSources)
        #expect(!top.isEmpty && top.allSatisfy { bots.contains($0.address) }, "\(top)")
        #expect(events(.attackEnd, in: all).count == 1)
    }

    /// A spoofed storm's sources never repeat in its first seconds: its kind stays random-source, without an early
    /// update.
    @Test
    func spoofedStormIsNotToldAgainEarly() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 8)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 80, rate: 5_000, from: 5, to: 12, source: Self.anywhere)
        let all = scenario.run(on: Engine.make(), until: 40)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .randomSource)
        let updates = events(.attackUpdate, in: all)
        #expect(updates.allSatisfy { $0.scenarioTime >= starts[0].scenarioTime + 10 }, "\(summary(all))")
    }

    /// A spoofed source anywhere on the Internet.
    static func anywhere(_ scenario: inout Scenario) -> IPAddress {
        let bits = scenario.random.next32()
        return v4(
            UInt8(1 + bits % 223),
            UInt8(truncatingIfNeeded: bits >> 8),
            UInt8(truncatingIfNeeded: bits >> 16),
            UInt8(truncatingIfNeeded: bits >> 24)
        )
    }

    /// A spoofed storm's capture replayed in a loop (`tcpreplay --loop`): 10,000 SYNs from addresses all over the
    /// Internet, unanswered, every 2 s for 40 s. Each SYN comes again with its ISN, as a stack retransmits it, so
    /// after the first loop no attempt is new. The attack goes on as long as the loop (it ended after the quiet
    /// period and started again every 11 s), and the kind it is told changes at most once, never back (the few
    /// attempts left read as spoofed, a botnet, one source, in turn), whether updates come every 10 s or every
    /// second.
    @Test(arguments: [10.0, 1.0])
    func spoofedCaptureReplayedInALoopIsOneAttackWhoseKindNeverGoesBack(updateSeconds: Double) throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 31)
        var capture: [(offset: Int64, syn: Packet)] = []
        for index in 0..<10_000 {
            let syn = scenario.newSyn(from: Self.anywhere(&scenario), to: victim, port: 80)
            capture.append((Int64(index) * millisecond / 5, syn))
        }
        for loop in 0..<20 {
            for (offset, syn) in capture { scenario.add(syn, at: Scenario.time(Double(2 * loop)) + offset) }
        }
        let all = scenario.run(on: Engine.make { $0.detection.updateInterval = .seconds(updateSeconds) }, until: 60)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .randomSource)
        let told = all.filter { $0.attackID == starts[0].attackID }.compactMap(\.kind)
        let changes = zip(told, told.dropFirst()).filter { $0 != $1 }.count
        #expect(changes <= 1, "\(told.map(\.rawValue))")
        let end = try #require(events(.attackEnd, in: all).first)
        #expect(end.scenarioTime > 40 && end.scenarioTime < 40 + 10 + 2, "\(summary(all))")
        #expect(end.summary?.endReason == .quiet, "\(end)")
    }

    /// An attack's kind after its updates' readings: another kind once every reading over a sources window gave
    /// it, a reading of the attack's own kind refuting it, and never a kind the attack has left.
    @Test
    func aKindChangesOnReadingsThatHoldAndNeverBack() {
        var state = VictimState()
        state.kind = .randomSource
        let window = 10 * second
        for (reading, at, told) in [
            (FloodKind.distributed, 0, FloodKind.randomSource), (.distributed, 5, .randomSource),
            (.randomSource, 10, .randomSource), (.distributed, 12, .randomSource), (.distributed, 22, .distributed),
            (.randomSource, 30, .distributed), (.randomSource, 40, .distributed), (.randomSource, 50, .distributed),
            (.singleSource, 60, .distributed), (.singleSource, 70, .singleSource), (.distributed, 80, .singleSource),
            (.distributed, 90, .singleSource),
        ] as [(FloodKind, Int64, FloodKind)] {
            state.confirmKind(reading: reading, at: at * second, window: window)
            #expect(state.kind == told, "reading \(reading) at \(at) s")
        }
    }

    /// A spoofed flood (5,000 SYN/s for 5 s), after which the server answers no one for 20 s while its clients, Linux
    /// stacks, retry: 20 new attempts a second, each SYN again after 1, 3, 7 and 15 s, up to 100 SYN/s of which none
    /// completes, more than the attack's end threshold. Not the flood going on: that takes SYNs at half its rate. Its
    /// attack ends a quiet period after the flood and names no client.
    @Test
    func clientsRetryingAServerLeftSilentAfterAFloodAreNoPartOfIt() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 32)
        scenario.background(to: victim, port: 80, from: 0, to: 10)
        scenario.flood(to: victim, port: 80, rate: 5_000, from: 5, to: 10, source: Self.anywhere)
        let clients = (0..<UInt32(200)).map { IPAddress(ipv4: 0xC612_3200 + $0) }
        for index in 0..<400 {
            let syn = scenario.newSyn(from: clients[index % clients.count], to: victim, port: 80)
            let first = Scenario.time(10 + Double(index) / 20)
            for again in ClientStack.linux.synTimes { scenario.add(syn, at: first + again * second) }
        }
        let all = scenario.run(on: Engine.make(), until: 60)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let end = try #require(events(.attackEnd, in: all).first, "\(summary(all))")
        #expect(end.scenarioTime < 10 + 10 + 2, "\(summary(all))")
        let named = all.flatMap { $0.figures?.topSources ?? [] }.filter { clients.contains($0.address) }
        #expect(named.isEmpty, "\(named)")
    }

    /// A storm spoofed from a pool (a lab's range, an attacker's prefix): at 30,000 SYN/s from 65,536 addresses each
    /// repeats several times within the sources window, as a botnet's bots do. It fills its prefix: random-source
    /// throughout, never told distributed, and nobody named.
    @Test(arguments: [v4(198, 18, 0, 10), v6(0x10)])
    func spoofedStormFromAPoolIsRandomSource(victim: IPAddress) throws {
        var scenario = Scenario(seed: 9)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 80, rate: 30_000, from: 5, to: 17) { scenario in
            let host = UInt64(scenario.random.next32() & 0xFFFF)
            return victim.isIPv4 ? IPAddress(ipv4: 0xC613_0000 | UInt32(host)) : v6(0xBEEF_0000 | host)
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let attack = all.filter { $0.attackID == starts[0].attackID }
        #expect(attack.allSatisfy { $0.kind == .randomSource }, "\(attack)")
        #expect(attack.allSatisfy { $0.figures?.topSources.isEmpty ?? true }, "\(attack)")
        // The first update comes when the pool has repeated, as every update after it.
        let update = try #require(events(.attackUpdate, in: attack).first?.figures, "\(summary(all))")
        #expect(update.distinctSources <= Int(1.1 * 65_536), "\(update)")
        #expect(update.halfOpenPerSecond > 3 * Double(update.distinctSources) / 10, "\(update)")
    }

    /// A busy service's clients, 500 connections a second from a /20, beside a pool's storm or a botnet's flood: their
    /// handshakes in flight must not pose as the range a flood is drawn from. Heavy hitters, once that range's
    /// sample, kept such clients and read the /20 as the pool: a botnet of 30,000 in a /15 came out `random-source`.
    static func busyClients(_ scenario: inout Scenario, to victim: IPAddress) {
        scenario.connections(to: victim, port: 80, rate: 500, from: 0, to: 25, within: 0.1) { scenario in
            IPAddress(ipv4: 0xC612_1000 | scenario.random.next32() & 0xFFF)
        }
    }

    @Test
    func spoofedStormFromAPoolAmongBusyClientsIsRandomSource() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 12)
        Self.busyClients(&scenario, to: victim)
        scenario.flood(to: victim, port: 80, rate: 30_000, from: 5, to: 20) { scenario in
            IPAddress(ipv4: 0xC613_0000 | scenario.random.next32() & 0xFFFF)
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let attack = all.filter { $0.attackID == starts[0].attackID }
        #expect(attack.allSatisfy { $0.kind == .randomSource }, "\(attack)")
    }

    /// 30,000 bots on every fourth address of 198.18.0.0/15, among a busy service's clients.
    @Test
    func botnetOverA15AmongBusyClientsIsDistributed() throws {
        try expectDistributed(bots: 30_000, every: 4, rate: 40_000, until: 16, seed: 13) { scenario, victim in
            Self.busyClients(&scenario, to: victim)
        }
    }

    /// Every attack update of a botnet on `bots` addresses of 198.18.0.0/15, `every` apart, says `distributed`.
    func expectDistributed(
        bots count: Int,
        every stride: UInt32,
        rate: Double,
        until end: Double,
        seed: UInt64,
        clients: (inout Scenario, IPAddress) -> Void
    ) throws {
        let victim = v4(198, 18, 0, 10)
        let bots = (0..<UInt32(count)).map { IPAddress(ipv4: 0xC612_0001 + stride * $0) }
        var scenario = Scenario(seed: seed)
        clients(&scenario, victim)
        scenario.flood(to: victim, port: 80, rate: rate, from: 5, to: end) { scenario in
            bots[Int(scenario.random.next32()) % bots.count]
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let updates = events(.attackUpdate, in: all).filter { $0.attackID == starts[0].attackID }
        #expect(!updates.isEmpty && updates.allSatisfy { $0.kind == .distributed }, "\(updates)")
    }

    /// A storm from a pool whose every address comes back, growing from 10,000 to 160,000 SYN/s: it is thinned by
    /// client ever more (1 in 4, 16, then 64), and the sources seen at each shift are the same. Each counts once.
    /// (Counted as 2^shift stand-ins at the shift of the moment, they read up to 1.7 times the pool.)
    @Test
    func sourcesThatRepeatWhileThinningStepsUpCountOnce() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 11)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        for (rate, start, end) in [(10_000.0, 5.0, 9.0), (40_000, 9, 12), (160_000, 12, 15)] {
            scenario.flood(to: victim, port: 80, rate: rate, from: start, to: end) { scenario in
                IPAddress(ipv4: 0xC613_0000 | scenario.random.next32() & 0xFFFF)
            }
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let updates = events(.attackUpdate, in: all).compactMap { $0.attackID == starts[0].attackID ? $0.figures : nil }
        let pool = 65_536.0
        #expect(updates.allSatisfy { Double($0.distinctSources) <= 1.15 * pool }, "\(updates)")
        // Once the pool has come back, over its last 10 s, it is all there.
        let full = try #require(updates.last { $0.synPerSecond > 100_000 }, "\(updates)")
        #expect(Double(full.distinctSources) >= 0.85 * pool, "\(full)")
    }

    /// 40,000 real bots drawn uniformly, a SYN at a time, as the same storm's addresses are: they repeat as much, but
    /// are spread over a /15, a third of whose addresses they fill. A botnet, however large: distributed.
    @Test
    func largeBotnetSpreadOverItsRangeIsDistributed() throws {
        try expectDistributed(bots: 40_000, every: 3, rate: 30_000, until: 17, seed: 10) { scenario, victim in
            scenario.background(to: victim, port: 80, from: 0, to: 20)
        }
    }

    /// `hping3 -S --flood` from a real host: its kernel answers every SYN-ACK with a RST. The attempts
    /// never complete, so it is a single-source flood all the same.
    @Test
    func floodFromARealHostWhoseKernelResetsIsStillAFlood() throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 14)
        scenario.background(to: victim, port: 80, from: 0, to: 15)
        var time = Scenario.time(5)
        var port: UInt16 = 2_000
        while time < Scenario.time(12) {
            let syn = Packet(
                source: attacker,
                destination: victim,
                sourcePort: port,
                destinationPort: 80,
                sequence: scenario.random.next32(),
                flags: .syn
            )
            let synAck = syn.synAck(isn: scenario.random.next32())
            scenario.add(syn, at: time)
            scenario.add(synAck, at: time + 100_000)
            scenario.add(syn.reset, at: time + 200_000)
            port = port == 65_535 ? 2_000 : port + 1
            time += 500_000
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .singleSource)
        #expect(starts[0].figures?.topSources.first?.address == attacker)
        #expect(starts[0].scenarioTime > 5 && starts[0].scenarioTime <= 6, "started at \(starts[0].scenarioTime)")
    }

    /// Between events, the engine answers what is going on: the attack with its current figures,
    /// and the sources with the most uncompleted attempts.
    @Test
    func activeAttacksAndTopSourcesWhileABotnetAttacks() throws {
        let victim = v4(198, 18, 0, 10)
        let bots = (1...20).map { v4(198, 18, 101, UInt8($0)) }
        var scenario = Scenario(seed: 15)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        for bot in bots {
            scenario.flood(to: victim, port: 80, rate: 50, from: 5, to: 20) { _ in bot }
        }
        let engine = Engine.make()
        _ = scenario.run(on: engine, until: 12)
        let attacks = engine.activeAttacks()
        try #require(attacks.count == 1, "\(attacks)")
        #expect(attacks[0].victim == victim && attacks[0].port == 80 && attacks[0].kind == .distributed)
        #expect(abs(attacks[0].figures.halfOpenPerSecond - 1_000) <= 200, "\(attacks[0].figures)")
        #expect(attacks[0].totalSyns > 1_000)
        let top = engine.topSources(limit: 5)
        let all = engine.topSources(limit: 100_000)
        #expect(zip(all, all.dropFirst()).allSatisfy { ($0.halfOpen, $1.address) >= ($1.halfOpen, $0.address) })
        #expect(top == Array(all.prefix(5)))
        #expect(top.count == 5 && top.allSatisfy { bots.contains($0.address) && $0.halfOpen > 50 }, "\(top)")
        #expect(top.allSatisfy { $0.lastTarget == victim && $0.completions == 0 })
    }

    /// A reload changes thresholds at once and keeps what the tables learnt; capacities wait for a restart.
    @Test
    func reconfigureAppliesThresholdsAndKeepsCapacities() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 16)
        scenario.background(to: victim, port: 80, from: 0, to: 10)
        scenario.flood(to: victim, port: 80, rate: 300, from: 2, to: 10) { $0.spoofedSource(like: victim) }
        let engine = Engine.make()
        var stricter = engine.configuration
        stricter.detection.halfOpenPerSecond = 1_000
        stricter.baseline.enabled = false
        stricter.handshakes.capacity *= 2
        let deferred = try engine.reconfigure(stricter)
        #expect(deferred == ["handshakes.capacity"])
        #expect(engine.configuration.detection.halfOpenPerSecond == 1_000)
        #expect(engine.configuration.handshakes.capacity == Engine.make().configuration.handshakes.capacity)
        #expect(events(.attackStart, in: scenario.run(on: engine, until: 12)).isEmpty, "300 SYN/s is below 1000")

        var invalid = engine.configuration
        invalid.detection.endFraction = 2
        #expect(throws: ConfigurationProblem.self) { try engine.reconfigure(invalid) }
        #expect(engine.configuration.detection.endFraction == EngineConfiguration().detection.endFraction)
    }

    /// Bots with real TCP stacks retransmit each unanswered SYN after 1 s and 3 s (same 4-tuple and
    /// ISN): the attack's half-open rate counts attempts, not SYN packets, also once it is under way.
    @Test
    func retransmissionsAreOneAttemptDuringAnAttack() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 10)
        scenario.background(to: victim, port: 80, from: 0, to: 30)
        scenario.flood(to: victim, port: 80, rate: 1_000, from: 5, to: 25, retransmitting: true) {
            $0.spoofedSource(like: victim)
        }
        let all = scenario.run(on: Engine.make(), until: 45)
        try #require(events(.attackStart, in: all).count == 1, "\(summary(all))")
        let updates = events(.attackUpdate, in: all).filter { $0.scenarioTime < 25 }
        try #require(!updates.isEmpty, "\(summary(all))")
        for update in updates {
            let figures = try #require(update.figures)
            #expect(abs(figures.halfOpenPerSecond - 1_000) <= 0.2 * 1_000, "\(figures)")
        }
    }

    /// 3000 new connections per second that all complete within 50 ms, once the baseline has warmed up.
    @Test
    func flashCrowdRaisesNothing() {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 4)
        scenario.background(to: victim, port: 443, from: 0, to: 75)
        scenario.connections(to: victim, port: 443, rate: 3_000, from: 62, to: 72, within: 0.05) {
            $0.spoofedSource(like: victim)
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 90)
        #expect(all.isEmpty, "\(summary(all))")
        #expect(engine.statistics.completions >= 30_000)
    }

    /// A spoofed flood, then a flash crowd 5 s after it stopped: 5,000 connections a second, and 100 more whose first
    /// SYN-ACK is lost, so that they complete a second later, after the client's retransmission. That tail (100
    /// half-open a second among 5,000 completions) once kept the attack going through the crowd and past it, its
    /// kind told again from the crowd's sources. The attack ends a quiet period after its flood, `random-source`.
    @Test
    func flashCrowdAfterAFloodIsNoPartOfIt() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 15)
        scenario.background(to: victim, port: 80, from: 0, to: 40)
        scenario.flood(to: victim, port: 80, rate: 2_000, from: 5, to: 12) { $0.spoofedSource(like: victim) }
        scenario.connections(to: victim, port: 80, rate: 5_000, from: 17, to: 35, within: 0.05) {
            $0.spoofedSource(like: victim)
        }
        for time in stride(from: Scenario.time(17), to: Scenario.time(35), by: Int(10 * millisecond)) {
            let client = scenario.spoofedSource(like: victim)
            scenario.lossyConnection(from: client, to: victim, port: 80, at: time, lostSynAcks: 1)
        }
        let all = scenario.run(on: Engine.make(), until: 45)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let attack = all.filter { $0.attackID == starts[0].attackID }
        #expect(attack.allSatisfy { $0.kind == .randomSource }, "\(summary(all))")
        let end = try #require(events(.attackEnd, in: attack).first, "\(summary(all))")
        #expect(end.time.nanoseconds < Scenario.time(12 + 1.5 + 10), "\(summary(all))")
    }

    /// A spoofed storm at a port where nothing listens: the kernel refuses every SYN with a RST/ACK, so nothing is
    /// half-open, and it is a flood all the same, told by its refusals.
    @Test
    func spoofedFloodAtAClosedPortIsRandomSource() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 16)
        scenario.background(to: victim, port: 80, from: 0, to: 25)
        scenario.flood(to: victim, port: 8080, rate: 2_000, from: 5, to: 12, closedPort: true) {
            $0.spoofedSource(like: victim)
        }
        let all = scenario.run(on: Engine.make(), until: 25)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        let start = starts[0]
        #expect(start.port == 8080 && start.kind == .randomSource, "\(start)")
        #expect(start.time.nanoseconds < Scenario.time(6), "\(start)")
        let figures = try #require(start.figures)
        #expect(figures.halfOpenPerSecond == 0 && figures.refusedPerSecond > 1_000, "\(figures)")
        let end = try #require(events(.attackEnd, in: all).first?.summary, "\(summary(all))")
        #expect(abs(end.peakRefusedPerSecond - 2_000) < 400, "\(end)")
        #expect(end.endReason == .quiet, "\(end)")
    }

    /// hping3 from one host at a closed port: a single-source flood, its source named.
    @Test
    func oneSourceFloodingAClosedPortIsSingleSource() throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 60, 6)
        var scenario = Scenario(seed: 17)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 25, rate: 1_000, from: 5, to: 10, closedPort: true) { _ in attacker }
        let all = scenario.run(on: Engine.make(), until: 20)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .singleSource, "\(starts[0])")
        #expect(starts[0].figures?.topSources.first?.address == attacker, "\(starts[0])")
    }

    /// hping3's default port is 0, the key of the whole host: a flood there, refused, is an attack on the host, of its
    /// kind, though its one source sends to one port as no scanner does.
    @Test(arguments: [false, true])
    func floodAtPortZeroIsAHostAttack(fromOneSource: Bool) throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 60, 6)
        var scenario = Scenario(seed: 19)
        scenario.background(to: victim, port: 80, from: 0, to: 20)
        scenario.flood(to: victim, port: 0, rate: 1_000, from: 5, to: 10, closedPort: true) { scenario in
            fromOneSource ? attacker : scenario.spoofedSource(like: victim)
        }
        let all = scenario.run(on: Engine.make(), until: 20)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].port == nil && starts[0].time.nanoseconds < Scenario.time(6), "\(starts[0])")
        #expect(starts[0].kind == (fromOneSource ? .singleSource : .randomSource), "\(starts[0])")
    }

    /// A busy service goes down: its 400 clients keep connecting, each connect tried three times half a second apart
    /// (as applications retry a refused connection), 900 refused a second for 30 s. A service that completed
    /// handshakes listens: its refusals are a restart, not a flood at a closed port.
    @Test
    func clientsOfAServiceThatWentDownRaiseNothing() throws {
        let server = v4(198, 18, 0, 10)
        let clients = (0..<400).map { v4(198, 18, 40 + UInt8($0 / 200), UInt8(1 + $0 % 200)) }
        var scenario = Scenario(seed: 18)
        scenario.connections(to: server, port: 443, rate: 300, from: 0, to: 10) {
            clients.randomElement(using: &$0.random)!
        }
        var time = Scenario.time(10)
        while time < Scenario.time(40) {
            let client = clients.randomElement(using: &scenario.random)!
            for retry in 0..<3 {
                let syn = scenario.newSyn(from: client, to: server, port: 443)
                let sent = time + Int64(retry) * 500 * millisecond
                scenario.add(syn, at: sent)
                scenario.add(syn.refusal, at: sent + 100_000)
            }
            time += Int64(1e9 / 300 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let all = scenario.run(on: Engine.make(), until: 45)
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// A reverse proxy whose upstream went down: one host, 500 new connections a second, every one refused for 30 s.
    /// Told by its source alone it would be a single-source flood; the upstream completed handshakes before.
    @Test
    func proxyHammeringAnUpstreamThatWentDownRaisesNothing() throws {
        let upstream = v4(198, 18, 0, 10)
        let proxy = v4(198, 18, 5, 5)
        var scenario = Scenario(seed: 20)
        scenario.connections(to: upstream, port: 8080, rate: 500, from: 0, to: 10) { _ in proxy }
        scenario.flood(to: upstream, port: 8080, rate: 500, from: 10, to: 40, closedPort: true) { _ in proxy }
        let all = scenario.run(on: Engine.make(), until: 45)
        #expect(all.isEmpty, "\(summary(all))")
    }

    /// One source probing 200 closed ports, each refused by RST/ACK.
    @Test
    func portScanIsOneScanNotice() throws {
        let target = v4(198, 18, 0, 20)
        let scanner = v4(198, 18, 50, 5)
        var scenario = Scenario(seed: 5)
        scenario.background(to: target, port: 22, from: 0, to: 10)
        var ports = Array(UInt16(1)...200)
        ports.shuffle(using: &scenario.random)
        for (index, port) in ports.enumerated() {
            let syn = Packet(
                source: scanner,
                destination: target,
                sourcePort: 61_000,
                destinationPort: port,
                sequence: scenario.random.next32(),
                flags: .syn
            )
            let time = Scenario.time(3 + Double(index) * 0.01)
            scenario.add(syn, at: time)
            scenario.add(syn.refusal, at: time + 300_000)
        }
        let all = scenario.run(on: Engine.make(), until: 20)
        try #require(all.count == 1, "\(summary(all))")
        #expect(all[0].type == .scan)
        #expect(all[0].victim == target)
        let scan = try #require(all[0].scan)
        #expect(scan.source == scanner)
        #expect(scan.distinctTargets >= defaults.scan.minTargets)
        // Estimates of what its SYNs reached, never more than them.
        #expect(scan.distinctTargets <= scan.syns, "\(scan)")
        #expect(scan.distinctAddresses == 1)
    }

    /// One source sending 1,000 SYNs a second for 10 s to ports 1–1,024 of a host that answers every one with a
    /// SYN-ACK, among a service's clients. From an address that never answers (DARPA's `neptune`), every attempt is
    /// held past its retransmission deadline: a single-source flood on the host. From a scanner, whose kernel resets
    /// what it is answered, nothing is held: a scan.
    @Test(arguments: [false, true])
    func oneSourceOverPortsTheHostAnswersIsAFloodUnlessItResets(resets: Bool) throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 23)
        scenario.background(to: victim, port: 80, from: 0, to: 30)
        var time = Scenario.time(5)
        while time < Scenario.time(15) {
            let syn = Packet(
                source: attacker,
                destination: victim,
                sourcePort: UInt16.random(in: 1024...65535, using: &scenario.random),
                destinationPort: UInt16.random(in: 1...1024, using: &scenario.random),
                sequence: scenario.random.next32(),
                flags: .syn
            )
            scenario.add(syn, at: time)
            scenario.add(syn.synAck(isn: scenario.random.next32()), at: time + 100_000)
            if resets { scenario.add(syn.reset, at: time + 200_000) }
            time += millisecond
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        #expect(events(.scan, in: all).count == 1, "\(summary(all))")
        let starts = events(.attackStart, in: all)
        if resets {
            #expect(starts.isEmpty, "\(summary(all))")
            return
        }
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].victim == victim && starts[0].port == nil, "\(starts[0])")
        #expect(starts[0].kind == .singleSource)
        let figures = try #require(starts[0].figures)
        #expect(figures.topSources.first?.address == attacker)
        // Held attempts show at their retransmission deadline, and must add up to an epoch at the threshold's rate:
        // half a second more at 1,000 a second.
        let deadline = defaults.handshakes.retransmissionDeadline.seconds
        #expect(starts[0].scenarioTime < 5 + deadline + 1.5, "started at \(starts[0].scenarioTime)")
        #expect(events(.attackEnd, in: all).count == 1, "\(summary(all))")
    }

    /// One host flooding a service at 20,000 SYN/s for 6 s, the server answering each SYN: once the attack is known,
    /// its attempts are sampled by handshake, and the answers to those sampled out answer SYNs the engine saw. They are
    /// no unsolicited SYN-ACKs (an operator reads those as backscatter, or as evictions).
    @Test
    func answersToAttemptsSampledOutAreNotUnsolicited() throws {
        let victim = v4(198, 18, 0, 10)
        let attacker = v4(198, 18, 66, 6)
        var scenario = Scenario(seed: 31)
        scenario.flood(to: victim, port: 80, rate: 20_000, from: 2, to: 8) { _ in attacker }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 20)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].kind == .singleSource)
        let statistics = engine.statistics
        #expect(statistics.sampledOut > 20_000, "\(statistics.sampledOut) sampled out")
        #expect(statistics.unsolicitedSynAcks < 100, "\(statistics.unsolicitedSynAcks) unsolicited")
    }

    /// A capture that holds one direction of the connections of a busy address behind NAT, as on a link with
    /// asymmetric routing: SYN-ACKs from 40 servers, 300 a second, each followed by its server's data and FIN. Those
    /// SYN-ACKs answered SYNs out of sight: no backscatter notice.
    @Test
    func synAcksOfConnectionsSeenOneWayAreNoBackscatter() {
        let address = v4(198, 18, 0, 30)
        let servers = (0..<40).map { v4(198, 18, 200, UInt8(1 + $0)) }
        var scenario = Scenario(seed: 18)
        var time = Scenario.time(2)
        while time < Scenario.time(12) {
            let serverISN = scenario.random.next32()
            let clientNext = scenario.random.next32()
            var synAck = Packet(
                source: servers.randomElement(using: &scenario.random)!,
                destination: address,
                sourcePort: 443,
                destinationPort: UInt16.random(in: 1024...65535, using: &scenario.random),
                sequence: serverISN,
                acknowledgement: clientNext,
                flags: [.syn, .ack]
            )
            scenario.add(synAck, at: time)
            synAck.flags = [.psh, .ack]
            synAck.sequence = serverISN &+ 1
            synAck.acknowledgement = clientNext &+ 300
            synAck.payload = 1_200
            scenario.add(synAck, at: time + 60 * millisecond)
            synAck.flags = [.fin, .ack]
            synAck.sequence = serverISN &+ 1_201
            synAck.payload = 0
            scenario.add(synAck, at: time + 200 * millisecond)
            time += Int64(1e9 / 300 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        #expect(all.isEmpty, "\(summary(all))")
        #expect(engine.statistics.unsolicitedSynAcks >= 2_900)
    }

    /// SYN-ACKs from 500 reflectors to one of our addresses, 300 per second for 10 s.
    @Test
    func backscatterIsOneNotice() throws {
        let spoofed = v4(198, 18, 0, 30)
        let reflectors = (0..<500).map { IPAddress(ipv4: 0xC613_1000 + UInt32($0)) }
        var scenario = Scenario(seed: 6)
        scenario.background(to: v4(198, 18, 0, 10), port: 80, from: 0, to: 20)
        var time = Scenario.time(5)
        while time < Scenario.time(15) {
            scenario.add(
                Packet(
                    source: reflectors.randomElement(using: &scenario.random)!,
                    destination: spoofed,
                    sourcePort: 80,
                    destinationPort: UInt16.random(in: 1024...65535, using: &scenario.random),
                    sequence: scenario.random.next32(),
                    acknowledgement: scenario.random.next32(),
                    flags: [.syn, .ack]
                ),
                at: time
            )
            time += Int64(1e9 / 300 * Double.random(in: 0.5...1.5, using: &scenario.random))
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        try #require(all.count == 1, "\(summary(all))")
        #expect(all[0].type == .backscatter)
        #expect(all[0].victim == spoofed)
        #expect(all[0].scenarioTime >= 5 && all[0].scenarioTime <= 7)
        let figures = try #require(all[0].backscatter)
        #expect(abs(figures.synAckPerSecond - 300) <= 0.25 * 300, "\(figures)")
        #expect(figures.distinctSources >= defaults.backscatter.minSources, "\(figures)")
        #expect(engine.statistics.unsolicitedSynAcks >= 2_900)
    }

    /// 2 s on, 3 s off for 30 s: the pauses are shorter than the quiet period, so it is one attack.
    @Test
    func pulsingFloodIsOneAttack() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 7)
        scenario.background(to: victim, port: 80, from: 0, to: 40)
        for pulse in stride(from: 5.0, to: 35, by: 5) {
            scenario.flood(to: victim, port: 80, rate: 2_000, from: pulse, to: pulse + 2) {
                $0.spoofedSource(like: victim)
            }
        }
        let quiet = defaults.detection.quietPeriod.seconds
        let all = scenario.run(on: Engine.make(), until: 32 + quiet + 5)
        #expect(all.allSatisfy { attackTypes.contains($0.type) }, "\(summary(all))")
        try #require(events(.attackStart, in: all).count == 1, "\(summary(all))")
        let ends = events(.attackEnd, in: all)
        try #require(ends.count == 1, "\(summary(all))")
        #expect(ends[0].scenarioTime >= 32 + quiet, "\(summary(all))")
        #expect(Set(all.map(\.attackID)).count == 1)
    }

    /// An attack still going on when the capture ends is ended by `finish()`, once every attempt has passed its
    /// retransmission deadline; it lasted until the capture's last frame, where the capture ends too.
    @Test
    func finishEndsAttacksInProgress() throws {
        let victim = v4(198, 18, 0, 10)
        var scenario = Scenario(seed: 8)
        scenario.flood(to: victim, port: 80, rate: 2_000, from: 0, to: 5) { $0.spoofedSource(like: victim) }
        let engine = Engine.make()
        var all = scenario.run(on: engine, until: 0)
        let lastFrame = try #require(engine.statistics.lastTime)
        engine.finish()
        all += engine.takeEvents()
        try #require(events(.attackStart, in: all).count == 1, "\(summary(all))")
        let ends = events(.attackEnd, in: all)
        try #require(ends.count == 1, "\(summary(all))")
        let ended = try #require(ends[0].summary)
        #expect(ended.endReason == .captureEnd)
        let deadline = EngineConfiguration().handshakes.retransmissionDeadline.seconds
        #expect(ends[0].scenarioTime < 5 + deadline + 0.3)
        #expect(ended.start.nanoseconds + ended.duration.nanoseconds == lastFrame.nanoseconds, "\(ended)")
        #expect(engine.statistics.lastTime == lastFrame)
    }

    /// Spoofed SYNs to random ports of one host: no service sees a flood, the host does. 5,000 a second from
    /// anywhere, and 40,000 a second from a pool of 65,536 addresses, each of which repeats. Thinned by client,
    /// a port's few kept SYNs count for many each: no port may pose as attacked for them.
    @Test(arguments: [(5_000.0, false), (40_000.0, true)])
    func spoofedFloodOverRandomPortsIsAHostAttack(rate: Double, fromAPool: Bool) throws {
        let victim = v4(198, 18, 0, 30)
        var scenario = Scenario(seed: 12)
        scenario.background(to: victim, port: 443, from: 0, to: 20)
        scenario.sprayPorts(of: victim, from: 3, to: fromAPool ? 11 : 13, rate: rate) { scenario in
            fromAPool
                ? IPAddress(ipv4: 0xC613_0000 | scenario.random.next32() & 0xFFFF)
                : scenario.spoofedSource(like: victim)
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].victim == victim)
        #expect(starts[0].port == nil, "a host-wide attack names no port")
        #expect(all.filter { attackTypes.contains($0.type) }.allSatisfy { $0.kind == .randomSource }, "\(all)")
        #expect(starts[0].scenarioTime > 3 && starts[0].scenarioTime <= 4, "started at \(starts[0].scenarioTime)")
        #expect(events(.attackEnd, in: all).count == 1)
        #expect(events(.scan, in: all).isEmpty)
    }

    /// A spoofed storm over a host's ports is thinned by client: a kept SYN counts for 2^k. Five of its SYNs that
    /// land on one port together, all from kept clients, are five SYNs seen, not a flood on that port.
    @Test
    func fewKeptSynsOnAPortOfAThinnedHostAreNoAttack() throws {
        let victim = v4(198, 18, 0, 32)
        let engine = Engine.make()
        // Kept at the highest shift, so at whatever shift the storm is thinned.
        var kept: [IPAddress] = []
        var candidate: UInt32 = 0xC613_0000
        while kept.count < 5 {
            candidate += 1
            let address = IPAddress(ipv4: candidate)
            if engine.clientSampling.keeps(address, shift: Detector.maximumSamplingShift) { kept.append(address) }
        }
        var scenario = Scenario(seed: 15)
        scenario.sprayPorts(of: victim, from: 3, to: 9, rate: 40_000) { $0.spoofedSource(like: victim) }
        for (index, client) in kept.enumerated() {
            scenario.add(
                scenario.newSyn(from: client, to: victim, port: 8_080),
                at: Scenario.time(7) + Int64(index) * 5 * millisecond
            )
        }
        let all = scenario.run(on: engine, until: 25)
        let starts = events(.attackStart, in: all)
        #expect(starts.count == 1 && starts.allSatisfy { $0.port == nil }, "\(starts)")
    }

    /// One source probing 8,000 ports with no answers seen (an ingress capture, or a firewall that drops closed
    /// ports): a scan, not a host attack; also when the server's many clients complete meanwhile, whose sources must
    /// not make the scanner's failures look like a flood of many sources.
    @Test(arguments: [false, true])
    func unansweredVerticalScanIsNoHostAttack(busyServer: Bool) {
        let target = v4(198, 18, 0, 31)
        var scenario = Scenario(seed: 13)
        if busyServer {
            scenario.connections(to: target, port: 443, rate: 300, from: 0, to: 20, within: 0.1) {
                $0.spoofedSource(like: target)
            }
        }
        for port in UInt16(1)...8_000 {
            let syn = Packet(
                source: v4(198, 18, 60, 6),
                destination: target,
                sourcePort: 50_000,
                destinationPort: port,
                sequence: UInt32(port),
                flags: .syn
            )
            scenario.add(syn, at: Scenario.time(5 + Double(port) * 0.001))
        }
        let all = scenario.run(on: Engine.make(), until: 40)
        #expect(events(.attackStart, in: all).isEmpty, "\(summary(all))")
        #expect(events(.scan, in: all).count == 1, "\(summary(all))")
    }

    /// 300 bots each sending 15 SYNs a second to random ports of one host: no port carries the flood and no source
    /// holds much of it, so it is a distributed attack on the host, naming bots, and no bot is reported as a
    /// scanner.
    @Test
    func botnetSprayingRandomPortsIsADistributedHostAttack() throws {
        let victim = v4(198, 18, 0, 30)
        let bots = botAddresses(300)
        var scenario = Scenario(seed: 17)
        scenario.background(to: victim, port: 443, from: 0, to: 20)
        scenario.sprayPorts(of: victim, from: 3, to: 13, rate: 4_500) {
            bots[Int.random(in: 0..<bots.count, using: &$0.random)]
        }
        let all = scenario.run(on: Engine.make(), until: 30)
        let starts = events(.attackStart, in: all)
        try #require(starts.count == 1, "\(summary(all))")
        #expect(starts[0].victim == victim)
        #expect(starts[0].port == nil, "a host-wide attack names no port")
        #expect(starts[0].scenarioTime > 3 && starts[0].scenarioTime <= 4, "started at \(starts[0].scenarioTime)")
        // In its first steps each bot has sent a SYN or two: it may start as spoofed, and is told again at once.
        let told = try #require(all.first { $0.port == nil && $0.kind == .distributed }, "\(summary(all))")
        #expect(told.scenarioTime < starts[0].scenarioTime + 1, "\(summary(all))")
        let top = try #require(told.figures?.topSources)
        #expect(!top.isEmpty && top.allSatisfy { bots.contains($0.address) }, "\(top)")
        #expect(events(.attackEnd, in: all).count == 1)
        #expect(events(.scan, in: all).isEmpty, "\(summary(all))")
    }

    /// The same capture gives the same events, to the last figure.
    @Test
    func sameInputGivesSameEvents() throws {
        func mixed() -> Scenario {
            let victim = v4(198, 18, 0, 10)
            var scenario = Scenario(seed: 9)
            scenario.background(to: victim, port: 80, from: 0, to: 20)
            scenario.flood(to: victim, port: 80, rate: 1_500, from: 2, to: 6) { $0.spoofedSource(like: victim) }
            scenario.flood(to: v6(0x10), port: 443, rate: 500, from: 3, to: 7) { $0.spoofedSource(like: v6(0x10)) }
            for port in UInt16(1)...60 {
                let syn = Packet(
                    source: v4(198, 18, 50, 5),
                    destination: v4(198, 18, 0, 20),
                    sourcePort: 61_000,
                    destinationPort: port,
                    sequence: UInt32(port),
                    flags: .syn
                )
                scenario.add(syn, at: Scenario.time(8 + Double(port) * 0.01))
                scenario.add(syn.refusal, at: Scenario.time(8.001 + Double(port) * 0.01))
            }
            return scenario
        }
        let first = Engine.make(), second = Engine.make()
        let once = mixed().run(on: first, until: 30)
        let again = mixed().run(on: second, until: 30)
        #expect(Set(once.map(\.type)).isSuperset(of: [.attackStart, .attackEnd, .scan]))
        #expect(once == again)
        #expect(first.statistics == second.statistics)
    }
}

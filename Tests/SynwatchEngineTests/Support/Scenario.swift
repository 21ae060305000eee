@testable import SynwatchEngine

/// Timed packets of a synthetic traffic scenario, built stream by stream and fed in time order.
struct Scenario {
    /// Scenario time 0, as a capture time.
    static let origin: Int64 = 1_700_000_000 * second

    var random: SeededRandom
    private var packets: [(time: Int64, order: Int, packet: Packet)] = []

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    /// Capture time of scenario second `seconds`.
    static func time(_ seconds: Double) -> Int64 { origin + Int64((seconds * 1e9).rounded()) }

    mutating func add(_ packet: Packet, at time: Int64) {
        packets.append((time, packets.count, packet))
    }

    /// A spoofed-source address in 198.18.0.0/15 (or 2001:db8::/32 for an IPv6 victim).
    mutating func spoofedSource(like victim: IPAddress) -> IPAddress {
        victim.isIPv4
            ? IPAddress(ipv4: 0xC612_0000 | UInt32.random(in: 0x100..<0x2_0000, using: &random))
            : IPAddress(high: 0x2001_0DB8_0000_0000 | random.next() >> 32, low: random.next())
    }

    /// A new attempt's SYN from `client` to the service: a random client port and ISN, an MSS option unless
    /// `optionless` (a tool's SYN, not a stack's).
    mutating func newSyn(
        from client: IPAddress,
        to victim: IPAddress,
        port: UInt16,
        optionless: Bool = false
    ) -> Packet {
        Packet(
            source: client,
            destination: victim,
            sourcePort: UInt16.random(in: 1024...65535, using: &random),
            destinationPort: port,
            sequence: random.next32(),
            flags: .syn,
            optionless: optionless
        )
    }

    /// SYNs at `rate` per second from `source()`, each answered by the server's SYN-ACK and never completed, or
    /// where the port is closed, refused by its RST/ACK; unless not `answered`: the server's side is not captured.
    /// `retransmitting` sources are live TCP stacks that drop what they are answered (a botnet's hosts, or one host,
    /// behind their firewall): each SYN comes again after 1 s and 3 s, and is answered again. `optionless` SYNs are
    /// written by a tool, as hping3's are.
    mutating func flood(
        to victim: IPAddress,
        port: UInt16,
        rate: Double,
        from start: Double,
        to end: Double,
        closedPort: Bool = false,
        retransmitting: Bool = false,
        answered: Bool = true,
        optionless: Bool = false,
        source: (inout Scenario) -> IPAddress
    ) {
        var time = Scenario.time(start)
        let interval = 1e9 / rate
        while time < Scenario.time(end) {
            let syn = newSyn(from: source(&self), to: victim, port: port, optionless: optionless)
            let answer = closedPort ? syn.refusal : syn.synAck(isn: random.next32())
            for again in retransmitting ? [0, 1, 3] : [0] as [Int64] {
                add(syn, at: time + again * second)
                if answered { add(answer, at: time + again * second + 100_000) }
            }
            time += Int64(interval * Double.random(in: 0.5...1.5, using: &random))
        }
    }

    /// SYNs at `rate` per second from `source()` to random ports of `victim`, unanswered (an ingress capture).
    mutating func sprayPorts(
        of victim: IPAddress,
        from start: Double,
        to end: Double,
        rate: Double,
        source: (inout Scenario) -> IPAddress
    ) {
        var time = Scenario.time(start)
        while time < Scenario.time(end) {
            let syn = Packet(
                source: source(&self),
                destination: victim,
                sourcePort: UInt16.random(in: 1024...65535, using: &random),
                destinationPort: UInt16.random(in: 1...65535, using: &random),
                sequence: random.next32(),
                flags: .syn
            )
            add(syn, at: time)
            time += Int64(1e9 / rate)
        }
    }

    /// Connections at `rate` per second from `source()` that complete within `within` seconds.
    mutating func connections(
        to victim: IPAddress,
        port: UInt16,
        rate: Double,
        from start: Double,
        to end: Double,
        within: Double = 0.05,
        source: (inout Scenario) -> IPAddress
    ) {
        var time = Scenario.time(start)
        let interval = 1e9 / rate
        let longest = Int64(within * 1e9)
        while time < Scenario.time(end) {
            let syn = newSyn(from: source(&self), to: victim, port: port)
            let serverISN = random.next32()
            let answered = time + Int64.random(in: 50_000...(longest / 2), using: &random)
            add(syn, at: time)
            add(syn.synAck(isn: serverISN), at: answered)
            let completed = answered + Int64.random(in: 50_000...(longest / 2), using: &random)
            add(syn.completingAck(serverISN: serverISN), at: completed)
            time += Int64(interval * Double.random(in: 0.5...1.5, using: &random))
        }
    }

    /// One connection as a real client makes it through a lossy path: the SYN at `time`, sent again
    /// (same ISN) on its stack's schedule while unanswered. The first `lostSyns` tries never reach the
    /// server; then `lostSynAcks` tries reach it, but its SYN-ACK never reaches the client; the next
    /// one completes after `roundTrip`.
    mutating func lossyConnection(
        from client: IPAddress,
        to victim: IPAddress,
        port: UInt16,
        at time: Int64,
        lostSyns: Int = 0,
        lostSynAcks: Int = 0,
        roundTrip: Int64 = 20 * millisecond,
        stack: ClientStack = .linux
    ) {
        let syn = newSyn(from: client, to: victim, port: port)
        let serverISN = random.next32()
        let tries = stack.synTimes.map { time + $0 * second }
        for index in 0...(lostSyns + lostSynAcks) {
            add(syn, at: tries[index])
            guard index >= lostSyns else { continue }
            add(syn.synAck(isn: serverISN), at: tries[index] + 100_000)
        }
        add(syn.completingAck(serverISN: serverISN), at: tries[lostSyns + lostSynAcks] + roundTrip)
    }

    /// Quiet normal traffic: 20 clients completing 20 connections per second in all.
    mutating func background(to victim: IPAddress, port: UInt16, from start: Double, to end: Double) {
        let clients = (1...20).map { index in
            victim.isIPv4 ? v4(198, 19, 7, UInt8(index)) : v6(0x7_0000 + UInt64(index))
        }
        connections(to: victim, port: port, rate: 20, from: start, to: end, within: 0.02) { scenario in
            clients.randomElement(using: &scenario.random)!
        }
    }

    /// The same traffic with every packet seen twice, the copy `delay` after it: a mirror port that sees each
    /// frame on its way in and out, or two captures merged.
    func withCopies(after delay: Int64) -> Scenario {
        var copied = self
        for entry in packets { copied.add(entry.packet, at: entry.time + delay) }
        return copied
    }

    /// Feeds every packet in time order, then moves time on to `end` seconds without traffic.
    func run(on engine: Engine, until end: Double) -> [Event] {
        for entry in packets.sorted(by: { ($0.time, $0.order) < ($1.time, $1.order) }) {
            engine.feed(entry.packet, at: entry.time)
        }
        var time = packets.map(\.time).max() ?? Scenario.origin
        while time < Scenario.time(end) {
            time += 100 * millisecond
            engine.advance(to: Timestamp(nanoseconds: time))
        }
        return engine.takeEvents()
    }
}

extension Event {
    /// Seconds since the scenario's origin.
    var scenarioTime: Double { Double(time.nanoseconds - Scenario.origin) / 1e9 }
}

/// When a client's stack sends a SYN nobody answers, in seconds after the first.
enum ClientStack: Sendable, CaseIterable {
    /// Linux (and macOS, FreeBSD, Android: a first time-out of 1 s, RFC 6298), doubling.
    case linux
    /// Windows: a first time-out of 3 s (`InitialRto`, 3,000 ms by default), doubling, two retransmissions by
    /// default (more when configured).
    case windows

    var synTimes: [Int64] {
        switch self {
        case .linux: [0, 1, 3, 7, 15]
        case .windows: [0, 3, 9, 21, 45]
        }
    }
}

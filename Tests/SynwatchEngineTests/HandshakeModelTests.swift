import Testing

@testable import SynwatchEngine

/// The documented handshake semantics over a plain dictionary: what `Engine` must count.
///
/// Retransmission is the same 4-tuple and ISN (sooner than `minRetransmissionDelay` after the first, a copy: it
/// repeats the attempt without making it retransmitted); a new ISN replaces the attempt, and so does the same SYN
/// once it came `HandshakeEntry.maximumSends` times (and then every further time). "In the first window" of an
/// ISN is from ISN+1 to 64 KiB past it. A SYN-ACK belongs to the attempt when its ack is in the first window of the
/// ISN. Completion needs seq in the first window of the ISN and, once a SYN-ACK was seen, ack in that of the server's.
/// A RST closes the attempt when it comes from the client, or from the server with no ACK flag or an ack in the
/// first window of the ISN. Attempts time
/// out after `timeout` (retransmitted ones after `retransmittedTimeout`), but the engine sweeps the table in slices
/// once per time-out period, so an attempt is surely gone only a sweep period later; in between the model calls it
/// uncertain.
struct HandshakeModel {
    struct Key: Hashable {
        var client: IPAddress
        var clientPort: UInt16
        var server: IPAddress
        var serverPort: UInt16
    }

    struct Attempt {
        var isn: UInt32
        var synTime: Int64
        var serverISN: UInt32?
        var retransmitted = false
        var sends = 1
    }

    struct Counts: Equatable, CustomStringConvertible {
        var synPackets = 0
        var synRetransmits = 0
        var synAcks = 0
        var synAckRetransmits = 0
        var unsolicitedSynAcks = 0
        var completions = 0
        var resets = 0

        init() {}

        init(_ statistics: EngineStatistics) {
            synPackets = statistics.synPackets
            synRetransmits = statistics.synRetransmits
            synAcks = statistics.synAcks
            synAckRetransmits = statistics.synAckRetransmits
            unsolicitedSynAcks = statistics.unsolicitedSynAcks
            completions = statistics.completions
            resets = statistics.resets
        }

        var description: String {
            "SYN \(synPackets) (\(synRetransmits) again), SYN-ACK \(synAcks) (\(synAckRetransmits) again, "
                + "\(unsolicitedSynAcks) unsolicited), completed \(completions), reset \(resets)"
        }
    }

    let timeout: Int64
    let retransmittedTimeout: Int64
    let minRetransmissionDelay: Int64
    /// The sweep reaches an attempt within one more time-out and a step after it is eligible.
    let sweepPeriod: Int64
    /// By then every attempt is surely swept.
    var sweptAfter: Int64 { retransmittedTimeout + sweepPeriod }
    var attempts: [Key: Attempt] = [:]
    var counts = Counts()
    /// Attempts surely swept: a lower bound of the engine's time-outs.
    var timeouts = 0
    /// No attempt's SYN is older than this, so expiring can wait until it is.
    var oldestSyn = Int64.max

    init(configuration: EngineConfiguration) {
        timeout = configuration.handshakes.timeout.nanoseconds
        retransmittedTimeout = configuration.handshakes.retransmittedTimeout.nanoseconds
        minRetransmissionDelay = configuration.handshakes.minRetransmissionDelay.nanoseconds
        sweepPeriod = timeout + 2 * configuration.windows.resolution.nanoseconds
    }

    func timeout(of attempt: Attempt) -> Int64 { attempt.retransmitted ? retransmittedTimeout : timeout }

    static func clientKey(_ packet: Packet) -> Key {
        Key(
            client: packet.source,
            clientPort: packet.sourcePort,
            server: packet.destination,
            serverPort: packet.destinationPort
        )
    }

    static func serverKey(_ packet: Packet) -> Key {
        Key(
            client: packet.destination,
            clientPort: packet.destinationPort,
            server: packet.source,
            serverPort: packet.sourcePort
        )
    }

    /// Removes the attempts the sweep has surely removed by `time`.
    mutating func expire(at time: Int64) {
        guard time - oldestSyn >= timeout + sweepPeriod else { return }
        let before = attempts.count
        attempts = attempts.filter { time - $0.value.synTime < timeout(of: $0.value) + sweepPeriod }
        timeouts += before - attempts.count
        oldestSyn = attempts.values.map(\.synTime).min() ?? .max
    }

    func isUncertain(_ key: Key, at time: Int64) -> Bool {
        guard let attempt = attempts[key] else { return false }
        return time - attempt.synTime > timeout(of: attempt)
    }

    func uncertainCount(at time: Int64) -> Int {
        attempts.values.reduce(0) { $0 + (time - $1.synTime > timeout(of: $1) ? 1 : 0) }
    }

    /// Whether the engine's handling of `packet` depends on an attempt that may or may not be swept.
    func dependsOnUncertain(_ packet: Packet, at time: Int64) -> Bool {
        isUncertain(Self.clientKey(packet), at: time) || isUncertain(Self.serverKey(packet), at: time)
    }

    mutating func apply(_ packet: Packet, at time: Int64) {
        let flags = packet.flags
        if flags.contains(.rst) {
            reset(packet)
        } else if flags.contains(.syn) {
            if flags.contains(.ack) { synAck(packet) } else { syn(packet, at: time) }
        } else if flags.contains(.ack) {
            ack(packet)
        }
    }

    mutating func syn(_ packet: Packet, at time: Int64) {
        counts.synPackets += 1
        let key = Self.clientKey(packet)
        let maximumSends = Int(HandshakeEntry.maximumSends)
        if let attempt = attempts[key], attempt.isn == packet.sequence, attempt.sends < maximumSends {
            counts.synRetransmits += 1
            attempts[key]?.sends += 1
            if time - attempt.synTime >= minRetransmissionDelay { attempts[key]?.retransmitted = true }
        } else {
            let repeated = attempts[key]?.isn == packet.sequence
            attempts[key] = Attempt(isn: packet.sequence, synTime: time, sends: repeated ? maximumSends : 1)
            oldestSyn = min(oldestSyn, time)
        }
    }

    mutating func synAck(_ packet: Packet) {
        counts.synAcks += 1
        let key = Self.serverKey(packet)
        guard let attempt = attempts[key] else {
            counts.unsolicitedSynAcks += 1
            return
        }
        guard Self.isInFirstWindow(packet.acknowledgement, of: attempt.isn) else { return }
        if attempt.serverISN == packet.sequence {
            counts.synAckRetransmits += 1
        } else {
            attempts[key]?.serverISN = packet.sequence
        }
    }

    mutating func ack(_ packet: Packet) {
        let key = Self.clientKey(packet)
        guard let attempt = attempts[key], Self.isInFirstWindow(packet.sequence, of: attempt.isn),
            attempt.serverISN.map({ Self.isInFirstWindow(packet.acknowledgement, of: $0) }) ?? true
        else { return }
        counts.completions += 1
        attempts[key] = nil
    }

    mutating func reset(_ packet: Packet) {
        let fromClient = Self.clientKey(packet)
        if attempts[fromClient] != nil {
            counts.resets += 1
            attempts[fromClient] = nil
            return
        }
        let fromServer = Self.serverKey(packet)
        guard let attempt = attempts[fromServer],
            !packet.flags.contains(.ack) || Self.isInFirstWindow(packet.acknowledgement, of: attempt.isn)
        else { return }
        counts.resets += 1
        attempts[fromServer] = nil
    }

    /// A number of the handshake: from the byte after the ISN to 64 KiB past it (a Fast Open SYN's data, the first
    /// data after a lost ACK).
    static func isInFirstWindow(_ number: UInt32, of isn: UInt32) -> Bool {
        let offset = Int64(number) - Int64(isn) - 1
        let wrapped = offset < 0 ? offset + (1 << 32) : offset
        return wrapped < 65_536
    }
}

/// Random handshake traffic among few servers and many clients: every kind of segment, right and wrong.
struct HandshakeTrafficGenerator {
    var random: SeededRandom
    let servers: [IPAddress]
    /// Clients by family: IPv4 ones first, then IPv6.
    let clients: [[IPAddress]]
    let clientPorts: [UInt16]
    /// Every attempt's key, newest last: follow-ups mostly pick recent ones.
    var history: [HandshakeModel.Key] = []

    init(seed: UInt64) {
        random = SeededRandom(seed: seed)
        servers = [v4(198, 18, 0, 1), v4(198, 18, 0, 2), v6(0x1)]
        let clientCount = [3, 20, 200].randomElement(using: &random)!
        clients = [
            (0..<clientCount).map { IPAddress(ipv4: 0xC613_0000 + UInt32($0)) },
            (0..<(clientCount + 1) / 2).map { v6(0x1_0000 + UInt64($0)) },
        ]
        // Few ports per client, so 4-tuples come back with new ISNs.
        clientPorts = Array(40000..<(40000 + UInt16.random(in: 1...4, using: &random)))
    }

    mutating func newAttempt() -> Packet {
        let server = servers.randomElement(using: &random)!
        let client = clients[server.isIPv4 ? 0 : 1].randomElement(using: &random)!
        let packet = Packet(
            source: client,
            destination: server,
            sourcePort: clientPorts.randomElement(using: &random)!,
            destinationPort: [80, 443].randomElement(using: &random)!,
            sequence: random.next32(),
            flags: .syn
        )
        history.append(HandshakeModel.clientKey(packet))
        return packet
    }

    /// The next packet, given what the model knows of the attempt it follows up.
    mutating func next(model: HandshakeModel) -> Packet {
        guard !history.isEmpty, random.chance(0.75) else { return newAttempt() }
        let key = history[history.count - 1 - Int.random(in: 0..<min(history.count, 12), using: &random)]
        let attempt = model.attempts[key]
        let isn = attempt?.isn ?? random.next32()
        let serverISN = attempt?.serverISN ?? random.next32()
        let fromClient = Packet(
            source: key.client,
            destination: key.server,
            sourcePort: key.clientPort,
            destinationPort: key.serverPort,
            sequence: isn,
            flags: .syn
        )
        var fromServer = Packet(
            source: key.server,
            destination: key.client,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequence: serverISN,
            acknowledgement: isn &+ 1,
            flags: [.syn, .ack]
        )
        // Past the first window, and within it (a Fast Open SYN's data, data after a lost ACK).
        let wrong = UInt32.random(in: 0x1_0001...UInt32.max, using: &random)
        let later = UInt32.random(in: 1...0xFFFF, using: &random)
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<10:
            return fromClient
        case 10..<30:
            if attempt?.serverISN == nil || random.chance(0.5) { fromServer.sequence = random.next32() }
            return fromServer
        case 30..<33:
            fromServer.acknowledgement = isn &+ wrong
            return fromServer
        case 33..<35:
            fromServer.acknowledgement = isn &+ 1 &+ later
            return fromServer
        case 35..<60:
            return Packet(
                source: key.client,
                destination: key.server,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort,
                sequence: isn &+ 1,
                acknowledgement: serverISN &+ 1,
                flags: .ack
            )
        case 60..<63:
            return Packet(
                source: key.client,
                destination: key.server,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort,
                sequence: isn &+ wrong,
                acknowledgement: serverISN &+ 1,
                flags: .ack
            )
        case 63..<65:
            return Packet(
                source: key.client,
                destination: key.server,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort,
                sequence: isn &+ 1 &+ later,
                acknowledgement: serverISN &+ 1 &+ UInt32.random(in: 0...0xFFFF, using: &random),
                flags: [.psh, .ack]
            )
        case 65..<70:
            return Packet(
                source: key.client,
                destination: key.server,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort,
                sequence: isn &+ 1,
                acknowledgement: serverISN &+ wrong,
                flags: [.psh, .ack]
            )
        case 70..<78:
            return Packet(
                source: key.client,
                destination: key.server,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort,
                sequence: isn &+ 1,
                flags: .rst
            )
        case 78..<85:
            fromServer.sequence = 0
            fromServer.flags = [.rst, .ack]
            return fromServer
        case 85..<89:
            fromServer.sequence = 0
            fromServer.acknowledgement = isn &+ wrong
            fromServer.flags = [.rst, .ack]
            return fromServer
        case 89..<92:
            fromServer.flags = .rst
            return fromServer
        default:
            // A SYN-ACK from a reflector for a SYN nobody here sent.
            let reflector = UInt8.random(in: 1...250, using: &random)
            fromServer.source = key.server.isIPv4 ? v4(198, 18, 99, reflector) : v6(0x9900 + UInt64(reflector))
            return fromServer
        }
    }

    /// Irregular time between packets: mostly bursts, sometimes pauses, now and then a gap past the time-out of an
    /// attempt, and about half of those past that of a retransmitted one too.
    mutating func gap() -> Int64 {
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<65: Int64.random(in: 0...(5 * millisecond), using: &random)
        case 65..<94: Int64.random(in: (5 * millisecond)...(300 * millisecond), using: &random)
        case 94..<99: Int64.random(in: (300 * millisecond)...(3 * second), using: &random)
        default: Int64.random(in: (11 * second)...(130 * second), using: &random)
        }
    }
}

@Suite("Handshakes against a reference model")
struct HandshakeModelTests {
    static let configuration: EngineConfiguration = {
        var configuration = EngineConfiguration()
        // Room for every attempt; the other tables play no part in the counts, and each tick reads them all.
        configuration.handshakes.capacity = 8_192
        configuration.victims.capacity = 16
        configuration.sources.capacity = 64
        configuration.backscatter.capacity = 16
        configuration.connections.capacity = 4_096
        // No attack, so every attempt is tracked as the model tracks it.
        configuration.detection.halfOpenPerSecond = 1e9
        configuration.baseline.enabled = false
        return configuration
    }()

    /// Many random sequences, compared with the model after every packet.
    @Test(arguments: 0..<8)
    func engineCountsWhatTheModelCounts(batch: Int) throws {
        for sequence in 0..<16 {
            try compareOneSequence(seed: UInt64(batch * 1_000 + sequence))
        }
    }

    func compareOneSequence(seed: UInt64) throws {
        let engine = try Engine(configuration: Self.configuration)
        var model = HandshakeModel(configuration: Self.configuration)
        var traffic = HandshakeTrafficGenerator(seed: seed)
        var time = 1_700_000_000 * second + Int64.random(in: 0..<second, using: &traffic.random)
        let packets = Int.random(in: 50...600, using: &traffic.random)
        var sent = 0
        while sent < packets {
            let gap = traffic.gap()
            time += gap
            if gap >= model.sweptAfter {
                engine.advance(to: Timestamp(nanoseconds: time))
            }
            model.expire(at: time)
            let packet = traffic.next(model: model)
            // Only packets whose outcome the model can know for sure.
            guard !model.dependsOnUncertain(packet, at: time) else { continue }
            engine.feed(packet, at: time)
            model.apply(packet, at: time)
            sent += 1
            try check(engine, against: model, at: time, seed: seed, packet: sent)
        }
        // Past every time-out: nothing is uncertain any more.
        time += model.sweptAfter
        engine.advance(to: Timestamp(nanoseconds: time))
        model.expire(at: time)
        try check(engine, against: model, at: time, seed: seed, packet: sent)
        #expect(engine.occupancy.handshakes == 0)
        #expect(engine.statistics.handshakeEvictions == 0)
        #expect(engine.statistics.victimEvictions == 0)
        #expect(engine.statistics.attacks == 0)
    }

    func check(_ engine: Engine, against model: HandshakeModel, at time: Int64, seed: UInt64, packet: Int) throws {
        let statistics = engine.statistics
        let tracked = engine.occupancy.handshakes
        let swept = statistics.timeouts - model.timeouts
        // Uncertain attempts are either still tracked or timed out, never anything else.
        let agrees =
            HandshakeModel.Counts(statistics) == model.counts
            && statistics.timeouts + tracked == model.timeouts + model.attempts.count
            && swept >= 0 && (swept == 0 || swept <= model.uncertainCount(at: time))
        // The detailed expectations only on a mismatch: this runs after every packet.
        guard !agrees else { return }
        let context: Comment = "seed \(seed), packet \(packet)"
        #expect(HandshakeModel.Counts(statistics) == model.counts, context)
        #expect(statistics.timeouts + tracked == model.timeouts + model.attempts.count, context)
        #expect(swept >= 0 && swept <= model.uncertainCount(at: time), context)
        throw ModelMismatch()
    }
}

struct ModelMismatch: Error {}

import Testing

@testable import SynwatchEngine

/// The documented lifecycle over a plain dictionary of server-side states: what `Engine` must count.
///
/// TIME_WAIT and the closing time-outs end on the engine's sweep, which reaches every connection within
/// `sweepLag` of its deadline: in between the model calls the connection uncertain, sends it nothing and
/// compares nothing.
struct ConnectionModel {
    struct Connection {
        var state: ConnectionState
        var serverFin: UInt32 = 0
        var since: Int64
    }

    let timeWait: Int64
    let finTimeout: Int64
    let sweepLag = 1_300 * millisecond
    var connections: [Int: Connection] = [:]
    var counts = ConnectionCounts()
    var opened = 0
    var closed = 0
    var expired = 0

    init(configuration: EngineConfiguration) {
        timeWait = configuration.connections.timeWait.nanoseconds
        finTimeout = configuration.connections.finTimeout.nanoseconds
    }

    func deadline(_ connection: Connection) -> Int64? {
        switch connection.state {
        case .timeWait: connection.since + timeWait
        case .finWait1, .finWait2, .closing, .lastAck: connection.since + finTimeout
        case .established, .closeWait: nil
        }
    }

    func isUncertain(_ index: Int, at time: Int64) -> Bool {
        guard let connection = connections[index], let deadline = deadline(connection) else { return false }
        return time >= deadline
    }

    func hasUncertain(at time: Int64) -> Bool {
        connections.keys.contains { isUncertain($0, at: time) }
    }

    /// Ends what the sweep has surely ended by `time`.
    mutating func expire(at time: Int64) {
        for (index, connection) in connections {
            guard let deadline = deadline(connection), time >= deadline + sweepLag else { continue }
            end(index, connection.state == .timeWait ? \.closed : \.expired)
        }
    }

    mutating func move(_ index: Int, to state: ConnectionState, at time: Int64) {
        counts[connections[index]!.state] -= 1
        counts[state] += 1
        connections[index]!.state = state
        connections[index]!.since = time
    }

    mutating func end(_ index: Int, _ reason: WritableKeyPath<ConnectionModel, Int>?) {
        counts[connections[index]!.state] -= 1
        connections[index] = nil
        if let reason { self[keyPath: reason] += 1 }
    }

    mutating func open(_ index: Int, at time: Int64) {
        if let old = connections[index] { end(index, old.state == .timeWait ? \.closed : \.expired) }
        connections[index] = Connection(state: .established, since: time)
        counts.established += 1
        opened += 1
    }

    mutating func clientAck(_ index: Int, acknowledgement: UInt32, at time: Int64) {
        guard let connection = connections[index],
            Engine.acknowledges(acknowledgement, fin: connection.serverFin)
        else { return }
        switch connection.state {
        case .finWait1: move(index, to: .finWait2, at: time)
        case .closing: move(index, to: .timeWait, at: time)
        case .lastAck: end(index, \.closed)
        default: break
        }
    }

    mutating func clientFin(_ index: Int, at time: Int64) {
        guard let connection = connections[index] else { return }
        switch connection.state {
        case .established: move(index, to: .closeWait, at: time)
        case .finWait1:
            move(index, to: .closing, at: time)
            counts.closesSimultaneous += 1
        case .finWait2:
            move(index, to: .timeWait, at: time)
            counts.closesServerFirst += 1
        case .timeWait: connections[index]!.since = time
        default: break
        }
    }

    mutating func serverFin(_ index: Int, fin: UInt32, at time: Int64) {
        guard let connection = connections[index] else { return }
        switch connection.state {
        case .established:
            connections[index]!.serverFin = fin
            move(index, to: .finWait1, at: time)
        case .closeWait:
            connections[index]!.serverFin = fin
            move(index, to: .lastAck, at: time)
            counts.closesClientFirst += 1
        default: break
        }
    }

    mutating func reset(_ index: Int, fromServer: Bool) {
        guard let connection = connections[index] else { return }
        if connection.state == .timeWait { return end(index, \.closed) }
        if fromServer { counts.abortsByServer += 1 } else { counts.abortsByClient += 1 }
        end(index, nil)
    }
}

@Suite("Connections against a reference model")
struct ConnectionModelTests {
    static let configuration: EngineConfiguration = {
        var configuration = EngineConfiguration()
        // Room for the few 4-tuples many times over; the tables of attempts, services and sources play no part in
        // the counts, and each step reads them whole.
        configuration.connections.capacity = 1_024
        configuration.handshakes.capacity = 1_024
        configuration.victims.capacity = 16
        configuration.sources.capacity = 64
        configuration.backscatter.capacity = 16
        configuration.connections.timeWait = .seconds(2)
        configuration.connections.finTimeout = .seconds(3)
        configuration.detection.halfOpenPerSecond = 1e9
        configuration.baseline.enabled = false
        return configuration
    }()

    /// Random closes, aborts, reuses, stale and early ACKs, retransmitted FINs and gaps, compared after every packet.
    @Test(arguments: 0..<6)
    func engineCountsWhatTheModelCounts(batch: Int) throws {
        for sequence in 0..<10 {
            try compareOneSequence(seed: UInt64(batch * 1_000 + sequence))
        }
    }

    func compareOneSequence(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let engine = try Engine(configuration: Self.configuration)
        var model = ConnectionModel(configuration: Self.configuration)
        let servers = [v4(198, 18, 0, 1), v6(0x1)]
        // Few 4-tuples, so they come back: reused after TIME_WAIT, or over a close out of sight.
        var tuples = (0..<12).map { index in
            let server = servers[index % 2]
            return ScriptedConnection(
                client: server.isIPv4 ? v4(198, 18, 1, UInt8(1 + index % 3)) : v6(0x100 + UInt64(index % 3)),
                clientPort: UInt16(40_000 + index / 6),
                server: server,
                serverPort: [80, 443][index / 2 % 2],
                seed: UInt32(truncatingIfNeeded: random.next())
            )
        }
        var time = 1_700_000_000 * second
        let packets = Int.random(in: 100...500, using: &random)
        for number in 0..<packets {
            time += gap(&random)
            if random.chance(0.02) { engine.advance(to: Timestamp(nanoseconds: time)) }
            model.expire(at: time)
            let index = Int.random(in: 0..<tuples.count, using: &random)
            guard !model.isUncertain(index, at: time) else { continue }
            var packets: [Packet] = []
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<15:
                packets = tuples[index].handshake()
                model.open(index, at: time)
            case 15..<30:
                packets = [tuples[index].fromClient([.psh, .ack], data: UInt16.random(in: 1...1_400, using: &random))]
                model.clientAck(index, acknowledgement: packets[0].acknowledgement, at: time)
            case 30..<40:
                packets = [tuples[index].fromServer([.psh, .ack], data: UInt16.random(in: 1...1_400, using: &random))]
            case 40..<52:
                let data = random.chance(0.3) ? UInt16.random(in: 1...900, using: &random) : 0
                let fin = tuples[index].serverNext &+ UInt32(data)
                packets = [tuples[index].fromServer([.fin, .ack], data: data)]
                model.serverFin(index, fin: fin, at: time)
                // Sometimes the FIN is lost and sent again.
                if random.chance(0.2) {
                    tuples[index].serverNext = fin
                    packets.append(tuples[index].fromServer([.fin, .ack]))
                }
            case 52..<64:
                // The client's FIN, acknowledging what the server sent, or (crossing) not its FIN yet.
                let stale = random.chance(0.3)
                let acknowledgement = stale ? tuples[index].serverNext &- 1 : tuples[index].serverNext
                let packet = tuples[index].fromClient([.fin, .ack], acknowledging: acknowledgement)
                packets = [packet]
                model.clientAck(index, acknowledgement: acknowledgement, at: time)
                model.clientFin(index, at: time)
                if random.chance(0.2) {
                    packets.append(packet)
                    model.clientAck(index, acknowledgement: acknowledgement, at: time)
                    model.clientFin(index, at: time)
                }
            case 64..<80:
                let acknowledgement = tuples[index].serverNext &- (random.chance(0.2) ? 1 : 0)
                packets = [tuples[index].fromClient(.ack, acknowledging: acknowledgement)]
                model.clientAck(index, acknowledgement: acknowledgement, at: time)
            case 80..<86:
                packets = [tuples[index].fromClient([.rst, .ack])]
                model.reset(index, fromServer: false)
            case 86..<92:
                packets = [tuples[index].fromServer([.rst, .ack])]
                model.reset(index, fromServer: true)
            default:
                // The server's ACK: it moves nothing on the server.
                packets = [tuples[index].fromServer(.ack)]
            }
            for packet in packets { engine.feed(packet, at: time) }
            guard !model.hasUncertain(at: time) else { continue }
            try check(engine, against: model, context: "seed \(seed), packet \(number)")
        }
        time += 10 * second
        engine.advance(to: Timestamp(nanoseconds: time))
        model.expire(at: time)
        try check(engine, against: model, context: "seed \(seed), at the end")
        #expect(engine.statistics.connectionEvictions == 0)
    }

    func gap(_ random: inout SeededRandom) -> Int64 {
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<80: Int64.random(in: 0...(20 * millisecond), using: &random)
        case 80..<97: Int64.random(in: (20 * millisecond)...(800 * millisecond), using: &random)
        default: Int64.random(in: (2 * second)...(12 * second), using: &random)
        }
    }

    func check(_ engine: Engine, against model: ConnectionModel, context: String) throws {
        let statistics = engine.statistics
        var services = ConnectionCounts()
        for summary in engine.services(limit: 100) { services.accumulate(summary.connections ?? ConnectionCounts()) }
        let agrees =
            statistics.connections == model.counts && services == model.counts
            && statistics.connectionsOpened == model.opened && statistics.connectionsClosed == model.closed
            && statistics.connectionsExpired == model.expired
            && engine.occupancy.connections == model.connections.count
        guard !agrees else { return }
        let comment = Comment(rawValue: context)
        #expect(statistics.connections == model.counts, comment)
        #expect(services == model.counts, comment)
        #expect(statistics.connectionsOpened == model.opened, comment)
        #expect(statistics.connectionsClosed == model.closed, comment)
        #expect(statistics.connectionsExpired == model.expired, comment)
        #expect(engine.occupancy.connections == model.connections.count, comment)
        throw ModelMismatch()
    }
}

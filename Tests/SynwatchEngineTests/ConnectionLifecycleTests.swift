import Testing

@testable import SynwatchEngine

/// One TCP connection between a client and the server, with the next sequence number of each side.
struct ScriptedConnection {
    let client: IPAddress
    let clientPort: UInt16
    let server: IPAddress
    let serverPort: UInt16
    var clientNext: UInt32
    var serverNext: UInt32

    init(client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16, seed: UInt32 = 0) {
        self.client = client
        self.clientPort = clientPort
        self.server = server
        self.serverPort = serverPort
        // Near the top of the sequence space, so some closes wrap around zero.
        clientNext = 0xFFFF_FF00 &+ seed &* 7_919
        serverNext = 0x7FFF_FFF0 &+ seed &* 104_729
    }

    /// SYN, SYN-ACK and the completing ACK.
    mutating func handshake() -> [Packet] {
        let syn = fromClient(.syn)
        let synAck = fromServer([.syn, .ack])
        return [syn, synAck, fromClient(.ack)]
    }

    /// The client's next segment: its SYN and FIN take a sequence number each, as its data does per byte.
    mutating func fromClient(_ flags: TCPFlags, data: UInt16 = 0, acknowledging: UInt32? = nil) -> Packet {
        let packet = Packet(
            source: client,
            destination: server,
            sourcePort: clientPort,
            destinationPort: serverPort,
            sequence: clientNext,
            acknowledgement: flags.contains(.ack) ? acknowledging ?? serverNext : 0,
            flags: flags,
            payload: data
        )
        clientNext &+= UInt32(data) &+ (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
        return packet
    }

    /// The server's next segment.
    mutating func fromServer(_ flags: TCPFlags, data: UInt16 = 0) -> Packet {
        let packet = Packet(
            source: server,
            destination: client,
            sourcePort: serverPort,
            destinationPort: clientPort,
            sequence: serverNext,
            acknowledgement: clientNext,
            flags: flags,
            payload: data
        )
        serverNext &+= UInt32(data) &+ (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
        return packet
    }
}

/// Feeds packets a millisecond apart from a running clock.
struct Wire {
    let engine: Engine
    var time = 1_700_000_000 * second

    mutating func send(_ packets: Packet...) { send(packets) }

    mutating func send(_ packets: [Packet]) {
        for packet in packets {
            time += millisecond
            engine.feed(packet, at: time)
        }
    }

    /// Moves capture time on without traffic.
    mutating func wait(_ nanoseconds: Int64) {
        time += nanoseconds
        engine.advance(to: Timestamp(nanoseconds: time))
    }
}

@Suite("Connection lifecycle")
struct ConnectionLifecycleTests {
    static let server = v4(198, 18, 0, 10)

    func setUp() -> (Wire, ScriptedConnection) {
        let wire = Wire(engine: Engine.make())
        let connection = ScriptedConnection(
            client: v4(198, 18, 1, 20),
            clientPort: 40_000,
            server: Self.server,
            serverPort: 80
        )
        return (wire, connection)
    }

    /// The service's connection counts.
    func service(_ engine: Engine, port: UInt16 = 80) throws -> ConnectionCounts {
        let summary = try #require(engine.services(limit: 100).first { $0.address == Self.server && $0.port == port })
        return try #require(summary.connections)
    }

    /// Table-wide counts and the service's agree (every connection has weight 1 here), and the table holds
    /// exactly the connections counted in some state.
    func checkConsistency(_ engine: Engine) throws {
        let statistics = engine.statistics
        #expect(statistics.connections.current == engine.occupancy.connections)
        let services = engine.services(limit: 100).compactMap(\.connections)
        var sum = ConnectionCounts()
        for counts in services { sum.accumulate(counts) }
        #expect(sum == statistics.connections)
        let ended =
            statistics.connectionsClosed + statistics.connectionsExpired + statistics.connectionEvictions
            + statistics.connections.abortsByClient + statistics.connections.abortsByServer
        #expect(statistics.connectionsOpened == engine.occupancy.connections + ended)
    }

    @Test
    func completedHandshakeIsEstablished() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        #expect(try service(wire.engine).established == 1)
        #expect(wire.engine.statistics.connectionsOpened == 1)
        // Host figures carry no connections.
        let host = wire.engine.services(limit: 100).first { $0.port == nil }
        #expect(host != nil && host?.connections == nil)
        try checkConsistency(wire.engine)
    }

    @Test
    func clientClosesFirstThenServer() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromClient([.psh, .ack], data: 300), connection.fromServer(.ack))
        wire.send(connection.fromServer([.psh, .ack], data: 1_200), connection.fromClient(.ack))
        wire.send(connection.fromClient([.fin, .ack]))
        var counts = try service(wire.engine)
        #expect(counts.closeWait == 1 && counts.established == 0)
        // The server's ACK of the FIN changes nothing on the server.
        wire.send(connection.fromServer(.ack))
        #expect(try service(wire.engine).closeWait == 1)
        wire.send(connection.fromServer([.fin, .ack]))
        counts = try service(wire.engine)
        #expect(counts.lastAck == 1 && counts.closeWait == 0)
        #expect(counts.closesClientFirst == 1)
        try checkConsistency(wire.engine)
        wire.send(connection.fromClient(.ack))
        counts = try service(wire.engine)
        #expect(counts.current == 0 && counts.closesClientFirst == 1)
        #expect(wire.engine.occupancy.connections == 0)
        #expect(wire.engine.statistics.connectionsClosed == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func serverClosesFirstAndTimeWaitLastsSixtySeconds() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromClient([.psh, .ack], data: 100))
        // The response and the FIN in one segment: the FIN follows its 900 bytes.
        wire.send(connection.fromServer([.fin, .psh, .ack], data: 900))
        #expect(try service(wire.engine).finWait1 == 1)
        // An ACK of part of the data does not acknowledge the FIN.
        wire.send(connection.fromClient(.ack, acknowledging: connection.serverNext &- 500))
        #expect(try service(wire.engine).finWait1 == 1)
        wire.send(connection.fromClient(.ack))
        #expect(try service(wire.engine).finWait2 == 1)
        wire.send(connection.fromClient([.fin, .ack]))
        var counts = try service(wire.engine)
        #expect(counts.timeWait == 1 && counts.finWait == 0 && counts.closesServerFirst == 1)
        wire.send(connection.fromServer(.ack))
        #expect(try service(wire.engine).timeWait == 1)
        try checkConsistency(wire.engine)

        wire.wait(59 * second)
        #expect(try service(wire.engine).timeWait == 1)
        // Swept within a second of running out.
        wire.wait(2 * second)
        counts = try service(wire.engine)
        #expect(counts.timeWait == 0 && counts.current == 0)
        #expect(wire.engine.statistics.connectionsClosed == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func clientFinThatAcknowledgesTheServerFinGoesStraightToTimeWait() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]))
        wire.send(connection.fromClient([.fin, .ack]))
        let counts = try service(wire.engine)
        #expect(counts.timeWait == 1 && counts.closing == 0 && counts.closesServerFirst == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func timeWaitLengthIsConfigurable() throws {
        var (_, connection) = setUp()
        var wire = Wire(engine: Engine.make { $0.connections.timeWait = .seconds(5) })
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient([.fin, .ack]))
        #expect(try service(wire.engine).timeWait == 1)
        wire.wait(4 * second)
        #expect(try service(wire.engine).timeWait == 1)
        wire.wait(2 * second)
        #expect(try service(wire.engine).timeWait == 0)
    }

    @Test
    func simultaneousClose() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        let serverFinAck = connection.serverNext &+ 1
        wire.send(connection.fromServer([.fin, .ack]))
        // The client's FIN left before the server's arrived: it does not acknowledge it.
        wire.send(connection.fromClient([.fin, .ack], acknowledging: serverFinAck &- 1))
        var counts = try service(wire.engine)
        #expect(counts.closing == 1 && counts.closesSimultaneous == 1)
        wire.send(connection.fromClient(.ack, acknowledging: serverFinAck))
        counts = try service(wire.engine)
        #expect(counts.timeWait == 1 && counts.closing == 0 && counts.closesSimultaneous == 1)
        #expect(counts.closesServerFirst == 0 && counts.closesClientFirst == 0)
        try checkConsistency(wire.engine)
    }

    @Test(arguments: [false, true])
    func resetAbortsFromEitherSide(byServer: Bool) throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromClient([.psh, .ack], data: 10))
        wire.send(byServer ? connection.fromServer([.rst, .ack]) : connection.fromClient([.rst, .ack]))
        let counts = try service(wire.engine)
        #expect(counts.current == 0)
        #expect(counts.abortsByServer == (byServer ? 1 : 0) && counts.abortsByClient == (byServer ? 0 : 1))
        #expect(wire.engine.occupancy.connections == 0)
        // The handshake's own counters are untouched: the attempt had completed.
        #expect(wire.engine.statistics.resets == 0 && wire.engine.statistics.completions == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func resetInCloseWaitIsAnAbort() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromClient([.fin, .ack]), connection.fromServer(.ack))
        #expect(try service(wire.engine).closeWait == 1)
        wire.send(connection.fromServer([.rst, .ack]))
        let counts = try service(wire.engine)
        #expect(counts.closeWait == 0 && counts.abortsByServer == 1 && counts.closesClientFirst == 0)
        try checkConsistency(wire.engine)
    }

    @Test
    func resetInTimeWaitEndsItWithoutAnAbort() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient([.fin, .ack]))
        #expect(try service(wire.engine).timeWait == 1)
        wire.send(connection.fromClient(.rst))
        let counts = try service(wire.engine)
        #expect(counts.timeWait == 0 && counts.abortsByClient == 0 && counts.closesServerFirst == 1)
        #expect(wire.engine.statistics.connectionsClosed == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func retransmittedFinsCountOnce() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        let clientFin = connection.fromClient([.fin, .ack])
        wire.send(clientFin, clientFin, clientFin)
        #expect(try service(wire.engine).closeWait == 1)
        let serverFin = connection.fromServer([.fin, .ack])
        wire.send(serverFin, serverFin)
        var counts = try service(wire.engine)
        #expect(counts.lastAck == 1 && counts.closesClientFirst == 1)
        // The client's FIN again, acknowledging the server's: that is the last ACK.
        var late = clientFin
        late.acknowledgement = connection.serverNext
        wire.send(late)
        counts = try service(wire.engine)
        #expect(counts.current == 0 && counts.closesClientFirst == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func retransmittedFinInTimeWaitRestartsIt() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]))
        let clientFin = connection.fromClient([.fin, .ack])
        wire.send(clientFin)
        wire.wait(40 * second)
        wire.send(clientFin)
        wire.wait(40 * second)
        var counts = try service(wire.engine)
        #expect(counts.timeWait == 1 && counts.closesServerFirst == 1)
        wire.wait(22 * second)
        counts = try service(wire.engine)
        #expect(counts.timeWait == 0)
    }

    @Test
    func dataChangesNothing() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        for _ in 0..<500 {
            wire.send(connection.fromClient([.psh, .ack], data: 1_448), connection.fromServer(.ack))
            wire.send(connection.fromServer([.psh, .ack], data: 1_448), connection.fromClient(.ack))
        }
        let counts = try service(wire.engine)
        #expect(counts.established == 1 && counts.current == 1)
        #expect(wire.engine.statistics.connectionsOpened == 1)
        // Neither side's data is a FIN waiting for an ACK.
        #expect(wire.engine.victims.connections[0].awaitingFinAck == 0)
        try checkConsistency(wire.engine)
    }

    @Test
    func segmentsOfConnectionsNeverSeenOpeningAreIgnored() throws {
        var (wire, connection) = setUp()
        // Open before the capture began: no handshake, so not followed, whatever comes.
        wire.send(connection.fromClient([.psh, .ack], data: 10))
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient([.fin, .ack]))
        wire.send(connection.fromClient(.rst))
        #expect(wire.engine.occupancy.connections == 0)
        #expect(wire.engine.statistics.connections == ConnectionCounts())
    }

    @Test
    func reusedFourTupleReplacesTimeWait() throws {
        var (wire, connection) = setUp()
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient([.fin, .ack]))
        #expect(try service(wire.engine).timeWait == 1)
        // The client comes back on the same port with a higher ISN; the server accepts it.
        connection.clientNext &+= 100_000
        wire.send(connection.handshake())
        let counts = try service(wire.engine)
        #expect(counts.timeWait == 0 && counts.established == 1)
        #expect(wire.engine.statistics.connectionsClosed == 1)
        try checkConsistency(wire.engine)
    }

    @Test
    func ipv6ConnectionsAreFollowedToo() throws {
        var wire = Wire(engine: Engine.make())
        var connection = ScriptedConnection(client: v6(0x20), clientPort: 50_000, server: v6(0x10), serverPort: 443)
        wire.send(connection.handshake())
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient(.ack))
        let summary = try #require(wire.engine.services(limit: 10).first { $0.port == 443 })
        #expect(summary.connections?.finWait2 == 1)
    }

    /// The connection table keeps its capacity, and accounts for every connection it had to give up.
    @Test
    func fullTableEvictsAndCounts() throws {
        let engine = Engine.make { $0.connections.capacity = 64 }
        var wire = Wire(engine: engine)
        for index in 0..<1_000 {
            var connection = ScriptedConnection(
                client: IPAddress(ipv4: 0xC613_0000 + UInt32(index / 50)),
                clientPort: UInt16(20_000 + index % 50),
                server: Self.server,
                serverPort: 80,
                seed: UInt32(index)
            )
            wire.send(connection.handshake())
            if index % 3 == 0 { wire.send(connection.fromServer([.fin, .ack]), connection.fromClient([.fin, .ack])) }
            #expect(engine.occupancy.connections <= 64)
        }
        #expect(engine.occupancy.connectionCapacity == 64)
        #expect(engine.statistics.connectionEvictions >= 1_000 - 64)
        try checkConsistency(engine)
    }

    /// A full bucket gives up its oldest TIME_WAIT first, else the connection whose state changed longest ago.
    @Test
    func evictionPrefersTheOldestTimeWait() {
        let table = ConnectionTable(capacity: 8)
        let states: [(ConnectionState, Int64)] = [
            (.established, 10), (.timeWait, 50), (.closeWait, 5), (.timeWait, 40),
            (.finWait2, 30), (.timeWait, 45), (.established, 1), (.lastAck, 60),
        ]
        for (slot, (state, since)) in states.enumerated() {
            table.slots.occupy(slot, hash: UInt64(slot) << 57)
            table.entries[slot] = ConnectionEntry(fingerprint: UInt64(slot), since: since, state: state)
        }
        #expect(table.evictionSlot(hash: 0) == 3)
        for slot in [1, 3, 5] { table.entries[slot].state = .established }
        #expect(table.evictionSlot(hash: 0) == 6)
    }

    /// A service under attack tracks one attempt in 2^shift: each connection that completes stands for as many.
    @Test
    func sampledConnectionsCountWithTheirWeight() throws {
        var (wire, _) = setUp()
        var first = ScriptedConnection(
            client: v4(198, 18, 1, 1),
            clientPort: 1_000,
            server: Self.server,
            serverPort: 80
        )
        wire.send(first.handshake())
        let slot = try #require(
            (0..<wire.engine.victims.slots.capacity).first {
                wire.engine.victims.slots.isOccupied($0) && wire.engine.victims.keys[$0].port == 80
            }
        )
        wire.engine.victims.states[slot].samplingShift = 2
        // Find a client port whose attempt is tracked rather than sampled out.
        var tracked: ScriptedConnection?
        for port in UInt16(2_000)..<2_100 {
            var candidate = ScriptedConnection(
                client: v4(198, 18, 1, 2),
                clientPort: port,
                server: Self.server,
                serverPort: 80
            )
            let before = wire.engine.statistics.sampledOut
            let handshake = candidate.handshake()
            wire.send(handshake[0])
            if wire.engine.statistics.sampledOut == before {
                wire.send(handshake[1], handshake[2])
                tracked = candidate
                break
            }
        }
        var connection = try #require(tracked)
        var counts = try service(wire.engine)
        #expect(counts.established == 1 + 4)
        #expect(wire.engine.statistics.connections.established == 2)
        wire.send(connection.fromClient([.fin, .ack]), connection.fromServer([.fin, .ack]))
        counts = try service(wire.engine)
        #expect(counts.lastAck == 4 && counts.closesClientFirst == 4 && counts.established == 1)
        #expect(wire.engine.statistics.connections.closesClientFirst == 1)
        wire.send(first.fromClient(.rst))
        #expect(try service(wire.engine).abortsByClient == 1)
    }

    /// A connection whose service was evicted (and its slot given to another) no longer touches any counts.
    @Test
    func connectionsOfAnEvictedServiceLeaveTheNewServiceAlone() throws {
        let engine = Engine.make { $0.victims.capacity = 16 }
        var wire = Wire(engine: engine)
        var connection = ScriptedConnection(
            client: v4(198, 18, 1, 1),
            clientPort: 1_000,
            server: Self.server,
            serverPort: 80
        )
        wire.send(connection.handshake())
        // SYNs to many other services evict it (it is the least recently active).
        for index in 0..<400 {
            wire.time += millisecond
            engine.feed(
                Packet(
                    source: v4(198, 18, 2, 1),
                    destination: IPAddress(ipv4: 0xC612_4000 + UInt32(index)),
                    sourcePort: 7_000,
                    destinationPort: 22,
                    sequence: UInt32(index),
                    flags: .syn
                ),
                at: wire.time
            )
        }
        #expect(engine.statistics.victimEvictions > 0)
        #expect(!engine.services(limit: 1_000).contains { $0.address == Self.server && $0.port == 80 })
        wire.send(connection.fromServer([.fin, .ack]), connection.fromClient(.rst))
        for summary in engine.services(limit: 1_000) {
            let counts = summary.connections ?? ConnectionCounts()
            #expect(counts.current >= 0 && counts.finWait1 == 0 && counts.abortsByClient == 0)
        }
        #expect(engine.statistics.connections.abortsByClient == 1)
        #expect(engine.occupancy.connections == 0)
    }

    @Test
    func invalidConfigurationIsRejected() {
        #expect(throws: ConfigurationProblem.self) {
            try Engine(configuration: Self.configuration { $0.connections.capacity = 8 })
        }
        #expect(throws: ConfigurationProblem.self) {
            try Engine(configuration: Self.configuration { $0.connections.timeWait = .seconds(0) })
        }
        let engine = Engine.make()
        let deferred = try? engine.reconfigure(Self.configuration { $0.connections.capacity = 1_024 })
        #expect(deferred == ["connections.capacity"])
    }

    static func configuration(_ change: (inout EngineConfiguration) -> Void) -> EngineConfiguration {
        var configuration = EngineConfiguration()
        change(&configuration)
        return configuration
    }
}

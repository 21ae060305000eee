/// How a benign conversation ends.
enum ConversationEnding {
    case clientClose
    case serverClose
    case simultaneousClose
    case clientReset
    case serverReset
}

/// Everything that varies between benign conversations; drawn by the generator, played by `Conversation`.
struct ConversationPlan {
    var client: NetAddress
    var clientPort: UInt16
    var server: Endpoint
    /// Round-trip time between the capture point (at the server) and the client, in ns.
    var rtt: Int64
    /// Windows-like client: no timestamps, window scale 8, TTL from 128.
    var windowsClient: Bool
    var clientTTL: UInt8
    /// Nobody listens on the port: the server answers the SYN with RST/ACK.
    var closedPort = false
    /// The first SYN-ACK is lost on its way: the client retransmits its SYN (same ISN) after 1 s.
    var lostSynAck = false
    var ending = ConversationEnding.clientClose
    var extras: ExtraHeaders = []
    /// The request goes out as two IP fragments (the client's path MTU is small).
    var fragmentRequest = false
}

/// Plays one TCP conversation as seen at the server: handshake, request, response, close.
///
/// Sequence numbers follow TCP exactly (client ISN x, server ISN y, SYN-ACK ack x+1, ACK x+1/y+1, data and
/// FIN advance them), so a tracker can follow every connection.
struct Conversation {
    private let plan: ConversationPlan
    private let clientISN: UInt32
    private let serverISN: UInt32
    private let clientClock: UInt32
    private let serverClock: UInt32
    private var clientID: UInt16
    private var serverID: UInt16
    private let serverDelay: Int64
    private let mss: UInt16

    init(_ plan: ConversationPlan, rng: inout SeededRandom) {
        self.plan = plan
        clientISN = rng.next32()
        serverISN = rng.next32()
        clientClock = rng.next32()
        serverClock = rng.next32()
        clientID = UInt16(truncatingIfNeeded: rng.next())
        serverID = UInt16(truncatingIfNeeded: rng.next())
        serverDelay = Int64(rng.int(in: 15_000...80_000))
        mss = plan.server.address.family == .ipv4 ? 1460 : 1440
    }

    private var timestamps: Bool { !plan.windowsClient }

    /// Segment payload size: the MSS less the timestamp option and the IP options or extension headers
    /// carried on every segment, so full segments still fit a 1500-byte MTU.
    private var segmentPayload: Int {
        var extra = 0
        if plan.extras.contains(.ipv4Options) { extra += 4 }
        if plan.extras.contains(.hopByHop) { extra += 8 }
        if plan.extras.contains(.destinationOptions) { extra += 8 }
        if plan.extras.contains(.routing) { extra += 24 }
        return Int(mss) - (timestamps ? 12 : 0) - extra
    }

    private func clientTS(_ time: Int64) -> UInt32 { clientClock &+ UInt32(truncatingIfNeeded: time / 1_000_000) }
    private func serverTS(_ time: Int64) -> UInt32 { serverClock &+ UInt32(truncatingIfNeeded: time / 4_000_000) }

    private mutating func fromClient(
        _ time: Int64,
        seq: UInt32,
        ack: UInt32,
        _ flags: TCPFlags,
        payload: Int = 0
    ) -> Segment {
        var segment = Segment(
            time: time,
            from: plan.client,
            plan.clientPort,
            to: plan.server.address,
            plan.server.port,
            sequence: seq,
            acknowledgment: ack,
            flags: flags,
            window: plan.windowsClient ? 1026 : 502,
            inbound: true
        )
        if timestamps { segment.options = .timestamps(tsval: clientTS(time), tsecr: serverTS(time - plan.rtt)) }
        if flags.contains(.rst) { segment.window = 0 }
        segment.payloadLength = payload
        segment.payloadOffset = seq &- clientISN &- 1
        segment.ttl = plan.clientTTL
        segment.ipIdentification = UInt32(clientID)
        segment.extras = plan.extras
        clientID &+= 1
        return segment
    }

    private mutating func fromServer(
        _ time: Int64,
        seq: UInt32,
        ack: UInt32,
        _ flags: TCPFlags,
        payload: Int = 0
    ) -> Segment {
        var segment = Segment(
            time: time,
            from: plan.server.address,
            plan.server.port,
            to: plan.client,
            plan.clientPort,
            sequence: seq,
            acknowledgment: ack,
            flags: flags,
            window: flags.contains(.rst) ? 0 : 509,
            inbound: false
        )
        if timestamps { segment.options = .timestamps(tsval: serverTS(time), tsecr: clientTS(time)) }
        segment.payloadLength = payload
        segment.payloadOffset = seq &- serverISN &- 1
        segment.ipIdentification = UInt32(serverID)
        segment.extras = plan.extras
        serverID &+= 1
        return segment
    }

    private mutating func syn(_ time: Int64) -> Segment {
        var segment = fromClient(time, seq: clientISN, ack: 0, .syn)
        segment.window = 64240
        segment.options =
            timestamps
            ? .linux(mss: mss, windowScale: 7, tsval: clientTS(time), tsecr: 0)
            : .windows(mss: mss, windowScale: 8)
        return segment
    }

    /// The SYN-ACK at `time` answering the SYN captured at `synTime`, whose timestamp it echoes.
    private mutating func synAck(_ time: Int64, answering synTime: Int64) -> Segment {
        var segment = fromServer(time, seq: serverISN, ack: clientISN &+ 1, .synAck)
        segment.window = 65160
        segment.options =
            timestamps
            ? .linux(mss: mss, windowScale: 7, tsval: serverTS(time), tsecr: clientTS(synTime))
            : .windows(mss: mss, windowScale: 7)
        return segment
    }

    /// Plans every segment of the conversation, the first at `start`.
    mutating func play(at start: Int64, rng: inout SeededRandom, into schedule: inout Schedule) {
        let rtt = plan.rtt
        schedule.add(syn(start))
        if plan.closedPort {
            var reset = fromServer(start + serverDelay, seq: 0, ack: clientISN &+ 1, .rstAck)
            reset.options = .none
            schedule.add(reset)
            return
        }
        var established = start + serverDelay
        schedule.add(synAck(established, answering: start))
        if plan.lostSynAck {
            let retry = start + 1_000_000_000 + Int64(rng.below(2_000_000))
            schedule.add(syn(retry))
            established = retry + serverDelay
            schedule.add(synAck(established, answering: retry))
        }

        var clientSeq = clientISN &+ 1
        var serverSeq = serverISN &+ 1
        let handshakeDone = established + rtt
        schedule.add(fromClient(handshakeDone, seq: clientSeq, ack: serverSeq, .ack))

        let requestTime = handshakeDone + Int64(rng.int(in: 5_000...300_000))
        let requestLength = rng.int(in: plan.fragmentRequest ? 200...900 : 60...900)
        let request = fromClient(requestTime, seq: clientSeq, ack: serverSeq, .pshAck, payload: requestLength)
        if plan.fragmentRequest {
            addFragmented(request, into: &schedule)
        } else {
            schedule.add(request)
        }
        clientSeq &+= UInt32(requestLength)

        var time = requestTime + Int64(rng.int(in: 200_000...30_000_000))
        let segments = rng.int(in: 1...8)
        var lastAck = time
        for index in 0..<segments {
            let last = index == segments - 1
            let length = last ? rng.int(in: 100...segmentPayload) : segmentPayload
            schedule.add(fromServer(time, seq: serverSeq, ack: clientSeq, last ? .pshAck : .ack, payload: length))
            serverSeq &+= UInt32(length)
            // Delayed ACKs: the client acknowledges every second segment and the last one.
            if index % 2 == 1 || last {
                lastAck = time + rtt
                schedule.add(fromClient(lastAck, seq: clientSeq, ack: serverSeq, .ack))
            }
            time += Int64(rng.int(in: 10_000...15_000))
        }

        let close = lastAck + Int64(rng.int(in: 1_000_000...50_000_000))
        switch plan.ending {
        case .clientClose:
            schedule.add(fromClient(close, seq: clientSeq, ack: serverSeq, .finAck))
            var serverFin = close + serverDelay
            if rng.chance(0.5) {
                // The application closes a little later than the kernel acknowledges the FIN.
                schedule.add(fromServer(serverFin, seq: serverSeq, ack: clientSeq &+ 1, .ack))
                serverFin += Int64(rng.int(in: 100_000...2_000_000))
            }
            schedule.add(fromServer(serverFin, seq: serverSeq, ack: clientSeq &+ 1, .finAck))
            schedule.add(fromClient(serverFin + rtt, seq: clientSeq &+ 1, ack: serverSeq &+ 1, .ack))
        case .serverClose:
            schedule.add(fromServer(close, seq: serverSeq, ack: clientSeq, .finAck))
            schedule.add(fromClient(close + rtt, seq: clientSeq, ack: serverSeq &+ 1, .finAck))
            schedule.add(fromServer(close + rtt + serverDelay, seq: serverSeq &+ 1, ack: clientSeq &+ 1, .ack))
        case .simultaneousClose:
            // The FINs cross: the client's leaves before ours reaches it, so it does not acknowledge ours.
            let clientFin = close + rtt / 3
            schedule.add(fromServer(close, seq: serverSeq, ack: clientSeq, .finAck))
            schedule.add(fromClient(clientFin, seq: clientSeq, ack: serverSeq, .finAck))
            schedule.add(fromServer(clientFin + serverDelay, seq: serverSeq &+ 1, ack: clientSeq &+ 1, .ack))
            schedule.add(fromClient(close + rtt, seq: clientSeq &+ 1, ack: serverSeq &+ 1, .ack))
        case .clientReset:
            schedule.add(fromClient(close, seq: clientSeq, ack: serverSeq, .rstAck))
        case .serverReset:
            schedule.add(fromServer(close, seq: serverSeq, ack: clientSeq, .rstAck))
        }
    }

    /// Adds `segment` as two IP fragments: the TCP header with part of the payload, then the rest.
    private func addFragmented(_ segment: Segment, into schedule: inout Schedule) {
        let headerLength = 20 + segment.options.length
        // Fragment offsets count 8-byte units, so the first fragment's share is a multiple of 8.
        let split = (headerLength + segment.payloadLength / 2) & ~7
        var first = segment
        first.dontFragment = false
        first.fragment = .first(tcpBytes: split)
        var rest = first
        rest.fragment = .rest(tcpOffset: split)
        rest.time += 1_000
        schedule.add(first)
        schedule.add(rest)
    }
}

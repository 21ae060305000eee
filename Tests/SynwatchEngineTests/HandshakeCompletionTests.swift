import Testing

@testable import SynwatchEngine

/// Handshakes whose completing segment is not the bare ACK at ISN+1: a busy client's must still complete, or it
/// becomes a single-source flood.
@Suite("Handshake completion")
struct HandshakeCompletionTests {
    let server = v4(198, 18, 0, 10)
    let client = v4(198, 18, 40, 4)

    /// TCP Fast Open: 18 bytes in the SYN, which the SYN-ACK acknowledges (ack = ISN+19), and the client's ACK
    /// follows them (seq = ISN+19).
    @Test
    func fastOpenHandshakesComplete() {
        expectEveryHandshakeCompletes(seed: 21) { scenario in
            var syn = scenario.newSyn(from: client, to: server, port: 8080)
            syn.payload = 18
            let serverISN = scenario.random.next32()
            var synAck = syn.synAck(isn: serverISN)
            synAck.acknowledgement = syn.sequence &+ 19
            var ack = syn.completingAck(serverISN: serverISN)
            ack.sequence = syn.sequence &+ 19
            return [(syn, 0), (synAck, 100_000), (ack, 200_000)]
        }
    }

    /// A server that speaks first (SMTP, SSH) and a capture that lost the client's bare ACK: the client's next
    /// segment acknowledges the banner (ack = server ISN+1+banner) from seq = ISN+1, and completes the handshake.
    @Test
    func handshakeWhoseAckTheCaptureLostCompletesByTheNextSegment() {
        expectEveryHandshakeCompletes(seed: 22) { scenario in
            let syn = scenario.newSyn(from: client, to: server, port: 25)
            let serverISN = scenario.random.next32()
            var banner = syn.synAck(isn: serverISN &+ 1)
            banner.flags = [.psh, .ack]
            banner.payload = 40
            var reply = syn.completingAck(serverISN: serverISN &+ 40)
            reply.flags = [.psh, .ack]
            reply.payload = 16
            return [(syn, 0), (syn.synAck(isn: serverISN), 100_000), (banner, 300_000), (reply, 400_000)]
        }
    }

    /// 300 connections a second for 14 s from one client, each of the packets `connection` makes at their offsets
    /// (ns): every handshake completes, and nothing is raised.
    func expectEveryHandshakeCompletes(seed: UInt64, _ connection: (inout Scenario) -> [(Packet, Int64)]) {
        var scenario = Scenario(seed: seed)
        var time = Scenario.time(1)
        while time < Scenario.time(15) {
            for (packet, offset) in connection(&scenario) { scenario.add(packet, at: time + offset) }
            time += 3_333_333
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        #expect(all.isEmpty, "\(all.map { "\($0.type.rawValue)@\($0.scenarioTime)" })")
        #expect(engine.statistics.completions == engine.statistics.synPackets)
    }
}

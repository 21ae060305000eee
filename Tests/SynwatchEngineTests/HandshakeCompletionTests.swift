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
        var scenario = Scenario(seed: 21)
        var time = Scenario.time(1)
        while time < Scenario.time(15) {
            var syn = scenario.newSyn(from: client, to: server, port: 8080)
            syn.payload = 18
            let serverISN = scenario.random.next32()
            var synAck = syn.synAck(isn: serverISN)
            synAck.acknowledgement = syn.sequence &+ 19
            var ack = syn.completingAck(serverISN: serverISN)
            ack.sequence = syn.sequence &+ 19
            scenario.add(syn, at: time)
            scenario.add(synAck, at: time + 100_000)
            scenario.add(ack, at: time + 200_000)
            time += 3_333_333
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        #expect(all.isEmpty, "\(all.map { "\($0.type.rawValue)@\($0.scenarioTime)" })")
        #expect(engine.statistics.completions == engine.statistics.synPackets)
    }

    /// A server that speaks first (SMTP, SSH) and a capture that lost the client's bare ACK: the client's next
    /// segment acknowledges the banner (ack = server ISN+1+banner) from seq = ISN+1, and completes the handshake.
    @Test
    func handshakeWhoseAckTheCaptureLostCompletesByTheNextSegment() {
        var scenario = Scenario(seed: 22)
        var time = Scenario.time(1)
        while time < Scenario.time(15) {
            let syn = scenario.newSyn(from: client, to: server, port: 25)
            let serverISN = scenario.random.next32()
            var banner = syn.synAck(isn: serverISN &+ 1)
            banner.flags = [.psh, .ack]
            banner.payload = 40
            var reply = syn.completingAck(serverISN: serverISN &+ 40)
            reply.flags = [.psh, .ack]
            reply.payload = 16
            scenario.add(syn, at: time)
            scenario.add(syn.synAck(isn: serverISN), at: time + 100_000)
            scenario.add(banner, at: time + 300_000)
            scenario.add(reply, at: time + 400_000)
            time += 3_333_333
        }
        let engine = Engine.make()
        let all = scenario.run(on: engine, until: 30)
        #expect(all.isEmpty, "\(all.map { "\($0.type.rawValue)@\($0.scenarioTime)" })")
        #expect(engine.statistics.completions == engine.statistics.synPackets)
    }
}

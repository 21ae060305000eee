import Testing

@testable import SynwatchEngine

/// Capture times no working capture has, as damaged files give them (found by `scripts/fuzz`): the engine counts
/// their frames, and every table access stays inside its table (a debug build checks each index).
@Suite("Damaged capture times")
struct DamagedCaptureTimeTests {
    static let server = v4(198, 18, 0, 10)

    /// A SYN from 198.19.0.`index` to port 80 + `index` % `ports` of the server.
    static func syn(_ index: Int, ports: Int) -> Packet {
        Packet(
            source: v4(198, 19, 0, UInt8(index)),
            destination: server,
            sourcePort: 40_000,
            destinationPort: UInt16(80 + index % ports),
            sequence: UInt32(index),
            flags: .syn
        )
    }

    /// A classic pcap file's signed 32-bit seconds gone negative (the fuzzer's first crash): steps before zero
    /// indexed a victim's ring before its start and wrote into other memory. Such times count as the epoch.
    @Test
    func framesBeforeTheEpochCountAsTheEpoch() throws {
        let engine = Engine.make { $0.victims.capacity = 16 }
        for index in 0..<48 {
            engine.feed(Self.syn(index, ports: 12), at: -1_735_689_600 * second + Int64(index) * 30_000_000)
        }
        engine.feed(Self.syn(48, ports: 12), at: 1_735_689_600 * second)
        engine.finish()
        let statistics = engine.statistics
        #expect(statistics.firstTime == Timestamp(nanoseconds: 0))
        #expect(statistics.synPackets == 49)
        let ports = engine.services(limit: 20).filter { $0.port != nil }
        #expect(ports.count == 12)
        #expect(ports.map(\.synPackets).reduce(0, +) == 49)
    }

    /// pcapng time stamps reach any 64-bit value (units, resolution and `if_tsoffset` multiply): the start of the
    /// step after one near `Int64.max` overflowed. Such times count as 2^62 ns, in the year 2116.
    @Test
    func framesPastTheYear2116CountAsIt() throws {
        let engine = Engine.make()
        engine.feed(Self.syn(1, ports: 1), at: 1_735_689_600 * second)
        engine.feed(Self.syn(2, ports: 1), at: .max - 1)
        engine.feed(Self.syn(3, ports: 1), at: .max)
        engine.finish()
        let statistics = engine.statistics
        #expect(statistics.synPackets == 3)
        #expect(statistics.lastTime == Timestamp(nanoseconds: Engine.latestTime))
        #expect(engine.services(limit: 2).first { $0.port == 80 }?.synPackets == 3)
    }
}

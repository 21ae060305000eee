import Foundation
import SynwatchClient
import SynwatchDaemon
import SynwatchEngine
import XCTest

/// A known snapshot: one attack going on, one ended, two services (one with connections), three sources.
public enum QueryFixtures {
    public static let victim = IPAddress("198.18.0.2")!

    public static var snapshot: DaemonSnapshot {
        var statistics = EngineStatistics()
        statistics.frames = 120_000
        statistics.bytes = 7_200_000
        statistics.synPackets = 100_000
        statistics.completions = 1_500
        statistics.attacks = 2
        statistics.handshakeEvictions = 42
        statistics.connections = connections
        statistics.connectionsOpened = 1_000
        statistics.connectionsClosed = 700
        statistics.connectionEvictions = 7
        let figures = VictimFigures(
            synPerSecond: 24_000,
            halfOpenPerSecond: 23_500.5,
            completionRatio: 0.02,
            distinctSources: 23_000,
            topSources: [SourceCount(address: IPAddress("198.19.0.7")!, halfOpen: 3)]
        )
        let attack = AttackStatus(
            attackID: 2,
            victim: victim,
            port: 80,
            kind: .randomSource,
            start: Timestamp(seconds: 1_800_000_000),
            figures: figures,
            peakSynPerSecond: 25_000,
            peakHalfOpenPerSecond: 24_000,
            peakDistinctSources: 23_500,
            totalSyns: 90_000
        )
        let ended = Event(
            type: .attackEnd,
            time: Timestamp(seconds: 1_799_999_000),
            victim: victim,
            port: 443,
            attackID: 1,
            kind: .singleSource,
            figures: VictimFigures(synPerSecond: 10, halfOpenPerSecond: 5, completionRatio: 0.5, distinctSources: 1),
            summary: AttackSummary(
                start: Timestamp(seconds: 1_799_998_900),
                duration: .seconds(100),
                peakSynPerSecond: 900,
                peakHalfOpenPerSecond: 850,
                peakDistinctSources: 1,
                totalSyns: 9_000,
                endReason: .quiet
            )
        )
        let services = [
            ServiceSummary(
                address: victim,
                port: 80,
                firstSeen: Timestamp(seconds: 1_799_990_000),
                synPackets: 91_000,
                attempts: 90_500,
                retransmits: 500,
                completions: 1_000,
                resets: 0,
                timeouts: 80_000,
                underAttack: true,
                connections: connections
            ),
            ServiceSummary(
                address: IPAddress("2001:db8::1")!,
                port: nil,
                firstSeen: Timestamp(seconds: 1_799_990_001),
                synPackets: 9_000,
                attempts: 9_000,
                retransmits: 0,
                completions: 500,
                resets: 10,
                timeouts: 8_000,
                underAttack: false
            ),
        ]
        let sources = [
            SourceSummary(
                address: IPAddress("198.19.0.1")!,
                attempts: 10,
                completions: 9,
                distinctTargets: 1,
                lastTarget: victim
            ),
            SourceSummary(
                address: IPAddress("198.19.0.2")!,
                attempts: 500,
                completions: 0,
                distinctTargets: 3,
                lastTarget: victim
            ),
            SourceSummary(
                address: IPAddress("198.19.0.3")!,
                attempts: 40,
                completions: 10,
                distinctTargets: 2,
                lastTarget: victim
            ),
        ]
        return DaemonSnapshot(
            startedAt: 1_800_000_000,
            updatedAt: 1_800_000_100,
            configurationPath: "/etc/synwatch/synwatch.yaml",
            reloads: 1,
            capture: CaptureStatus(
                interfaces: ["veth0"],
                state: .active,
                packets: 120_000,
                packetsPerSecond: 24_100.25,
                kernelDrops: 3,
                interfaceDrops: 0
            ),
            statistics: statistics,
            occupancy: TableOccupancy(
                handshakes: 1_000,
                handshakeCapacity: 262_144,
                victims: 2,
                victimCapacity: 4_096,
                sources: 3,
                sourceCapacity: 65_536,
                backscatterAddresses: 0,
                backscatterCapacity: 1_024,
                connections: 230,
                connectionCapacity: 131_072
            ),
            activeAttacks: [attack],
            recentAttacks: [ended],
            services: services,
            sources: sources
        )
    }

    /// The connections of the attacked service, which are all there are.
    public static var connections: ConnectionCounts {
        var counts = ConnectionCounts()
        counts.established = 120
        counts.finWait2 = 3
        counts.timeWait = 90
        counts.closeWait = 17
        counts.closesClientFirst = 400
        counts.closesServerFirst = 290
        counts.closesSimultaneous = 1
        counts.abortsByClient = 60
        counts.abortsByServer = 12
        return counts
    }

    public static func update(_ id: UInt64) -> Event {
        Event(
            type: .attackUpdate,
            time: Timestamp(seconds: 1_800_000_000 + Int64(id)),
            victim: victim,
            port: 80,
            attackID: id,
            kind: .randomSource,
            figures: VictimFigures(synPerSecond: 100, halfOpenPerSecond: 90)
        )
    }
}

/// A QueryServer on a socket in a temporary folder of the test's own, stopped and removed afterwards.
public final class RunningServer {
    public let folder: String
    public let path: String
    public let state: DaemonState
    public let server: QueryServer
    private let task: Task<Void, any Error>

    public init(
        limits: QueryServer.Limits = QueryServer.Limits(),
        socketName: String = "run/synwatch.sock"
    ) async throws {
        folder = NSTemporaryDirectory() + "synwatch-query-\(UUID().uuidString.prefix(8))"
        path = folder + "/" + socketName
        state = DaemonState(QueryFixtures.snapshot)
        server = QueryServer(state: state, endpoint: .path(path), version: "0.1.0", limits: limits)
        let server = self.server
        task = Task { try await server.run() }
        try await server.waitUntilListening()
    }

    public var client: QueryClient { QueryClient(path: path, timeout: 5) }

    /// Stops the server and waits for `run()` to return.
    public func stop() async throws {
        task.cancel()
        try await task.value
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Parses a JSON object body.
    public static func object(_ body: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
    }
}

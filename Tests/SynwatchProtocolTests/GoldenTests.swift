import FoundationEssentials
import SynwatchEngine
import Testing

@testable import SynwatchProtocol

/// The wire format of every contract type, pinned: encoding gives the golden text byte for byte, and decoding the
/// golden text gives a value that encodes to it again.
@Suite("Golden JSON of the v1 contract")
struct GoldenTests {
    static let time = Timestamp(seconds: 1_700_000_000, nanoseconds: 120_000_000)
    static let victim = IPAddress("198.18.0.2")!
    static let window = VictimFigures(
        synPerSecond: 24_000.456,
        halfOpenPerSecond: 23_990,
        completionRatio: 0.0004,
        distinctSources: 23_512,
        topSources: [SourceCount(address: IPAddress("2001:db8::1")!, halfOpen: 3)],
        completionGrace: .milliseconds(250)
    )

    static let events: [(String, Event)] = [
        (
            "attack_start",
            Event(
                type: .attackStart,
                time: time,
                victim: victim,
                port: 80,
                attackID: 7,
                kind: .randomSource,
                figures: window,
                kernel: KernelFigures(
                    observation: KernelObservation(
                        syncookiesSentPerSecond: 1_200.04,
                        synproxySynPerSecond: 5_000.25,
                        synproxyCookieValidPerSecond: 40.5,
                        synproxyCookieInvalidPerSecond: 0,
                        captureLoss: 0.01234
                    ),
                    victimSynReceived: 256,
                    corroborated: true
                )
            )
        ),
        (
            "attack_end",
            Event(
                type: .attackEnd,
                time: Timestamp(seconds: 1_700_000_042),
                victim: victim,
                attackID: 7,
                kind: .singleSource,
                figures: window,
                summary: AttackSummary(
                    start: time,
                    duration: .seconds(41.8801),
                    peakSynPerSecond: 30_000.125,
                    peakHalfOpenPerSecond: 29_000,
                    peakDistinctSources: 1,
                    totalSyns: 1_000_000,
                    endReason: .captureEnd
                )
            )
        ),
        (
            "scan",
            Event(
                type: .scan,
                time: Timestamp(seconds: 5),
                victim: IPAddress("198.18.0.9"),
                scan: ScanFigures(
                    source: IPAddress(ipv4: 0xC612_0001),
                    distinctTargets: 250,
                    distinctAddresses: 1,
                    syns: 260
                )
            )
        ),
        (
            "backscatter",
            Event(
                type: .backscatter,
                time: Timestamp(seconds: 6),
                victim: IPAddress("198.18.0.3"),
                backscatter: BackscatterFigures(synAckPerSecond: 812.5, distinctSources: 400)
            )
        ),
    ]

    @Test("An event of each kind", arguments: events.map(\.0))
    func event(_ name: String) throws {
        let event = try #require(Self.events.first { $0.0 == name }?.1)
        try Self.check(V1.Event(event), golden: "event-" + name.replacingUnderscores)
    }

    static var connections: ConnectionCounts {
        var counts = ConnectionCounts()
        counts.established = 4
        counts.finWait1 = 1
        counts.finWait2 = 1
        counts.timeWait = 2
        counts.closeWait = 1
        counts.closesClientFirst = 6
        counts.abortsByServer = 2
        return counts
    }

    static let services = [
        ServiceSummary(
            address: victim,
            port: 80,
            firstSeen: time,
            synPackets: 1_000,
            attempts: 990,
            retransmits: 10,
            completions: 12,
            resets: 3,
            timeouts: 900,
            underAttack: true,
            connections: connections,
            halfOpenPerSecond: 850.25,
            completionRatio: 0.0125,
            distinctSources: 700,
            attackKind: .randomSource,
            attacksStarted: {
                var started = AttacksByKind()
                started[.randomSource] = 2
                started[.singleSource] = 1
                return started
            }(),
            sampling: {
                var sampling = ServiceSampling(by: .client, shift: 6)
                sampling.inKernel = true
                return sampling
            }()
        ),
        ServiceSummary(
            address: IPAddress("2001:db8::2")!,
            port: nil,
            firstSeen: Timestamp(seconds: 9),
            synPackets: 5,
            attempts: 5,
            retransmits: 0,
            completions: 5,
            resets: 0,
            timeouts: 0,
            underAttack: false,
            connections: nil
        ),
    ]

    static var statistics: EngineStatistics {
        var statistics = EngineStatistics()
        statistics.frames = 2_000
        statistics.bytes = 128_000
        statistics.firstTime = time
        statistics.lastTime = Timestamp(seconds: 1_700_000_060, nanoseconds: 5)
        statistics.synPackets = 1_005
        statistics.completions = 17
        statistics.attacks = 1
        statistics.scanNotices = 2
        statistics.connectionsOpened = 17
        statistics.handshakeEvictions = 3
        statistics.sampledOut = 4
        statistics.thinnedOut = 3
        statistics.victimsUntracked = 5
        return statistics
    }

    static let occupancy = TableOccupancy(
        handshakes: 10,
        handshakeCapacity: 100,
        victims: 2,
        victimCapacity: 50,
        sources: 30,
        sourceCapacity: 60,
        backscatterAddresses: 0,
        backscatterCapacity: 40,
        connections: 8,
        connectionCapacity: 70
    )

    static let attack = AttackStatus(
        attackID: 7,
        victim: victim,
        port: 80,
        kind: .randomSource,
        start: time,
        figures: window,
        peakSynPerSecond: 30_000.125,
        peakHalfOpenPerSecond: 29_000,
        peakDistinctSources: 24_000,
        totalSyns: 500_000
    )

    static let status = V1.Status(
        daemon: V1.Daemon(
            version: "0.1.0",
            startedAt: 1_700_000_000.25,
            updatedAt: 1_700_000_100.5,
            uptime: 100.25,
            configuration: "/etc/synwatch/synwatch.yaml",
            reloads: 1,
            capture: V1.Capture(
                interfaces: ["veth0"],
                state: "active",
                packets: 2_000,
                packetsPerSecond: 20.004,
                kernelDrops: 0,
                interfaceDrops: 1,
                threads: [
                    V1.CaptureThread(interface: "veth0", thread: "read", cpuSeconds: 1.25, busy: 0.1254),
                    V1.CaptureThread(interface: "veth0", thread: "engine", cpuSeconds: 2.5004, busy: 0.25),
                ],
                kernelSampling: [V1.KernelSampling(interface: "veth0", victim: "198.18.0.2", port: 80, oneIn: 64)]
            )
        ),
        traffic: V1.Traffic(statistics),
        totals: V1.EngineTotals(statistics, occupancy: occupancy),
        live: V1.Live(
            activeAttacks: 1,
            kernel: V1.Kernel(
                available: true,
                counters: NamedCounts(
                    V1.KernelCounterNames.names.enumerated().map { ($1, Nullable($0 == 1 ? nil : $0 * 10)) }
                ),
                perSecond: NamedCounts(V1.KernelCounterNames.names.map { ($0, Nullable(KernelRate(0.25))) }),
                listeners: Nullable(3),
                listenersFull: [V1.Kernel.Listener(victim: "198.18.0.2", port: 80, acceptQueue: 129, backlog: 128)],
                synReceived: Nullable(256),
                synReceivedServices: [V1.Kernel.SynReceived(victim: "198.18.0.2", port: 80, synReceived: 256)],
                synproxy: V1.Kernel.Synproxy(
                    counters: NamedCounts(V1.SynproxyCounterNames.names.enumerated().map { ($1, Nullable($0 * 100)) }),
                    perSecond: NamedCounts(
                        V1.SynproxyCounterNames.names.map {
                            ($0, Nullable($0 == "syn_received" ? KernelRate(5_000) : nil))
                        }
                    )
                )
            ),
            hooks: V1.Hooks(runs: 6, succeeded: 2, failures: 3, timeouts: 1, dropped: 4, running: 1)
        )
    )

    static let values: [String: any Codable & Sendable] = [
        "status": status,
        "attacks": V1.Attacks(active: [V1.ActiveAttack(attack)], recent: [V1.Event(events[1].1)]),
        "victims": V1.Victims(victims: services.map(V1.Service.init)),
        "sources": V1.Sources(sources: [
            V1.Source(
                SourceSummary(
                    address: IPAddress("198.18.7.7")!,
                    attempts: 40,
                    completions: 2,
                    distinctTargets: 3,
                    lastTarget: victim
                )
            )
        ]),
        "error": V1.ErrorBody(error: "no such path: /v1/nope"),
        "summary": V1.Summary(
            files: ["flood.pcap"],
            traffic: V1.Traffic(statistics),
            totals: V1.EngineTotals(statistics, occupancy: occupancy),
            services: services.map(V1.Service.init),
            error: nil
        ),
    ]

    @Test(
        "Each body of the query API, and the analyze summary",
        arguments: ["status", "attacks", "victims", "sources", "error", "summary"]
    )
    func body(_ name: String) throws {
        let value = try #require(Self.values[name])
        try Self.check(value, golden: name)
    }

    @Test("Figures the kernel could not give are null, lists it could not give are left out")
    func unreadKernel() throws {
        let kernel = V1.Kernel(
            available: false,
            counters: NamedCounts([("syncookies_sent", Nullable(nil))]),
            perSecond: NamedCounts([("syncookies_sent", Nullable(nil))]),
            listeners: Nullable(nil),
            listenersFull: nil,
            synReceived: Nullable(nil),
            synReceivedServices: nil
        )
        let text = ContractJSON.text(kernel)
        #expect(
            text == #"{"available":false,"counters":{"syncookies_sent":null},"per_s":{"syncookies_sent":null},"#
                + #""listeners":null,"syn_recv":null}"#
        )
        #expect(try ContractJSON.decode(V1.Kernel.self, from: text) == kernel)
    }

    @Test("A missing required field is an error naming it, not a zero")
    func missingField() throws {
        let status = try Self.golden("status").replacing(#""reloads":1,"#, with: "")
        #expect {
            try ContractJSON.decode(V1.Status.self, from: status)
        } throws: { error in
            guard case DecodingError.keyNotFound(let key, _) = error else { return false }
            return key.stringValue == "reloads"
        }
    }

    @Test("Capture times keep every nanosecond both ways")
    func captureTimes() throws {
        for nanoseconds: Int64 in [0, 5, 1_700_000_000_123_456_789, 1_700_000_000_000_000_000] {
            let time = CaptureTime(Timestamp(nanoseconds: nanoseconds))
            let decoded = try ContractJSON.decode([CaptureTime].self, from: ContractJSON.text([time]))
            #expect(decoded == [time], "\(time.jsonNumberText)")
        }
    }

    @Test("The completion grace reaches every edge: JSON, journald, hooks, metrics and the CLI's reading")
    func completionGrace() throws {
        let event = V1.Event(Self.events[0].1)
        #expect(ContractJSON.text(event).contains(#""completion_grace":0.25"#))
        #expect(FlatFields(lists: .full).fields(of: event).contains { $0 == ("SYNWATCH_COMPLETION_GRACE", "0.25") })
        #expect(
            FlatFields(lists: .firstMembers).fields(of: event).contains { $0 == ("SYNWATCH_COMPLETION_GRACE", "0.25") }
        )
        let attacks = [V1.ActiveAttack(Self.attack)]
        let family = try #require(
            V1.ActiveAttack.metrics.first { $0.name == "synwatch_attack_completion_grace_seconds" }
        )
        #expect(family.samples(attacks).map(\.value) == [0.25])
        let read = try ContractJSON.decode(V1.Attacks.self, from: Self.golden("attacks"))
        #expect(read.active.first?.window.completionGrace == 0.25)
    }

    @Test("Per-service metrics: one sample per exported service, labelled by victim, port and kind, then the cap")
    func serviceMetrics() throws {
        let exported = V1.Service.Exported(busiest: Self.services.map(V1.Service.init), tracked: 7, limit: 2)
        var samples: [String: [(labels: [String: String], value: Double)]] = [:]
        for family in V1.Service.metrics { samples[family.name] = family.samples(exported) }
        let service = ["victim": "198.18.0.2", "port": "80"]
        let host = ["victim": "2001:db8::2", "port": ""]
        func values(_ name: String) -> [[String: String]: Double] {
            Dictionary(uniqueKeysWithValues: (samples[name] ?? []).map { ($0.labels, $0.value) })
        }
        #expect(values("synwatch_service_syn_packets_total") == [service: 1_000, host: 5])
        #expect(values("synwatch_service_attempts_total") == [service: 990, host: 5])
        #expect(values("synwatch_service_completions_total") == [service: 12, host: 5])
        #expect(values("synwatch_service_refusals_total") == [service: 3, host: 0])
        #expect(values("synwatch_service_timeouts_total") == [service: 900, host: 0])
        #expect(values("synwatch_service_half_open_per_second") == [service: 850.25, host: 0])
        // No attempt matured in the host's window: no ratio rather than a made-up one.
        #expect(values("synwatch_service_completion_ratio") == [service: 0.0125])
        #expect(values("synwatch_service_distinct_sources") == [service: 700, host: 0])
        #expect(values("synwatch_service_attack_active") == [service.merging(["kind": "random-source"]) { $1 }: 1])
        // Only while sampled: the host follows every attempt.
        #expect(values("synwatch_service_sampling_one_in") == [service.merging(["by": "client"]) { $1 }: 64])
        let started = values("synwatch_service_attacks_started_total")
        #expect(started.count == 6)
        #expect(started[service.merging(["kind": "random-source"]) { $1 }] == 2)
        #expect(started[service.merging(["kind": "single-source"]) { $1 }] == 1)
        #expect(started[host.merging(["kind": "distributed"]) { $1 }] == 0)
        #expect(values("synwatch_service_series_limit") == [[:]: 2])
        #expect(values("synwatch_services_tracked") == [[:]: 7])
        #expect(values("synwatch_services_unexported") == [[:]: 5])
        // The cap: the busiest first, the rest only counted.
        let capped = V1.Service.Exported(busiest: Self.services.map(V1.Service.init), tracked: 2, limit: 1)
        let family = try #require(V1.Service.metrics.first { $0.name == "synwatch_service_syn_packets_total" })
        #expect(family.samples(capped).map(\.labels) == [service])
        #expect(capped.unexported == 1)
        // Never a source address: only these labels.
        let labelNames = Set(V1.Service.metrics.flatMap { $0.samples(exported).flatMap(\.labels.keys) })
        #expect(labelNames == ["victim", "port", "kind", "by"])
    }

    @Test("The SYN proxy's figures reach the journal fields and metrics, and are left out without SYNPROXY")
    func synproxy() throws {
        let fields = FlatFields(lists: .full).fields(of: V1.Event(Self.events[0].1))
        #expect(fields.contains { $0 == ("SYNWATCH_KERNEL_SYNPROXY_SYN_RECEIVED_PER_S", "5000.3") })
        #expect(fields.contains { $0 == ("SYNWATCH_KERNEL_SYNPROXY_COOKIE_VALID_PER_S", "40.5") })
        let family = try #require(V1.Status.metrics.first { $0.name == "synwatch_kernel_synproxy_total" })
        #expect(family.samples(Self.status).map { $0.labels["counter"] ?? "" } == V1.SynproxyCounterNames.names)
        #expect(family.samples(Self.status).map(\.value) == [0, 100, 200, 300, 400])

        var without = Self.status
        without.live.kernel.synproxy = nil
        #expect(family.samples(without).isEmpty)
        #expect(!ContractJSON.text(without).contains("synproxy"))
        var event = Self.events[0].1
        event.kernel?.observation = KernelObservation(syncookiesSentPerSecond: 3)
        #expect(!FlatFields(lists: .full).fields(of: V1.Event(event)).contains { $0.name.contains("SYNPROXY") })
    }

    /// The golden file `Golden/<name>.json`: one line, as the wire carries it.
    static func golden(_ name: String) throws -> String {
        let url = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "Golden/\(name).json")
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    static func check<T: Codable>(_ value: T, golden name: String) throws {
        let golden = try Self.golden(name)
        #expect(ContractJSON.text(value) + "\n" == golden, "\(name)")
        let decoded = try ContractJSON.decode(T.self, from: golden)
        #expect(ContractJSON.text(decoded) + "\n" == golden, "\(name) round trip")
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? "-" : $0 }) }
}

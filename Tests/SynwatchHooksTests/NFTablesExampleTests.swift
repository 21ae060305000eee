import Foundation
import SynwatchEngine
import SynwatchHooks
import SynwatchTestSupport
import Testing

/// Whether the nftables examples can run: namespaces, and nft (Debian package nftables).
let nftablesAvailable =
    NetworkNamespace.isAvailable && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")

/// The shipped example hook, `packaging/hooks/nftables-block-sources`, run by the runner against the nftables of a
/// network namespace of the test's own, as an operator would enable it.
@Suite(.enabled(if: nftablesAvailable, "needs root, ip netns and nft (Debian package nftables)"))
struct NFTablesExampleTests {
    static let script = exampleHook("nftables-block-sources")

    /// The example, run inside `namespace` by `ip netns exec`, which keeps the environment the runner gives.
    func runner(in namespace: NetworkNamespace, logs: LogCapture) -> HookRunner {
        HookRunner(
            configuration: HookConfiguration(
                command: ["/usr/sbin/ip", "netns", "exec", namespace.name, Self.script],
                events: [.attackStart, .attackUpdate, .attackEnd]
            ),
            logger: logs.logger
        )
    }

    static let sources = [
        SourceCount(address: IPAddress("198.18.3.4")!, halfOpen: 900),
        SourceCount(address: IPAddress("2001:db8::3:5")!, halfOpen: 800),
        SourceCount(address: IPAddress("198.18.3.6")!, halfOpen: 700),
    ]

    @Test("On attack_start of a distributed or single-source flood the top sources join the sets with a timeout")
    func blocksTopSources() async throws {
        let namespace = try NetworkNamespace(NetworkNamespace.freshName("swh"))
        let logs = LogCapture()
        let runner = runner(in: namespace, logs: logs)
        var figures = Events.figures
        figures.topSources = Self.sources
        runner.handle([Events.start(1, kind: .distributed, figures: figures)])
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters.succeeded == 1, "\(logs.all.map(\.message)) \(logs.all.map(\.metadata))")
        #expect(
            logs.records("Response hook succeeded").first?.metadata["stderr"]
                == "nftables-block-sources: blocked for 10m (attack 1): 198.18.3.4 198.18.3.6 2001:db8::3:5"
        )

        let blocked4 = try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked4"])
        #expect(blocked4.contains("198.18.3.4 timeout 10m expires"))
        #expect(blocked4.contains("198.18.3.6 timeout 10m expires"))
        let blocked6 = try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked6"])
        #expect(blocked6.contains("2001:db8::3:5 timeout 10m expires"))

        // A single source of another attack joins the same set; attack_end leaves the sets to their timeouts.
        var single = figures
        single.topSources = [SourceCount(address: IPAddress("198.18.3.9")!, halfOpen: 5_000)]
        runner.handle([Events.start(2, kind: .singleSource, figures: single), Events.end(1)])
        #expect(await runner.finished(runs: 3))
        #expect(runner.counters.succeeded == 3)
        let after = try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked4"])
        #expect(["198.18.3.4", "198.18.3.6", "198.18.3.9"].allSatisfy { after.contains("\($0) timeout 10m") })
    }

    @Test("A random-source flood blocks nothing: its sources are spoofed")
    func ignoresRandomSource() async throws {
        let namespace = try NetworkNamespace(NetworkNamespace.freshName("swh"))
        let runner = runner(in: namespace, logs: LogCapture())
        var figures = Events.figures
        figures.topSources = Self.sources
        runner.handle([Events.start(1, kind: .randomSource, figures: figures)])
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters.succeeded == 1)
        #expect(try namespace.check(["nft", "list", "tables"]).isEmpty)
    }

    @Test("Addresses are checked strictly: anything else is skipped, reported, and never reaches nft")
    func rejectsWhatIsNotAnAddress() throws {
        let namespace = try NetworkNamespace(NetworkNamespace.freshName("swh"))
        let hostile = [
            "198.18.0.1", "198.18.0.256", "010.1.1.1", "198.18.0.2;", "}", "flush", "ruleset", "*", "$(id)",
            "2001:db8::1", "2001:db8:::1", "2001:db8::1::2", "::ffff:198.18.0.3", "1:2:3:4:5:6:7:8:9",
        ]
        let result = try Self.runScript(
            in: namespace,
            environment: [
                "SYNWATCH_EVENT": "attack_start", "SYNWATCH_KIND": "distributed", "SYNWATCH_ATTACK_ID": "5",
                "SYNWATCH_TOP_SOURCES": hostile.joined(separator: " "), "BLOCK_TIMEOUT": "90s",
            ]
        )
        #expect(result.status == 1)
        for rejected in hostile where !["198.18.0.1", "2001:db8::1"].contains(rejected) {
            #expect(result.errors.contains("skipped '\(rejected)'"), "\(rejected) was not reported")
        }
        let blocked4 = try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked4"])
        #expect(blocked4.contains("elements = { 198.18.0.1 timeout 1m30s expires"))
        let blocked6 = try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked6"])
        #expect(blocked6.contains("elements = { 2001:db8::1 timeout 1m30s expires"))

        let badTimeout = try Self.runScript(
            in: namespace,
            environment: [
                "SYNWATCH_EVENT": "attack_start", "SYNWATCH_KIND": "distributed",
                "SYNWATCH_TOP_SOURCES": "198.18.0.7", "BLOCK_TIMEOUT": "10m; flush ruleset",
            ]
        )
        #expect(badTimeout.status == 2)
        #expect(!(try namespace.check(["nft", "list", "set", "inet", "synwatch", "blocked4"]).contains("198.18.0.7")))
    }
}

extension NFTablesExampleTests {
    /// Runs the example inside `namespace` with only `environment` and a PATH.
    static func runScript(in namespace: NetworkNamespace, environment: [String: String]) throws -> CommandResult {
        try runExampleHook(script, in: namespace, environment: environment)
    }
}

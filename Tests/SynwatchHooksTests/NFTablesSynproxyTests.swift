import Foundation
import SynwatchEngine
import SynwatchHooks
import SynwatchTestSupport
import Testing

/// The shipped example hook `packaging/hooks/nftables-synproxy`, run against the nftables of a network namespace of
/// the test's own whose interface holds the victim's addresses (MTU 9000: the proxy's MSS follows it).
/// Serialized: each test waits on child processes, and together they would hold every cooperative thread of a
/// 2-core machine, starving other suites' async tests.
@Suite(.serialized, .enabled(if: nftablesAvailable, "needs root, ip netns and nft (Debian package nftables)"))
struct NFTablesSynproxyTests {
    static let script = exampleHook("nftables-synproxy")
    static let table = ["nft", "list", "table", "inet", "synwatch_synproxy"]

    /// A namespace with the interface `victim0` (a veth, whose peer stays down) holding 198.18.0.2/24 and 2001:db8::2/64 at MTU 9000.
    static func namespace() throws -> NetworkNamespace {
        let namespace = try NetworkNamespace(NetworkNamespace.freshName("swp"))
        try namespace.check(["ip", "link", "add", "victim0", "mtu", "9000", "type", "veth", "peer", "name", "peer0"])
        try namespace.check(["ip", "addr", "add", "198.18.0.2/24", "dev", "victim0"])
        try namespace.check(["ip", "addr", "add", "2001:db8::2/64", "dev", "victim0", "nodad"])
        try namespace.check(["ip", "link", "set", "victim0", "up"])
        return namespace
    }

    /// The hook's variables for `event` on `victim` port 8080, as synwatchd sets them.
    static func variables(
        _ event: String,
        kind: String = "random-source",
        victim: String = "198.18.0.2",
        sources: String = "198.18.5.5"
    ) -> [String: String] {
        [
            "SYNWATCH_EVENT": event, "SYNWATCH_KIND": kind, "SYNWATCH_VICTIM": victim, "SYNWATCH_PORT": "8080",
            "SYNWATCH_ATTACK_ID": "3", "SYNWATCH_TOP_SOURCES": sources,
        ]
    }

    static func run(
        _ environment: [String: String],
        _ arguments: [String] = [],
        in namespace: NetworkNamespace
    )
        throws -> CommandResult
    {
        try runExampleHook(script, arguments, in: namespace, environment: environment)
    }

    /// The table's rules that carry a service's comment.
    static func proxyRules(_ ruleset: String) -> [Substring] {
        ruleset.split(separator: "\n").filter { $0.contains("comment \"synwatch-synproxy ") }
    }

    @Test("attack_start twice puts one SYN proxy in front of the service; attack_end removes it and the table")
    func startTwiceEndOnce() throws {
        let namespace = try Self.namespace()
        let first = try Self.run(Self.variables("attack_start"), in: namespace)
        #expect(first.status == 0, "\(first.errors)")
        #expect(first.errors.contains("SYN proxy in front of 198.18.0.2:8080 (mss 8960 wscale"), "\(first.errors)")
        let once = try namespace.check(Self.table)
        let rules = Self.proxyRules(once)
        #expect(rules.count == 4, "\(once)")
        let service = "ip daddr 198.18.0.2 tcp dport 8080"
        #expect(rules.contains { $0.contains("\(service) tcp flags syn / fin,syn,rst,ack notrack") }, "\(once)")
        #expect(rules.contains { $0.contains("\(service) ct state invalid,untracked synproxy mss 8960 wscale") })
        #expect(rules.contains { $0.contains("\(service) ct state invalid,untracked drop") }, "\(once)")

        let second = try Self.run(Self.variables("attack_start"), in: namespace)
        #expect(second.status == 0)
        #expect(second.errors.contains("already in front of 198.18.0.2:8080"), "\(second.errors)")
        #expect(try namespace.check(Self.table) == once)

        // The end of another service's attack leaves this one's proxy alone.
        var other = Self.variables("attack_end")
        other["SYNWATCH_PORT"] = "443"
        #expect(try Self.run(other, in: namespace).status == 0)
        #expect(try namespace.check(Self.table) == once)

        let end = try Self.run(Self.variables("attack_end"), in: namespace)
        #expect(end.status == 0, "\(end.errors)")
        #expect(try namespace.check(["nft", "list", "tables"]).isEmpty)
        let again = try Self.run(Self.variables("attack_end"), in: namespace)
        #expect(again.status == 0, "\(again.errors)")
        #expect(try namespace.check(["nft", "list", "ruleset"]).isEmpty)
    }

    @Test("An attack_end without a start changes nothing and is no error")
    func endWithoutStart() throws {
        let namespace = try Self.namespace()
        let end = try Self.run(Self.variables("attack_end"), in: namespace)
        #expect(end.status == 0, "\(end.errors)")
        #expect(end.errors == "nftables-synproxy: no SYN proxy in front of 198.18.0.2:8080: nothing to remove\n")
        #expect(try namespace.check(["nft", "list", "ruleset"]).isEmpty)
    }

    @Test("Two runs at once for the same service, as synwatchd may start them, leave one SYN proxy")
    func overlappingRuns() async throws {
        let namespace = try Self.namespace()
        let logs = LogCapture()
        let runner = HookRunner(
            configuration: HookConfiguration(
                command: ["/usr/sbin/ip", "netns", "exec", namespace.name, Self.script],
                events: [.attackStart]
            ),
            logger: logs.logger
        )
        let victim = IPAddress("198.18.0.2")!
        runner.handle([
            Events.start(1, victim: victim, port: 8080, kind: .randomSource),
            Events.start(2, victim: victim, port: 8080, kind: .distributed),
        ])
        #expect(await runner.finished(runs: 2))
        #expect(runner.counters.succeeded == 2, "\(logs.all.map(\.metadata))")
        #expect(Self.proxyRules(try namespace.check(Self.table)).count == 4)
    }

    @Test("Proxies of other services stay when synwatchd cannot be asked whether their attacks go on")
    func reconcileWithoutDaemon() throws {
        let namespace = try Self.namespace()
        var variables = Self.variables("attack_start")
        variables["RECONCILE_AFTER"] = "0"
        variables["QUERY_SOCKET"] = "/nonexistent/synwatch.sock"
        #expect(try Self.run(variables, in: namespace).status == 0)
        variables["SYNWATCH_PORT"] = "443"
        let other = try Self.run(variables, in: namespace)
        #expect(other.status == 0, "\(other.errors)")
        #expect(other.errors.contains("cannot ask synwatchd which attacks go on: the other proxies stay"))
        let rules = Self.proxyRules(try namespace.check(Self.table))
        #expect(rules.filter { $0.contains("dport 8080") }.count == 4 && rules.count == 8, "\(rules)")
    }

    @Test("IPv6: the rules match ip6, and the MSS leaves room for the larger header")
    func ipv6() throws {
        let namespace = try Self.namespace()
        let start = try Self.run(Self.variables("attack_start", victim: "2001:db8::2"), in: namespace)
        #expect(start.status == 0, "\(start.errors)")
        let rules = Self.proxyRules(try namespace.check(Self.table))
        #expect(rules.count == 4)
        #expect(
            rules.contains {
                $0.contains("ip6 daddr 2001:db8::2 tcp dport 8080 ct state invalid,untracked synproxy mss 8940")
            }
        )
        #expect(try Self.run(Self.variables("attack_end", victim: "2001:db8::2"), in: namespace).status == 0)
        #expect(try namespace.check(["nft", "list", "tables"]).isEmpty)
    }

    @Test("A single-source flood blocks its source to the service for a while, and puts up no proxy")
    func singleSource() throws {
        let namespace = try Self.namespace()
        var variables = Self.variables("attack_start", kind: "single-source", sources: "198.18.5.5 198.18.5.6")
        variables["BLOCK_TIMEOUT"] = "90s"
        let start = try Self.run(variables, in: namespace)
        #expect(start.status == 0, "\(start.errors)")
        let set = try namespace.check(["nft", "list", "set", "inet", "synwatch_synproxy", "blocked4"])
        #expect(set.contains("elements = { 198.18.5.5 . 198.18.0.2 . 8080 timeout 1m30s expires"), "\(set)")
        #expect(Self.proxyRules(try namespace.check(Self.table)).isEmpty)
        // Its end removes nothing: the block expires by itself.
        #expect(try Self.run(Self.variables("attack_end", kind: "single-source"), in: namespace).status == 0)
        #expect(try namespace.check(Self.table).contains("198.18.5.5 . 198.18.0.2 . 8080"))
    }

    @Test("--dry-run prints the nft script it would load and changes nothing")
    func dryRun() throws {
        let namespace = try Self.namespace()
        let start = try Self.run(Self.variables("attack_start"), ["--dry-run"], in: namespace)
        #expect(start.status == 0, "\(start.errors)")
        #expect(start.output.contains("add table inet synwatch_synproxy\n"), "\(start.output)")
        #expect(
            start.output.contains(
                "add rule inet synwatch_synproxy proxy ip daddr 198.18.0.2 tcp dport 8080 ct state invalid,untracked "
                    + "synproxy mss 8960 wscale"
            ),
            "\(start.output)"
        )
        #expect(start.output.contains("ss -K -H -t state syn-recv src 198.18.0.2 sport = :8080"), "\(start.output)")
        #expect(try namespace.check(["nft", "list", "ruleset"]).isEmpty)
    }

    @Test("What is not an address or a port never reaches nft")
    func rejectsWhatIsNotAnAddress() throws {
        let namespace = try Self.namespace()
        for victim in ["198.18.0.256", "010.1.1.1", "198.18.0.2;", "add", "dead::beef::1", "2001:db8:::1", ""] {
            let result = try Self.run(Self.variables("attack_start", victim: victim), in: namespace)
            #expect(result.status == 1, "\(victim)")
            #expect(result.errors.contains("victim '\(victim)' is not an IPv4 or IPv6 address"), "\(result.errors)")
        }
        var port = Self.variables("attack_start")
        port["SYNWATCH_PORT"] = "80 drop"
        #expect(try Self.run(port, in: namespace).status == 1)
        var source = Self.variables("attack_start", kind: "single-source", sources: "198.18.5.5}")
        #expect(try Self.run(source, in: namespace).status == 1)
        source["SYNWATCH_TOP_SOURCES"] = "2001:db8::5"
        #expect(try Self.run(source, in: namespace).status == 1)
        #expect(try namespace.check(["nft", "list", "ruleset"]).isEmpty)
    }
}

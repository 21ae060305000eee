import ArgumentParser
import SynwatchTrafficGen

/// A SYN flood against one service over benign background traffic.
struct FloodCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "A SYN flood (random-source, single-source or distributed; steady, pulsing or low-rate)."
    )

    @OptionGroup var scenario: ScenarioOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "random-source, single-source or distributed.")
    var kind: FloodKind = .randomSource

    @Option(help: "New SYNs per second while on (50–300 for a low-rate flood).")
    var rate: Double = 2000

    @Option(
        help: ArgumentHelp(
            "The attacked service (default: 198.18.0.10:80 or [2001:db8::a]:80).",
            valueName: "addr:port"
        )
    )
    var victim: Endpoint?

    @Option(help: "Seconds after the start when the flood begins.")
    var floodStart: Double = 5

    @Option(help: "Seconds the flood lasts.")
    var floodDuration: Double = 10

    @Option(help: "Prefix of the sources (default: 198.19.0.0/16 spoofed, 198.18.32.0/19 for real attackers).")
    var sourcePrefix: NetPrefix?

    @Option(help: "Bots of a distributed flood.")
    var bots: Int = 200

    @Option(help: "SYN look: bare, ece-cwr or linux (default: linux for distributed, bare otherwise).")
    var style: SYNStyle?

    @Option(help: "Pulsing: seconds on (with --pulse-off).")
    var pulseOn: Double?

    @Option(help: "Pulsing: seconds off (with --pulse-on).")
    var pulseOff: Double?

    @Option(help: "Whether attackers retransmit their SYNs after 1 s and 3 s (default: only distributed bots).")
    var retransmits: Bool?

    @Flag(help: "Nothing listens on the victim's port: its kernel refuses every SYN, and no background client comes.")
    var closedPort = false

    func validate() throws {
        guard (pulseOn == nil) == (pulseOff == nil) else {
            throw ValidationError("--pulse-on and --pulse-off go together")
        }
        if let victim, victim.address.family != (scenario.ipv6 ? .ipv6 : .ipv4) {
            throw ValidationError("--victim \(victim) does not match the address family (--ipv6)")
        }
    }

    func run() throws {
        let pulse = pulseOn.flatMap { on in pulseOff.map { Pulse(on: on, off: $0) } }
        let flood = Flood(
            kind,
            victim: victim,
            rate: rate,
            start: floodStart,
            duration: floodDuration,
            sources: sourcePrefix,
            bots: bots,
            style: style,
            pulse: pulse,
            retransmits: retransmits,
            closedPort: closedPort
        )
        try scenario.write(scenario.scenario().flood(flood), output)
    }
}

import ArgumentParser
import SynwatchTrafficGen

/// Everything in one capture, one part after the other over benign background traffic.
struct Mixed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Background traffic with a scan, a flood, backscatter and a flash crowd in turn.",
        discussion: """
            Over --duration seconds: a vertical scan from 10 %, a flood from 20 % to 45 %, backscatter from \
            50 % to 65 %, a flash crowd from 75 % to 90 %. A share of background connections carries IPv4 \
            options or IPv6 extension headers, and some requests are fragmented.
            """
    )

    @OptionGroup var scenario: ScenarioOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "random-source, single-source or distributed.")
    var floodKind: FloodKind = .randomSource

    @Option(help: "New SYNs per second of the flood.")
    var floodRate: Double = 2000

    func run() throws {
        let length = scenario.duration
        var mix = Scenario(
            seed: scenario.seed,
            duration: length,
            family: scenario.ipv6 ? .ipv6 : .ipv4,
            startTime: scenario.startTime
        )
        if scenario.backgroundRate > 0 {
            mix = mix.background(
                Background(rate: scenario.backgroundRate, unusualHeaderShare: 0.02, fragmentedShare: 0.01)
            )
        }
        let parts = mix.scan(Scan(.vertical(ports: 1...1024), start: 0.1 * length))
            .flood(Flood(floodKind, rate: floodRate, start: 0.2 * length, duration: 0.25 * length))
            .backscatter(Backscatter(start: 0.5 * length, duration: 0.15 * length))
            .flashCrowd(FlashCrowd(start: 0.75 * length, duration: 0.15 * length))
        try scenario.write(parts, output)
    }
}

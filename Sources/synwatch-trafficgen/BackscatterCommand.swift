import ArgumentParser
import SynwatchTrafficGen

/// Backscatter over benign background traffic.
struct BackscatterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backscatter",
        abstract: "SYN-ACKs and RSTs from many reflectors answering SYNs someone sent with our address."
    )

    @OptionGroup var scenario: ScenarioOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Answers per second.")
    var rate: Double = 300

    @Option(help: "Distinct reflectors.")
    var reflectors: Int = 5000

    @Option(help: "Our spoofed address (default: the second server, 198.18.0.11 or 2001:db8::b).")
    var address: NetAddress?

    @Option(help: "Seconds after the start when the backscatter begins.")
    var backscatterStart: Double = 5

    @Option(help: "Seconds the backscatter lasts.")
    var backscatterDuration: Double = 10

    func run() throws {
        let backscatter = Backscatter(
            addresses: address.map { [$0] },
            rate: rate,
            start: backscatterStart,
            duration: backscatterDuration,
            reflectorCount: reflectors
        )
        try scenario.write(scenario.scenario().backscatter(backscatter), output)
    }
}

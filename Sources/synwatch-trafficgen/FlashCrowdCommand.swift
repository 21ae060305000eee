import ArgumentParser
import SynwatchTrafficGen

/// A flash crowd over benign background traffic: a surge of connections that all complete.
struct FlashCrowdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flash-crowd",
        abstract: "A sudden surge of new clients whose handshakes all complete (must raise no alert)."
    )

    @OptionGroup var scenario: ScenarioOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Size of the surge relative to the background rate.")
    var factor: Double = 10

    @Option(help: "Connections per second during the surge (overrides --factor).")
    var rate: Double?

    @Option(help: "Seconds after the start when the surge begins.")
    var surgeStart: Double = 5

    @Option(help: "Seconds the surge lasts.")
    var surgeDuration: Double = 10

    func run() throws {
        let crowd = FlashCrowd(start: surgeStart, duration: surgeDuration, rate: rate, factor: factor)
        try scenario.write(scenario.scenario().flashCrowd(crowd), output)
    }
}

import ArgumentParser
import SynwatchTrafficGen

/// A SYN scan over benign background traffic.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "A SYN scan: many ports of one address (vertical) or one port across addresses (--horizontal)."
    )

    @OptionGroup var scenario: ScenarioOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Scan one port across many addresses instead of many ports of one address.")
    var horizontal = false

    @Option(help: ArgumentHelp("Ports of a vertical scan.", valueName: "first-last"))
    var ports: String = "1-1024"

    @Option(help: "The port of a horizontal scan.")
    var port: UInt16 = 22

    @Option(help: "Addresses of a horizontal scan.")
    var targets: Int = 254

    @Option(help: "Probes per second.")
    var rate: Double = 500

    @Option(help: "Seconds after the start when the scan begins.")
    var scanStart: Double = 5

    func validate() throws {
        guard horizontal || portRange != nil else { throw ValidationError("--ports must look like 1-1024") }
    }

    private var portRange: ClosedRange<UInt16>? {
        let bounds = ports.split(separator: "-").compactMap { UInt16($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return nil }
        return bounds[0]...bounds[1]
    }

    func run() throws {
        let shape: Scan.Shape = horizontal ? .horizontal(port: port, targets: targets) : .vertical(ports: portRange!)
        try scenario.write(scenario.scenario().scan(Scan(shape, rate: rate, start: scanStart)), output)
    }
}

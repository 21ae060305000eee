import ArgumentParser
import Foundation
import SynwatchTrafficGen

extension CaptureFormat: ExpressibleByArgument {}
extension TimestampPrecision: ExpressibleByArgument {}
extension LinkLayer: ExpressibleByArgument {}
extension CaptureDirection: ExpressibleByArgument {}
extension FloodKind: ExpressibleByArgument {}
extension SYNStyle: ExpressibleByArgument {}

extension NetAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension NetPrefix: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension Endpoint: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension VLANTag: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Where and how the capture is written.
struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "The capture file to write.")
    var output: String

    @Option(help: ArgumentHelp("Also write the ground truth as JSON to this file.", valueName: "file"))
    var truth: String?

    @Option(help: "Container format.")
    var format: CaptureFormat = .pcap

    @Option(help: "Timestamp precision: us or ns.")
    var precision: TimestampPrecision = .microseconds

    @Option(help: "Link type: ethernet, linux-sll, linux-sll2, raw or null.")
    var link: LinkLayer = .ethernet

    @Option(
        name: .customLong("vlan"),
        help: ArgumentHelp(
            "A VLAN tag, outermost first; repeat to stack (ID, 802.1q:ID or 802.1ad:ID, optional /PCP).",
            valueName: "tag"
        )
    )
    var vlanTags: [VLANTag] = []

    func validate() throws {
        guard vlanTags.isEmpty || link == .ethernet else {
            throw ValidationError("--vlan needs --link ethernet")
        }
    }

    /// Writes the truth file when asked and prints a one-line summary.
    func finish(_ result: GroundTruth, started: ContinuousClock.Instant) throws {
        let elapsed = ContinuousClock.now - started
        if let truth {
            try result.jsonData().write(to: URL(fileURLWithPath: truth))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0 ? Int(Double(result.packets) / seconds) : 0
        print(
            "wrote \(result.packets) packets to \(output) in \(String(format: "%.2f", seconds)) s (\(rate) packets/s)"
        )
    }
}

/// Options every generated scenario shares.
struct ScenarioOptions: ParsableArguments {
    @Option(help: "Random seed; the same seed gives the same file.")
    var seed: UInt64 = 1

    @Option(help: "Seconds during which new traffic starts.")
    var duration: Double = 30

    @Flag(help: "Generate IPv6 instead of IPv4.")
    var ipv6 = false

    @Option(help: "Capture time of the start, in seconds since the epoch.")
    var startTime: Int64 = 1_735_689_600

    @Option(help: "both, or incoming-only (no packets from our servers, as on a router's ingress).")
    var direction: CaptureDirection = .both

    @Option(help: "Benign connections per second in the background (0 for none).")
    var backgroundRate: Double = 500

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be above 0") }
        guard backgroundRate >= 0 else { throw ValidationError("--background-rate must not be negative") }
    }

    /// A scenario with the background traffic, if any.
    func scenario() -> Scenario {
        let scenario = Scenario(seed: seed, duration: duration, family: ipv6 ? .ipv6 : .ipv4, startTime: startTime)
        return backgroundRate > 0 ? scenario.background(Background(rate: backgroundRate)) : scenario
    }

    /// Writes `scenario` with the output options and reports it.
    func write(_ scenario: Scenario, _ output: OutputOptions) throws {
        let started = ContinuousClock.now
        let truth = try scenario.write(
            to: output.output,
            format: output.format,
            precision: output.precision,
            linkType: output.link,
            vlanTags: output.vlanTags,
            direction: direction
        )
        try output.finish(truth, started: started)
    }
}

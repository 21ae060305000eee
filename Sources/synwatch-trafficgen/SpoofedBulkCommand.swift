import ArgumentParser
import SynwatchTrafficGen

/// A multi-million-packet spoofed SYN flood written as fast as possible, for benchmarks.
struct SpoofedBulkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spoofed-bulk",
        abstract: "Only spoofed SYNs (74-byte Linux SYN frames over IPv4 Ethernet by default), as fast as possible.",
        discussion: """
            Sources cycle through --sources distinct addresses of --source-prefix; more sources than the prefix \
            holds is an error (198.19.0.0/16 holds 65536: use a shorter prefix or --ipv6 for millions).
            """
    )

    @OptionGroup var output: OutputOptions

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "SYNs to write.")
    var packets: Int = 1_000_000

    @Option(help: "Distinct spoofed source addresses.")
    var sources: Int = 65536

    @Option(help: "SYNs per second of capture time.")
    var rate: Double = 1_000_000

    @Option(help: ArgumentHelp("The attacked service (default: 198.18.0.10:80).", valueName: "addr:port"))
    var victim: Endpoint?

    @Option(help: "Prefix of the spoofed sources (default: 198.19.0.0/16 or 2001:db8:8000::/33).")
    var sourcePrefix: NetPrefix?

    @Flag(help: "IPv6 instead of IPv4.")
    var ipv6 = false

    @Option(help: "Capture time of the first SYN, in seconds since the epoch.")
    var startTime: Int64 = 1_735_689_600

    @Option(help: "SYN look: bare (hping3's, 54-byte frames), ece-cwr or linux.")
    var style: SYNStyle = .linux

    func validate() throws {
        guard packets > 0, sources > 0, rate > 0 else {
            throw ValidationError("--packets, --sources and --rate must be above 0")
        }
    }

    func run() throws {
        let started = ContinuousClock.now
        let bulk = SpoofedBulk(
            seed: seed,
            packets: packets,
            sources: sources,
            rate: rate,
            victim: victim,
            sourcePrefix: sourcePrefix,
            family: ipv6 ? .ipv6 : .ipv4,
            startTime: startTime,
            style: style
        )
        let truth = try bulk.write(
            to: output.output,
            format: output.format,
            precision: output.precision,
            linkType: output.link,
            vlanTags: output.vlanTags
        )
        try output.finish(truth, started: started)
    }
}

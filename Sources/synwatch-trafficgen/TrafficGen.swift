import ArgumentParser

/// Writes realistic synthetic SYN-flood traffic as pcap or pcapng, with its ground truth.
@main
struct TrafficGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synwatch-trafficgen",
        abstract: "Write realistic synthetic TCP traffic (floods, scans, backscatter, flash crowds) as a capture.",
        discussion: """
            Every scenario is reproducible: the same seed and options give a byte-identical file. Addresses come \
            from 198.18.0.0/15 and 2001:db8::/32 unless told otherwise. --truth writes what the capture \
            contains as JSON, for checking a detector against it.
            """,
        subcommands: [
            Mixed.self, FloodCommand.self, FlashCrowdCommand.self, ScanCommand.self,
            BackscatterCommand.self, SpoofedBulkCommand.self,
        ]
    )
}

import ArgumentParser

/// `synwatch`: the operator's command. Analyses capture files offline with the daemon's engine.
@main
struct Synwatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synwatch",
        abstract: "Detect TCP SYN floods in capture files, and query the synwatchd daemon.",
        version: "0.1.0",
        subcommands: [Analyze.self, Status.self, Attacks.self, Top.self, Watch.self]
    )
}

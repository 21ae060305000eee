import ArgumentParser
import SynwatchProtocol

/// `synwatch top sources|victims`: the sources with the most half-open attempts, or the busiest services.
struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the sources with the most half-open handshakes, or the busiest victim services."
    )

    enum Subject: String, ExpressibleByArgument, CaseIterable {
        case sources, victims
    }

    @Argument(help: "What to list: sources or victims.")
    var subject: Subject

    @Option(help: "How many to list (1 to 1000).")
    var limit = 20

    @OptionGroup var query: QueryOptions

    func validate() throws {
        guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000.") }
    }

    func run() async throws {
        let target = "/v1/\(subject.rawValue)?limit=\(limit)"
        switch subject {
        case .sources:
            guard let sources = try await query.fetch(target, as: V1.Sources.self)?.sources else { return }
            guard !sources.isEmpty else { return OutputStream.standardOutput.write("No sources with repeated SYNs.\n") }
            let rows = sources.map { source in
                [
                    source.address, grouped(source.halfOpen), grouped(source.attempts), grouped(source.completions),
                    grouped(source.distinctTargets), source.lastTarget,
                ]
            }
            OutputStream.standardOutput.write(
                columns(["source", "half-open", "attempts", "completed", "services", "last target"], rows)
            )
        case .victims:
            guard let victims = try await query.fetch(target, as: V1.Victims.self)?.victims else { return }
            guard !victims.isEmpty else { return OutputStream.standardOutput.write("No services seen yet.\n") }
            let rows = victims.map { victim in
                [
                    victim.service, grouped(victim.synPackets), grouped(victim.attempts), grouped(victim.completions),
                    grouped(victim.resets), grouped(victim.timeouts),
                    [victim.underAttack ? "attacked" : nil, victim.sampling.map(Self.sampled)].compactMap { $0 }
                        .joined(separator: ", "),
                ]
            }
            OutputStream.standardOutput.write(
                columns(["service", "SYNs", "attempts", "completed", "refused", "timed out", ""], rows)
            )
            // Whole hosts have no connections of their own: only services do.
            let connectionRows = victims.compactMap { victim in
                victim.connections.map { [victim.service] + ConnectionColumns.cells($0.counts) }
            }
            guard !connectionRows.isEmpty else { return }
            OutputStream.standardOutput.write(
                "\n\(ConnectionColumns.title)\n" + columns(["service"] + ConnectionColumns.header, connectionRows)
            )
        }
    }

    /// How a service's figures were sampled: they are estimates.
    static func sampled(_ sampling: V1.Sampling) -> String {
        "sampled 1 in \(sampling.oneIn) by \(sampling.by)\(sampling.inKernel ? " (kernel)" : "")"
    }
}

import ArgumentParser

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
        guard let answer = try await query.fetch("/v1/\(subject.rawValue)?limit=\(limit)") else { return }
        switch subject {
        case .sources:
            let sources = answer.array("sources")
            guard !sources.isEmpty else { return OutputStream.standardOutput.write("No sources with repeated SYNs.\n") }
            let rows = sources.map { source in
                [
                    source.string("address"), grouped(source.int("half_open")), grouped(source.int("attempts")),
                    grouped(source.int("completions")), grouped(source.int("distinct_targets")),
                    source.string("last_target"),
                ]
            }
            OutputStream.standardOutput.write(
                columns(["source", "half-open", "attempts", "completed", "services", "last target"], rows)
            )
        case .victims:
            let victims = answer.array("victims")
            guard !victims.isEmpty else { return OutputStream.standardOutput.write("No services seen yet.\n") }
            let rows = victims.map { victim in
                [
                    victim.service, grouped(victim.int("syn_packets")), grouped(victim.int("attempts")),
                    grouped(victim.int("completions")), grouped(victim.int("resets")), grouped(victim.int("timeouts")),
                    victim.fields["under_attack"] as? Bool == true ? "attacked" : "",
                ]
            }
            OutputStream.standardOutput.write(
                columns(["service", "SYNs", "attempts", "completed", "refused", "timed out", ""], rows)
            )
            // Whole hosts have no connections of their own: only services do.
            let connections = victims.filter { $0.fields["connections"] != nil }
            guard !connections.isEmpty else { return }
            let connectionRows = connections.map { victim in
                [victim.service] + ConnectionColumns.cells(ConnectionColumns.counts(victim.object("connections")))
            }
            OutputStream.standardOutput.write(
                "\n\(ConnectionColumns.title)\n" + columns(["service"] + ConnectionColumns.header, connectionRows)
            )
        }
    }
}

import SynwatchEngine

/// The columns that show a service's connections, in `synwatch top victims` and the analysis report.
enum ConnectionColumns {
    /// Counted are only the connections whose handshake synwatch saw; states need both directions captured.
    static let title = "Connections whose handshake synwatch saw, by server-side state"

    static let header = [
        "established", "close-wait", "last-ack", "fin-wait", "closing", "time-wait", "closed c/s/both", "RST c/s",
    ]

    /// States now, then graceful closes by who sent the first FIN (client, server, both at once), then RST
    /// aborts by who sent the RST (client, server).
    static func cells(_ counts: ConnectionCounts) -> [String] {
        [
            grouped(counts.established), grouped(counts.closeWait), grouped(counts.lastAck), grouped(counts.finWait),
            grouped(counts.closing), grouped(counts.timeWait),
            "\(grouped(counts.closesClientFirst))/\(grouped(counts.closesServerFirst))/"
                + grouped(counts.closesSimultaneous),
            "\(grouped(counts.abortsByClient))/\(grouped(counts.abortsByServer))",
        ]
    }
}

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

    /// The counts of a `connections` object of the query API (`fin_wait` read as FIN_WAIT_1).
    static func counts(_ object: JSONObject) -> ConnectionCounts {
        var counts = ConnectionCounts()
        counts.established = object.int("established")
        counts.finWait1 = object.int("fin_wait")
        counts.closing = object.int("closing")
        counts.timeWait = object.int("time_wait")
        counts.closeWait = object.int("close_wait")
        counts.lastAck = object.int("last_ack")
        counts.closesClientFirst = object.int("closes_client_first")
        counts.closesServerFirst = object.int("closes_server_first")
        counts.closesSimultaneous = object.int("closes_simultaneous")
        counts.abortsByClient = object.int("aborted_by_client")
        counts.abortsByServer = object.int("aborted_by_server")
        return counts
    }
}

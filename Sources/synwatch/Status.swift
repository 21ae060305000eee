import ArgumentParser

/// `synwatch status`: the daemon, its capture, traffic and tables.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running daemon's capture, traffic and tables.")

    @OptionGroup var query: QueryOptions

    func run() throws {
        guard let status = try query.fetch("/v1/status") else { return }
        let capture = status.object("capture")
        let reloads = status.int("reloads")
        var text = "synwatchd \(status.string("version")), started \(status.time("started_at")), "
        text += "configuration \(status.string("configuration"))"
        text += reloads > 0 ? " (\(reloads) reload\(reloads == 1 ? "" : "s"))\n" : "\n"
        let interfaces = (capture.fields["interfaces"] as? [String] ?? []).joined(separator: ", ")
        text += "capture  \(interfaces): \(capture.string("state")), \(grouped(capture.int("packets"))) packets, "
        text += "\(AnalysisReport.rate(capture.double("packets_per_s"))) packets/s, "
        text += "\(grouped(capture.int("kernel_drops"))) kernel drops, "
        text += "\(grouped(capture.int("interface_drops"))) interface drops\n"
        text += "attacks  \(status.int("active_attacks")) going on, \(grouped(status.int("attacks"))) since start\n"
        text += "traffic  \(grouped(status.int("syn_packets"))) SYNs, \(grouped(status.int("completions"))) completed, "
        text += "\(grouped(status.int("resets"))) refused, \(grouped(status.int("timeouts"))) timed out\n"
        let connections = ConnectionColumns.counts(status.object("connections"))
        text += "connections  \(grouped(connections.established)) established, "
        text += "\(grouped(connections.closeWait)) close-wait, \(grouped(connections.lastAck)) last-ack, "
        text += "\(grouped(connections.finWait)) fin-wait, \(grouped(connections.closing)) closing, "
        text += "\(grouped(connections.timeWait)) time-wait (handshakes synwatch saw)\n"
        text += "             closed \(grouped(connections.closesClientFirst)) client first, "
        text += "\(grouped(connections.closesServerFirst)) server first, "
        text += "\(grouped(connections.closesSimultaneous)) both at once; "
        text +=
            "RST \(grouped(connections.abortsByClient)) by clients, \(grouped(connections.abortsByServer)) by servers\n"
        text += "\nTables (tracked now / capacity, evicted)\n"
        let tables = status.object("tables")
        text += columns(
            ["", "tracked", "capacity", "evicted"],
            ["handshakes", "victims", "sources", "backscatter", "connections"].map { name in
                let table = tables.object(name)
                return [
                    name, grouped(table.int("tracked")), grouped(table.int("capacity")),
                    grouped(table.int("evictions")),
                ]
            }
        )
        OutputStream.standardOutput.write(text)
    }
}

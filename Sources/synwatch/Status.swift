import ArgumentParser
import Foundation

/// `synwatch status`: the daemon, its capture, traffic and tables.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running daemon's capture, traffic and tables.")

    @OptionGroup var query: QueryOptions

    func run() async throws {
        guard let status = try await query.fetch("/v1/status") else { return }
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
        if status.int("active_attacks") > 0, let attacks = try await query.fetch("/v1/attacks") {
            for attack in attacks.array("active").prefix(3) {
                text += "         \(attack.service) \(attack.string("kind")): "
                text += "\(AnalysisReport.rate(attack.double("syn_per_s"))) SYN/s, "
                text += "\(AnalysisReport.rate(attack.double("half_open_per_s"))) half-open/s, "
                text += "~\(grouped(attack.int("distinct_sources"))) sources\n"
            }
        }
        text += "traffic  \(grouped(status.int("syn_packets"))) SYNs, \(grouped(status.int("completions"))) completed, "
        text += "\(grouped(status.int("resets"))) refused, \(grouped(status.int("timeouts"))) timed out\n"
        let connections = ConnectionColumns.counts(status.object("connections"))
        text += Self.kernelLine(status.object("kernel"))
        let hooks = status.object("hooks")
        if hooks.int("runs") + hooks.int("dropped") > 0 {
            text += "hooks    \(grouped(hooks.int("runs"))) runs, \(grouped(hooks.int("failures"))) failed "
            text += "(\(grouped(hooks.int("timeouts"))) timed out), \(grouped(hooks.int("dropped"))) dropped\n"
        }
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

    /// The kernel's own SYN figures on the daemon's host: what it could not queue, and its SYN_RECV sockets.
    static func kernelLine(_ kernel: JSONObject) -> String {
        guard (kernel.fields["available"] as? Bool) == true else {
            return "kernel   no TCP counters here (no /proc/net files)\n"
        }
        let perSecond = kernel.object("per_s")
        let totals = kernel.object("counters")
        func rate(_ name: String) -> String {
            perSecond.fields[name] is NSNumber ? AnalysisReport.rate(perSecond.double(name)) + "/s" : "-"
        }
        var line = "kernel   SYN cookies \(rate("syncookies_sent")) (\(grouped(totals.int("syncookies_sent"))) sent), "
        line += "queue full \(rate("reqq_full_do_cookies")) cookies, \(rate("reqq_full_drop")) dropped, "
        line += "listen overflows \(rate("listen_overflows"))"
        if kernel.fields["syn_recv"] is NSNumber {
            line += "; SYN_RECV \(grouped(kernel.int("syn_recv")))"
            let services = kernel.array("syn_recv_services").prefix(3)
            if !services.isEmpty {
                line +=
                    " (" + services.map { "\($0.service) \(grouped($0.int("syn_recv")))" }.joined(separator: ", ") + ")"
            }
        }
        return line + "\n"
    }
}

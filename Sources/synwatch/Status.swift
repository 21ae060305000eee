import ArgumentParser
import SynwatchEngine
import SynwatchProtocol

/// `synwatch status`: the daemon, its capture, traffic and tables.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running daemon's capture, traffic and tables.")

    @OptionGroup var query: QueryOptions

    func run() async throws {
        guard let status = try await query.fetch("/v1/status", as: V1.Status.self) else { return }
        let daemon = status.daemon
        let capture = daemon.capture
        let traffic = status.traffic
        let live = status.live
        var text = "synwatchd \(daemon.version), started \(Self.wallClock(daemon.startedAt)), "
        text += "configuration \(daemon.configuration)"
        text += daemon.reloads > 0 ? " (\(daemon.reloads) reload\(daemon.reloads == 1 ? "" : "s"))\n" : "\n"
        text += "capture  \(capture.interfaces.joined(separator: ", ")): \(capture.state), "
        text += "\(grouped(capture.packets)) packets, "
        text += "\(AnalysisReport.rate(capture.packetsPerSecond.value)) packets/s, "
        text += "\(grouped(capture.kernelDrops)) kernel drops, "
        text += "\(grouped(capture.interfaceDrops)) interface drops\n"
        // Each interface's threads, as shares of a core: the busier one is the interface's limit.
        for interface in capture.interfaces {
            let threads = capture.threads.filter { $0.interface == interface }
            guard !threads.isEmpty else { continue }
            text += "threads  \(interface): "
            text +=
                threads.map { "\($0.thread) \(Int(($0.busy.value * 100).rounded())) % of a core" }
                .joined(separator: ", ") + "\n"
            // A spoofed storm's clients thinned before they are captured: its figures are scaled estimates.
            let sampled = capture.kernelSampling.filter { $0.interface == interface }
            guard !sampled.isEmpty else { continue }
            text += "sampled  \(interface) in the kernel: "
            text +=
                sampled.map { "\(V1.serviceText(victim: $0.victim, port: $0.port)) 1 client in \($0.oneIn)" }
                .joined(separator: ", ") + "\n"
        }
        text += "attacks  \(live.activeAttacks) going on, \(grouped(status.totals.attacks)) since start\n"
        if live.activeAttacks > 0, let attacks = try await query.fetch("/v1/attacks", as: V1.Attacks.self) {
            for attack in attacks.active.prefix(3) {
                text += "         \(attack.service) \(attack.identity.kind.rawValue): "
                text += "\(AnalysisReport.rate(attack.window.synPerSecond.value)) SYN/s, "
                text += AnalysisReport.failing(attack.window) + ", "
                text += "~\(grouped(attack.window.distinctSources)) sources\n"
            }
        }
        text += "traffic  \(grouped(traffic.synPackets)) SYNs, \(grouped(traffic.completions)) completed, "
        text += "\(grouped(traffic.resets)) refused, \(grouped(traffic.timeouts)) timed out\n"
        let connections = status.totals.connections.states.counts
        text += Self.kernelLine(live.kernel)
        if let synproxy = live.kernel.synproxy { text += Self.synproxyLine(synproxy) }
        let hooks = live.hooks
        if hooks.runs + hooks.dropped > 0 {
            text += "hooks    \(grouped(hooks.runs)) runs, \(grouped(hooks.failures)) failed "
            text += "(\(grouped(hooks.timeouts)) timed out), \(grouped(hooks.dropped)) dropped\n"
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
        let tables = status.totals.tables
        let rows: [(String, Int, Int, Int)] = [
            ("handshakes", tables.handshakes.tracked, tables.handshakes.capacity, tables.handshakes.evictions),
            ("victims", tables.victims.tracked, tables.victims.capacity, tables.victims.evictions),
            ("sources", tables.sources.tracked, tables.sources.capacity, tables.sources.evictions),
            ("backscatter", tables.backscatter.tracked, tables.backscatter.capacity, tables.backscatter.evictions),
            ("connections", tables.connections.tracked, tables.connections.capacity, tables.connections.evictions),
        ]
        text += columns(
            ["", "tracked", "capacity", "evicted"],
            rows.map { [$0.0, grouped($0.1), grouped($0.2), grouped($0.3)] }
        )
        OutputStream.standardOutput.write(text)
    }

    /// Wall-clock seconds since the epoch as UTC date and time.
    static func wallClock(_ seconds: Seconds) -> String {
        AnalysisReport.format(Timestamp(nanoseconds: Int64((seconds.value * 1e9).rounded())))
    }

    /// The kernel's own SYN figures on the daemon's host: what it could not queue, and its SYN_RECV sockets.
    static func kernelLine(_ kernel: V1.Kernel) -> String {
        guard kernel.available else { return "kernel   no TCP counters here (no /proc/net files)\n" }
        func rate(_ name: String) -> String {
            kernel.perSecond[name]?.value.map { AnalysisReport.rate($0.value) + "/s" } ?? "-"
        }
        let cookiesSent = kernel.counters["syncookies_sent"]?.value ?? 0
        var line = "kernel   SYN cookies \(rate("syncookies_sent")) (\(grouped(cookiesSent)) sent), "
        line += "queue full \(rate("reqq_full_do_cookies")) cookies, \(rate("reqq_full_drop")) dropped, "
        line += "listen overflows \(rate("listen_overflows"))"
        if let synReceived = kernel.synReceived.value {
            line += "; SYN_RECV \(grouped(synReceived))"
            let services = (kernel.synReceivedServices ?? []).prefix(3)
            if !services.isEmpty {
                line += " (" + services.map { "\($0.service) \(grouped($0.synReceived))" }.joined(separator: ", ") + ")"
            }
        }
        return line + "\n"
    }

    /// The kernel's SYN proxy, where the kernel has one: SYNs it answered with cookies, and the cookies it got back.
    static func synproxyLine(_ synproxy: V1.Kernel.Synproxy) -> String {
        func figure(_ name: String, _ what: String) -> String {
            let count = synproxy.counters[name]?.value.map(grouped) ?? "-"
            let rate = synproxy.perSecond[name]?.value.map { AnalysisReport.rate($0.value) + "/s" } ?? "-"
            return "\(count) \(what) (\(rate))"
        }
        return "synproxy \(figure("syn_received", "SYNs answered")), cookies \(figure("cookie_valid", "valid")), "
            + "\(figure("cookie_invalid", "invalid"))\n"
    }
}

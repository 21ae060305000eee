import ArgumentParser
import Foundation
import SynwatchClient

/// `synwatch watch`: the daemon's events as they happen, until interrupted.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the daemon's events as they happen, one line each, until interrupted."
    )

    @OptionGroup var query: QueryOptions

    func run() async throws {
        let output = OutputStream.standardOutput
        do {
            try await QueryClient(path: query.socket).follow("/v1/events") { line in
                if query.json {
                    output.write(line + "\n")
                } else if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                    output.write(Self.describe(JSONObject(object)) + "\n")
                }
                // A watcher reads the stream as it comes: every line at once, not when a buffer fills.
                output.flush()
                return true
            }
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// One readable line for an event.
    static func describe(_ event: JSONObject) -> String {
        let type = event.string("event")
        var line = "\(event.time("time"))  \(type.padding(toLength: 13, withPad: " ", startingAt: 0))"
        switch type {
        case "scan":
            line += "  \(event.string("source")): ~\(grouped(event.int("distinct_targets"))) services, "
            line += "\(grouped(event.int("syns"))) SYNs"
        case "backscatter":
            line += "  \(event.service): \(AnalysisReport.rate(event.double("synack_per_s"))) unsolicited SYN-ACK/s "
            line += "from ~\(grouped(event.int("distinct_sources"))) reflectors"
        default:
            line += "  #\(event.int("attack_id"))  \(event.service)  \(event.string("kind"))  "
            if type == "attack_end" {
                line += "lasted \(AnalysisReport.format(seconds: event.double("duration"))), "
                line += "peak \(AnalysisReport.rate(event.double("peak_syn_per_s"))) SYN/s"
            } else {
                line += "\(AnalysisReport.rate(event.double("syn_per_s"))) SYN/s, "
                line += "\(AnalysisReport.rate(event.double("half_open_per_s"))) half-open/s, "
                line += "~\(grouped(event.int("distinct_sources"))) sources"
            }
        }
        return line
    }
}

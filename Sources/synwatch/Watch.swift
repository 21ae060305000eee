import ArgumentParser
import SynwatchClient
import SynwatchProtocol

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
                } else {
                    output.write(Self.describe(try query.decode(V1.Event.self, from: line)) + "\n")
                }
                // A watcher reads the stream as it comes: every line at once, not when a buffer fills.
                output.flush()
                return true
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// One readable line for an event.
    static func describe(_ event: V1.Event) -> String {
        let type = event.header.event.rawValue
        var line = "\(event.header.time.text)  \(type)\(String(repeating: " ", count: max(0, 13 - type.count)))"
        if let scan = event.scan {
            line += "  \(scan.source): ~\(grouped(scan.distinctTargets)) services, \(grouped(scan.syns)) SYNs"
        } else if let backscatter = event.backscatter {
            line += "  \(event.service): \(AnalysisReport.rate(backscatter.synAckPerSecond.value)) unsolicited "
            line += "SYN-ACK/s from ~\(grouped(backscatter.distinctSources)) reflectors"
        } else {
            line += "  #\(event.header.attackID ?? 0)  \(event.service)  \(event.header.kind?.rawValue ?? "")  "
            if let end = event.end {
                line += "lasted \(AnalysisReport.format(seconds: end.duration.value)), "
                line += "peak \(AnalysisReport.rate(end.peakSynPerSecond.value)) SYN/s"
            } else if let window = event.window {
                line += "\(AnalysisReport.rate(window.synPerSecond.value)) SYN/s, "
                line += AnalysisReport.failing(window) + ", "
                line += "~\(grouped(window.distinctSources)) sources"
            }
        }
        return line
    }
}

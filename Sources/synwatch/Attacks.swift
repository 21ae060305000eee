import ArgumentParser
import SynwatchProtocol

/// `synwatch attacks`: attacks going on and the latest that ended.
struct Attacks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the attacks going on and the latest ended.")

    @OptionGroup var query: QueryOptions

    func run() async throws {
        guard let attacks = try await query.fetch("/v1/attacks", as: V1.Attacks.self) else { return }
        let active = attacks.active
        var text = "Attacks going on: \(active.isEmpty ? "none" : String(active.count))\n"
        for attack in active {
            let identity = attack.identity
            let window = attack.window
            text += "  #\(identity.attackID)  SYN flood on \(attack.service)  \(identity.kind.rawValue), "
            text += "since \(identity.start.text)\n"
            text += "      \(AnalysisReport.rate(window.synPerSecond.value)) SYN/s, "
            text += AnalysisReport.failing(window) + ", "
            text += "completion ratio \(AnalysisReport.percent(window.completionRatio.value)), "
            text += "~\(grouped(window.distinctSources)) sources\n"
            if !window.topSources.isEmpty {
                text += "      top sources (half-open): "
                text += window.topSources.map { "\($0.address) (\($0.halfOpen))" }.joined(separator: ", ") + "\n"
            } else if identity.kind == .randomSource {
                text += "      top sources: none stands out (spoofed, about one SYN per source)\n"
            }
        }
        let recent = attacks.recent
        text += "\nRecently ended: \(recent.isEmpty ? "none" : String(recent.count))\n"
        for attack in recent.reversed() {
            let header = attack.header
            guard let end = attack.end else {
                throw CommandFailure("bad response from synwatchd at \(query.socket): a recent attack has no end")
            }
            text += "  #\(header.attackID ?? 0)  SYN flood on \(attack.service)  \(header.kind?.rawValue ?? "?"), "
            text += "\(end.start.text) to \(header.time.text), "
            text += "lasted \(AnalysisReport.format(seconds: end.duration.value))\n"
            text += "      peak \(AnalysisReport.rate(end.peakSynPerSecond.value)) SYN/s, "
            let peak = (halfOpen: end.peakHalfOpenPerSecond.value, refused: end.peakRefusedPerSecond.value)
            text += AnalysisReport.failing(halfOpen: peak.halfOpen, refused: peak.refused) + ", "
            text += "~\(grouped(end.peakDistinctSources)) sources, "
            text += "\(grouped(end.totalSyns)) SYNs\n"
        }
        OutputStream.standardOutput.write(text)
    }
}

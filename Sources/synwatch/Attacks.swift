import ArgumentParser

/// `synwatch attacks`: attacks going on and the latest that ended.
struct Attacks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the attacks going on and the latest ended.")

    @OptionGroup var query: QueryOptions

    func run() async throws {
        guard let attacks = try await query.fetch("/v1/attacks") else { return }
        let active = attacks.array("active")
        var text = "Attacks going on: \(active.isEmpty ? "none" : String(active.count))\n"
        for attack in active {
            text += "  #\(attack.int("attack_id"))  SYN flood on \(attack.service)  \(attack.string("kind")), "
            text += "since \(attack.time("start"))\n"
            text += "      \(AnalysisReport.rate(attack.double("syn_per_s"))) SYN/s, "
            text += "\(AnalysisReport.rate(attack.double("half_open_per_s"))) half-open/s, "
            text += "completion ratio \(AnalysisReport.percent(attack.double("completion_ratio"))), "
            text += "~\(grouped(attack.int("distinct_sources"))) sources\n"
            let top = attack.array("top_sources")
            if !top.isEmpty {
                text += "      top sources (half-open): "
                text += top.map { "\($0.string("address")) (\($0.int("half_open")))" }.joined(separator: ", ") + "\n"
            } else if attack.string("kind") == "random-source" {
                text += "      top sources: none stands out (spoofed, about one SYN per source)\n"
            }
        }
        let recent = attacks.array("recent")
        text += "\nRecently ended: \(recent.isEmpty ? "none" : String(recent.count))\n"
        for attack in recent.reversed() {
            text += "  #\(attack.int("attack_id"))  SYN flood on \(attack.service)  \(attack.string("kind")), "
            text += "\(attack.time("start")) to \(attack.time("time")), "
            text += "lasted \(AnalysisReport.format(seconds: attack.double("duration")))\n"
            text += "      peak \(AnalysisReport.rate(attack.double("peak_syn_per_s"))) SYN/s, "
            text += "\(AnalysisReport.rate(attack.double("peak_half_open_per_s"))) half-open/s, "
            text += "~\(grouped(attack.int("peak_distinct_sources"))) sources, "
            text += "\(grouped(attack.int("total_syns"))) SYNs\n"
        }
        OutputStream.standardOutput.write(text)
    }
}

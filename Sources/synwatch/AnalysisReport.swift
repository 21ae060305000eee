import FoundationEssentials
import SynwatchEngine
import SynwatchProtocol

/// The human report of `synwatch analyze`: attacks, notices, traffic, decode problems and tables.
struct AnalysisReport {
    /// One attack as its events told it.
    struct Attack {
        var start: Event
        var latest: Event
        var end: Event?
    }

    let files: [String]
    private(set) var attacks: [Attack] = []
    private(set) var notices: [Event] = []

    init(files: [String]) {
        self.files = files
    }

    mutating func record(_ event: Event) {
        switch event.type {
        case .attackStart:
            attacks.append(Attack(start: event, latest: event))
        case .attackUpdate, .attackEnd:
            guard let index = attacks.lastIndex(where: { $0.start.attackID == event.attackID }) else { return }
            attacks[index].latest = event
            if event.type == .attackEnd { attacks[index].end = event }
        case .scan, .backscatter:
            notices.append(event)
        }
    }

    func render(statistics: EngineStatistics, occupancy: TableOccupancy, services: [ServiceSummary]) -> String {
        var text = "synwatch analyze: \(files.joined(separator: ", "))\n"
        if let first = statistics.firstTime, let last = statistics.lastTime {
            text +=
                "  \(grouped(statistics.frames)) frames, \(Self.format(seconds: (last - first).seconds)) of capture "
            text += "from \(Self.format(first)) to \(Self.format(last))\n"
        } else {
            text += "  no frames\n"
        }

        text += "\nAttacks: \(attacks.isEmpty ? "none" : String(attacks.count))\n"
        for attack in attacks { text += describe(attack) }

        text += "\nNotices (not attacks on us): \(notices.isEmpty ? "none" : String(notices.count))\n"
        for notice in notices { text += describe(notice: notice) }

        text += "\nBusiest services\n"
        if services.isEmpty { text += "  none\n" }
        let columns = ["SYNs", "attempts", "completed", "refused", "timed out"]
        let width = max(24, services.map { Self.service($0.address, $0.port).count }.max() ?? 0)
        func row(_ name: String, _ cells: [String], _ note: String = "") -> String {
            "  " + name.padding(width)
                + cells.map { String(repeating: " ", count: max(1, 11 - $0.count)) + $0 }.joined()
                + note + "\n"
        }
        if !services.isEmpty { text += row("", columns) }
        for service in services {
            let counts = [service.synPackets, service.attempts, service.completions, service.resets, service.timeouts]
            text += row(
                Self.service(service.address, service.port),
                counts.map(grouped),
                service.underAttack ? "  attacked" : ""
            )
        }

        text += connections(statistics: statistics, services: services)

        text += "\nTraffic\n"
        let totals = V1.EngineTotals(statistics, occupancy: occupancy)
        text += table(ContractJSON.tree(V1.Traffic(statistics)))
        let problems = totals.problems.entries.filter { $0.value > 0 }
        text += "\nDecode problems: \(problems.isEmpty ? "none" : String(statistics.problems))\n"
        text += table(problems.map { ($0.name, .int($0.value)) })
        text += "\nSkipped (not TCP)\n"
        text += table(ContractJSON.tree(totals.skipped))
        text += "\nTables (tracked now / capacity, evicted)\n"
        text += "  handshakes   \(grouped(occupancy.handshakes)) / \(grouped(occupancy.handshakeCapacity)), "
        text += "\(grouped(statistics.handshakeEvictions)) evicted, "
        text += "\(grouped(statistics.sampledOut)) attempts on attacked services not tracked (sampled)\n"
        text += "  victims      \(grouped(occupancy.victims)) / \(grouped(occupancy.victimCapacity)), "
        text +=
            "\(grouped(statistics.victimEvictions)) evicted, \(grouped(statistics.victimsUntracked)) SYNs untracked\n"
        text += "  sources      \(grouped(occupancy.sources)) / \(grouped(occupancy.sourceCapacity)), "
        text += "\(grouped(statistics.sourceEvictions)) evicted\n"
        text +=
            "  backscatter  \(grouped(occupancy.backscatterAddresses)) / \(grouped(occupancy.backscatterCapacity)), "
        text += "\(grouped(statistics.backscatterEvictions)) evicted\n"
        text += "  connections  \(grouped(occupancy.connections)) / \(grouped(occupancy.connectionCapacity)), "
        text += "\(grouped(statistics.connectionEvictions)) evicted\n"
        return text
    }

    /// The connections of the busiest services and of all, by server-side state at the end of the capture.
    private func connections(statistics: EngineStatistics, services: [ServiceSummary]) -> String {
        var text = "\n\(ConnectionColumns.title) (at the end of the capture)\n"
        let listed = services.compactMap { service in service.connections.map { (service, $0) } }
        guard statistics.connectionsOpened > 0 else { return text + "  none\n" }
        let width = max(24, listed.map { Self.service($0.0.address, $0.0.port).count }.max() ?? 0)
        let columnWidths = ConnectionColumns.header.map { $0.count + 2 }
        func row(_ name: String, _ cells: [String]) -> String {
            var line = "  " + name.padding(width)
            for (cell, cellWidth) in zip(cells, columnWidths) {
                line += String(repeating: " ", count: max(1, cellWidth - cell.count)) + cell
            }
            return line + "\n"
        }
        text += row("", ConnectionColumns.header)
        for (service, counts) in listed {
            text += row(Self.service(service.address, service.port), ConnectionColumns.cells(counts))
        }
        text += row("all services", ConnectionColumns.cells(statistics.connections))
        text += "  \(grouped(statistics.connectionsOpened)) handshakes completed in sight, "
        text += "\(grouped(statistics.connectionsClosed)) closed, \(grouped(statistics.connectionsExpired)) timed out "
        text += "closing; states need both directions of the traffic\n"
        return text
    }

    private func describe(_ attack: Attack) -> String {
        let start = attack.start
        let latest = attack.latest
        let service = Self.service(start.victim, start.port)
        var text = "  #\(start.attackID ?? 0)  SYN flood on \(service)  \(latest.kind?.rawValue ?? "?")\n"
        if let end = attack.end, let summary = end.summary {
            // When the flood began and ended, not when it was told: the end is told a quiet period later.
            let delay = Self.format(seconds: (start.time - summary.start).seconds)
            let lasted = Self.format(seconds: summary.duration.seconds)
            text += "      began \(Self.format(summary.start)), detected \(delay) in, "
            text += "lasted \(lasted), to \(Self.format(summary.start + summary.duration))"
            // Its quiet period had not passed: the flood may have gone on after the capture.
            text += summary.endReason == .captureEnd ? ", not over when the capture ended\n" : "\n"
            text += "      peak \(Self.rate(summary.peakSynPerSecond)) SYN/s, "
            text += Self.failing(halfOpen: summary.peakHalfOpenPerSecond, refused: summary.peakRefusedPerSecond) + ", "
            text += "~\(grouped(summary.peakDistinctSources)) sources, \(grouped(summary.totalSyns)) SYNs\n"
        } else {
            text += "      detected \(Self.format(start.time)), still going on\n"
        }
        if let figures = start.figures {
            let failing = Self.failing(halfOpen: figures.halfOpenPerSecond, refused: figures.refusedPerSecond)
            text += "      at detection: \(failing), "
            text += "completion ratio \(Self.percent(figures.completionRatio))"
            if !figures.topSources.isEmpty {
                text += ", top sources (half-open): "
                text += figures.topSources.map { "\($0.address) (\($0.halfOpen))" }.joined(separator: ", ")
            } else if start.kind == .randomSource {
                text += ", no source stands out"
            }
            text += "\n"
        }
        return text
    }

    private func describe(notice: Event) -> String {
        switch notice.type {
        case .scan:
            guard let scan = notice.scan else { return "" }
            let target = notice.victim.map { "\($0)" } ?? "\(grouped(scan.distinctAddresses)) addresses"
            return "  scan         \(Self.format(notice.time))  \(scan.source) -> \(target): "
                + "~\(grouped(scan.distinctTargets)) services, \(grouped(scan.syns)) SYNs\n"
        case .backscatter:
            guard let backscatter = notice.backscatter else { return "" }
            return "  backscatter  \(Self.format(notice.time))  \(notice.victim.map { "\($0)" } ?? "?"): "
                + "\(Self.rate(backscatter.synAckPerSecond)) unsolicited SYN-ACK/s "
                + "from ~\(grouped(backscatter.distinctSources)) reflectors (someone spoofs this address)\n"
        default:
            return ""
        }
    }

    /// The members of an object, one per line.
    private func table(_ object: JSONValue) -> String {
        if case .object(let members) = object { table(members) } else { "" }
    }

    private func table(_ fields: [(String, JSONValue)]) -> String {
        let width = (fields.map(\.0.count).max() ?? 0) + 2
        return fields.map { name, value in
            let number = if case .int(let count) = value { grouped(count) } else { value.rendered }
            return "  " + name.replacingUnderscores + String(repeating: " ", count: width - name.count) + number + "\n"
        }.joined()
    }

    // MARK: Formatting

    static func service(_ address: IPAddress?, _ port: UInt16?) -> String {
        address?.serviceText(port: port) ?? "?"
    }

    static func rate(_ value: Double) -> String {
        value >= 100 ? grouped(Int(value.rounded())) : JSONValue.number(value, decimals: 1).rendered
    }

    /// `850 half-open/s`, or at a closed port, whose kernel refuses the SYNs, `850 refused/s (port closed)`.
    static func failing(halfOpen: Double, refused: Double) -> String {
        refused > halfOpen ? "\(rate(refused)) refused/s (port closed)" : "\(rate(halfOpen)) half-open/s"
    }

    static func failing(_ window: V1.Event.Window) -> String {
        failing(halfOpen: window.halfOpenPerSecond.value, refused: window.refusedPerSecond.value)
    }

    static func percent(_ ratio: Double) -> String {
        JSONValue.number(ratio * 100, decimals: 1).rendered + " %"
    }

    static func format(seconds: Double) -> String {
        JSONValue.number(seconds, decimals: seconds < 10 ? 2 : 1).rendered + " s"
    }

    /// UTC date and time to the millisecond, from capture time.
    static func format(_ time: Timestamp) -> String {
        // Half a millisecond in: the style truncates, and a Double of the whole milliseconds may fall just short.
        let milliseconds = Double(time.nanoseconds / 1_000_000) + 0.5
        return utc.format(Date(timeIntervalSince1970: milliseconds / 1_000))
    }

    private static let utc = Date.ISO8601FormatStyle(
        dateSeparator: .dash,
        dateTimeSeparator: .space,
        timeSeparator: .colon,
        timeZoneSeparator: .omitted,
        includingFractionalSeconds: true,
        timeZone: .gmt
    )
}

/// `1234567` as `1,234,567`.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
        result.append(digit)
    }
    return value < 0 ? "-" + result : result
}

extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }

    /// The string followed by spaces up to `width` characters.
    fileprivate func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

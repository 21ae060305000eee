import SynwatchEngine
import SynwatchProtocol

extension EventType {
    /// The fixed `MESSAGE_ID` of the type's journal entries, explained in `packaging/synwatch.catalog`: operators
    /// select alerts by it (`journalctl MESSAGE_ID=…`), so it never changes.
    public var messageID: String {
        switch self {
        case .attackStart: "82044201de1b4a5bbade0a6e98526953"
        case .attackUpdate: "d04e8141b8074ffca6a84db8cc198706"
        case .attackEnd: "5f7475a03d644448aa60f131bbc144f7"
        case .scan: "d2b3921733604aac86e3db491989b94a"
        case .backscatter: "adbcce7a7b944292911a7cc62d1f2692"
        }
    }

    /// The journal priority of the type's entries.
    ///
    /// A start is `critical`: a service of ours is losing its handshake queue and someone should look now, and
    /// `journalctl -p crit` then lists exactly the floods. The end is a `warning`, so `-p warning` shows each attack
    /// as a start/end pair and the all-clear reaches whoever saw the alarm. Updates repeat every 10 s and are
    /// `notice`. Backscatter (someone spoofs our address against third parties) is worth knowing but needs no
    /// action on our side: `notice`. Scans are everyday background noise on the Internet: `info`.
    public var journalPriority: JournalPriority {
        switch self {
        case .attackStart: .critical
        case .attackEnd: .warning
        case .attackUpdate, .backscatter: .notice
        case .scan: .info
        }
    }
}

extension JournalEntry {
    /// The `SYSLOG_IDENTIFIER` of everything the daemon writes to the journal.
    public static let syslogIdentifier = "synwatchd"

    /// The alert entry of an engine event: `MESSAGE`, `MESSAGE_ID`, `PRIORITY`, `SYSLOG_IDENTIFIER`, then every
    /// field of `V1.Event` upper-cased after `SYNWATCH_`. `SYNWATCH_TOP_SOURCES` reads `address:count,…` (split an
    /// IPv6 address from its count at the last colon).
    public init(event: Event) {
        self.init()
        append("MESSAGE", JournalEntry.message(for: event))
        append("MESSAGE_ID", event.type.messageID)
        append("PRIORITY", String(event.type.journalPriority.rawValue))
        append("SYSLOG_IDENTIFIER", JournalEntry.syslogIdentifier)
        for field in FlatFields(lists: .full).fields(of: V1.Event(event)) {
            append(JournalEntry.fieldName(field.name, prefix: ""), field.value)
        }
    }

    /// The one-line `MESSAGE` an operator reads in `journalctl`.
    static func message(for event: Event) -> String {
        let victim = event.victim?.description ?? "an unknown address"
        switch event.type {
        case .attackStart: return "SYN flood on \(service(event)): \(shape(event))"
        case .attackUpdate:
            // An update comes while the quiet period runs out too: then it must not say the flood goes on.
            let failing = event.figures.map { $0.halfOpenPerSecond + $0.refusedPerSecond } ?? 0
            let phase = failing > 0 ? "goes on" : "is subsiding"
            return "SYN flood on \(service(event)) \(phase): \(shape(event))"
        case .attackEnd:
            var text = "SYN flood on \(service(event)) ended"
            if let summary = event.summary {
                text += " after \(duration(summary.duration.seconds)): peak \(compact(summary.peakSynPerSecond)) SYN/s"
                if summary.endReason == .captureEnd { text += " (capture stopped)" }
            }
            return text
        case .scan:
            guard let scan = event.scan else { return "Scan" }
            if scan.distinctAddresses <= 1, event.victim != nil {
                return "Scan from \(scan.source): \(compact(scan.distinctTargets)) ports of \(victim) probed"
            }
            let hosts = scan.distinctAddresses == 1 ? "host" : "hosts"
            return "Scan from \(scan.source): \(compact(scan.distinctTargets)) services on "
                + "\(compact(scan.distinctAddresses)) \(hosts) probed"
        case .backscatter:
            guard let backscatter = event.backscatter else { return "Backscatter at \(victim)" }
            return "Backscatter at \(victim): \(compact(backscatter.synAckPerSecond)) unsolicited SYN-ACK/s from "
                + "~\(compact(backscatter.distinctSources)) hosts; someone spoofs this address"
        }
    }

    /// `198.18.0.2:80`, `[2001:db8::2]:80`, or `198.18.0.2 (all ports)` for a flood spread over a host's ports.
    static func service(_ event: Event) -> String {
        event.victim?.serviceText(port: event.port) ?? "an unknown address"
    }

    /// `random-source, 24k half-open/s from ~23k sources`; a single source is named. At a closed port, whose
    /// kernel refuses the SYNs, the rate says so: `24k refused/s (port closed)`.
    static func shape(_ event: Event) -> String {
        let kind = event.kind?.rawValue ?? "unclassified"
        guard let figures = event.figures else { return kind }
        let rate =
            figures.refusedPerSecond > figures.halfOpenPerSecond
            ? "\(compact(figures.refusedPerSecond)) refused/s (port closed)"
            : "\(compact(figures.halfOpenPerSecond)) half-open/s"
        if event.kind == .singleSource, let top = figures.topSources.first {
            return "\(kind), \(rate) from \(top.address)"
        }
        return "\(kind), \(rate) from ~\(compact(figures.distinctSources)) sources"
    }

    /// A figure in at most three significant digits: `850`, `1.2k`, `24k`, `3.1M`.
    static func compact(_ value: some BinaryInteger) -> String { compact(Double(value)) }

    static func compact(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        guard value >= 999.5 else { return String(Int(max(0, value).rounded())) }
        var scaled = value / 1_000
        var suffixes = ["k", "M", "G"]
        // Move up a unit while the figure would read 1000 or more.
        while scaled >= 999.5, suffixes.count > 1 {
            scaled /= 1_000
            suffixes.removeFirst()
        }
        let suffix = suffixes[0]
        guard scaled < 9.95 else { return "\(Int(scaled.rounded()))\(suffix)" }
        let tenths = Int((scaled * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)\(suffix)" : "\(tenths / 10).\(tenths % 10)\(suffix)"
    }

    /// `42 s`, `3 min 12 s`, `2 h 5 min`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(max(0, seconds).rounded())
        if total < 60 { return "\(total) s" }
        if total < 3_600 { return "\(total / 60) min \(total % 60) s" }
        return "\(total / 3_600) h \(total % 3_600 / 60) min"
    }
}

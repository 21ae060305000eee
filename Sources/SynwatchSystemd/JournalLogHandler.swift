import Glibc
import Logging

/// A swift-log handler that writes each record as a structured journal entry.
///
/// The entry carries `MESSAGE`, `PRIORITY` (from the level), `SYSLOG_IDENTIFIER`, `CODE_FILE`, `CODE_LINE` and
/// `CODE_FUNC`, `SYNWATCH_LOGGER` (the logger's label), `SYNWATCH_ERROR` when the record has an error, and each
/// metadata key upper-cased after `SYNWATCH_` (`attack_id` becomes `SYNWATCH_ATTACK_ID`). Messages stay constant and
/// data goes into metadata, so `journalctl SYNWATCH_…=` finds it.
public struct JournalLogHandler: LogHandler {
    /// Where entries go: the journal in the daemon, a capture in tests.
    public typealias Sink = @Sendable (JournalEntry) -> Void

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    let label: String
    let sink: Sink

    /// A handler that passes each entry to `sink`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping Sink) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    /// A handler that sends each entry to `journal`. A record the journal refuses goes to standard error instead:
    /// a logger has nowhere else to report its own failure.
    public init(label: String, journal: Journal = Journal(), metadataProvider: Logger.MetadataProvider? = nil) {
        self.init(label: label, metadataProvider: metadataProvider) { entry in
            do {
                try journal.send(entry)
            } catch {
                // One write(2), so concurrent records do not interleave within a line.
                var line = Array("\(entry["MESSAGE"] ?? "") (not journaled: \(error))\n".utf8)
                _ = write(STDERR_FILENO, &line, line.count)
            }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var entry = JournalEntry()
        entry.append("MESSAGE", event.message.description)
        entry.append("PRIORITY", String(JournalLogHandler.priority(event.level).rawValue))
        entry.append("SYSLOG_IDENTIFIER", JournalEntry.syslogIdentifier)
        entry.append("CODE_FILE", event.file)
        entry.append("CODE_LINE", String(event.line))
        entry.append("CODE_FUNC", event.function)
        entry.append("SYNWATCH_LOGGER", label)
        if let error = event.error { entry.append("SYNWATCH_ERROR", String(describing: error)) }
        // The record's own metadata wins over the provider's, which wins over the handler's.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let own = event.metadata { merged.merge(own) { $1 } }
        for key in merged.keys.sorted() {
            entry.append(JournalEntry.fieldName(key), merged[key]!.description)
        }
        sink(entry)
    }

    /// swift-log has no `alert` or `emergency`; `trace` and `debug` are both `debug`.
    static func priority(_ level: Logger.Level) -> JournalPriority {
        switch level {
        case .trace, .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}

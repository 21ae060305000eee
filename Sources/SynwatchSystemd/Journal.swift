import CSystemd
import Glibc
import SynwatchSystem

/// The syslog priority of a journal entry (`PRIORITY=`): the smaller, the more urgent.
public enum JournalPriority: Int, Sendable, CaseIterable, Comparable {
    case emergency = 0
    case alert
    case critical
    case error
    case warning
    case notice
    case info
    case debug

    public static func < (lhs: JournalPriority, rhs: JournalPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One field of a journal entry: `NAME=value`.
public struct JournalField: Hashable, Sendable {
    /// journald keeps names of at most 64 upper-case letters, digits and underscores, not starting with `_`
    /// (those are its own trusted fields); it drops other fields.
    public var name: String
    /// Any text, line breaks included.
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A structured journal entry: fields in order; a name may repeat.
public struct JournalEntry: Hashable, Sendable {
    public var fields: [JournalField]

    public init(fields: [JournalField] = []) {
        self.fields = fields
    }

    /// Appends `name=value`.
    public mutating func append(_ name: String, _ value: String) {
        fields.append(JournalField(name, value))
    }

    /// The value of the first field called `name`.
    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }

    /// A valid field name made from any key: upper-cased, other characters than letters, digits and `_` replaced by
    /// `_`, after `prefix`, and cut to journald's 64 characters.
    public static func fieldName(_ key: String, prefix: String = "SYNWATCH_") -> String {
        let body = key.uppercased().unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "A"..."Z", "0"..."9", "_": Character(scalar)
            default: "_"
            }
        }
        return String((prefix + String(body)).prefix(64))
    }
}

/// Sends structured entries to systemd-journald.
///
/// Stateless: libsystemd keeps one socket per process for all senders, so any thread may send.
public struct Journal: Sendable {
    public init() {}

    /// Sends one entry with `sd_journal_sendv`, one iovec per field.
    ///
    /// libsystemd drops an entry silently when no journald listens (`/run/systemd/journal/socket` is missing),
    /// as it is outside systemd; the daemon's other outputs still tell.
    ///
    /// - Throws: `SystemCallError` naming `sd_journal_sendv`: `EINVAL` for an entry without fields or a field with an
    ///   empty name, or the errno of the send. Retried on `EINTR`.
    public func send(_ entry: JournalEntry) throws {
        // One buffer holds every "NAME=value"; the iovecs point into it.
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in entry.fields {
            let start = bytes.count
            bytes += field.name.utf8
            bytes.append(UInt8(ascii: "="))
            bytes += field.value.utf8
            ranges.append(start..<bytes.count)
        }
        try bytes.withUnsafeMutableBytes { buffer in
            let vectors = ranges.map { iovec(iov_base: buffer.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            _ = try SystemCall.checkedNegativeErrno("sd_journal_sendv") {
                sd_journal_sendv(vectors, CInt(vectors.count))
            }
        }
    }
}

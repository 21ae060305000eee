/// One of the counters of the kernel's SYN proxy (netfilter SYNPROXY), in `/proc/net/stat/synproxy`.
public enum KernelSynproxyCounter: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// SYNs the proxy answered with a SYN cookie.
    case synReceived
    /// ACKs whose cookie did not check out: dropped.
    case cookieInvalid
    /// ACKs with a valid cookie: the proxy opened the connection to the listener for them.
    case cookieValid
    /// SYNs to the listener sent again because a client repeated its ACK.
    case cookieRetrans
    /// Tracked connections a new SYN reopened.
    case connReopened

    /// The kernel's column name, such as `syn_received`; also the name in JSON fields, metrics and journal fields.
    public var kernelName: String {
        switch self {
        case .synReceived: "syn_received"
        case .cookieInvalid: "cookie_invalid"
        case .cookieValid: "cookie_valid"
        case .cookieRetrans: "cookie_retrans"
        case .connReopened: "conn_reopened"
        }
    }

    public var description: String { "synproxy \(kernelName)" }
}

/// The SYN proxy's counters at one moment, summed over the CPUs, as `/proc/net/stat/synproxy` shows them.
///
/// The file exists only while the kernel has SYNPROXY (module `nf_synproxy_core`, or built in): without it there
/// are no counters at all, rather than zeros.
public struct KernelSynproxyCounters: Equatable, Sendable {
    private var values: [UInt64?]

    /// Parses the file: a header line of column names, then one line of hexadecimal values per CPU, which are
    /// summed. A column missing from the header, or a line that does not parse, leaves that counter nil.
    public init(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let header = lines.first?.split(whereSeparator: \.isWhitespace) ?? []
        let rows = lines.dropFirst().map { $0.split(whereSeparator: \.isWhitespace).map { UInt64($0, radix: 16) } }
        let consistent = rows.allSatisfy { $0.count == header.count && !$0.contains(nil) }
        values = KernelSynproxyCounter.allCases.map { counter in
            guard consistent, !rows.isEmpty, let column = header.firstIndex(of: Substring(counter.kernelName)) else {
                return nil
            }
            return rows.reduce(0) { $0 + ($1[column] ?? 0) }
        }
    }

    /// Counters with the values given, nil for the others.
    public init(_ values: [KernelSynproxyCounter: UInt64] = [:]) {
        self.values = KernelSynproxyCounter.allCases.map { values[$0] }
    }

    /// The value of `counter`, nil when unknown.
    public subscript(counter: KernelSynproxyCounter) -> UInt64? {
        values[counter.rawValue]
    }
}

/// One of the kernel's TCP counters that speak of SYN floods and listen queues.
public enum KernelTCPCounter: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// SYN cookies sent: the SYN queue of a listener was full (or cookies are forced).
    case syncookiesSent
    /// Valid SYN cookies received back: handshakes that completed through a cookie.
    case syncookiesRecv
    /// SYN cookies received back that did not check out.
    case syncookiesFailed
    /// A listener's accept queue was full when a SYN or a completing ACK arrived.
    case listenOverflows
    /// SYNs or completing ACKs a listener dropped, for any reason (overflows included).
    case listenDrops
    /// The SYN queue was full and a cookie was sent instead of a request socket.
    case reqQFullDoCookies
    /// The SYN queue was full and, cookies being off, the SYN was dropped.
    case reqQFullDrop
    /// Connections this host opened (SYN sent).
    case activeOpens
    /// Connections accepted by listeners (request sockets created).
    case passiveOpens
    /// Connection attempts that failed (SYN_SENT or SYN_RECV to CLOSED or LISTEN).
    case attemptFails
    /// Established connections reset.
    case estabResets

    /// Which file the counter is in.
    public var file: KernelTCPCounterFile {
        switch self {
        case .activeOpens, .passiveOpens, .attemptFails, .estabResets: .snmp
        default: .netstat
        }
    }

    /// The line prefix of its table in that file: `TcpExt` or `Tcp`.
    public var table: String { file == .netstat ? "TcpExt" : "Tcp" }

    /// The kernel's column name, such as `SyncookiesSent` or `TCPReqQFullDoCookies`.
    public var kernelName: String {
        switch self {
        case .syncookiesSent: "SyncookiesSent"
        case .syncookiesRecv: "SyncookiesRecv"
        case .syncookiesFailed: "SyncookiesFailed"
        case .listenOverflows: "ListenOverflows"
        case .listenDrops: "ListenDrops"
        case .reqQFullDoCookies: "TCPReqQFullDoCookies"
        case .reqQFullDrop: "TCPReqQFullDrop"
        case .activeOpens: "ActiveOpens"
        case .passiveOpens: "PassiveOpens"
        case .attemptFails: "AttemptFails"
        case .estabResets: "EstabResets"
        }
    }

    /// A snake_case name for JSON fields, metrics and journal fields, such as `syncookies_sent`.
    public var fieldName: String {
        switch self {
        case .syncookiesSent: "syncookies_sent"
        case .syncookiesRecv: "syncookies_recv"
        case .syncookiesFailed: "syncookies_failed"
        case .listenOverflows: "listen_overflows"
        case .listenDrops: "listen_drops"
        case .reqQFullDoCookies: "reqq_full_do_cookies"
        case .reqQFullDrop: "reqq_full_drop"
        case .activeOpens: "active_opens"
        case .passiveOpens: "passive_opens"
        case .attemptFails: "attempt_fails"
        case .estabResets: "estab_resets"
        }
    }

    public var description: String { "\(table) \(kernelName)" }
}

/// The two files of the network namespace that hold the counters.
public enum KernelTCPCounterFile: String, CaseIterable, Sendable {
    /// `/proc/net/netstat`: the `TcpExt` table.
    case netstat
    /// `/proc/net/snmp`: the `Tcp` table.
    case snmp
}

/// The kernel's TCP counters at one moment, as `/proc/net/netstat` and `/proc/net/snmp` show them.
///
/// A counter is nil when its file is missing (as in some containers), when the kernel does not have that
/// column, or when its value does not read as an unsigned integer.
public struct KernelTCPCounters: Equatable, Sendable {
    /// Whether `/proc/net/netstat` could be read.
    public var netstatPresent: Bool
    /// Whether `/proc/net/snmp` could be read.
    public var snmpPresent: Bool
    /// The SYN proxy's counters, from `/proc/net/stat/synproxy`; nil when the kernel has no SYNPROXY.
    public var synproxy: KernelSynproxyCounters?
    private var values: [UInt64?]

    /// Counters with no file present and no value.
    public init() {
        netstatPresent = false
        snmpPresent = false
        values = Array(repeating: nil, count: KernelTCPCounter.allCases.count)
    }

    /// Parses the text of `/proc/net/netstat`, `/proc/net/snmp` and `/proc/net/stat/synproxy`; nil text means the
    /// file is missing.
    ///
    /// Each of the first two files holds pairs of lines, `Prefix: Name Name …` then `Prefix: value value …`.
    /// Unknown tables and columns are ignored; a table whose value line is missing, or whose line lengths differ,
    /// gives no values.
    public init(netstat: String?, snmp: String?, synproxy: String? = nil) {
        self.init()
        netstatPresent = netstat != nil
        snmpPresent = snmp != nil
        self.synproxy = synproxy.map(KernelSynproxyCounters.init(text:))
        for file in KernelTCPCounterFile.allCases {
            guard let text = file == .netstat ? netstat : snmp else { continue }
            let counters = KernelTCPCounter.allCases.filter { $0.file == file }
            guard let table = Self.table(named: counters[0].table, in: text) else { continue }
            for counter in counters {
                values[counter.rawValue] = table[Substring(counter.kernelName)].flatMap { UInt64($0) }
            }
        }
    }

    /// The value of `counter`, nil when unknown.
    public subscript(counter: KernelTCPCounter) -> UInt64? {
        get { values[counter.rawValue] }
        set { values[counter.rawValue] = newValue }
    }

    /// Whether any counter has a value.
    public var isAvailable: Bool { values.contains { $0 != nil } }

    /// The columns of the first table `name` in `text`, by column name; nil without a complete, consistent table.
    static func table(named name: String, in text: String) -> [Substring: Substring]? {
        var names: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":"), line[..<colon] == name else { continue }
            let fields = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true)
            guard let header = names else {
                names = fields
                continue
            }
            guard header.count == fields.count else { return nil }
            return Dictionary(zip(header, fields), uniquingKeysWith: { first, _ in first })
        }
        return nil
    }
}

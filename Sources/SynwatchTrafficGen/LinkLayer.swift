/// The link-layer framing written around each IP packet, with its `LINKTYPE_` number.
public enum LinkLayer: String, Sendable, CaseIterable, Codable {
    /// Ethernet II (`LINKTYPE_ETHERNET`, 1), optionally with stacked VLAN tags.
    case ethernet
    /// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`, 113), as `tcpdump -i any` writes on older libpcap.
    case linuxCooked = "linux-sll"
    /// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, 276).
    case linuxCooked2 = "linux-sll2"
    /// Raw IPv4 or IPv6 without a link header (`LINKTYPE_RAW`, 101).
    case rawIP = "raw"
    /// BSD loopback (`LINKTYPE_NULL`, 0): a 4-byte address family in little-endian order.
    ///
    /// IPv4 is `AF_INET` = 2 everywhere. IPv6 has no portable value (24 on NetBSD/OpenBSD, 28 on FreeBSD,
    /// 30 on macOS); 30 is written, and readers such as libpcap accept all three.
    case bsdLoopback = "null"

    /// The number stored in the capture file's header.
    public var linkTypeNumber: UInt16 {
        switch self {
        case .ethernet: 1
        case .linuxCooked: 113
        case .linuxCooked2: 276
        case .rawIP: 101
        case .bsdLoopback: 0
        }
    }
}

/// One 802.1Q or 802.1ad tag of an Ethernet frame; a frame's tags are listed outermost first.
public struct VLANTag: Hashable, Sendable, CustomStringConvertible {
    /// The tag protocol identifier.
    public enum Kind: String, Sendable {
        /// 802.1Q customer tag, TPID 0x8100.
        case dot1Q = "802.1q"
        /// 802.1ad service tag (QinQ outer tag), TPID 0x88a8.
        case dot1ad = "802.1ad"

        var tpid: UInt16 { self == .dot1Q ? 0x8100 : 0x88A8 }
    }

    public var kind: Kind
    /// VLAN identifier, 0–4095.
    public var id: UInt16
    /// Priority code point, 0–7.
    public var priority: UInt8

    /// A tag of `kind` with VLAN `id` and `priority`.
    public init(_ kind: Kind = .dot1Q, id: UInt16, priority: UInt8 = 0) {
        precondition(id < 4096 && priority < 8, "VLAN id or priority out of range")
        self.kind = kind
        self.id = id
        self.priority = priority
    }

    /// Parses `ID`, `802.1q:ID` or `802.1ad:ID` (case-insensitive), with an optional `/PRIORITY` suffix.
    ///
    /// - Parameters:
    ///   - text: the tag, such as `100`, `802.1ad:200` or `802.1q:100/5`.
    public init?(_ text: String) {
        var rest = Substring(text.lowercased())
        var kind = Kind.dot1Q
        if let colon = rest.firstIndex(of: ":") {
            guard let parsed = Kind(rawValue: String(rest[..<colon])) else { return nil }
            kind = parsed
            rest = rest[rest.index(after: colon)...]
        }
        var priority: UInt8 = 0
        if let slash = rest.firstIndex(of: "/") {
            guard let value = UInt8(rest[rest.index(after: slash)...]), value < 8 else { return nil }
            priority = value
            rest = rest[..<slash]
        }
        guard let id = UInt16(rest), id < 4096 else { return nil }
        self.init(kind, id: id, priority: priority)
    }

    var tci: UInt16 { UInt16(priority) << 13 | id }

    public var description: String {
        "\(kind.rawValue):\(id)" + (priority == 0 ? "" : "/\(priority)")
    }
}

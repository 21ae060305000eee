/// The link-layer framing of captured frames, by its libpcap `DLT_`/`LINKTYPE_` number.
public enum LinkType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// BSD loopback (`DLT_NULL`): a 4-byte address family in the host order of the capturing machine.
    case bsdLoopback = 0
    /// Ethernet II, possibly with stacked 802.1Q / 802.1ad tags (`DLT_EN10MB`).
    case ethernet = 1
    /// PPP (`DLT_PPP`): optional `ff 03` address and control bytes, then a 1- or 2-byte protocol.
    case ppp = 9
    /// Raw IPv4 or IPv6, no link header (`DLT_RAW` as libpcap reports it on Linux).
    case raw = 12
    /// OpenBSD loopback (`DLT_LOOP`): a 4-byte address family in network order.
    case openBSDLoopback = 108
    /// Linux cooked capture v1 (`DLT_LINUX_SLL`), what `any` gives on older libpcap.
    case linuxCooked = 113
    /// Raw IP as stored in files (`LINKTYPE_RAW`).
    case rawIP = 101
    /// Raw IPv4 only (`LINKTYPE_IPV4`).
    case ipv4 = 228
    /// Raw IPv6 only (`LINKTYPE_IPV6`).
    case ipv6 = 229
    /// Linux netfilter log (`DLT_NFLOG`): a 4-byte header, then TLVs of which type 9 holds the IP packet.
    case nflog = 239
    /// Linux cooked capture v2 (`DLT_LINUX_SLL2`).
    case linuxCooked2 = 276

    public var description: String {
        switch self {
        case .bsdLoopback: "BSD loopback"
        case .ethernet: "Ethernet"
        case .ppp: "PPP"
        case .raw, .rawIP: "raw IP"
        case .openBSDLoopback: "OpenBSD loopback"
        case .linuxCooked: "Linux cooked v1"
        case .ipv4: "raw IPv4"
        case .ipv6: "raw IPv6"
        case .nflog: "NFLOG"
        case .linuxCooked2: "Linux cooked v2"
        }
    }
}

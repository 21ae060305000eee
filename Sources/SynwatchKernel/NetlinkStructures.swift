// The netlink and inet_diag structures of <linux/netlink.h>, <linux/sock_diag.h> and <linux/inet_diag.h>, laid out
// as the kernel lays them out (the tests check every size and offset). Multi-byte fields are in host order unless
// named as network order.

/// Netlink's constants used here.
enum Netlink {
    /// `NETLINK_SOCK_DIAG`, the protocol of the socket.
    static let sockDiagProtocol: Int32 = 4
    /// `SOCK_DIAG_BY_FAMILY`, the request and reply message type.
    static let sockDiagByFamily: UInt16 = 20
    /// `NLMSG_ERROR`.
    static let errorType: UInt16 = 2
    /// `NLMSG_DONE`.
    static let doneType: UInt16 = 3
    /// `NLM_F_REQUEST`.
    static let requestFlag: UInt16 = 0x1
    /// `NLM_F_DUMP_INTR`: the table changed during the dump, which may have missed or repeated entries.
    static let dumpInterruptedFlag: UInt16 = 0x10
    /// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
    static let dumpFlag: UInt16 = 0x300
    /// `TCP_SYN_RECV` in `idiag_state`.
    static let stateSynReceived: UInt8 = 3
    /// `TCP_LISTEN` in `idiag_state`.
    static let stateListen: UInt8 = 10

    /// `NLMSG_ALIGN`: messages start at multiples of 4 bytes.
    static func aligned(_ length: Int) -> Int { (length + 3) & ~3 }
}

/// `struct sockaddr_nl`: 12 bytes.
struct NetlinkSocketAddress {
    var family: UInt16
    var pad: UInt16 = 0
    /// `nl_pid`: 0 is the kernel.
    var portID: UInt32 = 0
    var groups: UInt32 = 0
}

/// `struct nlmsghdr`: 16 bytes.
struct NetlinkMessageHeader {
    /// `nlmsg_len`: the whole message, header included.
    var length: UInt32
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var portID: UInt32
}

/// `struct nlmsgerr`: 20 bytes, the payload of `NLMSG_ERROR`.
struct NetlinkErrorMessage {
    /// 0 for an acknowledgement, else `-errno`.
    var error: Int32
    /// The header of the request that failed.
    var request: NetlinkMessageHeader
}

/// `struct inet_diag_sockid`: 48 bytes.
struct InetDiagSocketID {
    /// `idiag_sport`, network order.
    var sourcePortNetworkOrder: UInt16 = 0
    /// `idiag_dport`, network order.
    var destinationPortNetworkOrder: UInt16 = 0
    /// `idiag_src`: 4 bytes for IPv4, 16 for IPv6, network order.
    var source: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    /// `idiag_dst`, likewise.
    var destination: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    /// `idiag_if`.
    var interface: UInt32 = 0
    /// `idiag_cookie`; all ones in a request means "any".
    var cookie: (UInt32, UInt32) = (0, 0)
}

/// `struct inet_diag_req_v2`: 56 bytes, the payload of a `SOCK_DIAG_BY_FAMILY` request.
struct InetDiagRequestV2 {
    /// `sdiag_family`: `AF_INET` or `AF_INET6`.
    var family: UInt8
    /// `sdiag_protocol`: `IPPROTO_TCP`.
    var `protocol`: UInt8
    /// `idiag_ext`: which attributes to add; none here.
    var extensions: UInt8 = 0
    var pad: UInt8 = 0
    /// `idiag_states`: a bit per TCP state, `1 << TCP_LISTEN` and so on.
    var states: UInt32
    var id = InetDiagSocketID()
}

/// `struct inet_diag_msg`: 72 bytes, the payload of each reply.
struct InetDiagMessage {
    var family: UInt8
    var state: UInt8
    var timer: UInt8
    var retransmits: UInt8
    var id: InetDiagSocketID
    var expires: UInt32
    /// `idiag_rqueue`: for a listener, the connections waiting for `accept(2)`.
    var receiveQueue: UInt32
    /// `idiag_wqueue`: for a listener, its backlog.
    var sendQueue: UInt32
    var uid: UInt32
    var inode: UInt32
}

/// A whole `SOCK_DIAG_BY_FAMILY` dump request: header and payload, 72 bytes.
struct SockDiagRequest {
    var header: NetlinkMessageHeader
    var request: InetDiagRequestV2
}

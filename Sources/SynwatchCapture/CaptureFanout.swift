@preconcurrency import Glibc
import Synchronization
import SynwatchSystem

/// The kernel's fanout group of one interface's captures (`PACKET_FANOUT` in hash mode): each capture that joins
/// receives its own share of the flows. The kernel hashes a packet's addresses and ports symmetrically, so both
/// directions of a connection reach the same capture, in the order they came.
///
/// The kernel picks the group's id when the first capture joins (`PACKET_FANOUT_FLAG_UNIQUEID`), so two daemons
/// never share a group. A capture reopened after its interface came back joins again; it starts a new group when
/// the kernel refuses the old one, which belongs to the interface that went away.
public final class CaptureFanout: Sendable {
    private let id = Mutex<UInt16?>(nil)

    public init() {}

    /// The group's id in the kernel, once a capture joined.
    public var groupID: UInt16? { id.withLock { $0 } }

    // <linux/if_packet.h>, which the Glibc module leaves out.
    private static let packetFanout: Int32 = 18  // PACKET_FANOUT
    private static let hashMode: UInt32 = 0  // PACKET_FANOUT_HASH
    private static let uniqueID: UInt32 = 0x2000  // PACKET_FANOUT_FLAG_UNIQUEID

    /// Joins the bound packet socket `descriptor` to the group, or makes it the group's first member.
    /// - Throws: `SystemCallError` naming `setsockopt(PACKET_FANOUT)`.
    func join(_ descriptor: Int32) throws(SystemCallError) {
        try id.withLock { (id) throws(SystemCallError) in
            if let known = id, (try? Self.setFanout(descriptor, UInt32(known) | Self.hashMode << 16)) != nil {
                return
            }
            // The first member, or the old group is refused (another device): the kernel picks a free id.
            try Self.setFanout(descriptor, (Self.hashMode | Self.uniqueID) << 16)
            var value: UInt32 = 0
            var length = socklen_t(MemoryLayout<UInt32>.size)
            _ = try SystemCall.checked("getsockopt", subject: "PACKET_FANOUT") {
                getsockopt(descriptor, SOL_PACKET, Self.packetFanout, &value, &length)
            }
            id = UInt16(truncatingIfNeeded: value)
        }
    }

    private static func setFanout(_ descriptor: Int32, _ value: UInt32) throws(SystemCallError) {
        var value = value
        _ = try SystemCall.checked("setsockopt", subject: "PACKET_FANOUT") {
            setsockopt(descriptor, SOL_PACKET, packetFanout, &value, socklen_t(MemoryLayout<UInt32>.size))
        }
    }
}

import Glibc
import Synchronization
import SynwatchSystem

/// Reads listeners and SYN_RECV sockets of a network namespace through `NETLINK_SOCK_DIAG`, as `ss` does.
///
/// The netlink socket is opened once, in the namespace given at creation (or the caller's own), and keeps that
/// namespace for its whole life; after a failed dump it is opened again on the next read. Reads are serialised.
public final class KernelListenQueueReader: Sendable {
    /// The namespace to open the socket in, nil for the caller's own.
    public let networkNamespacePath: String?
    private let state: Mutex<SocketState>

    private struct SocketState: ~Copyable {
        /// The netlink socket, -1 when it must be opened again.
        var descriptor: Int32
        var sequence: UInt32 = 0

        deinit {
            if descriptor >= 0 { close(descriptor) }
        }
    }

    /// How long one reply may take before the read fails, in seconds.
    static let receiveTimeout = 5
    /// The receive buffer: larger than any datagram the kernel sends for a dump read with it.
    static let bufferSize = 64 << 10

    /// Opens the netlink socket in the caller's network namespace, or in the one at `networkNamespacePath`
    /// (such as `/run/netns/NAME` or `/proc/PID/ns/net`).
    ///
    /// Entering another namespace needs `CAP_SYS_ADMIN`: a thread of its own enters it, opens the socket and ends,
    /// leaving the caller's threads where they were.
    ///
    /// - Throws: `SystemCallError` naming the failed call (`open`, `setns`, `socket`, `setsockopt`).
    public init(networkNamespacePath: String? = nil) throws(SystemCallError) {
        self.networkNamespacePath = networkNamespacePath
        let descriptor = try Self.openSocket(inNetworkNamespace: networkNamespacePath)
        state = Mutex(SocketState(descriptor: descriptor))
    }

    /// Dumps the TCP listeners and SYN_RECV sockets of IPv4 and IPv6.
    ///
    /// Memory stays bounded however many sockets there are: at most `trackedCapacity` listeners and services are
    /// kept, and the rest is counted in the totals only.
    ///
    /// - Parameters:
    ///   - limit: how many listeners and services to return, the largest first.
    ///   - trackedCapacity: how many listeners, and how many services with SYN_RECV sockets, to count one by one.
    /// - Throws: `SystemCallError`: `sendto` or `recvmsg` failing (`EAGAIN` after a 5-second silence), or the kernel
    ///   refusing the request (call `SOCK_DIAG_BY_FAMILY`), or a malformed reply (`EPROTO`, `EMSGSIZE`).
    /// - Complexity: O(n) in the sockets dumped, plus sorting the tracked entries.
    public func read(limit: Int = 16, trackedCapacity: Int = 4096) throws(SystemCallError) -> KernelListenQueues {
        var tally = ListenQueueTally(capacity: max(trackedCapacity, 0))
        try state.withLock { (state) throws(SystemCallError) in
            if state.descriptor < 0 {
                state.descriptor = try Self.openSocket(inNetworkNamespace: networkNamespacePath)
            }
            do throws(SystemCallError) {
                var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
                for family in [AF_INET, AF_INET6] {
                    state.sequence &+= 1
                    try Self.dump(
                        family: family,
                        sequence: state.sequence,
                        on: state.descriptor,
                        buffer: &buffer,
                        into: &tally
                    )
                }
            } catch {
                // The rest of a broken dump may still be queued, and the kernel refuses a new dump until it is
                // read: start again from a fresh socket.
                close(state.descriptor)
                state.descriptor = -1
                throw error
            }
        }
        return tally.result(limit: max(limit, 0))
    }

    /// Opens a `NETLINK_SOCK_DIAG` socket in this thread's namespace, with a receive timeout.
    ///
    /// Wraps `socket(2)` and `setsockopt(2)`.
    static func openSocket() throws(SystemCallError) -> Int32 {
        let descriptor = try SystemCall.checked("socket", subject: "NETLINK_SOCK_DIAG") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue | SOCK_CLOEXEC.rawValue), Netlink.sockDiagProtocol)
        }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        let status = setsockopt(
            descriptor,
            SOL_SOCKET,
            SO_RCVTIMEO,
            &timeout,
            socklen_t(MemoryLayout<timeval>.size)
        )
        if status != 0 {
            let error = SystemCallError(call: "setsockopt", subject: "SO_RCVTIMEO", errno: errno)
            close(descriptor)
            throw error
        }
        return descriptor
    }

    /// Opens the socket in the namespace at `path` from a thread of its own, or here when `path` is nil.
    static func openSocket(inNetworkNamespace path: String?) throws(SystemCallError) -> Int32 {
        guard let path else { return try openSocket() }
        let job = NamespaceJob(path: path)
        let context = Unmanaged.passRetained(job).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread,
            nil,
            { context in
                let job = Unmanaged<NamespaceJob>.fromOpaque(context!).takeRetainedValue()
                job.run()
                return nil
            },
            context
        )
        guard created == 0 else {
            Unmanaged<NamespaceJob>.fromOpaque(context).release()
            throw SystemCallError(call: "pthread_create", errno: created)
        }
        pthread_join(thread, nil)
        return try job.result.get()
    }

    /// Sends one dump request for `family` and counts its replies into `tally`.
    private static func dump(
        family: Int32,
        sequence: UInt32,
        on descriptor: Int32,
        buffer: inout [UInt8],
        into tally: inout ListenQueueTally
    ) throws(SystemCallError) {
        let states: UInt32 = 1 << UInt32(Netlink.stateListen) | 1 << UInt32(Netlink.stateSynReceived)
        var request = SockDiagRequest(
            header: NetlinkMessageHeader(
                length: UInt32(MemoryLayout<SockDiagRequest>.size),
                type: Netlink.sockDiagByFamily,
                flags: Netlink.requestFlag | Netlink.dumpFlag,
                sequence: sequence,
                portID: 0
            ),
            request: InetDiagRequestV2(family: UInt8(family), protocol: UInt8(IPPROTO_TCP), states: states)
        )
        var kernel = NetlinkSocketAddress(family: UInt16(AF_NETLINK))
        let familyName = family == AF_INET ? "AF_INET" : "AF_INET6"
        _ = try SystemCall.checked("sendto", subject: "NETLINK_SOCK_DIAG \(familyName)") {
            withUnsafeBytes(of: &request) { bytes in
                withUnsafePointer(to: &kernel) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            descriptor,
                            bytes.baseAddress,
                            bytes.count,
                            0,
                            $0,
                            socklen_t(MemoryLayout<NetlinkSocketAddress>.size)
                        )
                    }
                }
            }
        }
        while true {
            let (count, fromKernel) = try receive(on: descriptor, into: &buffer, familyName: familyName)
            guard fromKernel else { continue }
            let finished = buffer.withUnsafeBytes { bytes in
                Result { () throws(SystemCallError) in
                    try parse(
                        UnsafeRawBufferPointer(rebasing: bytes[..<count]),
                        sequence: sequence,
                        family: family,
                        familyName: familyName,
                        into: &tally
                    )
                }
            }
            if try finished.get() { return }
        }
    }

    /// Receives one datagram; its length, and whether the kernel sent it.
    ///
    /// Wraps `recvmsg(2)`, retrying on `EINTR` (a receive timeout is `EAGAIN`); a datagram larger than the buffer
    /// is an `EMSGSIZE` error.
    private static func receive(
        on descriptor: Int32,
        into buffer: inout [UInt8],
        familyName: String
    ) throws(SystemCallError) -> (count: Int, fromKernel: Bool) {
        var sender = NetlinkSocketAddress(family: 0, portID: UInt32.max)
        var flags: Int32 = 0
        let subject = "NETLINK_SOCK_DIAG \(familyName)"
        let count = try SystemCall.checked("recvmsg", subject: subject) {
            buffer.withUnsafeMutableBytes { bytes in
                var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
                return withUnsafeMutablePointer(to: &vector) { vector in
                    withUnsafeMutablePointer(to: &sender) { sender in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(sender)
                        message.msg_namelen = socklen_t(MemoryLayout<NetlinkSocketAddress>.size)
                        message.msg_iov = vector
                        message.msg_iovlen = 1
                        let count = recvmsg(descriptor, &message, 0)
                        flags = message.msg_flags
                        return count
                    }
                }
            }
        }
        if flags & Int32(MSG_TRUNC) != 0 {
            throw SystemCallError(call: "recvmsg", subject: subject, errno: EMSGSIZE)
        }
        return (count, sender.portID == 0)
    }

    /// Reads the messages of one datagram into `tally`; whether the dump is finished.
    static func parse(
        _ bytes: UnsafeRawBufferPointer,
        sequence: UInt32,
        family: Int32,
        familyName: String,
        into tally: inout ListenQueueTally
    ) throws(SystemCallError) -> Bool {
        let headerSize = MemoryLayout<NetlinkMessageHeader>.size
        let malformed = SystemCallError(call: "recvmsg", subject: "NETLINK_SOCK_DIAG \(familyName)", errno: EPROTO)
        var offset = 0
        while offset + headerSize <= bytes.count {
            let header = bytes.loadUnaligned(fromByteOffset: offset, as: NetlinkMessageHeader.self)
            let length = Int(header.length)
            guard length >= headerSize, offset + length <= bytes.count else { throw malformed }
            defer { offset += Netlink.aligned(length) }
            // Replies to an earlier, abandoned request are not ours.
            guard header.sequence == sequence else { continue }
            if header.flags & Netlink.dumpInterruptedFlag != 0 { tally.dumpInterrupted = true }
            let payload = offset + headerSize
            switch header.type {
            case Netlink.doneType:
                // Since Linux 4.x the payload of NLMSG_DONE carries the dump's error, if any.
                if length >= headerSize + 4 {
                    let error = bytes.loadUnaligned(fromByteOffset: payload, as: Int32.self)
                    if error < 0 {
                        throw SystemCallError(call: "SOCK_DIAG_BY_FAMILY", subject: familyName, errno: -error)
                    }
                }
                return true
            case Netlink.errorType:
                guard length >= headerSize + 4 else { throw malformed }
                let error = -bytes.loadUnaligned(fromByteOffset: payload, as: Int32.self)
                // A kernel without IPv6 has no IPv6 sockets to show.
                if error == 0 || (family == AF_INET6 && (error == ENOENT || error == EAFNOSUPPORT)) { return true }
                throw SystemCallError(call: "SOCK_DIAG_BY_FAMILY", subject: familyName, errno: error)
            case Netlink.sockDiagByFamily:
                guard length >= headerSize + MemoryLayout<InetDiagMessage>.size else { throw malformed }
                count(bytes.loadUnaligned(fromByteOffset: payload, as: InetDiagMessage.self), into: &tally)
            default:
                continue
            }
        }
        return false
    }

    /// Counts one socket: a listener, or a SYN_RECV socket for its local address and port.
    private static func count(_ message: InetDiagMessage, into tally: inout ListenQueueTally) {
        let source = message.id.source
        let addressBytes = withUnsafeBytes(of: source) { Array($0.prefix(message.family == AF_INET6 ? 16 : 4)) }
        guard let address = KernelIPAddress(bytes: addressBytes) else { return }
        let endpoint = KernelEndpoint(address: address, port: UInt16(bigEndian: message.id.sourcePortNetworkOrder))
        switch message.state {
        case Netlink.stateListen:
            tally.addListener(
                KernelListener(endpoint: endpoint, acceptQueue: message.receiveQueue, backlog: message.sendQueue)
            )
        case Netlink.stateSynReceived:
            tally.addSynReceived(at: endpoint)
        default:
            break
        }
    }
}

/// Opening the socket inside another network namespace, on a thread of its own that ends afterwards.
private final class NamespaceJob: @unchecked Sendable {
    // Written by the job's thread only, read by the caller after `pthread_join`.
    let path: String
    var result: Result<Int32, SystemCallError> = .failure(SystemCallError(call: "pthread_create", errno: ECHILD))

    /// `CLONE_NEWNET` from <sched.h>, which Glibc's module does not export.
    static let newNetworkNamespace: Int32 = 0x4000_0000

    init(path: String) {
        self.path = path
    }

    func run() {
        result = Result { () throws(SystemCallError) -> Int32 in
            let namespace = try SystemCall.checked("open", subject: path) { open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(namespace) }
            try Self.enter(namespace)
            return try KernelListenQueueReader.openSocket()
        }
    }

    /// Moves this thread into the network namespace `descriptor` refers to.
    ///
    /// Wraps `setns(2)`, looked up at run time: Glibc's module does not export it (it needs `_GNU_SOURCE`).
    private static func enter(_ descriptor: Int32) throws(SystemCallError) {
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "setns") else {
            throw SystemCallError(call: "dlsym", subject: "setns", errno: ENOSYS)
        }
        let setNamespace = unsafeBitCast(symbol, to: SetNamespace.self)
        if setNamespace(descriptor, newNetworkNamespace) != 0 {
            throw SystemCallError(call: "setns", subject: "CLONE_NEWNET", errno: errno)
        }
    }
}

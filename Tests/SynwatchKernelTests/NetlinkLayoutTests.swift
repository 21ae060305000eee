import Glibc
import SynwatchSystem
import Testing

@testable import SynwatchKernel

/// The Swift mirrors of the kernel's structures must have the kernel's sizes and offsets.
@Suite struct NetlinkLayoutTests {
    @Test func sizesAreTheKernels() {
        #expect(MemoryLayout<NetlinkSocketAddress>.size == 12)
        #expect(MemoryLayout<NetlinkMessageHeader>.size == 16)
        #expect(MemoryLayout<NetlinkErrorMessage>.size == 20)
        #expect(MemoryLayout<InetDiagSocketID>.size == 48)
        #expect(MemoryLayout<InetDiagRequestV2>.size == 56)
        #expect(MemoryLayout<InetDiagMessage>.size == 72)
        #expect(MemoryLayout<SockDiagRequest>.size == 16 + 56)
    }

    @Test func offsetsAreTheKernels() {
        #expect(MemoryLayout<NetlinkSocketAddress>.offset(of: \.portID) == 4)
        #expect(MemoryLayout<NetlinkMessageHeader>.offset(of: \.type) == 4)
        #expect(MemoryLayout<NetlinkMessageHeader>.offset(of: \.sequence) == 8)
        #expect(MemoryLayout<NetlinkMessageHeader>.offset(of: \.portID) == 12)
        #expect(MemoryLayout<NetlinkErrorMessage>.offset(of: \.request) == 4)
        #expect(MemoryLayout<InetDiagSocketID>.offset(of: \.source) == 4)
        #expect(MemoryLayout<InetDiagSocketID>.offset(of: \.destination) == 20)
        #expect(MemoryLayout<InetDiagSocketID>.offset(of: \.interface) == 36)
        #expect(MemoryLayout<InetDiagSocketID>.offset(of: \.cookie) == 40)
        #expect(MemoryLayout<InetDiagRequestV2>.offset(of: \.states) == 4)
        #expect(MemoryLayout<InetDiagRequestV2>.offset(of: \.id) == 8)
        #expect(MemoryLayout<InetDiagMessage>.offset(of: \.id) == 4)
        #expect(MemoryLayout<InetDiagMessage>.offset(of: \.expires) == 52)
        #expect(MemoryLayout<InetDiagMessage>.offset(of: \.receiveQueue) == 56)
        #expect(MemoryLayout<InetDiagMessage>.offset(of: \.sendQueue) == 60)
        #expect(MemoryLayout<InetDiagMessage>.offset(of: \.inode) == 68)
        #expect(MemoryLayout<SockDiagRequest>.offset(of: \.request) == 16)
    }
}

/// Replies built byte by byte as the kernel sends them, read by the dump parser.
@Suite struct SockDiagReplyTests {
    private static let sequence: UInt32 = 7

    /// One netlink message: header, then `payload`, padded to 4 bytes.
    private func message(type: UInt16, flags: UInt16 = 2, sequence: UInt32 = sequence, _ payload: [UInt8]) -> [UInt8] {
        var header = NetlinkMessageHeader(
            length: UInt32(16 + payload.count),
            type: type,
            flags: flags,
            sequence: sequence,
            portID: 4321
        )
        var bytes = withUnsafeBytes(of: &header) { Array($0) } + payload
        bytes += [UInt8](repeating: 0, count: Netlink.aligned(bytes.count) - bytes.count)
        return bytes
    }

    /// An `inet_diag_msg` for a socket on `address`:`port` in `state`.
    private func socket(
        _ address: String,
        _ port: UInt16,
        state: UInt8,
        rqueue: UInt32 = 0,
        wqueue: UInt32 = 0
    )
        -> [UInt8]
    {
        let ip = KernelIPAddress(address)!
        var id = InetDiagSocketID(sourcePortNetworkOrder: port.bigEndian, destinationPortNetworkOrder: 0x3412)
        withUnsafeMutableBytes(of: &id.source) { $0.copyBytes(from: ip.bytes) }
        var diag = InetDiagMessage(
            family: UInt8(ip.isIPv6 ? AF_INET6 : AF_INET),
            state: state,
            timer: 0,
            retransmits: 0,
            id: id,
            expires: 0,
            receiveQueue: rqueue,
            sendQueue: wqueue,
            uid: 0,
            inode: 99
        )
        return message(type: Netlink.sockDiagByFamily, withUnsafeBytes(of: &diag) { Array($0) })
    }

    private func errorMessage(_ code: Int32) -> [UInt8] {
        withUnsafeBytes(of: code) { Array($0) } + [UInt8](repeating: 0, count: 16)
    }

    private func parse(_ bytes: [UInt8], family: Int32 = AF_INET, into tally: inout ListenQueueTally) throws -> Bool {
        try bytes.withUnsafeBytes {
            try KernelListenQueueReader.parse(
                $0,
                sequence: Self.sequence,
                family: family,
                familyName: "AF_INET",
                into: &tally
            )
        }
    }

    @Test func countsListenersAndSynReceivedAcrossDatagramsUntilDone() throws {
        var tally = ListenQueueTally(capacity: 10)
        let first =
            socket("198.18.0.1", 80, state: Netlink.stateListen, rqueue: 5, wqueue: 4)
            + socket("198.18.0.1", 80, state: Netlink.stateSynReceived)
            // A reply to an older request is skipped.
            + message(type: Netlink.sockDiagByFamily, sequence: 6, [UInt8](repeating: 0, count: 72))
        #expect(try parse(first, into: &tally) == false)
        let second =
            socket("198.18.0.1", 80, state: Netlink.stateSynReceived)
            + socket("2001:db8::5", 443, state: Netlink.stateSynReceived)
            // An established socket (a state not asked for) is ignored.
            + socket("198.18.0.1", 80, state: 1)
            + message(type: Netlink.doneType, [0, 0, 0, 0])
            + socket("198.18.0.9", 9, state: Netlink.stateListen)
        #expect(try parse(second, into: &tally) == true)

        let result = tally.result(limit: 10)
        let web = KernelEndpoint(address: KernelIPAddress("198.18.0.1")!, port: 80)
        #expect(result.listeners == [KernelListener(endpoint: web, acceptQueue: 5, backlog: 4)])
        #expect(result.listeners.first?.isAcceptQueueFull == true)
        #expect(
            result.synReceived == [
                // Its listener's backlog; none listens on 443.
                KernelSynReceived(endpoint: web, count: 2, backlog: 4),
                KernelSynReceived(
                    endpoint: KernelEndpoint(address: KernelIPAddress("2001:db8::5")!, port: 443),
                    count: 1
                ),
            ]
        )
        #expect(result.synReceivedTotal == 3)
        #expect(result.synReceivedCount(for: web) == 2)
        #expect(!result.dumpInterrupted)
    }

    @Test func aServiceQueuesOnTheListenersOfItsAddressElseOnThoseOfEveryAddressOfItsFamily() {
        var tally = ListenQueueTally(capacity: 10)
        func endpoint(_ address: String, _ port: UInt16) -> KernelEndpoint {
            KernelEndpoint(address: KernelIPAddress(address)!, port: port)
        }
        // Two workers share 0.0.0.0:80 (SO_REUSEPORT); an IPv6-only listener shares its port.
        for (listener, backlog) in [
            (endpoint("0.0.0.0", 80), 511), (endpoint("0.0.0.0", 80), 511), (endpoint("::", 80), 128),
            (endpoint("198.18.0.2", 80), 16),
        ] {
            tally.addListener(KernelListener(endpoint: listener, acceptQueue: 0, backlog: UInt32(backlog)))
        }
        let services = [
            endpoint("198.18.0.1", 80), endpoint("198.18.0.2", 80), endpoint("2001:db8::1", 80),
            endpoint("::ffff:198.18.0.1", 80), endpoint("198.18.0.1", 81),
        ]
        // Many SYN_RECV sockets on the first, a full queue on the second.
        for (service, count) in zip(services, [40, 16, 3, 2, 1]) {
            for _ in 0..<count { tally.addSynReceived(at: service) }
        }
        let listed = tally.result(limit: 10).synReceived
        #expect(listed.map(\.backlog) == [16, 1022, 128, 128, nil])
        #expect(listed.map(\.endpoint) == [services[1], services[0], services[2], services[3], services[4]])
        #expect(listed.map(\.isSynQueueFull) == [true, false, false, false, false])
    }

    @Test func notesAnInterruptedDump() throws {
        var tally = ListenQueueTally(capacity: 10)
        let bytes = message(type: Netlink.doneType, flags: 2 | Netlink.dumpInterruptedFlag, [0, 0, 0, 0])
        #expect(try parse(bytes, into: &tally))
        #expect(tally.result(limit: 1).dumpInterrupted)
    }

    @Test func reportsTheKernelsErrors() throws {
        var tally = ListenQueueTally(capacity: 10)
        #expect(throws: SystemCallError(call: "SOCK_DIAG_BY_FAMILY", subject: "AF_INET", errno: EPERM)) {
            try parse(message(type: Netlink.errorType, errorMessage(-EPERM)), into: &tally)
        }
        #expect(throws: SystemCallError(call: "SOCK_DIAG_BY_FAMILY", subject: "AF_INET", errno: ENOMEM)) {
            try parse(message(type: Netlink.doneType, [0xF4, 0xFF, 0xFF, 0xFF]), into: &tally)
        }
        // A kernel without IPv6 has nothing to dump for it; for IPv4 the same answer is an error.
        #expect(try parse(message(type: Netlink.errorType, errorMessage(-ENOENT)), family: AF_INET6, into: &tally))
        #expect(throws: SystemCallError.self) {
            try parse(message(type: Netlink.errorType, errorMessage(-ENOENT)), into: &tally)
        }
    }

    @Test func rejectsMalformedMessages() throws {
        var tally = ListenQueueTally(capacity: 10)
        let malformed = SystemCallError(call: "recvmsg", subject: "NETLINK_SOCK_DIAG AF_INET", errno: EPROTO)
        var longer = message(type: Netlink.sockDiagByFamily, [1, 2, 3, 4])
        longer[0] = 200
        #expect(throws: malformed) { try parse(longer, into: &tally) }
        #expect(throws: malformed) { try parse(message(type: Netlink.sockDiagByFamily, [1, 2, 3, 4]), into: &tally) }
        var shorter = message(type: Netlink.doneType, [0, 0, 0, 0])
        shorter[0] = 8
        #expect(throws: malformed) { try parse(shorter, into: &tally) }
    }
}

@Suite struct ListenQueueTallyTests {
    private func endpoint(_ index: Int) -> KernelEndpoint {
        KernelEndpoint(address: KernelIPAddress("198.18.1.\(index)")!, port: 80)
    }

    @Test func keepsAFixedNumberOfServicesAndCountsTheRest() {
        var tally = ListenQueueTally(capacity: 3)
        // Services 1…6 get 1…6 SYN_RECV sockets, in an order that fills the table with the small ones first.
        for index in 1...6 {
            for _ in 0..<index { tally.addSynReceived(at: endpoint(index)) }
        }
        let result = tally.result(limit: 2)
        #expect(result.synReceivedTotal == 21)
        #expect(result.synReceivedServiceCount == 3)
        #expect(result.synReceivedUntracked == 4 + 5 + 6)
        #expect(result.synReceived.map(\.count) == [3, 2])
    }

    @Test func ordersListenersByAcceptQueueThenEndpoint() {
        var tally = ListenQueueTally(capacity: 3)
        tally.addListener(KernelListener(endpoint: endpoint(2), acceptQueue: 0, backlog: 128))
        tally.addListener(KernelListener(endpoint: endpoint(1), acceptQueue: 0, backlog: 128))
        tally.addListener(KernelListener(endpoint: endpoint(3), acceptQueue: 9, backlog: 128))
        tally.addListener(KernelListener(endpoint: endpoint(4), acceptQueue: 99, backlog: 128))
        let result = tally.result(limit: 10)
        #expect(result.listenerCount == 4)
        #expect(result.listeners.map(\.endpoint) == [endpoint(3), endpoint(1), endpoint(2)])
    }
}

@Suite struct KernelIPAddressTests {
    @Test func parsesAndFormatsBothFamilies() throws {
        let v4 = try #require(KernelIPAddress("198.18.77.1"))
        #expect(!v4.isIPv6)
        #expect(v4.bytes == [198, 18, 77, 1])
        #expect(v4.description == "198.18.77.1")
        let v6 = try #require(KernelIPAddress("2001:db8:77::1"))
        #expect(v6.isIPv6)
        #expect(v6.bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0x77] + [UInt8](repeating: 0, count: 9) + [1])
        #expect(v6.description == "2001:db8:77::1")
        #expect(KernelIPAddress(bytes: v6.bytes) == v6)
        #expect(KernelIPAddress("::")?.description == "::")
        #expect(KernelIPAddress("0.0.0.0")?.description == "0.0.0.0")
        #expect(KernelIPAddress("198.18.77") == nil)
        #expect(KernelIPAddress("example") == nil)
        #expect(KernelIPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func ordersIPv4BeforeIPv6() {
        let addresses = ["2001:db8::1", "198.18.0.2", "198.18.0.10", "::1"].map { KernelIPAddress($0)! }
        #expect(addresses.sorted().map(\.description) == ["198.18.0.2", "198.18.0.10", "::1", "2001:db8::1"])
    }

    @Test func writesEndpointsAsOperatorsDo() {
        #expect(KernelEndpoint(address: KernelIPAddress("198.18.0.1")!, port: 80).description == "198.18.0.1:80")
        #expect(KernelEndpoint(address: KernelIPAddress("2001:db8::1")!, port: 443).description == "[2001:db8::1]:443")
    }
}

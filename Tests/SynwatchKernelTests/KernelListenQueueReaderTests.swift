import Foundation
import Glibc
import SynwatchKernel
import SynwatchSystem
import SynwatchTestSupport
import Testing

/// The listen-queue reader against real sockets of the test's own on loopback, in this namespace.
@Suite struct KernelListenQueueReaderTests {
    /// A TCP socket bound to 127.0.0.1 on a port the kernel picks, listening with `backlog`.
    private func listen(backlog: Int32) throws -> (descriptor: Int32, port: UInt16) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && Glibc.listen(descriptor, backlog) == 0
                    && getsockname(descriptor, $0, &length) == 0
            }
        }
        try #require(bound)
        return (descriptor, UInt16(bigEndian: address.sin_port))
    }

    /// A blocking connection to 127.0.0.1:`port`, which the kernel completes without `accept(2)`.
    private func connect(to port: UInt16) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        try #require(connected)
        return descriptor
    }

    @Test func showsAListenersAcceptQueueAndBacklogAsSsDoes() throws {
        let (listener, port) = try listen(backlog: 8)
        defer { close(listener) }
        let clients = try (0..<3).map { _ in try connect(to: port) }
        defer { clients.forEach { close($0) } }

        let endpoint = KernelEndpoint(address: KernelIPAddress("127.0.0.1")!, port: port)
        let queues = try KernelListenQueueReader().read(limit: 100_000)
        let found = try #require(queues.listeners.first { $0.endpoint == endpoint })
        #expect(found.acceptQueue == 3)
        #expect(found.backlog == 8)
        #expect(!found.isAcceptQueueFull)
        #expect(queues.listenerCount >= 1)

        let ss = try ChildProcess.run(["ss", "-Hltn", "sport", "= :\(port)"], mergingErrors: true)
        let columns = ss.output.split(whereSeparator: \.isWhitespace)
        #expect(columns.count >= 4 && columns[1] == "3" && columns[2] == "8" && columns[3] == "\(endpoint)")
    }

    @Test func readsAgainAndAgainOnOneSocket() throws {
        let (listener, _) = try listen(backlog: 8)
        defer { close(listener) }
        let reader = try KernelListenQueueReader()
        var counts: [Int] = []
        for _ in 0..<3 {
            let queues = try reader.read(limit: 0)
            // Nothing listed with a limit of 0, yet every listener counted: our own among them, each time.
            #expect(queues.listeners.isEmpty && queues.synReceived.isEmpty)
            counts.append(queues.listenerCount)
        }
        #expect(counts.allSatisfy { $0 >= 1 }, "\(counts)")
        #expect(reader.networkNamespacePath == nil)
    }

    @Test func failuresToEnterANamespaceNameTheCall() {
        #expect(throws: SystemCallError(call: "open", subject: "/nonexistent-netns", errno: ENOENT)) {
            try KernelListenQueueReader(networkNamespacePath: "/nonexistent-netns")
        }
        // A mount namespace is not a network namespace.
        #expect(throws: SystemCallError(call: "setns", subject: "CLONE_NEWNET", errno: EINVAL)) {
            try KernelListenQueueReader(networkNamespacePath: "/proc/self/ns/mnt")
        }
    }
}

import Foundation
import Glibc
import SynwatchKernel
import SynwatchTestSupport
import Testing

/// Two network namespaces of the test's own joined by a veth pair: `server` (198.18.77.1, 2001:db8:77::1) with
/// SYN cookies on, and `client` (198.18.77.2), which sends real connections and spoofed SYNs from 198.19.0.0/16.
///
/// The server routes 198.19.0.0/16 back through the client, which drops those SYN-ACKs (they are not for it and
/// it does not forward): the spoofed handshakes never complete. Names are `swk`, 6 random hex digits and `s` or
/// `c`; the lab deletes both namespaces (and so the pair) when released.
final class KernelFloodLab {
    static let isAvailable =
        NetworkNamespace.isAvailable && (try? ChildProcess.run(["python3", "--version"]).status) == 0
        && (try? ChildProcess.run(["ss", "--version"]).status) == 0

    static let unavailableReason: Comment = "needs root, ip netns, ss and python3"

    static let serverAddress = "198.18.77.1"
    static let serverIPv6Address = "2001:db8:77::1"
    static let clientAddress = "198.18.77.2"
    static let port: UInt16 = 8080

    let serverNamespace: NetworkNamespace
    let clientNamespace: NetworkNamespace
    var server: String { serverNamespace.name }
    var client: String { clientNamespace.name }
    private var processes: [(process: Process, input: Pipe)] = []

    init() throws {
        let name = NetworkNamespace.freshName("swk")
        serverNamespace = try NetworkNamespace(name + "s")
        clientNamespace = try NetworkNamespace(name + "c")
        for command in [
            ["ip", "link", "add", server, "netns", server, "type", "veth", "peer", "name", client, "netns", client],
            ["ip", "-n", server, "address", "add", Self.serverAddress + "/24", "dev", server],
            ["ip", "-n", server, "address", "add", Self.serverIPv6Address + "/64", "dev", server, "nodad"],
            ["ip", "-n", client, "address", "add", Self.clientAddress + "/24", "dev", client],
            ["ip", "-n", server, "link", "set", server, "up"],
            ["ip", "-n", client, "link", "set", client, "up"],
            ["ip", "-n", server, "route", "add", "198.19.0.0/16", "via", Self.clientAddress],
            ["ip", "netns", "exec", server, "sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=1"],
        ] {
            try ChildProcess.check(command)
        }
    }

    /// Ends the lab's processes (closing their standard input ends them; the signal is for one that hangs); the
    /// namespaces go with their properties.
    deinit {
        for (process, input) in processes {
            try? input.fileHandleForWriting.close()
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
    }

    /// Starts `python3 -c script arguments…` in `namespace`, bounded to 60 seconds, and returns the first line it
    /// prints; the script runs until its standard input closes.
    func startPython(in namespace: String, _ script: String, _ arguments: [String]) throws -> String {
        let input = Pipe()
        let output = Pipe()
        let process = try ChildProcess.start(
            ["timeout", "60", "ip", "netns", "exec", namespace, "python3", "-c", script] + arguments,
            input: .pipe(input),
            output: .pipe(output)
        )
        processes.append((process, input))
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty {
                throw LabError(command: "python3 in \(namespace)", output: "ended before its first line")
            }
            line.append(data)
        }
        return String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends `count` spoofed SYNs to the server's port from the client namespace, and waits for the sender's end.
    func flood(count: Int) throws {
        let output = try ChildProcess.check([
            "timeout", "30", "ip", "netns", "exec", client, "python3", "-c", Self.floodScript,
            Self.serverAddress, String(Self.port), String(count),
        ])
        guard output.trimmingCharacters(in: .whitespacesAndNewlines) == String(count) else {
            throw LabError(command: "flood from \(client)", output: output)
        }
    }

    /// The lines `ss` prints in the server namespace for `arguments`, split into columns.
    func ss(_ arguments: [String]) throws -> [[Substring]] {
        let output = try serverNamespace.check(["ss", "-H"] + arguments)
        return output.split(separator: "\n").map { $0.split(whereSeparator: \.isWhitespace) }
    }

    /// Listens on both server addresses (IPv4 with backlog 4, IPv6 with 8), never accepts, prints its pid.
    static let listenerScript = """
        import os, socket, sys
        port = int(sys.argv[3])
        v4 = socket.socket(socket.AF_INET)
        v4.bind((sys.argv[1], port))
        v4.listen(4)
        v6 = socket.socket(socket.AF_INET6)
        v6.bind((sys.argv[2], port))
        v6.listen(8)
        print(os.getpid(), flush=True)
        sys.stdin.read()
        """

    /// Opens real connections, prints how many, and holds them.
    static let clientsScript = """
        import socket, sys
        connections = [socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
                       for _ in range(int(sys.argv[3]))]
        print(len(connections), flush=True)
        sys.stdin.read()
        """

    /// Sends SYNs from random 198.19.0.0/16 sources and ports through a raw socket, bounded in count and to 10
    /// seconds, paced so the receiving queue of the veth does not overflow; prints how many it sent.
    static let floodScript = """
        import random, socket, struct, sys, time
        target, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        def checksum(data):
            total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            return ~total & 0xFFFF
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        destination = socket.inet_aton(target)
        deadline = time.monotonic() + 10
        sent = 0
        while sent < count and time.monotonic() < deadline:
            source = bytes([198, 19, random.randrange(256), random.randrange(1, 255)])
            tcp = struct.pack("!HHIIBBHHH", random.randrange(1024, 65536), port, random.randrange(1 << 32), 0,
                              5 << 4, 0x02, 64240, 0, 0)
            pseudo = source + destination + struct.pack("!BBH", 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, sent & 0xFFFF, 0, 64, 6, 0, source, destination)
            raw.sendto(ip + tcp, (target, 0))
            sent += 1
            if sent % 50 == 0:
                time.sleep(0.002)
        print(sent, flush=True)
        """
}

/// A real SYN flood against a listener with a small backlog and SYN cookies on, read through the module as the
/// daemon would: the namespace's counters through `/proc/PID/net`, its sockets through sock_diag.
@Suite(.serialized, .enabled(if: KernelFloodLab.isAvailable, KernelFloodLab.unavailableReason))
struct KernelFloodLabTests {
    /// Reads samples until `done` holds for the change since `start`, for at most 5 seconds: the kernel handles the
    /// veth's packets a little after the sender returns.
    private func sample(
        _ reader: KernelTCPCounterReader,
        since start: KernelTCPSample,
        until done: (KernelTCPRates) -> Bool
    ) throws -> KernelTCPRates {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            try Task.checkCancellation()
            usleep(50_000)
            let rates = try #require(KernelTCPRates(from: start, to: try reader.sample()))
            if done(rates) || ContinuousClock.now > deadline { return rates }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aFloodRaisesSynCookiesThenListenOverflowsAndTheQueuesAgreeWithSs() throws {
        let lab = try KernelFloodLab()
        let pid = try #require(
            Int32(
                try lab.startPython(
                    in: lab.server,
                    KernelFloodLab.listenerScript,
                    [KernelFloodLab.serverAddress, KernelFloodLab.serverIPv6Address, String(KernelFloodLab.port)]
                )
            )
        )
        // The listener lives in the lab's server namespace, so /proc/PID/net is that namespace's.
        var listenerNamespace = stat()
        var labNamespace = stat()
        #expect(stat("/proc/\(pid)/ns/net", &listenerNamespace) == 0)
        #expect(stat("/run/netns/\(lab.server)", &labNamespace) == 0)
        #expect(listenerNamespace.st_ino == labNamespace.st_ino)

        let counters = KernelTCPCounterReader.process(pid)
        let queues = try KernelListenQueueReader(networkNamespacePath: "/run/netns/\(lab.server)")
        let service = KernelEndpoint(address: KernelIPAddress(KernelFloodLab.serverAddress)!, port: KernelFloodLab.port)
        let serviceV6 = KernelEndpoint(
            address: KernelIPAddress(KernelFloodLab.serverIPv6Address)!,
            port: KernelFloodLab.port
        )

        // 1. Spoofed SYNs fill the SYN queue at once; the kernel answers the rest with cookies.
        let start = try counters.sample()
        #expect(start.counters.netstatPresent && start.counters.snmpPresent)
        try lab.flood(count: 2000)
        let flood = try sample(counters, since: start) { ($0.increase(.syncookiesSent) ?? 0) >= 1900 }
        #expect((flood.increase(.syncookiesSent) ?? 0) >= 1000)
        #expect((flood.increase(.reqQFullDoCookies) ?? 0) >= 1000)
        #expect(flood.increase(.reqQFullDrop) == 0)
        #expect(flood.increase(.listenOverflows) == 0)
        #expect((flood.perSecond(.syncookiesSent) ?? 0) > 0)

        let flooded = try queues.read()
        let synReceivedBySs = try lab.ss(["-tan", "state", "syn-recv"])
        #expect(flooded.synReceivedTotal == synReceivedBySs.count)
        let serviceSynReceived = flooded.synReceivedCount(for: service)
        #expect(serviceSynReceived >= 1)
        #expect(serviceSynReceived == synReceivedBySs.filter { $0.count >= 3 && $0[2] == "\(service)" }.count)
        #expect(flooded.synReceived.first?.endpoint == service)
        #expect(flooded.synReceived.first?.backlog == 4, "its listener's")
        #expect(flooded.synReceivedUntracked == 0)
        #expect(flooded.listenerCount == 2)
        #expect(flooded.listeners.contains(KernelListener(endpoint: service, acceptQueue: 0, backlog: 4)))
        #expect(flooded.listeners.contains(KernelListener(endpoint: serviceV6, acceptQueue: 0, backlog: 8)))

        // 2. Real clients complete through cookies and fill the accept queue, which nobody empties.
        #expect(
            try lab.startPython(
                in: lab.client,
                KernelFloodLab.clientsScript,
                [KernelFloodLab.serverAddress, String(KernelFloodLab.port), "5"]
            ) == "5"
        )
        let deadline = ContinuousClock.now + .seconds(5)
        var full = try queues.read()
        while full.listeners.first?.acceptQueue != 5 && ContinuousClock.now < deadline {
            usleep(50_000)
            full = try queues.read()
        }
        let listener = try #require(full.listeners.first)
        #expect(listener == KernelListener(endpoint: service, acceptQueue: 5, backlog: 4))
        #expect(listener.isAcceptQueueFull)
        let listenersBySs = try lab.ss(["-tln"])
        #expect(listenersBySs.contains { $0.count >= 4 && $0[1] == "5" && $0[2] == "4" && $0[3] == "\(service)" })
        #expect(listenersBySs.contains { $0.count >= 4 && $0[1] == "0" && $0[2] == "8" && $0[3] == "\(serviceV6)" })

        // 3. With the accept queue full, every further SYN overflows it and is dropped.
        let beforeOverflow = try counters.sample()
        try lab.flood(count: 500)
        let overflow = try sample(counters, since: beforeOverflow) { ($0.increase(.listenOverflows) ?? 0) >= 490 }
        #expect((overflow.increase(.listenOverflows) ?? 0) >= 250)
        #expect((overflow.increase(.listenDrops) ?? 0) >= 250)
        let total = try #require(KernelTCPRates(from: start, to: try counters.sample()))
        #expect((total.increase(.syncookiesRecv) ?? 0) >= 1)
        #expect((total.increase(.passiveOpens) ?? 0) >= 1)
    }
}

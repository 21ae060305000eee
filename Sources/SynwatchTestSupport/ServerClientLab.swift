import Foundation
import Glibc

/// Two namespaces of the test's own joined by a veth pair: a server at 198.18.0.10 and 2001:db8::10, clients at
/// 198.18.0.20 and 2001:db8::20, with no default route, so nothing leaves them. Deleted when released.
public final class ServerClientLab {
    public static let serverAddress = "198.18.0.10"
    public static let clientAddress = "198.18.0.20"
    public static let serverAddress6 = "2001:db8::10"
    public static let clientAddress6 = "2001:db8::20"

    public let serverNamespace: NetworkNamespace
    public let clientNamespace: NetworkNamespace
    /// The server's namespace's name.
    public var server: String { serverNamespace.name }
    /// The client's namespace's name.
    public var client: String { clientNamespace.name }
    public let serverPort: String
    public let clientPort: String
    private var processes: [Process] = []

    public init() throws {
        let name = NetworkNamespace.freshName()
        serverNamespace = try NetworkNamespace(name + "s")
        clientNamespace = try NetworkNamespace(name + "c")
        serverPort = name + "s0"
        clientPort = name + "c0"
        try ChildProcess.check(
            [
                "ip", "link", "add", serverPort, "netns", name + "s", "type", "veth", "peer", "name", clientPort,
                "netns", name + "c",
            ]
        )
        for (namespace, port, address, address6) in [
            (server, serverPort, Self.serverAddress, Self.serverAddress6),
            (client, clientPort, Self.clientAddress, Self.clientAddress6),
        ] {
            try ChildProcess.check(["ip", "-n", namespace, "addr", "add", "\(address)/24", "dev", port])
            // No duplicate address detection: usable at once.
            try ChildProcess.check(["ip", "-n", namespace, "addr", "add", "\(address6)/64", "dev", port, "nodad"])
            try ChildProcess.check(["ip", "-n", namespace, "link", "set", port, "up"])
            try ChildProcess.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
        }
        // Spoofed sources have no route back: let them in, as an Internet-facing server does.
        for key in ["all", "default", serverPort] {
            try serverNamespace.check(["sysctl", "-q", "-w", "net.ipv4.conf.\(key).rp_filter=0"])
        }
    }

    /// Stops what the lab started; the namespaces go with their properties.
    ///
    /// SIGTERM first, which `timeout` passes on to its command: a SIGKILL alone (or one right after a test's own
    /// `terminate()`, before `timeout` passed that on) orphans the command, which then runs out its own time limit
    /// while the child still counts as running, and `waitUntilExit()` waits that long (49 s for a listener).
    deinit {
        let running = processes.filter(\.isRunning)
        for process in running { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(2)
        for process in running {
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// The server port's MAC address, where replayed frames must go to reach the server's TCP stack.
    public func serverMAC() throws -> String {
        let output = try ChildProcess.run(["ip", "-n", server, "-o", "link", "show", serverPort]).output
        guard let range = output.range(of: "link/ether ") else {
            throw LabError(command: "ip link show", output: output)
        }
        return String(output[range.upperBound...].prefix(17))
    }

    /// A real web server on port 80 of the server's address (python3's `http.server`); killed with the lab at the latest.
    public func startWebServer() throws -> Process {
        try start(in: server, ["/usr/bin/python3", "-m", "http.server", "80", "--bind", Self.serverAddress])
    }

    /// Starts `arguments` inside `namespace` (`env` and `ip netns exec` exec into it: the process is the command
    /// itself, for signals and journal `_PID`s); killed with the lab at the latest.
    public func start(
        in namespace: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        log: String? = nil
    ) throws -> Process {
        let process = try ChildProcess.start(
            ["ip", "netns", "exec", namespace] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            errors: log.map { .file($0) } ?? .discard
        )
        processes.append(process)
        return process
    }
}

extension ServerClientLab {
    /// Where the crowd's addresses come from: a /20 of 198.18.0.0/15 and a /112 of 2001:db8::/32 that nothing else
    /// in the lab uses.
    public static let crowdPrefix = "198.18.16.0/20"
    public static let crowdPrefix6 = "2001:db8:c::/112"

    /// Gives the client's namespace `count` more addresses (198.18.16.1 on, or 2001:db8:c::1 on, at most 4094), each
    /// a host of its own for a crowd, and routes them from the server through the client. Returns them in order.
    public func addCrowdAddresses(_ count: Int, ipv6: Bool = false) throws -> [String] {
        precondition((1...4094).contains(count), "a crowd's addresses fit in \(Self.crowdPrefix)")
        let addresses = (1...count).map {
            ipv6 ? "2001:db8:c::\(String($0, radix: 16))" : "198.18.\(16 + $0 / 256).\($0 % 256)"
        }
        // One `ip -batch` instead of a process per address.
        let batch = NSTemporaryDirectory() + "\(client)-addresses"
        try addresses.map { "address add \($0)/\(ipv6 ? 128 : 32) dev lo\n" }.joined()
            .write(toFile: batch, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: batch) }
        try ChildProcess.check(["ip", "-n", client, "-batch", batch])
        try routeToClient(ipv6 ? Self.crowdPrefix6 : Self.crowdPrefix)
        return addresses
    }

    /// Routes `prefix` (IPv4 or IPv6) from the server through the client. For spoofed sources, whose SYN-ACKs and
    /// cookies the client then drops (it neither owns nor forwards them): without a route, the server's kernel drops
    /// their SYNs before its SYN queue.
    public func routeToClient(_ prefix: String) throws {
        let gateway = prefix.contains(":") ? Self.clientAddress6 : Self.clientAddress
        try ChildProcess.check(["ip", "-n", server, "route", "add", prefix, "via", gateway])
    }

    /// Loads nftables `rules` (a whole `nft -f` file) inside `namespace`; they go with the namespace.
    public func loadRules(_ rules: String, in namespace: String) throws {
        let file = NSTemporaryDirectory() + "\(namespace)-\(UUID().uuidString).nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try ChildProcess.check(["ip", "netns", "exec", namespace, "nft", "-f", file])
    }

    /// Sets a sysctl inside `namespace`.
    public func sysctl(in namespace: String, _ key: String, _ value: String) throws {
        try ChildProcess.check(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "\(key)=\(value)"])
    }

    /// The kernel's `TcpExt` and `Tcp` counters in `namespace` (`TcpExt.TCPSynRetrans`, `TcpExt.ListenOverflows`,
    /// `Tcp.RetransSegs`…), from `/proc/net/netstat` and `/proc/net/snmp` as seen there.
    public func tcpCounters(in namespace: String) throws -> [String: Int] {
        var counters: [String: Int] = [:]
        for file in ["/proc/net/netstat", "/proc/net/snmp"] {
            let text = try ChildProcess.check(["ip", "netns", "exec", namespace, "cat", file])
            let lines = text.split(separator: "\n").map { $0.split(separator: " ") }
            // Lines come in pairs: names, then values, each starting with "Prefix:".
            for (names, values) in zip(lines, lines.dropFirst()) where names.first == values.first {
                guard let prefix = names.first, prefix == "TcpExt:" || prefix == "Tcp:" else { continue }
                for (name, value) in zip(names.dropFirst(), values.dropFirst()) {
                    counters["\(prefix.dropLast()).\(name)"] = Int(value)
                }
            }
        }
        return counters
    }
}

/// Random loss of a service's TCP segments after the capture point, both ways: nftables rules in the server's
/// namespace (at its veth's ingress, where a capture there has already seen the segment) and in the client's (at
/// its veth's ingress, after the server's veth has sent the segment). A capture on the server's port thus sees SYNs
/// that never reach the server, SYN-ACKs and ACKs that never reach their host, and every retransmission.
///
/// `tc netem` would do the same, but the kernels these tests run on may lack it (`CONFIG_NET_SCH_NETEM`); nftables'
/// `numgen random` is built in wherever nftables is. Removed with the lab's namespaces.
public struct LabLoss {
    /// The table's name, in both namespaces.
    public static let table = "synwatch_loss"

    public let lab: ServerClientLab
    public let percent: Int

    /// Whether losses can be simulated: `nft` is installed.
    public static var isAvailable: Bool { (try? ChildProcess.run(["nft", "--version"]).status) == 0 }

    /// Drops `percent` % of the TCP segments to and from `port` on the server, each way.
    public init(_ lab: ServerClientLab, percent: Int, port: UInt16) throws {
        precondition((1...99).contains(percent))
        self.lab = lab
        self.percent = percent
        for (namespace, device, match) in [
            (lab.server, lab.serverPort, "tcp dport \(port)"), (lab.client, lab.clientPort, "tcp sport \(port)"),
        ] {
            let rules = """
                table netdev \(Self.table) {
                    chain ingress {
                        type filter hook ingress device "\(device)" priority 0; policy accept;
                        \(match) numgen random mod 100 < \(percent) counter drop
                    }
                }
                """
            try lab.loadRules(rules, in: namespace)
        }
    }

    /// The segments dropped so far: toward the server, and toward the client.
    public func dropped() throws -> (toServer: Int, toClient: Int) {
        (
            try lab.counted(by: "netdev \(Self.table)", in: lab.server),
            try lab.counted(by: "netdev \(Self.table)", in: lab.client)
        )
    }
}

extension ServerClientLab {
    /// Makes the client's IPv4 SYNs to `port` reach the server as a Windows client's do: its Linux kernel
    /// retransmits an unanswered SYN after 1, 3, 7 and 15 s, Windows after 3 and 9 s (`InitialRto` 3,000 ms). A SYN
    /// whose connection sent one less than 2.8 s before is dropped as it leaves the client; the kernel, refused,
    /// tries again every half second, so the server sees the SYNs of 0, about 3, 7 and 11 s: the first
    /// retransmission it sees comes at 3 s, as from Windows.
    public func retransmitSynsLikeWindows(to port: UInt16) throws {
        try loadRules(
            """
            table \(Self.windowsTiming) {
                set recent {
                    type ipv4_addr . inet_service
                    flags dynamic, timeout
                    timeout 2800ms
                    size 65536
                }
                chain output {
                    type filter hook output priority 0; policy accept;
                    tcp dport \(port) tcp flags & (syn | ack) == syn ip saddr . tcp sport @recent counter drop
                    tcp dport \(port) tcp flags & (syn | ack) == syn add @recent { ip saddr . tcp sport }
                }
            }
            """,
            in: client
        )
    }

    /// The client's table of `retransmitSynsLikeWindows`.
    static let windowsTiming = "inet synwatch_windows_timing"

    /// The SYN retransmissions `retransmitSynsLikeWindows` kept from the server so far.
    public func synsHeldBackLikeWindows() throws -> Int { try counted(by: Self.windowsTiming, in: client) }

    /// The packets counted by the first counter of nftables table `table` ("family name") in `namespace`.
    func counted(by table: String, in namespace: String) throws -> Int {
        let text = try ChildProcess.check(
            ["ip", "netns", "exec", namespace, "nft", "list", "table"] + table.split(separator: " ").map(String.init)
        )
        guard let range = text.range(of: "packets ") else {
            throw LabError(command: "nft list table \(table) in \(namespace)", output: text)
        }
        return Int(text[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}

extension ServerClientLab {
    /// Replays `capture` (frames for `serverAddress`, from the traffic generator) from the client's namespace to
    /// the server's port at `pps` packets a second, `loops` times over, bounded to `timeLimit` seconds: `tcprewrite`
    /// first gives every frame the server port's MAC address, so the server's TCP stack receives them.
    /// - Returns: the running `tcpreplay`.
    public func startReplayToServer(
        _ capture: String,
        pps: Int,
        loops: Int = 1,
        timeLimit: Int = 30
    ) throws -> Process {
        let rewritten = capture + "-to-server.pcap"
        try rewriteForServer(capture, to: rewritten)
        return try start(
            in: client,
            [
                "timeout", String(timeLimit), "tcpreplay", "-q", "--pps", String(pps), "--loop", String(loops), "-i",
                clientPort, rewritten,
            ]
        )
    }

    /// Replays a real capture of traffic to 10.10.10.10 (`../shared/captures`) from the client's namespace to the
    /// server, at its own pace sped up `speedup` times, bounded to `timeLimit` seconds. Rewritten into the lab first
    /// (to `rewritten`): its IPv4 packets alone (a capture's ARP frames name addresses of elsewhere), every
    /// destination into 198.18.0.0/24, the last byte kept (10.10.10.10 becomes the server), every source into
    /// `spoofedPrefix` (a /16, the last two bytes kept), the server port's MAC address, checksums mended. Nothing
    /// is sent to an address outside the lab.
    /// - Returns: the running `tcpreplay`.
    public func startRealCaptureReplayToServer(
        _ capture: String,
        rewritten: String,
        spoofedPrefix: String,
        speedup: Double,
        timeLimit: Int = 60
    ) throws -> Process {
        precondition(Self.serverAddress == "198.18.0.10", "10.10.10.10 maps to the server")
        let ipv4 = rewritten + "-ipv4.pcap"
        try ChildProcess.check(["tcpdump", "-r", capture, "-w", ipv4, "ip"])
        try rewriteForServer(
            ipv4,
            to: rewritten,
            ["--srcipmap=0.0.0.0/0:\(spoofedPrefix)", "--dstipmap=0.0.0.0/0:198.18.0.0/24", "--fixcsum"]
        )
        return try start(
            in: client,
            [
                "timeout", String(timeLimit), "tcpreplay", "-q", "--multiplier", String(speedup), "-i", clientPort,
                rewritten,
            ]
        )
    }

    /// Writes `capture` to `rewritten` with every frame for the server port's MAC address, so the server's TCP stack
    /// receives them, and `options` of tcprewrite's own.
    private func rewriteForServer(_ capture: String, to rewritten: String, _ options: [String] = []) throws {
        try ChildProcess.check(
            ["tcprewrite", "--enet-dmac=\(try serverMAC())", "--infile=\(capture)", "--outfile=\(rewritten)"] + options
        )
    }
}

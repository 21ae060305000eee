import Foundation
import Glibc
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// The kernel's corroboration, for real: a spoofed flood replayed at a real listener with a tiny backlog and SYN
/// cookies on, `synwatchd` running in the listener's namespace, so that the kernel it reads is the victim's.
final class KernelEndToEndTests: XCTestCase {
    static let port: UInt16 = 8080

    /// `synwatch status` shows the kernel's SYN-cookie count rising beside synwatch's own half-open figures, and
    /// the `attack_start` entry in journald carries both, as does the event the response hook receives.
    func testSynCookiesRiseBesideTheHalfOpenFiguresInStatusAndAlert() throws {
        let workspace = try Workspace()
        // A response hook that keeps what it receives.
        let received = workspace.path("hook-received")
        let hook = workspace.path("hook.sh")
        try
            "#!/bin/sh\ncat >> \(received)\necho \"$SYNWATCH_EVENT $SYNWATCH_VICTIM $SYNWATCH_PORT\" >> \(received).env\n"
            .write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let configuration = workspace.path("synwatch.yaml")
        try "hooks:\n  command: [\(hook)]\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        // A listener with room for 4: its SYN queue fills at once and the kernel turns to cookies.
        let server = try NeverAcceptingServer(
            workspace,
            backlogs: [(Self.port, 4)],
            daemonArguments: ["--config", configuration]
        )
        let (socket, daemon) = (server.socket, server.daemon)
        let before = try Self.cookiesSent(in: try Self.status(socket))

        let replay = try server.replay(
            SpoofedBulk(packets: 12_000, sources: 12_000, rate: 3_000, victim: server.endpoint(Self.port)),
            packetsPerSecond: 3_000
        )
        defer { if replay.isRunning { replay.terminate() } }

        // Two seconds into the flood: the operator's view, kernel and capture side by side.
        sleep(2)
        let shown = try ChildProcess.run([Synwatch.executable.path, "status", "--socket", socket])
        XCTAssertEqual(shown.status, 0, shown.errors)
        print("synwatch status, two seconds into the flood:\n\(shown.output)")
        let kernelLine = try XCTUnwrap(
            shown.output.split(separator: "\n").first { $0.hasPrefix("kernel ") },
            shown.output
        )
        let sent = try XCTUnwrap(Self.count(before: " sent)", in: String(kernelLine)), String(kernelLine))
        XCTAssertGreaterThan(sent, before + 1_000, "the kernel's SYN cookies did not rise: \(kernelLine)")
        XCTAssertTrue(
            shown.output.contains("\(server.address):\(Self.port) random-source:")
                && shown.output.contains(" half-open/s"),
            shown.output
        )
        replay.waitUntilExit()
        let after = try Self.cookiesSent(in: try Self.status(socket))
        XCTAssertGreaterThan(after, sent, "the cookie count stopped rising")

        // The alert carries synwatch's figures and the kernel's.
        let starts = try TestJournald.entries(
            where: "_PID",
            is: String(daemon.processIdentifier),
            count: 1,
            timeout: 5
        ).filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "\(starts)")
        let start = try XCTUnwrap(starts.first)
        XCTAssertEqual(start["SYNWATCH_VICTIM"], server.address)
        XCTAssertEqual(start["SYNWATCH_PORT"], String(Self.port))
        XCTAssertGreaterThan(Double(start["SYNWATCH_HALF_OPEN_PER_S"] ?? "") ?? 0, 100, "\(start)")
        // The alert comes a fraction of a second into the flood: the kernel's figures are those of its
        // latest reading (at most 250 ms old), which may not show the cookies yet; the status above does.
        XCTAssertNotNil(Double(start["SYNWATCH_KERNEL_SYNCOOKIES_SENT_PER_S"] ?? ""), "\(start)")
        // The listener's request sockets, once read (once a second; absent before): no more than its
        // queue holds, the rest were cookies.
        if let synReceived = start["SYNWATCH_KERNEL_SYN_RECV"] {
            XCTAssertLessThanOrEqual(try XCTUnwrap(Int(synReceived), "\(start)"), 16, "\(start)")
        }
        XCTAssertEqual(start["SYNWATCH_KERNEL_CORROBORATED"], "false", "the capture lost nothing: \(start)")

        // The hook ran once for the start, with the event as JSON on stdin (kernel figures included) and its
        // main fields in the environment.
        try DaemonEndToEndTests.waitFor(timeout: 5) { FileManager.default.fileExists(atPath: received + ".env") }
        XCTAssertEqual(DaemonEndToEndTests.text(received + ".env"), "attack_start \(server.address) \(Self.port)\n")
        let event = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(DaemonEndToEndTests.text(received).utf8)) as? [String: Any]
        )
        XCTAssertEqual(event["event"] as? String, "attack_start")
        XCTAssertEqual(
            (event["kernel_syncookies_sent_per_s"] as? NSNumber)?.doubleValue,
            Double(start["SYNWATCH_KERNEL_SYNCOOKIES_SENT_PER_S"] ?? "")
        )

        try server.stopDaemon()
    }

    /// 40 spoofed SYN/s, below the 100/s threshold, at two listeners that never accept: one with room for 16, whose
    /// SYN queue fills within a second while the kernel turns to cookies, and one with room for 4,096, which holds
    /// the whole flood. synwatchd tells the first (its threshold falls to `baseline.min_half_open_per_s`, 20/s, once
    /// the kernel reads the queue full), never the second.
    func testSlowFloodThatFillsTheSynQueueIsTold() throws {
        let (small, large): (UInt16, UInt16) = (8080, 8081)
        let server = try NeverAcceptingServer(try Workspace(), backlogs: [(small, 16), (large, 4096)])

        // 12 s at 40 SYN/s each, every SYN from a new address.
        let replays = try [(1, small), (2, large)].map { seed, port in
            try server.replay(
                SpoofedBulk(
                    seed: UInt64(seed),
                    packets: 480,
                    sources: 480,
                    rate: 40,
                    victim: server.endpoint(port),
                    sourcePrefix: NetPrefix("198.19.\(seed * 64).0/18")
                ),
                packetsPerSecond: 40
            )
        }
        defer { for replay in replays where replay.isRunning { replay.terminate() } }
        let began = Date()
        var starts: [TestJournald.Fields] = []
        try DaemonEndToEndTests.waitFor(timeout: 10) {
            starts = try server.attackStarts()
            return !starts.isEmpty
        }
        let told = Date().timeIntervalSince(began)
        for replay in replays { replay.waitUntilExit() }
        print("slow flood told \(told) s in: \(starts)")
        let start = try XCTUnwrap(starts.first, DaemonEndToEndTests.text(server.log))
        XCTAssertEqual(start["SYNWATCH_VICTIM"], server.address)
        XCTAssertEqual(start["SYNWATCH_PORT"], String(small))
        XCTAssertLessThan(Double(start["SYNWATCH_HALF_OPEN_PER_S"] ?? "") ?? .infinity, 100, "\(start)")
        // The queue fills within half a second; the kernel's queues are read once a second.
        XCTAssertLessThan(told, 4, "\(start)")
        // The queue full: as many request sockets as the backlog, or one more admitted as it filled.
        XCTAssertGreaterThanOrEqual(Int(start["SYNWATCH_KERNEL_SYN_RECV"] ?? "") ?? 0, 16, "\(start)")
        // The listener with room never fills: its flood stays below the threshold, through the whole flood.
        let all = try server.attackStarts()
        XCTAssertEqual(all.map { $0["SYNWATCH_PORT"] }, [String(small)], "\(all)")
        try server.stopDaemon()
    }

    static func status(_ socket: String) throws -> [String: Any] {
        let body = try DaemonEndToEndTests.get(socket, "/v1/status")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    static func kernel(in status: [String: Any]) throws -> [String: Any] {
        try XCTUnwrap(status["kernel"] as? [String: Any])
    }

    static func cookiesSent(in status: [String: Any]) throws -> Int {
        let kernel = try Self.kernel(in: status)
        let counters = try XCTUnwrap(kernel["counters"] as? [String: Any])
        return try XCTUnwrap((counters["syncookies_sent"] as? NSNumber)?.intValue)
    }

    /// The number written just before `suffix`, digit groups and all ("(12,345 sent)" gives 12345).
    static func count(before suffix: String, in text: String) -> Int? {
        guard let range = text.range(of: suffix) else { return nil }
        let digits = text[..<range.lowerBound].reversed().prefix { $0.isNumber || $0 == "," }
        return Int(String(digits.reversed()).replacingOccurrences(of: ",", with: ""))
    }
}

/// The victim of the kernel tests: a server namespace with SYN cookies on and Python listeners that never accept,
/// synwatchd reading its kernel (ready, the kernel's figures in its status), and spoofed floods replayed from the
/// client's namespace.
final class NeverAcceptingServer {
    let address = ServerClientLab.serverAddress
    let lab: ServerClientLab
    let workspace: Workspace
    let socket: String
    let log: String
    let daemon: Process
    private let listener: Process

    /// Listens on each port with its backlog, then starts synwatchd with `daemonArguments` added.
    init(_ workspace: Workspace, backlogs: [(port: UInt16, backlog: Int)], daemonArguments: [String] = []) throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3")
        try TestJournald.require()
        lab = try ServerClientLab()
        self.workspace = workspace
        try ChildProcess.check(["ip", "netns", "exec", lab.server, "sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=1"])
        // Backlogs as asked up to 4,096 (the default since Linux 5.4; 128 before).
        try ChildProcess.check(["ip", "netns", "exec", lab.server, "sysctl", "-q", "-w", "net.core.somaxconn=4096"])
        // Cookies go back to the spoofed sources: route them to the client's namespace, which drops them (they are
        // not its addresses and it forwards nothing). Without a route the kernel drops the SYN before any cookie.
        try ChildProcess.check(
            ["ip", "-n", lab.server, "route", "add", "198.19.0.0/16", "via", ServerClientLab.clientAddress]
        )
        let listening = backlogs.map { "(\($0.port), \($0.backlog))" }.joined(separator: ", ")
        listener = try lab.start(
            in: lab.server,
            [
                "/usr/bin/python3", "-c",
                "import socket, time\nheld = []\nfor port, backlog in (\(listening),):\n"
                    + "    s = socket.socket(); s.bind(('\(address)', port)); s.listen(backlog); held.append(s)\n"
                    + "time.sleep(120)",
            ]
        )
        socket = workspace.path("synwatch.sock")
        log = workspace.path("synwatchd.log")
        let notify = try NotifyListener(path: workspace.path("notify.sock"))
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        daemon = try lab.start(
            in: lab.server,
            [DaemonEndToEndTests.daemon.path, "--interface", lab.serverPort, "--socket", socket, "--user", "root"]
                + daemonArguments,
            environment: ["NOTIFY_SOCKET": notify.path],
            log: log
        )
        XCTAssertNotNil(notify.wait(for: "READY=1", timeout: 15), "no READY=1: \(DaemonEndToEndTests.text(log))")
        // The first snapshot with the kernel's figures comes a moment after READY.
        try DaemonEndToEndTests.waitFor(timeout: 5) { [socket] in
            try KernelEndToEndTests.kernel(in: KernelEndToEndTests.status(socket))["available"] as? Bool == true
        }
    }

    deinit {
        if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
        listener.terminate()
    }

    func endpoint(_ port: UInt16) -> Endpoint { Endpoint(NetAddress(address)!, port) }

    /// Replays `flood`, addressed to the server's MAC, from the client's namespace; at most 30 s.
    func replay(_ flood: SpoofedBulk, packetsPerSecond: Int) throws -> Process {
        let path = workspace.path("flood-\(flood.seed).pcap")
        try flood.write(to: path)
        let rewritten = workspace.path("flood-\(flood.seed)-to-server.pcap")
        try ChildProcess.check([
            "tcprewrite", "--enet-dmac=\(try lab.serverMAC())", "--infile=\(path)", "--outfile=\(rewritten)",
        ])
        return try lab.start(
            in: lab.client,
            ["timeout", "30", "tcpreplay", "-q", "--pps", String(packetsPerSecond), "-i", lab.clientPort, rewritten]
        )
    }

    /// The `attack_start` entries this daemon has written to journald so far (earlier tests' daemons wrote others).
    func attackStarts() throws -> [TestJournald.Fields] {
        try TestJournald.entries(where: "_PID", is: String(daemon.processIdentifier), count: 0, timeout: 0)
            .filter { $0["SYNWATCH_EVENT"] == "attack_start" }
    }

    /// Stops synwatchd with SIGTERM, as systemd does: it exits 0.
    func stopDaemon() throws {
        kill(daemon.processIdentifier, SIGTERM)
        try DaemonEndToEndTests.waitFor(timeout: 10) { [daemon] in !daemon.isRunning }
        XCTAssertEqual(daemon.terminationStatus, 0, DaemonEndToEndTests.text(log))
    }
}

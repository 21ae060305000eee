import Foundation
import Glibc
import SynwatchEngine
import SynwatchTestSupport
import XCTest

/// The detector against real kernels: the built `synwatchd` captures on the server's veth in a lab of the test's
/// own, beside a real Linux listener and real clients. What is not a flood on us (SYNs dropped by a full queue and
/// retransmitted, a crowd through a lossy path) raises no attack; a spoofed flood, alone or inside a crowd, raises
/// exactly one, `random-source` from its first event, with every field in a real journald.
///
/// Every test prints the events the daemon wrote, so a failure shows what the detector made of the traffic.
final class DetectorEndToEndTests: XCTestCase {
    static let port: UInt16 = 8080
    /// Floods from one source that neither resets nor retransmits wait for it: until then they could be a client's.
    static let deadline = EngineConfiguration().handshakes.retransmissionDeadline.seconds
    /// The spoofed floods' sources: in 198.18.0.0/15 and 2001:db8::/32, apart from the lab's hosts and crowd.
    static let spoofedPrefix = "198.19.0.0/16"
    static let spoofedPrefix6 = "2001:db8:8000::/33"

    /// (a) One client opens 400 connections in one burst (0.4 s) to a listener with `listen(4)` that accepts at most
    /// 500 a second, without SYN cookies: the kernel drops many of the SYNs, the client's kernel retransmits them
    /// (1 s, 3 s…), and all complete in the end. That is a busy server, not a flood: no attack.
    ///
    /// (All 400 in the same millisecond would not do: their retransmissions would come back in the same
    /// millisecond too, and `listen(4)` lets only a handful through each round, for minutes.)
    func testSYNsDroppedByAFullQueueAndRetransmittedRaiseNoAttack() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        try lab.sysctl(in: lab.server, "net.ipv4.tcp_syncookies", "0")
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 4, acceptPause: 0.002)
        defer { listener.terminate() }
        let daemon = try LabDaemon(lab, workspace)
        let clientBefore = try lab.tcpCounters(in: lab.client)
        let serverBefore = try lab.tcpCounters(in: lab.server)

        let crowd = try LabCrowd(
            in: lab,
            port: Self.port,
            sources: [ServerClientLab.clientAddress],
            perSource: 400,
            rate: 1_000,
            // Through the retransmission at 15 s: on a loaded machine a few need it.
            wait: 24
        )
        let outcome = try crowd.outcome()
        let retransmitted = try Self.increase("TcpExt.TCPSynRetrans", lab.tcpCounters(in: lab.client), clientBefore)
        let server = try lab.tcpCounters(in: lab.server)
        let queueDrops = Self.increase("TcpExt.TCPReqQFullDrop", server, serverBefore)
        let overflows = Self.increase("TcpExt.ListenOverflows", server, serverBefore)
        print(
            "crowd of one: \(outcome); client SYN retransmissions \(retransmitted); server SYN-queue drops "
                + "\(queueDrops), listen overflows \(overflows)"
        )

        // The lab did what it meant to: SYNs really dropped and retransmitted, and every connection served.
        XCTAssertGreaterThan(retransmitted, 0, "no SYN was retransmitted: the test shows nothing")
        XCTAssertGreaterThan(queueDrops + overflows, 0, "the server's kernel dropped nothing")
        XCTAssertEqual(outcome.answered, outcome.attempted, "not every connection completed: \(outcome)")

        try daemon.assertNoAttack(
            "400 connections at once from one client to listen(4), SYNs dropped and retransmitted"
        )
        try daemon.stop()
    }

    /// (b) A flash crowd: 400 client addresses, 4 connections each, 300 a second for about 5 s, through 10 % random
    /// loss each way between the capture point and the hosts. synwatchd sees SYNs whose SYN-ACK or ACK was lost and
    /// the retransmissions; nearly all connections complete. No attack.
    func testFlashCrowdThroughALossyPathRaisesNoAttack() throws {
        try lossyFlashCrowd(perSource: 4, rate: 300, percent: 10, likeWindows: false)
    }

    /// (b'') Such a crowd as Windows clients, whose first SYN retransmission comes after 3 s
    /// (`retransmitSynsLikeWindows`), 3,200 connections at 600 a second through 25 % loss each way: the quarter of
    /// the attempts whose SYN is lost wait 3 s for its retransmission, 150 a second. No attack: the retransmission
    /// deadline (3.5 s) waits for them. (At 1.5 s, it raised one.)
    func testWindowsFlashCrowdThroughALossyPathRaisesNoAttack() throws {
        try lossyFlashCrowd(perSource: 8, rate: 600, percent: 25, likeWindows: true)
    }

    /// (b, full) The crowd of (b) into `listen(16)`: the handshakes whose SYN-ACK or ACK was lost wait a second or
    /// more in SYN_RECV, the SYN queue fills, and the kernel answers the rest with cookies. The service's threshold
    /// falls to 20 failing attempts a second while the kernel reads it full, but the crowd completes through the
    /// cookies. No attack.
    func testFlashCrowdThroughAFullSynQueueRaisesNoAttack() throws {
        try lossyFlashCrowd(perSource: 4, rate: 300, percent: 10, likeWindows: false, backlog: 16)
    }

    func lossyFlashCrowd(
        perSource: Int,
        rate: Double,
        percent: Int,
        likeWindows: Bool,
        backlog: Int = 4096
    ) throws {
        let lab = try Self.lab()
        try XCTSkipUnless(LabLoss.isAvailable, "needs nft (nftables) for the lab's losses")
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: backlog)
        defer { listener.terminate() }
        let sources = try lab.addCrowdAddresses(400)
        let loss = try LabLoss(lab, percent: percent, port: Self.port)
        if likeWindows { try lab.retransmitSynsLikeWindows(to: Self.port) }
        let daemon = try LabDaemon(lab, workspace)
        let clientBefore = try lab.tcpCounters(in: lab.client)
        let serverBefore = try lab.tcpCounters(in: lab.server)

        let crowd = try LabCrowd(in: lab, port: Self.port, sources: sources, perSource: perSource, rate: rate, wait: 20)
        let outcome = try crowd.outcome()
        let dropped = try loss.dropped()
        let retransmitted = try Self.increase("TcpExt.TCPSynRetrans", lab.tcpCounters(in: lab.client), clientBefore)
        let heldBack = likeWindows ? try lab.synsHeldBackLikeWindows() : 0
        print(
            "flash crowd with \(loss.percent) % loss each way: \(outcome); segments dropped toward the server "
                + "\(dropped.toServer), toward the clients \(dropped.toClient); "
                + "client SYN retransmissions \(retransmitted), held back as Windows would \(heldBack)"
        )
        if likeWindows {
            XCTAssertGreaterThan(heldBack, 100, "hardly a retransmission held back: the test shows nothing")
        }
        let cookies = Self.increase("TcpExt.SyncookiesSent", try lab.tcpCounters(in: lab.server), serverBefore)
        print("SYN cookies sent: \(cookies)")
        if backlog < 100 {
            XCTAssertGreaterThan(cookies, 100, "the SYN queue hardly filled: the test shows nothing")
        }

        XCTAssertGreaterThan(dropped.toServer, 50, "the path lost too little toward the server")
        XCTAssertGreaterThan(dropped.toClient, 50, "the path lost too little toward the clients")
        XCTAssertGreaterThan(retransmitted, 50, "too few SYNs retransmitted for the test to show anything")
        XCTAssertGreaterThanOrEqual(
            Double(outcome.answered),
            0.97 * Double(outcome.attempted),
            "the crowd's connections did not nearly all complete: \(outcome)"
        )

        try daemon.assertNoAttack(
            "a flash crowd of \(outcome.attempted) connections through \(percent) % loss each way"
        )
        try daemon.stop()
    }

    /// (b') A crowd that overwhelms its server: 240 client addresses open 2,880 connections, 250 a second, to a
    /// listener with `listen(8)` that accepts about 50 a second. The kernel drops SYNs for many seconds and the
    /// clients retransmit after 1, 3, 7, 15 s: each of those SYNs is the same attempt, which synwatchd follows for
    /// `handshakes.retransmitted_timeout`. Before, an attempt was dropped 5 s after its SYN, so its retransmission
    /// at 7 s opened a new attempt that failed at its deadline (the next came at 15 s), and an overloaded server
    /// became an attack. No attack.
    func testCrowdThatOverwhelmsItsServerRaisesNoAttack() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 8, acceptPause: 0.02)
        defer { listener.terminate() }
        let sources = try lab.addCrowdAddresses(240)
        let daemon = try LabDaemon(lab, workspace)
        let serverBefore = try lab.tcpCounters(in: lab.server)

        let crowd = try LabCrowd(in: lab, port: Self.port, sources: sources, perSource: 12, rate: 250, wait: 25)
        let outcome = try crowd.outcome()
        let server = try lab.tcpCounters(in: lab.server)
        let overflows = Self.increase("TcpExt.ListenOverflows", server, serverBefore)
        print("crowd into listen(8) at 50 accepts a second: \(outcome); listen overflows \(overflows)")

        // The lab did what it meant to: the queue overflowed, and clients waited past their 7 s retransmission.
        XCTAssertGreaterThan(overflows, 100, "the listen queue hardly overflowed: the test shows nothing")
        XCTAssertGreaterThan(outcome.slowestConnect, 7, "no client waited past its 7 s retransmission: \(outcome)")

        try daemon.assertNoAttack("a crowd of 2,880 connections into a listener that accepts 50 a second")
        try daemon.stop()
    }

    /// A client using TCP Fast Open: 1,500 connections at 300 a second, each with its line in the SYN. The server's
    /// SYN-ACK acknowledges the line too, and the client's ACK comes after it: before, synwatchd took the ACK for none
    /// of the handshake's, so no Fast Open handshake completed and a busy client became a single-source flood after
    /// two seconds. No attack.
    func testFastOpenClientRaisesNoAttack() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        try lab.sysctl(in: lab.server, "net.ipv4.tcp_fastopen", "3")
        try lab.sysctl(in: lab.client, "net.ipv4.tcp_fastopen", "3")
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 1024, fastOpen: true)
        defer { listener.terminate() }
        let daemon = try LabDaemon(lab, workspace)
        let serverBefore = try lab.tcpCounters(in: lab.server)

        let outcome = try LabFastOpenClient.run(in: lab, port: Self.port, count: 1_500, rate: 300)
        let fastOpened = Self.increase("TcpExt.TCPFastOpenPassive", try lab.tcpCounters(in: lab.server), serverBefore)
        print("fast open client: \(outcome); \(fastOpened) fast opens")

        // The lab did what it meant to: the connections carried their data in the SYN.
        XCTAssertEqual(outcome.answered, 1_500, "the listener did not answer every connection")
        XCTAssertGreaterThan(fastOpened, 1_400, "the SYNs carried no data: the test shows nothing")

        try daemon.assertNoAttack("a Fast Open client at 300 connections a second")
        try daemon.stop()
    }

    /// (c) A spoofed flood (5k SYN/s for 3 s from 198.19.0.0/16) in the middle of a flash crowd (300 addresses,
    /// 1,200 connections, 300 a second) on the same service: exactly one attack, `random-source` from its first
    /// event, and the crowd still served.
    func testSpoofedFloodDuringAFlashCrowdIsOneRandomSourceAttack() throws {
        try spoofedFloodDuringAFlashCrowd(ipv6: false)
    }

    /// The same over IPv6: the crowd from 2001:db8:c::/112, the flood from 2001:db8:8000::/33.
    func testSpoofedFloodDuringAFlashCrowdOverIPv6IsOneRandomSourceAttack() throws {
        try spoofedFloodDuringAFlashCrowd(ipv6: true)
    }

    func spoofedFloodDuringAFlashCrowd(ipv6: Bool) throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let server = ipv6 ? ServerClientLab.serverAddress6 : ServerClientLab.serverAddress
        let listener = try LabListener.start(in: lab, address: server, port: Self.port, backlog: 4096)
        defer { listener.terminate() }
        let sources = try lab.addCrowdAddresses(300, ipv6: ipv6)
        try lab.routeToClient(ipv6 ? Self.spoofedPrefix6 : Self.spoofedPrefix)
        let flood = try Self.spoofedFlood(in: workspace, packets: 15_000, pps: 5_000, ipv6: ipv6)
        let daemon = try LabDaemon(lab, workspace)

        let crowd = try LabCrowd(in: lab, port: Self.port, sources: sources, perSource: 4, rate: 300, wait: 10)
        usleep(500_000)
        let floodBegan = Date().timeIntervalSince1970
        let replay = try lab.startReplayToServer(flood, pps: 5_000)
        defer { if replay.isRunning { replay.terminate() } }
        replay.waitUntilExit()
        let outcome = try crowd.outcome()
        print("flash crowd beside a spoofed flood of 15,000 SYNs at 5,000/s: \(outcome)")
        XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay failed")
        XCTAssertGreaterThanOrEqual(
            Double(outcome.answered),
            0.97 * Double(outcome.attempted),
            "the crowd's connections did not nearly all complete: \(outcome)"
        )

        let events = try daemon.events(atLeast: 1, settle: 2)
        print("events of synwatchd for the crowd and the flood:\n\(LabDaemon.describe(events))")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "not exactly one attack:\n\(LabDaemon.describe(events))")
        let start = try XCTUnwrap(starts.first, "no attack:\n\(LabDaemon.describe(events))")
        XCTAssertEqual(start["SYNWATCH_VICTIM"], server, LabDaemon.describe(events))
        XCTAssertEqual(start["SYNWATCH_PORT"], String(Self.port), LabDaemon.describe(events))
        // The attack's first event already names the kind: no later correction.
        let first = try XCTUnwrap(events.first { $0["SYNWATCH_ATTACK_ID"] == start["SYNWATCH_ATTACK_ID"] })
        XCTAssertEqual(first["SYNWATCH_EVENT"], "attack_start", LabDaemon.describe(events))
        XCTAssertEqual(
            first["SYNWATCH_KIND"],
            "random-source",
            "the attack's first event:\n\(LabDaemon.describe(events))"
        )
        XCTAssertTrue(
            events.allSatisfy { $0["SYNWATCH_KIND"] == nil || $0["SYNWATCH_KIND"] == "random-source" },
            "an event of another kind:\n\(LabDaemon.describe(events))"
        )
        print("attack_start \(LabDaemon.latency(of: start, after: floodBegan)) after the flood began")
        try daemon.stop()
    }

    /// (c') Floods at a port where nothing listens: the server's kernel refuses every SYN with a RST/ACK, so nothing
    /// is half-open. A spoofed storm (8,000 SYNs at 8,000 a second) and hping3 from the client (2,000 SYNs at 1,000 a
    /// second) are each one attack all the same, `random-source` and `single-source`, their refusals in
    /// `SYNWATCH_REFUSED_PER_S` and the message.
    func testFloodsAtAClosedPortAreAttacksOfTheirKind() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/sbin/hping3"), "needs hping3")
        let lab = try Self.lab()
        let workspace = try Workspace()
        try lab.routeToClient(Self.spoofedPrefix)
        let flood = try Self.spoofedFlood(in: workspace, packets: 8_000, pps: 8_000)
        let daemon = try LabDaemon(lab, workspace)

        let replay = try lab.startReplayToServer(flood, pps: 8_000)
        defer { if replay.isRunning { replay.terminate() } }
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay failed")
        let closedPort = Self.port + 1
        let hping = try lab.start(
            in: lab.client,
            [
                "timeout", "20", "hping3", "-q", "-S", "-p", String(closedPort), "-c", "2000", "-i", "u1000",
                ServerClientLab.serverAddress,
            ]
        )
        defer { if hping.isRunning { hping.terminate() } }
        hping.waitUntilExit()

        // The quiet period is 2 s: both ends follow soon after.
        var events = try daemon.events(atLeast: 1, settle: 0)
        let deadline = Date().addingTimeInterval(10)
        while events.filter({ $0["SYNWATCH_EVENT"] == "attack_end" }).count < 2, Date() < deadline {
            usleep(250_000)
            events = try daemon.events(atLeast: 1, settle: 0)
        }
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the floods at closed ports:\n\(shown)")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 2, "not exactly two attacks:\n\(shown)")
        let storm = try XCTUnwrap(starts.first { $0["SYNWATCH_PORT"] == String(Self.port) }, shown)
        XCTAssertEqual(storm["SYNWATCH_KIND"], "random-source", shown)
        XCTAssertEqual(storm["SYNWATCH_HALF_OPEN_PER_S"], "0", shown)
        XCTAssertGreaterThan(Double(storm["SYNWATCH_REFUSED_PER_S"] ?? "") ?? 0, 100, shown)
        XCTAssertTrue(storm["MESSAGE"]?.contains("refused/s (port closed)") == true, shown)
        let single = try XCTUnwrap(starts.first { $0["SYNWATCH_PORT"] == String(closedPort) }, shown)
        XCTAssertEqual(single["SYNWATCH_KIND"], "single-source", shown)
        XCTAssertTrue(single["SYNWATCH_TOP_SOURCES"]?.hasPrefix(ServerClientLab.clientAddress + ":") == true, shown)
        XCTAssertGreaterThan(Double(single["SYNWATCH_REFUSED_PER_S"] ?? "") ?? 0, 100, shown)
        try daemon.stop()
    }

    /// (c''') One host floods a listening port through its own TCP stack: 3,000 connects at 500 a second, its
    /// firewall dropping the SYN-ACKs it is sent, so its kernel retransmits every SYN after 1 s and 3 s (a client
    /// waiting in a full queue retransmits too, but is not answered). One `single-source` attack naming the host,
    /// once its attempts pass the retransmission deadline; before, none at all.
    func testHostFloodingThroughItsOwnStackIsASingleSourceAttack() throws {
        let lab = try Self.lab()
        try XCTSkipUnless(LabLoss.isAvailable, "needs nft (nftables) for the client's firewall")
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 4096)
        defer { listener.terminate() }
        try lab.loadRules(
            """
            table inet synwatch_firewall {
                chain input {
                    type filter hook input priority 0; policy accept;
                    tcp sport \(Self.port) tcp flags & (syn | ack) == syn | ack counter drop
                }
            }
            """,
            in: lab.client
        )
        let daemon = try LabDaemon(lab, workspace)
        let clientBefore = try lab.tcpCounters(in: lab.client)

        let flood = try LabCrowd(
            in: lab,
            port: Self.port,
            sources: [ServerClientLab.clientAddress],
            perSource: 3_000,
            rate: 500,
            wait: 4
        )
        let floodBegan = Date()
        let outcome = try flood.outcome()
        let retransmitted = try Self.increase("TcpExt.TCPSynRetrans", lab.tcpCounters(in: lab.client), clientBefore)
        print("a host flooding through its stack: \(outcome); its SYN retransmissions \(retransmitted)")
        // The lab did what it meant to: nothing completed, and the host's kernel retransmitted its SYNs.
        XCTAssertEqual(outcome.answered, 0, "connections completed through the firewall: \(outcome)")
        XCTAssertGreaterThan(retransmitted, 3_000, "the host's kernel hardly retransmitted: the test shows nothing")

        let events = try daemon.events(atLeast: 1, settle: 1)
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the host flooding through its stack:\n\(shown)")
        try Self.assertOneSingleSourceAttack(
            from: ServerClientLab.clientAddress,
            port: Self.port,
            in: events,
            within: Self.deadline + 3.5,
            after: floodBegan
        )
        try daemon.stop()
    }

    /// (c'') One address that never answers floods 12 listening ports of the server: an hping3 per port from the
    /// client, its source spoofed, a SYN every 12 ms for 14 s (about 1,000 a second in all; stopped by time, as
    /// hping3 counts the SYN-ACKs it overhears towards `-c`). No port reaches the threshold, and the server holds
    /// every attempt it answers: once they pass their retransmission deadline and add up to the threshold's
    /// rate over an epoch, about 4 s in, one `single-source` attack on the host, naming the address; not a scan.
    func testOneSourceFloodingListeningPortsIsAHostAttack() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/sbin/hping3"), "needs hping3")
        let lab = try Self.lab()
        let workspace = try Workspace()
        let ports = (0..<12).map { Self.port + 100 + UInt16($0) }
        let listeners = try ports.map { try LabListener.start(in: lab, port: $0, backlog: 1024) }
        defer { listeners.forEach { $0.terminate() } }
        try lab.routeToClient(Self.spoofedPrefix)
        let attacker = "198.19.66.6"
        let daemon = try LabDaemon(lab, workspace)

        let floods = try ports.map { port in
            try lab.start(
                in: lab.client,
                [
                    "timeout", "14", "hping3", "-q", "-S", "-a", attacker, "-p", String(port), "-c", "20000", "-i",
                    "u12000", ServerClientLab.serverAddress,
                ]
            )
        }
        defer { floods.filter(\.isRunning).forEach { $0.terminate() } }
        let floodBegan = Date()
        floods.forEach { $0.waitUntilExit() }
        print("hping3 ran \(String(format: "%.1f", Date().timeIntervalSince(floodBegan))) s")

        let events = try daemon.events(atLeast: 1, settle: 2)
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for one source over 12 ports:\n\(shown)")
        try Self.assertOneSingleSourceAttack(
            from: attacker,
            port: nil,
            in: events,
            after: floodBegan
        )
        XCTAssertFalse(events.contains { $0["SYNWATCH_EVENT"] == "scan" }, shown)
        try daemon.stop()
    }

    /// (c''') One SYN repeated: hping3 from the client sends the same SYN (the same spoofed address, source port
    /// and ISN: `-k -M`) to a listening port every 0.5 ms for 6 s. The server answers it (at most twice a second),
    /// and the answers go nowhere. No stack sends one SYN that often: past `HandshakeEntry.maximumSends` each is a
    /// new attempt, decided when it matures, and one `single-source` attack on the port names the address within a
    /// second. Taken for one attempt retransmitted, it raised nothing; taken for undecided attempts of one source,
    /// it waited for their retransmission deadline (3.7 s).
    func testOneSynRepeatedIsASingleSourceAttack() throws {
        let attacker = "198.19.66.7"
        let flood = try floodAtAListener(
            for: 6,
            hping3(["-a", attacker, "-s", "5555", "-k", "-M", "1000", "-i", "u500"]),
            named: "one SYN repeated"
        )
        try Self.assertOneSingleSourceAttack(
            from: attacker,
            port: Self.port,
            in: flood.events,
            within: 1,
            after: flood.began
        )
    }

    /// One spoofed address, a new attempt each time: hping3 from the client sends SYNs from an address that
    /// answers nothing (`-a`), each from the next source port with a new ISN, every 0.5 ms for 6 s, to a listening
    /// port. The server answers every one, and no answer is acknowledged, reset or asked for again. hping3's SYNs
    /// carry no options, unlike any stack's: one `single-source` attack on the port, announced as soon as its
    /// attempts matured, within a second, where a stack's SYNs would wait for the longest a handshake may take.
    func testOneSpoofedAddressIgnoringItsAnswersIsTold() throws {
        let attacker = "198.19.66.8"
        let flood = try floodAtAListener(for: 6, hping3(["-a", attacker, "-i", "u500"]), named: "one spoofed address")
        try Self.assertOneSingleSourceAttack(
            from: attacker,
            port: Self.port,
            in: flood.events,
            within: 1,
            after: flood.began
        )
    }

    /// (c'''') One 4-tuple, many attempts: hping3 from the client keeps its source port (`-k`) and sends a SYN with a
    /// new ISN every 50 µs for 12 s (its kernel resets what the server answers). Sampled by 4-tuple alone, the flood
    /// was all kept or all left once its attack sampled the service, and live the attack ended and started again
    /// every 3.4 s (8 attacks in 25 s, for 7 hash seeds in 8). Sampled by 4-tuple and ISN: one attack throughout.
    func testFloodFromOneFourTupleIsOneAttackThroughout() throws {
        let flood = try floodAtAListener(
            for: 12,
            hping3(["-s", "5555", "-k", "-i", "u50"]),
            named: "one 4-tuple flooding"
        )
        try Self.assertOneSingleSourceAttack(
            from: ServerClientLab.clientAddress,
            port: Self.port,
            in: flood.events,
            after: flood.began
        )
        let ended = flood.ended.timeIntervalSince1970
        XCTAssertFalse(
            flood.events.contains {
                $0["SYNWATCH_EVENT"] == "attack_end" && Double($0["SYNWATCH_TIME"] ?? "").map { $0 < ended - 1 } ?? true
            },
            "ended while the flood went on:\n\(LabDaemon.describe(flood.events))"
        )
    }

    /// (c''''') nping (nmap's packet generator) sends every probe with one source port and one ISN, and here
    /// `--rate 2000` sends its 6,000 SYNs from a spoofed address in about a tenth of a second, at a listener. One
    /// `single-source` attack within a second, read at the burst's rate: one SYN repeated past
    /// `HandshakeEntry.maximumSends`. Before, as one SYN retransmitted nothing was seen; then, judged by a rate window
    /// that no longer held the burst, nothing either; then it waited for the retransmission deadline.
    func testNpingBurstIsASingleSourceAttack() throws {
        let attacker = "198.19.66.8"
        let command = [
            "nping", "--tcp", "--flags", "syn", "-S", attacker, "-p", String(Self.port), "--rate", "2000", "-c",
            "6000", "-q", ServerClientLab.serverAddress,
        ]
        let flood = try floodAtAListener(for: 5, command, named: "nping's burst")
        try Self.assertOneSingleSourceAttack(
            from: attacker,
            port: Self.port,
            in: flood.events,
            within: 1,
            after: flood.began
        )
        let start = try XCTUnwrap(flood.events.first { $0["SYNWATCH_EVENT"] == "attack_start" })
        XCTAssertGreaterThan(Double(start["SYNWATCH_SYN_PER_S"] ?? "") ?? 0, 1_000, LabDaemon.describe(flood.events))
    }

    /// hping3 sending SYNs at the server's port with `options`.
    func hping3(_ options: [String]) -> [String] {
        ["hping3", "-q", "-S", "-p", String(Self.port)] + options + [ServerClientLab.serverAddress]
    }

    /// Runs `command` in the client (a source in the spoofed prefix is routed back to the client) for at most
    /// `seconds`, while a listener holds the server's port, then returns synwatchd's events, settled for 2 s, and
    /// when the flood began and ended.
    func floodAtAListener(
        for seconds: Int,
        _ command: [String],
        named name: String
    ) throws -> (events: [TestJournald.Fields], began: Date, ended: Date) {
        let tool = command[0]
        try XCTSkipUnless(
            ["/usr/sbin/", "/usr/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + tool) },
            "needs \(tool)"
        )
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 1024)
        defer { listener.terminate() }
        try lab.routeToClient(Self.spoofedPrefix)
        let daemon = try LabDaemon(lab, workspace)
        let flood = try lab.start(in: lab.client, ["timeout", String(seconds)] + command)
        defer { if flood.isRunning { flood.terminate() } }
        let began = Date()
        flood.waitUntilExit()
        let ended = Date()
        let events = try daemon.events(atLeast: 1, settle: 2)
        print("events of synwatchd for \(name):\n\(LabDaemon.describe(events))")
        try daemon.stop()
        return (events, began, ended)
    }

    /// Asserts that `events` hold one attack, a `single-source` one naming `source`, on `port` of the server or on
    /// its whole host (nil: no port), announced within `limit` seconds after `began` (in capture time): by default
    /// 2.5 s after the retransmission deadline, which a source that neither resets nor acknowledges answers waits for.
    static func assertOneSingleSourceAttack(
        from source: String,
        port: UInt16?,
        in events: [TestJournald.Fields],
        within limit: Double = deadline + 2.5,
        after began: Date,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let shown = LabDaemon.describe(events)
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "not exactly one attack:\n\(shown)", file: file, line: line)
        let start = try XCTUnwrap(starts.first, shown, file: file, line: line)
        XCTAssertEqual(start["SYNWATCH_PORT"], port.map(String.init), shown, file: file, line: line)
        XCTAssertEqual(start["SYNWATCH_KIND"], "single-source", shown, file: file, line: line)
        XCTAssertTrue(start["SYNWATCH_TOP_SOURCES"]?.hasPrefix(source + ":") == true, shown, file: file, line: line)
        let time = try XCTUnwrap(Double(start["SYNWATCH_TIME"] ?? ""), shown, file: file, line: line)
        let announced = time - began.timeIntervalSince1970
        print("attack announced \(String(format: "%.2f", announced)) s after the flood began")
        XCTAssertLessThan(announced, limit, "announced late:\n\(shown)", file: file, line: line)
    }

    /// (f) Two full SYN scans of the server by nmap from the client, one right after the other, as fast as
    /// nmap goes: every port probed, again and again where an answer is late (on a busy machine, over 200,000
    /// SYNs in 15 s), three of them listening. Scans, never an attack.
    func testTwoFullPortScansRaiseNoAttack() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/nmap"), "needs nmap")
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listeners = try (0..<3).map {
            try LabListener.start(in: lab, port: Self.port + 200 + UInt16($0), backlog: 128)
        }
        defer { listeners.forEach { $0.terminate() } }
        let daemon = try LabDaemon(lab, workspace)
        let scansBegan = Date()
        for _ in 0..<2 {
            let scan = try lab.start(
                in: lab.client,
                [
                    "timeout", "60", "nmap", "-n", "-Pn", "-sS", "-p-", "-T5", "--min-rate", "50000",
                    ServerClientLab.serverAddress,
                ]
            )
            defer { if scan.isRunning { scan.terminate() } }
            scan.waitUntilExit()
            XCTAssertEqual(scan.terminationStatus, 0, "nmap failed")
        }
        print("nmap scanned twice in \(String(format: "%.1f", Date().timeIntervalSince(scansBegan))) s")

        try daemon.assertNoAttack("two full port scans")
        let events = try daemon.events(atLeast: 1, settle: 0)
        XCTAssertTrue(
            events.contains {
                $0["SYNWATCH_EVENT"] == "scan" && $0["SYNWATCH_SOURCE"] == ServerClientLab.clientAddress
            },
            LabDaemon.describe(events)
        )
        try daemon.stop()
    }

    /// (d) A spoofed flood of 12k SYN/s for 2.5 s against a real listener: exactly one `random-source` attack, its
    /// start within 3 s of the flood's, its start and end in a real journald with every field the daemon writes.
    func testStrongSpoofedFloodIsOneAttackWithEveryFieldInJournald() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 1024)
        defer { listener.terminate() }
        try lab.routeToClient(Self.spoofedPrefix)
        let flood = try Self.spoofedFlood(in: workspace, packets: 30_000, pps: 12_000)
        let daemon = try LabDaemon(lab, workspace)

        let (floodBegan, floodEnded) = try Self.replay(flood, in: lab, pps: 12_000)
        print("30,000 spoofed SYNs replayed in \(String(format: "%.2f", floodEnded - floodBegan)) s")

        // The quiet period is 2 s: the end follows soon after the flood's.
        let events = try daemon.eventsUntilAttackEnd()
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the flood:\n\(shown)")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        let ends = events.filter { $0["SYNWATCH_EVENT"] == "attack_end" }
        XCTAssertEqual(starts.count, 1, "not exactly one attack:\n\(shown)")
        XCTAssertEqual(ends.count, 1, "not exactly one end:\n\(shown)")
        let start = try XCTUnwrap(starts.first, "no attack_start:\n\(shown)")
        let end = try XCTUnwrap(ends.first, "no attack_end:\n\(shown)")

        let latency = LabDaemon.latency(of: start, after: floodBegan)
        print("attack_start \(latency) after the flood began")
        let reported = (Double(start["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
        XCTAssertGreaterThan(reported, floodBegan, "an attack before the flood:\n\(shown)")
        XCTAssertLessThan(reported - floodBegan, 3, "attack_start \(latency) after the flood began:\n\(shown)")

        // Both entries: the journal's own fields, then every SYNWATCH_* field the daemon writes for the type.
        for (entry, type, messageID, priority) in [
            (start, "attack_start", "82044201de1b4a5bbade0a6e98526953", "2"),
            (end, "attack_end", "5f7475a03d644448aa60f131bbc144f7", "4"),
        ] {
            XCTAssertEqual(entry["MESSAGE_ID"], messageID, "\(type): \(entry)")
            XCTAssertEqual(entry["PRIORITY"], priority, "\(type): \(entry)")
            XCTAssertEqual(entry["SYSLOG_IDENTIFIER"], "synwatchd", "\(type): \(entry)")
            XCTAssertTrue(
                entry["MESSAGE"]?.hasPrefix("SYN flood on \(ServerClientLab.serverAddress):\(Self.port)") == true,
                "\(type): \(entry["MESSAGE"] ?? "no MESSAGE")"
            )
            XCTAssertEqual(entry["SYNWATCH_EVENT"], type)
            XCTAssertEqual(entry["SYNWATCH_VICTIM"], ServerClientLab.serverAddress, "\(type): \(entry)")
            XCTAssertEqual(entry["SYNWATCH_PORT"], String(Self.port), "\(type): \(entry)")
            XCTAssertEqual(entry["SYNWATCH_KIND"], "random-source", "\(type):\n\(shown)")
            XCTAssertEqual(entry["SYNWATCH_ATTACK_ID"], start["SYNWATCH_ATTACK_ID"], "\(type): \(entry)")
            // Capture time is the live clock here: within the run.
            let time = try XCTUnwrap(Double(entry["SYNWATCH_TIME"] ?? ""), "\(type): \(entry)")
            XCTAssertTrue(
                (floodBegan - 1...Date().timeIntervalSince1970 + 1).contains(time),
                "\(type): time \(time) outside the run"
            )
            // The figures of the moment, and the kernel's beside them (the daemon runs in the victim's namespace).
            for name in [
                "SYN_PER_S", "HALF_OPEN_PER_S", "COMPLETION_RATIO", "DISTINCT_SOURCES", "KERNEL_SYNCOOKIES_SENT_PER_S",
                "KERNEL_REQQ_FULL_DO_COOKIES_PER_S", "KERNEL_REQQ_FULL_DROP_PER_S", "KERNEL_LISTEN_OVERFLOWS_PER_S",
                "KERNEL_LISTEN_DROPS_PER_S", "KERNEL_CAPTURE_LOSS",
            ] {
                XCTAssertNotNil(Double(entry["SYNWATCH_" + name] ?? ""), "\(type): SYNWATCH_\(name) in \(entry)")
            }
            // The listener's SYN_RECV is read once a second: an alert raised before the first reading
            // leaves the field out (never the text "null"); the end always has it.
            if type == "attack_end" || entry["SYNWATCH_KERNEL_SYN_RECV"] != nil {
                XCTAssertNotNil(Int(entry["SYNWATCH_KERNEL_SYN_RECV"] ?? ""), "\(type): \(entry)")
            }
            XCTAssertNotNil(entry["SYNWATCH_KERNEL_CORROBORATED"], "\(type): \(entry)")
            XCTAssertNotNil(entry["SYNWATCH_TOP_SOURCES"], "\(type): \(entry)")
        }
        // The start: one SYN per source, nothing completing. It comes a step after the flood's first SYNs matured,
        // so its window holds the first 50–100 ms, which tcpreplay's start-up may thin: above the threshold, and
        // the peaks below say how strong the flood was.
        XCTAssertGreaterThan(Double(start["SYNWATCH_SYN_PER_S"] ?? "") ?? 0, 100, shown)
        XCTAssertGreaterThan(Double(start["SYNWATCH_HALF_OPEN_PER_S"] ?? "") ?? 0, 100, shown)
        XCTAssertLessThan(Double(start["SYNWATCH_COMPLETION_RATIO"] ?? "") ?? 1, 0.1, shown)
        XCTAssertGreaterThan(Int(start["SYNWATCH_DISTINCT_SOURCES"] ?? "") ?? 0, 32, shown)
        // Top sources read `address:count,…`, each spoofed address from the flood's prefix.
        for pair in (start["SYNWATCH_TOP_SOURCES"] ?? "").split(separator: ",") {
            XCTAssertTrue(pair.hasPrefix("198.19.") && Int(pair.split(separator: ":").last ?? "") != nil, shown)
        }
        // The end: duration, peaks and totals of the whole attack.
        let began = try XCTUnwrap(Double(end["SYNWATCH_START"] ?? ""), shown)
        XCTAssertTrue((floodBegan - 1...(Double(start["SYNWATCH_TIME"] ?? "") ?? 0) + 0.001).contains(began), shown)
        let duration = try XCTUnwrap(Double(end["SYNWATCH_DURATION"] ?? ""), shown)
        XCTAssertTrue((1...(floodEnded - floodBegan + 3)).contains(duration), "duration \(duration):\n\(shown)")
        XCTAssertGreaterThan(Double(end["SYNWATCH_PEAK_SYN_PER_S"] ?? "") ?? 0, 8_000, shown)
        XCTAssertGreaterThan(Double(end["SYNWATCH_PEAK_HALF_OPEN_PER_S"] ?? "") ?? 0, 8_000, shown)
        XCTAssertGreaterThan(Int(end["SYNWATCH_PEAK_DISTINCT_SOURCES"] ?? "") ?? 0, 8_000, shown)
        let total = try XCTUnwrap(Int(end["SYNWATCH_TOTAL_SYNS"] ?? ""), shown)
        // An estimate once the storm is sampled by client (1 in 4 at its 8,000–10,000 SYN/s): 4 deviations above.
        XCTAssertTrue((15_000...31_500).contains(total), "total_syns \(total) of 30,000 sent:\n\(shown)")
        XCTAssertEqual(end["SYNWATCH_END_REASON"], "quiet", shown)
        try daemon.stop()
    }

    /// (e) A spoofed storm from the whole of `spoofedPrefix` (65,536 addresses) at 100,000 SYN/s for 6 s: each
    /// address repeats every 0.65 s, as a botnet's bots would, but the sources fill their range. One attack,
    /// `random-source` in every event, and no source named.
    func testSpoofedStormFromAPoolOfAddressesStaysRandomSource() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 1024)
        defer { listener.terminate() }
        try lab.routeToClient(Self.spoofedPrefix)
        let flood = try Self.spoofedFlood(in: workspace, packets: 600_000, pps: 100_000, sources: 65_536)
        let daemon = try LabDaemon(lab, workspace)

        let (floodBegan, floodEnded) = try Self.replay(flood, in: lab, pps: 100_000)
        let seconds = floodEnded - floodBegan
        print("600,000 SYNs from 65,536 spoofed sources replayed in \(String(format: "%.2f", seconds)) s")
        // Slower than a sixth of the pool a second, its sources would not repeat within the sources window.
        XCTAssertLessThan(seconds, 20, "the replay was too slow for the pool's addresses to repeat: it shows nothing")

        let events = try daemon.events(atLeast: 2, settle: 4)
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the storm:\n\(shown)")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "not exactly one attack:\n\(shown)")
        let attack = events.filter { $0["SYNWATCH_ATTACK_ID"] == starts.first?["SYNWATCH_ATTACK_ID"] }
        XCTAssertGreaterThan(attack.count, 1, "no event after the start:\n\(shown)")
        for event in attack {
            XCTAssertEqual(event["SYNWATCH_KIND"], "random-source", shown)
            XCTAssertEqual(event["SYNWATCH_TOP_SOURCES"], "", shown)
        }
        try daemon.stop()
    }

    /// (f) A spoofed flood's capture replayed in a loop (`tcpreplay --loop 12`): 3,000 SYNs from spoofed sources at
    /// 3,000 a second, so each comes again every second with its ISN, as a stack retransmits it, and the server
    /// answers each again. After the first loop no attempt is new. One attack for the whole replay, ending after
    /// it, whose kind, read at an update every second, changes at most once and never back.
    func testSpoofedCaptureReplayedInALoopIsOneAttackThroughout() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let listener = try LabListener.start(in: lab, port: Self.port, backlog: 4096)
        defer { listener.terminate() }
        try lab.routeToClient(Self.spoofedPrefix)
        let flood = try Self.spoofedFlood(in: workspace, packets: 3_000, pps: 3_000)
        let daemon = try LabDaemon(lab, workspace, settings: "  update_interval: 1s\n")

        let (floodBegan, floodEnded) = try Self.replay(flood, in: lab, pps: 3_000, loops: 12)
        print("3,000 spoofed SYNs replayed 12 times in \(String(format: "%.2f", floodEnded - floodBegan)) s")

        let events = try daemon.eventsUntilAttackEnd()
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the looped replay:\n\(shown)")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertEqual(starts.count, 1, "not exactly one attack:\n\(shown)")
        let attack = events.filter { $0["SYNWATCH_ATTACK_ID"] == starts.first?["SYNWATCH_ATTACK_ID"] }
        let kinds = attack.compactMap { $0["SYNWATCH_KIND"] }
        XCTAssertLessThanOrEqual(zip(kinds, kinds.dropFirst()).filter { $0 != $1 }.count, 1, shown)
        let end = try XCTUnwrap(attack.first { $0["SYNWATCH_EVENT"] == "attack_end" }, "no attack_end:\n\(shown)")
        let ended = (Double(end["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
        XCTAssertGreaterThan(ended, floodEnded, "the attack ended while the loop went on:\n\(shown)")
        try daemon.stop()
    }

    /// (g) The real spoofed flood of `../shared/captures` (9,639 SYNs with ECE and CWR from about 9,700 addresses,
    /// almost all within its last second and a half), rewritten into the lab and replayed at 4 times its pace at a
    /// port where nothing listens: one `random-source` attack on that port, its SYNs refused by the server's kernel.
    func testRealSpoofedCaptureReplayedLiveIsOneRandomSourceAttack() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        try lab.routeToClient(Self.spoofedPrefix)
        let daemon = try LabDaemon(lab, workspace)
        try Self.replayRealCapture("pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", speedup: 4, in: lab, workspace)

        let events = try daemon.eventsUntilAttackEnd()
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the real spoofed flood:\n\(shown)")
        let attacks = events.filter { $0["SYNWATCH_EVENT"]?.hasPrefix("attack_") == true }
        XCTAssertEqual(attacks.filter { $0["SYNWATCH_EVENT"] == "attack_start" }.count, 1, shown)
        XCTAssertEqual(attacks.last?["SYNWATCH_EVENT"], "attack_end", shown)
        for event in attacks {
            XCTAssertEqual(event["SYNWATCH_VICTIM"], ServerClientLab.serverAddress, shown)
            XCTAssertEqual(event["SYNWATCH_PORT"], "30120", shown)
            XCTAssertEqual(event["SYNWATCH_KIND"], "random-source", shown)
        }
        XCTAssertGreaterThan(Double(attacks.first?["SYNWATCH_REFUSED_PER_S"] ?? "") ?? 0, 100, shown)
        XCTAssertGreaterThan(Int(attacks.last?["SYNWATCH_PEAK_DISTINCT_SOURCES"] ?? "") ?? 0, 5_000, shown)
        try daemon.stop()
    }

    /// (h) The real SYN-ACK reflection of `../shared/captures` (6,650 SYN-ACKs and 800 RSTs from about 7,000
    /// servers, to 142 addresses, in 0.15 s), rewritten into the lab and replayed at its own pace: a `backscatter`
    /// notice for the server, whose address others spoofed, and no attack.
    func testRealReflectionCaptureReplayedLiveIsBackscatterOnly() throws {
        let lab = try Self.lab()
        let workspace = try Workspace()
        let daemon = try LabDaemon(lab, workspace)
        try Self.replayRealCapture("amp.TCP.reflection.SYNACK.pcap", speedup: 1, in: lab, workspace)

        let events = try daemon.events(atLeast: 1, settle: 2)
        let shown = LabDaemon.describe(events)
        print("events of synwatchd for the real reflection:\n\(shown)")
        XCTAssertFalse(events.contains { $0["SYNWATCH_EVENT"] == "attack_start" }, shown)
        let notice = try XCTUnwrap(events.first { $0["SYNWATCH_EVENT"] == "backscatter" }, shown)
        XCTAssertEqual(notice["SYNWATCH_VICTIM"], ServerClientLab.serverAddress, shown)
        XCTAssertGreaterThan(Int(notice["SYNWATCH_DISTINCT_SOURCES"] ?? "") ?? 0, 1_000, shown)
        try daemon.stop()
    }

    // MARK: Helpers

    /// A fresh server/client lab, or a skip saying what is missing.
    static func lab() throws -> ServerClientLab {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3")
        try XCTSkipUnless(
            (try? ChildProcess.run(["tcprewrite", "--version"]).status) == 0,
            "needs tcprewrite (tcpreplay)"
        )
        try TestJournald.require()
        return try ServerClientLab()
    }

    /// A spoofed flood at the lab's listener written by `synwatch-trafficgen spoofed-bulk`: `packets` SYNs, each
    /// from a source of its own in `spoofedPrefix` (or `spoofedPrefix6`, at the server's IPv6 address), or cycling
    /// through `sources` of them, timed at `pps`.
    static func spoofedFlood(
        in workspace: Workspace,
        packets: Int,
        pps: Int,
        sources: Int? = nil,
        ipv6: Bool = false
    ) throws -> String {
        let generator = Synwatch.executable.deletingLastPathComponent().appendingPathComponent("synwatch-trafficgen")
        let flood = workspace.path("flood.pcap")
        let victim = ipv6 ? "[\(ServerClientLab.serverAddress6)]:\(port)" : "\(ServerClientLab.serverAddress):\(port)"
        let result = try ChildProcess.run(
            [
                generator.path,
                "spoofed-bulk", "--output", flood, "--packets", String(packets), "--sources",
                String(sources ?? packets),
                "--rate", String(pps), "--victim", victim, "--source-prefix", ipv6 ? spoofedPrefix6 : spoofedPrefix,
            ] + (ipv6 ? ["--ipv6"] : [])
        )
        guard result.status == 0 else { throw LabError(command: "synwatch-trafficgen", output: result.errors) }
        return flood
    }

    /// Replays `flood` from the client at the server, `pps` packets a second, `loops` times over, to its end: when it
    /// began and ended, in seconds since the epoch.
    static func replay(
        _ flood: String,
        in lab: ServerClientLab,
        pps: Int,
        loops: Int = 1
    ) throws -> (began: Double, ended: Double) {
        let began = Date().timeIntervalSince1970
        let replay = try lab.startReplayToServer(flood, pps: pps, loops: loops)
        defer { if replay.isRunning { replay.terminate() } }
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay failed")
        return (began, Date().timeIntervalSince1970)
    }

    /// Replays the real capture `name` of `../shared/captures`, rewritten into the lab, at the server
    /// (`startRealCaptureReplayToServer`), to its end.
    static func replayRealCapture(
        _ name: String,
        speedup: Double,
        in lab: ServerClientLab,
        _ workspace: Workspace
    ) throws {
        let replay = try lab.startRealCaptureReplayToServer(
            try SharedCaptures.path(name),
            rewritten: workspace.path("lab-" + name),
            spoofedPrefix: spoofedPrefix,
            speedup: speedup
        )
        defer { if replay.isRunning { replay.terminate() } }
        replay.waitUntilExit()
        XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay failed")
    }

    /// How much a kernel counter rose.
    static func increase(_ name: String, _ after: [String: Int], _ before: [String: Int]) -> Int {
        (after[name] ?? 0) - (before[name] ?? 0)
    }
}

/// The built `synwatchd` capturing on a lab's server port, in the server's namespace (so the kernel it reads is the
/// victim's), with a configuration, socket and notify socket of its own; its events read back from journald.
final class LabDaemon {
    let process: Process
    let socket: String
    let log: String
    let lab: ServerClientLab
    /// Its notify socket, where READY=1 came and STATUS= lines follow.
    let notify: NotifyListener

    /// Starts the daemon with a 2 s quiet period and the `settings` given (YAML, such as a `hooks:` section), and
    /// waits for READY=1.
    init(_ lab: ServerClientLab, _ workspace: Workspace, settings: String = "") throws {
        self.lab = lab
        let configuration = workspace.path("synwatch.yaml")
        try ("detection:\n  quiet_period: 2s\n" + settings).write(
            toFile: configuration,
            atomically: true,
            encoding: .utf8
        )
        socket = workspace.path("synwatch.sock")
        log = workspace.path("synwatchd.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        notify = try NotifyListener(path: workspace.path("notify.sock"))
        process = try lab.start(
            in: lab.server,
            [
                DaemonEndToEndTests.daemon.path, "--config", configuration, "--interface", lab.serverPort, "--socket",
                socket, "--user", "root",
            ],
            environment: ["NOTIFY_SOCKET": notify.path],
            log: log
        )
        guard notify.wait(for: "READY=1", timeout: 15) != nil else {
            throw LabError(command: "synwatchd", output: "no READY=1: \(DaemonEndToEndTests.text(log))")
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The events the daemon wrote to journald, in order: once at least `count` are there, or 5 s have passed, and
    /// after `settle` more seconds for late ones.
    func events(atLeast count: Int, settle: Double) throws -> [TestJournald.Fields] {
        if settle > 0 { usleep(UInt32(settle * 1e6)) }
        return try TestJournald.entries(
            where: "_PID",
            is: String(process.processIdentifier),
            count: count,
            timeout: count > 0 ? 5 : 0
        ).filter { $0["SYNWATCH_EVENT"] != nil }
    }

    /// The events the daemon wrote, once an `attack_end` is among them or `timeout` seconds have passed.
    func eventsUntilAttackEnd(timeout: Double = 10) throws -> [TestJournald.Fields] {
        var events = try events(atLeast: 1, settle: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while !events.contains(where: { $0["SYNWATCH_EVENT"] == "attack_end" }), Date() < deadline {
            usleep(250_000)
            events = try self.events(atLeast: 1, settle: 0)
        }
        return events
    }

    /// No attack in journald nor in the daemon's list of active and recent attacks, a moment after the traffic.
    func assertNoAttack(_ traffic: String, file: StaticString = #filePath, line: UInt = #line) throws {
        // A second for the windows to move on, and for any late alert to reach the journal.
        let events = try events(atLeast: 0, settle: 2)
        print("events of synwatchd for \(traffic):\n\(Self.describe(events))")
        let attacks = try DaemonEndToEndTests.get(socket, "/v1/attacks")
        let starts = events.filter { $0["SYNWATCH_EVENT"] == "attack_start" }
        XCTAssertTrue(
            starts.isEmpty,
            "\(starts.count) attack(s) on \(traffic):\n\(Self.describe(events))",
            file: file,
            line: line
        )
        let listed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(attacks.utf8)) as? [String: Any], attacks)
        XCTAssertEqual(
            (listed["active"] as? [Any])?.count,
            0,
            "/v1/attacks after \(traffic): \(attacks)",
            file: file,
            line: line
        )
        XCTAssertEqual(
            (listed["recent"] as? [Any])?.count,
            0,
            "/v1/attacks after \(traffic): \(attacks)",
            file: file,
            line: line
        )
    }

    /// SIGTERM, and a clean exit.
    func stop() throws {
        kill(process.processIdentifier, SIGTERM)
        try DaemonEndToEndTests.waitFor(timeout: 10) { !process.isRunning }
        XCTAssertEqual(process.terminationStatus, 0, DaemonEndToEndTests.text(log))
    }

    /// One line per event: its type, then its SYNWATCH_* fields as the daemon wrote them, and when journald got it.
    static func describe(_ events: [TestJournald.Fields]) -> String {
        guard !events.isEmpty else { return "  (no events)" }
        return events.map { event in
            let fields = event.filter { $0.key.hasPrefix("SYNWATCH_") && $0.key != "SYNWATCH_EVENT" }
                .sorted { $0.key < $1.key }
                .map { "\($0.key.dropFirst("SYNWATCH_".count).lowercased())=\($0.value)" }
            let logged = (Double(event["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
            return "  \(event["SYNWATCH_EVENT"] ?? "?") (journal \(String(format: "%.3f", logged))) "
                + fields.joined(separator: " ")
        }.joined(separator: "\n")
    }

    /// How long after `began` (seconds since the epoch) journald received `entry`, as text.
    static func latency(of entry: TestJournald.Fields, after began: Double) -> String {
        let logged = (Double(entry["__REALTIME_TIMESTAMP"] ?? "") ?? 0) / 1e6
        return String(format: "%.3f s", logged - began)
    }
}

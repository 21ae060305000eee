import Foundation
import Glibc
import SynwatchTestSupport
import SynwatchTrafficGen
import XCTest

/// A spoofed storm on a real server's port doubles its rate; `synwatchd`'s kernel filter thins the storm's clients,
/// so the packets that reach the daemon stay about the same while its figures follow the flood.
final class KernelSamplingEndToEndTests: XCTestCase {
    /// Seconds of each phase of the flood, and its rate in the first phase (the second doubles it). The engine
    /// halves its sample at every doubling of 2,000 SYN/s; both rates sit a quarter above such a step, so a replay a
    /// little slow or a sample a little short cannot leave the filter where it was.
    static let phase = 6
    static let rate = 5_000

    func testDoublingStormCostsTheDaemonNoMore() throws {
        try XCTSkipUnless(NetworkLab.isAvailable, "needs root, ip netns and tcpreplay")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3")
        try TestJournald.require()
        let lab = try ServerClientLab()
        let workspace = try Workspace()

        // A real listener answers the storm with SYN-ACKs (cookies once its queue is full): both directions are thinned.
        let server = try lab.startWebServer()
        defer { server.terminate() }
        let prefixes = ["198.18.128.0/17", "198.19.0.0/16"]
        for prefix in prefixes { try lab.routeToClient(prefix) }
        let daemon = try LabDaemon(lab, workspace)
        let socket = daemon.socket

        let victim = Endpoint(NetAddress(ServerClientLab.serverAddress)!, 80)
        var sent = 0
        var phases: [(rate: Int, captured: Double, oneIn: Int)] = []
        var cli = ""
        for (index, rate) in [Self.rate, 2 * Self.rate].enumerated() {
            let flood = workspace.path("flood-\(rate).pcap")
            let packets = rate * Self.phase
            // Every SYN from a source of its own, as in a storm of random addresses.
            try SpoofedBulk(
                seed: UInt64(index + 1),
                packets: packets,
                sources: packets,
                rate: Double(rate),
                victim: victim,
                sourcePrefix: NetPrefix(prefixes[index])
            ).write(to: flood)
            let replay = try lab.startReplayToServer(flood, pps: rate, timeLimit: Self.phase + 10)
            // The daemon's own packet count, over two seconds once the rate is known and the filter in place.
            sleep(UInt32(Self.phase - 3))
            let first = try status(socket)
            sleep(2)
            let second = try status(socket)
            let perSecond =
                Double(second.packets - first.packets) / max(0.5, second.time - first.time)
            phases.append((rate, perSecond, second.oneIn ?? 1))
            // What the operator sees while the storm goes on.
            for command in [["status"], ["top", "victims"]] {
                cli += try ChildProcess.run([Synwatch.executable.path] + command + ["--socket", socket]).output
            }
            replay.waitUntilExit()
            XCTAssertEqual(replay.terminationStatus, 0, "tcpreplay at \(rate)/s")
            sent += packets
        }
        let text = DaemonEndToEndTests.text(daemon.log)
        // Thinned harder as the storm doubled, and the daemon took about as many packets a second.
        XCTAssertGreaterThanOrEqual(phases[0].oneIn, 2, "\(phases)\n\(text)")
        XCTAssertGreaterThan(phases[1].oneIn, phases[0].oneIn, "\(phases)")
        XCTAssertLessThan(phases[1].captured, 1.4 * phases[0].captured, "\(phases)")
        // Unthinned, the second phase would bring 4 × rate packets a second: every SYN and its SYN-ACK.
        XCTAssertLessThan(phases[1].captured, Double(4 * Self.rate) / 2, "\(phases)")
        XCTAssertTrue(text.contains("Kernel filter thins a spoofed storm"), text)
        XCTAssertTrue(cli.contains("sampled  \(lab.serverPort) in the kernel: 198.18.0.10:80 1 client in "), cli)
        XCTAssertTrue(cli.contains("sampled 1 in \(phases[1].oneIn) by client (kernel)"), cli)
        var statusLines: [String] = []
        while let line = daemon.notify.wait(for: "STATUS=", timeout: 0.5) { statusLines.append(line) }
        XCTAssertTrue(
            statusLines.contains { $0.contains("198.18.0.10:80 random-source (kernel passes 1/") },
            "\(statusLines)"
        )

        // The service's figures are scaled back up: its SYNs, estimated, are the SYNs sent.
        let victims = try JSONSerialization.jsonObject(
            with: Data(try DaemonEndToEndTests.get(socket, "/v1/victims").utf8)
        )
        let services = (victims as? [String: Any])?["victims"] as? [[String: Any]] ?? []
        let service = try XCTUnwrap(
            services.first { $0["victim"] as? String == ServerClientLab.serverAddress && $0["port"] as? Int == 80 }
        )
        let synPackets = Double(service["syn_packets"] as? Int ?? 0)
        XCTAssertEqual(synPackets, Double(sent), accuracy: 0.15 * Double(sent), "\(service)")
        print(
            "storm at \(phases.map(\.rate)) SYN/s: daemon took \(phases.map { Int($0.captured) }) packets/s, "
                + "1 client in \(phases.map(\.oneIn)); service SYNs estimated \(Int(synPackets)) of \(sent) sent"
        )

        // Once the attack ends, the kernel passes every SYN again.
        try DaemonEndToEndTests.waitFor(timeout: 20) { try status(socket).oneIn == nil }
        XCTAssertTrue(DaemonEndToEndTests.text(daemon.log).contains("Kernel filter back to every SYN"))
        kill(daemon.process.processIdentifier, SIGTERM)
        try DaemonEndToEndTests.waitFor(timeout: 10) { !daemon.process.isRunning }
        XCTAssertEqual(daemon.process.terminationStatus, 0, DaemonEndToEndTests.text(daemon.log))
    }

    /// The daemon's packet count, when it was read, and the kernel filter's sampling of port 80 (nil: none).
    private func status(_ socket: String) throws -> (packets: Int, time: Double, oneIn: Int?) {
        let time = Date().timeIntervalSince1970
        let body = try DaemonEndToEndTests.get(socket, "/v1/status")
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let capture = json?["capture"] as? [String: Any]
        let sampling = (capture?["kernel_sampling"] as? [[String: Any]])?.first { $0["port"] as? Int == 80 }
        return (capture?["packets"] as? Int ?? 0, time, sampling?["one_in"] as? Int)
    }
}

import Foundation
import SynwatchDaemon
import SynwatchTestSupport
import XCTest

/// `synwatch status|attacks|top|watch` through the built binary against a real QueryServer of the test's own.
final class QueryCommandTests: XCTestCase {
    func testStatus() async throws {
        let server = try await RunningServer()
        let result = try Synwatch.run(["status", "--socket", server.path])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(
            result.standardOutput,
            """
            synwatchd 0.1.0, started 2027-01-15 08:00:00.000Z, configuration /etc/synwatch/synwatch.yaml (1 reload)
            capture  veth0: active, 120,000 packets, 24,100 packets/s, 3 kernel drops, 0 interface drops
            attacks  1 going on, 2 since start
                     198.18.0.2:80 random-source: 24,000 SYN/s, 23,501 half-open/s, ~23,000 sources
            traffic  100,000 SYNs, 1,500 completed, 0 refused, 0 timed out
            kernel   no TCP counters here (no /proc/net files)
            connections  120 established, 17 close-wait, 0 last-ack, 3 fin-wait, 0 closing, 90 time-wait (handshakes synwatch saw)
                         closed 400 client first, 290 server first, 1 both at once; RST 60 by clients, 12 by servers

            Tables (tracked now / capacity, evicted)
                           tracked  capacity  evicted
              handshakes     1,000   262,144       42
              victims            2     4,096        0
              sources            3    65,536        0
              backscatter        0     1,024        0
              connections      230   131,072        7

            """
        )
        let json = try Synwatch.run(["status", "--json", "--socket", server.path])
        XCTAssertEqual(try RunningServer.object(json.standardOutput)["version"] as? String, "0.1.0")
        try await server.stop()
    }

    func testAttacks() async throws {
        let server = try await RunningServer()
        let result = try Synwatch.run(["attacks", "--socket", server.path])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(
            result.standardOutput,
            """
            Attacks going on: 1
              #2  SYN flood on 198.18.0.2:80  random-source, since 2027-01-15 08:00:00.000Z
                  24,000 SYN/s, 23,501 half-open/s, completion ratio 2 %, ~23,000 sources
                  top sources (half-open): 198.19.0.7 (3)

            Recently ended: 1
              #1  SYN flood on 198.18.0.2:443  single-source, 2027-01-15 07:41:40.000Z to 2027-01-15 07:43:20.000Z, lasted 100 s
                  peak 900 SYN/s, 850 half-open/s, ~1 sources, 9,000 SYNs

            """
        )
        try await server.stop()
    }

    func testTop() async throws {
        let server = try await RunningServer()
        let sources = try Synwatch.run(["top", "sources", "--limit", "2", "--socket", server.path])
        XCTAssertEqual(sources.status, 0, sources.standardError)
        XCTAssertEqual(
            sources.standardOutput,
            """
              source      half-open  attempts  completed  services  last target
              198.19.0.2        500       500          0         3   198.18.0.2
              198.19.0.3         30        40         10         2   198.18.0.2

            """
        )
        let victims = try Synwatch.run(["top", "victims", "--socket", server.path])
        XCTAssertEqual(
            victims.standardOutput,
            """
              service                      SYNs  attempts  completed  refused  timed out
              198.18.0.2:80              91,000    90,500      1,000        0     80,000  attacked
              [2001:db8::1] (all ports)   9,000     9,000        500       10      8,000

            Connections whose handshake synwatch saw, by server-side state
              service        established  close-wait  last-ack  fin-wait  closing  time-wait  closed c/s/both  RST c/s
              198.18.0.2:80          120          17         0         3        0         90        400/290/1    60/12

            """
        )
        let bad = try Synwatch.run(["top", "sources", "--limit", "0", "--socket", server.path])
        XCTAssertNotEqual(bad.status, 0)
        try await server.stop()
    }

    func testWatch() async throws {
        let server = try await RunningServer()
        let output = Pipe()
        let process = try ChildProcess.start(
            [Synwatch.executable.path, "watch", "--socket", server.path],
            output: .pipe(output),
            errors: .inherit
        )
        for _ in 0..<500 where server.state.subscriberCount < 1 { try await Task.sleep(nanoseconds: 10_000_000) }
        server.state.broadcast([QueryFixtures.update(1), QueryFixtures.snapshot.recentAttacks[0]])
        // The first line arrives while the stream is still open: lines are flushed as they come.
        let first = try await Self.readLine(output.fileHandleForReading)
        XCTAssertEqual(
            first,
            "2027-01-15 08:00:01.000Z  attack_update  #1  198.18.0.2:80  random-source  100 SYN/s, 90 half-open/s, ~0 sources"
        )
        server.state.finishSubscriptions()
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(
            rest,
            "2027-01-15 07:43:20.000Z  attack_end     #1  198.18.0.2:443  single-source  lasted 100 s, peak 900 SYN/s\n"
        )
        try await server.stop()
    }

    func testNoDaemon() throws {
        let path = NSTemporaryDirectory() + "synwatch-none-\(UUID().uuidString.prefix(8)).sock"
        try assertEveryCommandFails(path, with: "synwatchd is not running (no socket at \(path))")
        // The socket a killed daemon leaves behind: bound, listened on by no one.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { unlink(path) }
        var address = sockaddr_un(path: path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(bound, 0, "bind: errno \(errno)")
        close(fd)
        try assertEveryCommandFails(path, with: "synwatchd is not running (nothing listens on \(path))")
    }

    private func assertEveryCommandFails(_ path: String, with message: String) throws {
        for command in [["status"], ["attacks"], ["top", "sources"], ["watch"]] {
            let result = try Synwatch.run(command + ["--socket", path])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertEqual(result.standardError, "Error: \(message)\n", "\(command)")
        }
    }

    func testPermissionDenied() async throws {
        try XCTSkipUnless(getuid() == 0, "needs root to run the client as another user")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser"), "no runuser")
        let server = try await RunningServer()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: server.folder)
        let message = try ChildProcess.run([
            "/usr/sbin/runuser", "-u", "nobody", "--", Synwatch.executable.path, "status", "--socket", server.path,
        ]).errors
        try XCTSkipIf(
            message.contains("Permission denied") && message.contains("synwatch:"),
            "nobody cannot run the binary here"
        )
        XCTAssertEqual(
            message,
            "Error: permission denied on \(server.path): run as root or as a member of the socket's group\n"
        )
        try await server.stop()
    }

    private static func readLine(_ handle: FileHandle) async throws -> String {
        var line = Data()
        while true {
            let byte = try XCTUnwrap(try handle.read(upToCount: 1))
            if byte.first == 10 { return String(decoding: line, as: UTF8.self) }
            line += byte
        }
    }
}

import Foundation
import Glibc
import SynwatchClient
import SynwatchDaemon
import SynwatchEngine
import SynwatchTestSupport
import XCTest

/// A real QueryServer on a real Unix socket, asked by QueryClient, raw sockets and curl.
final class QueryServerTests: XCTestCase {
    func testStatus() async throws {
        let server = try await RunningServer()
        let response = try await server.client.get("/v1/status")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "application/json")
        let status = try RunningServer.object(response.text)
        XCTAssertEqual(status["version"] as? String, "0.1.0")
        XCTAssertEqual(status["started_at"] as? Int, 1_800_000_000)
        XCTAssertEqual(status["configuration"] as? String, "/etc/synwatch/synwatch.yaml")
        XCTAssertEqual(status["reloads"] as? Int, 1)
        XCTAssertNotNil(status["uptime"] as? Double ?? (status["uptime"] as? Int).map(Double.init))
        let capture = try XCTUnwrap(status["capture"] as? [String: Any])
        XCTAssertEqual(capture["interfaces"] as? [String], ["veth0"])
        XCTAssertEqual(capture["state"] as? String, "active")
        XCTAssertEqual(capture["packets"] as? Int, 120_000)
        XCTAssertEqual(capture["packets_per_s"] as? Double, 24_100.25)
        XCTAssertEqual(capture["kernel_drops"] as? Int, 3)
        XCTAssertEqual(capture["interface_drops"] as? Int, 0)
        XCTAssertEqual(status["syn_packets"] as? Int, 100_000)
        XCTAssertEqual(status["attacks"] as? Int, 2)
        XCTAssertEqual(status["active_attacks"] as? Int, 1)
        let tables = try XCTUnwrap(status["tables"] as? [String: [String: Int]])
        XCTAssertEqual(tables["handshakes"]?["evictions"], 42)
        XCTAssertEqual(tables["handshakes"]?["capacity"], 262_144)
        XCTAssertEqual(tables["connections"], ["tracked": 230, "capacity": 131_072, "evictions": 7])
        let connections = try XCTUnwrap(status["connections"] as? [String: Int])
        XCTAssertEqual(connections["established"], 120)
        XCTAssertEqual(connections["fin_wait"], 3)
        XCTAssertEqual(connections["time_wait"], 90)
        XCTAssertEqual(connections["close_wait"], 17)
        XCTAssertEqual(connections["closes_server_first"], 290)
        XCTAssertEqual(connections["aborted_by_client"], 60)
        XCTAssertEqual(connections["opened"], 1_000)
        XCTAssertEqual(connections["closed"], 700)
        try await server.stop()
    }

    func testAttacksVictimsAndSources() async throws {
        let server = try await RunningServer()
        let attacks = try await RunningServer.object(server.client.get("/v1/attacks").text)
        let active = try XCTUnwrap(attacks["active"] as? [[String: Any]])
        XCTAssertEqual(active.count, 1)
        XCTAssertEqual(active.first?["attack_id"] as? Int, 2)
        XCTAssertEqual(active.first?["victim"] as? String, "198.18.0.2")
        XCTAssertEqual(active.first?["port"] as? Int, 80)
        XCTAssertEqual(active.first?["kind"] as? String, "random-source")
        XCTAssertEqual(active.first?["half_open_per_s"] as? Double, 23_500.5)
        let recent = try XCTUnwrap(attacks["recent"] as? [[String: Any]])
        XCTAssertEqual(recent.first?["event"] as? String, "attack_end")
        XCTAssertEqual(recent.first?["end_reason"] as? String, "quiet")

        let victimsBody = try await server.client.get("/v1/victims").text
        let victims = try XCTUnwrap(RunningServer.object(victimsBody)["victims"] as? [[String: Any]])
        XCTAssertEqual(victims.map { $0["victim"] as? String }, ["198.18.0.2", "2001:db8::1"])
        XCTAssertNil(victims[1]["port"], "a whole host has no port")
        XCTAssertEqual(
            victims[0]["connections"] as? [String: Int],
            [
                "established": 120, "fin_wait": 3, "closing": 0, "time_wait": 90, "close_wait": 17, "last_ack": 0,
                "closes_client_first": 400, "closes_server_first": 290, "closes_simultaneous": 1,
                "aborted_by_client": 60, "aborted_by_server": 12,
            ]
        )
        XCTAssertNil(victims[1]["connections"], "a whole host has no connections of its own")

        let sourcesBody = try await server.client.get("/v1/sources").text
        let sources = try XCTUnwrap(RunningServer.object(sourcesBody)["sources"] as? [[String: Any]])
        XCTAssertEqual(sources.map { $0["address"] as? String }, ["198.19.0.2", "198.19.0.3", "198.19.0.1"])
        XCTAssertEqual(sources.first?["half_open"] as? Int, 500)
        let two = try await RunningServer.object(server.client.get("/v1/sources?limit=2").text)["sources"] as? [Any]
        XCTAssertEqual(two?.count, 2)
        for bad in ["0", "1001", "x", ""] {
            let response = try await server.client.get("/v1/sources?limit=\(bad)")
            XCTAssertEqual(response.status, 400, bad)
            XCTAssertNotNil(try RunningServer.object(response.text)["error"] as? String)
        }
        try await server.stop()
    }

    func testUnknownPathAndWrongMethod() async throws {
        let server = try await RunningServer()
        let missing = try await server.client.get("/v2/status")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(try RunningServer.object(missing.text)["error"] as? String, "no such path: /v2/status")
        let post = try RawClient.exchange(
            server.path,
            "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        XCTAssertTrue(post.hasPrefix("HTTP/1.1 405 "), post)
        XCTAssertTrue(post.contains("\r\nAllow: GET\r\n"), post)
        let garbage = try RawClient.exchange(server.path, "HELLO\r\n\r\n")
        XCTAssertTrue(garbage.hasPrefix("HTTP/1.1 400 "), garbage)
        try await server.stop()
    }

    func testSocketModeParentDirectoryAndStaleSocket() async throws {
        let first = try await RunningServer()
        var info = stat()
        XCTAssertEqual(stat(first.path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        // A second server on a live socket refuses to take it over.
        let second = QueryServer(state: first.state, endpoint: .path(first.path), version: "0.1.0")
        do {
            try await second.run()
            XCTFail("a second server took over a live socket")
        } catch let error as QuerySocketError {
            XCTAssertEqual(error, .inUse(first.path))
        }
        // A socket file nobody listens on (a daemon that died) is replaced.
        let stale = first.folder + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        RawClient.withAddress(stale) { XCTAssertEqual(bind(fd, $0, $1), 0) }
        close(fd)
        let replacing = QueryServer(state: first.state, endpoint: .path(stale), version: "0.1.0")
        let task = Task { try await replacing.run() }
        try await replacing.waitUntilListening()
        let replaced = try await QueryClient(path: stale).get("/v1/status")
        XCTAssertEqual(replaced.status, 200)
        task.cancel()
        try await task.value
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "the socket file goes with the server")
        try await first.stop()
    }

    func testServesAnActivatedSocket() async throws {
        let folder = NSTemporaryDirectory() + "synwatch-query-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // What systemd hands over: a socket it bound and listens on.
        let path = folder + "/activated.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        RawClient.withAddress(path) { XCTAssertEqual(bind(fd, $0, $1), 0) }
        XCTAssertEqual(listen(fd, 16), 0)
        let server = QueryServer(
            state: DaemonState(QueryFixtures.snapshot),
            endpoint: .fileDescriptor(fd),
            version: "0.1.0"
        )
        let task = Task { try await server.run() }
        try await server.waitUntilListening()
        let response = try await QueryClient(path: path).get("/v1/status")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(try RunningServer.object(response.text)["version"] as? String, "0.1.0")
        task.cancel()
        try await task.value
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "systemd's socket file is not ours to remove")

        // A descriptor that does not listen is refused.
        let idle = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(idle) }
        let refusing = QueryServer(
            state: DaemonState(QueryFixtures.snapshot),
            endpoint: .fileDescriptor(idle),
            version: "0"
        )
        do {
            try await refusing.run()
            XCTFail("served a socket that does not listen")
        } catch let error as QuerySocketError {
            XCTAssertEqual(error, .notAListeningSocket(idle))
        }
    }

    func testUnknownGroupIsAClearError() async throws {
        let folder = NSTemporaryDirectory() + "synwatch-query-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = QueryServer(
            state: DaemonState(QueryFixtures.snapshot),
            endpoint: .path(folder + "/s.sock", group: "no-such-group-synwatch"),
            version: "0.1.0"
        )
        do {
            try await server.run()
            XCTFail("no error")
        } catch {
            XCTAssertEqual("\(error)", "no group named no-such-group-synwatch for the query socket")
        }
        do {
            try await server.waitUntilListening()
            XCTFail("no error")
        } catch {}
    }

    func testGroupOwnsTheSocket() async throws {
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4_096)
        try XCTSkipUnless(
            getgrnam_r("daemon", &group, &buffer, buffer.count, &result) == 0 && result != nil,
            "no group daemon"
        )
        let folder = NSTemporaryDirectory() + "synwatch-query-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = QueryServer(
            state: DaemonState(QueryFixtures.snapshot),
            endpoint: .path(folder + "/s.sock", group: "daemon"),
            version: "0.1.0"
        )
        let task = Task { try await server.run() }
        try await server.waitUntilListening()
        var info = stat()
        XCTAssertEqual(stat(folder + "/s.sock", &info), 0)
        XCTAssertEqual(info.st_gid, group.gr_gid)
        task.cancel()
        try await task.value
    }

    func testMetrics() async throws {
        let server = try await RunningServer()
        let response = try await server.client.get("/metrics")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        var help: Set<String> = []
        var types: [String: String] = [:]
        var samples: [String: Double] = [:]
        for line in response.text.split(separator: "\n").map(String.init) {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if line.hasPrefix("# HELP ") {
                help.insert(words[2])
            } else if line.hasPrefix("# TYPE ") {
                XCTAssertTrue(["counter", "gauge"].contains(words[3]), line)
                types[words[2]] = words[3]
            } else {
                let split = try XCTUnwrap(line.lastIndex(of: " "), line)
                let series = String(line[..<split])
                let name = String(series.prefix { $0 != "{" })
                XCTAssertTrue(help.contains(name) && types[name] != nil, "\(name) has no HELP or TYPE")
                if types[name] == "counter" { XCTAssertTrue(name.hasSuffix("_total"), name) }
                samples[series] = try XCTUnwrap(Double(line[line.index(after: split)...]), line)
            }
        }
        XCTAssertEqual(samples["synwatch_packets_total"], 120_000)
        XCTAssertEqual(samples["synwatch_kernel_drops_total"], 3)
        XCTAssertEqual(samples["synwatch_syn_packets_total"], 100_000)
        XCTAssertEqual(samples["synwatch_completions_total"], 1_500)
        XCTAssertEqual(samples["synwatch_attacks_total"], 2)
        XCTAssertEqual(samples["synwatch_attacks_active"], 1)
        XCTAssertEqual(samples["synwatch_table_capacity{table=\"handshakes\"}"], 262_144)
        XCTAssertEqual(samples["synwatch_table_evictions_total{table=\"handshakes\"}"], 42)
        XCTAssertEqual(samples["synwatch_decode_problems_total{reason=\"truncated_link_header\"}"] ?? 0, 0)
        XCTAssertTrue(samples.keys.contains { $0.hasPrefix("synwatch_decode_problems_total{reason=") })
        let attack = "{attack_id=\"2\",kind=\"random-source\",port=\"80\",victim=\"198.18.0.2\"}"
        XCTAssertEqual(samples["synwatch_attack_syn_per_second" + attack], 24_000)
        XCTAssertEqual(samples["synwatch_attack_half_open_per_second" + attack], 23_500.5)
        XCTAssertEqual(samples["synwatch_table_evictions_total{table=\"connections\"}"], 7)
        XCTAssertEqual(samples["synwatch_connections_tracked{state=\"time_wait\"}"], 90)
        XCTAssertEqual(samples["synwatch_connections_closed_total{first=\"server\"}"], 290)
        XCTAssertEqual(samples["synwatch_connections_aborted_total{by=\"client\"}"], 60)
        let service = "port=\"80\",state=\"time_wait\",victim=\"198.18.0.2\""
        XCTAssertEqual(samples["synwatch_connections{\(service)}"], 90)
        XCTAssertEqual(samples["synwatch_connections{port=\"80\",state=\"close_wait\",victim=\"198.18.0.2\"}"], 17)
        XCTAssertEqual(
            samples["synwatch_connection_closes_total{first=\"client\",port=\"80\",victim=\"198.18.0.2\"}"],
            400
        )
        XCTAssertEqual(samples["synwatch_connection_aborts_total{by=\"server\",port=\"80\",victim=\"198.18.0.2\"}"], 12)
        // Whole hosts have no connection series.
        XCTAssertFalse(samples.keys.contains { $0.hasPrefix("synwatch_connections{") && $0.contains("2001:db8::1") })
        try await server.stop()
    }

    /// swift-prometheus keeps its series between scrapes: those that leave the snapshot leave the scrape, a counter
    /// follows its figure, and a service that comes back after leaving the table starts again from its new count.
    func testMetricsFollowTheSnapshotWithoutLeakingSeries() async throws {
        let server = try await RunningServer()
        func series(_ name: String) async throws -> [String: Double] {
            let text = try await server.client.get("/metrics").text
            var found: [String: Double] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
                let split = try XCTUnwrap(line.lastIndex(of: " "))
                found[String(line[..<split])] = Double(line[line.index(after: split)...])
            }
            return found
        }
        let web = "synwatch_service_syn_packets_total{port=\"80\",victim=\"198.18.0.2\"}"
        let host = "synwatch_service_syn_packets_total{port=\"\",victim=\"2001:db8::1\"}"
        let scraped1 = try await series("synwatch_service_syn_packets_total")
        XCTAssertEqual(scraped1, [web: 91_000, host: 9_000])
        let scraped2 = try await series("synwatch_attack_syn_per_second")
        XCTAssertEqual(scraped2.count, 1)

        var snapshot = QueryFixtures.snapshot
        snapshot.services[0].synPackets = 95_000
        snapshot.services.removeLast()
        snapshot.occupancy.victims = 1
        snapshot.activeAttacks = []
        server.state.publish(snapshot)
        let scraped3 = try await series("synwatch_service_syn_packets_total")
        XCTAssertEqual(scraped3, [web: 95_000])
        let scraped4 = try await series("synwatch_attack_syn_per_second")
        XCTAssertEqual(scraped4, [:])
        let scraped5 = try await series("synwatch_connections")
        XCTAssertEqual(scraped5.count, 6)

        // Back in the table with fewer SYNs than it had: a new count, as a restarted counter.
        snapshot.services[0].synPackets = 10
        snapshot.serviceLimit = 0
        server.state.publish(snapshot)
        let scraped6 = try await series("synwatch_service_syn_packets_total")
        XCTAssertEqual(scraped6, [:])
        let scraped7 = try await series("synwatch_services_unexported")
        XCTAssertEqual(scraped7, ["synwatch_services_unexported": 1])
        snapshot.serviceLimit = 100
        server.state.publish(snapshot)
        let scraped8 = try await series("synwatch_service_syn_packets_total")
        XCTAssertEqual(scraped8, [web: 10])
        try await server.stop()
    }

    func testEventsStreamToConcurrentWatchers() async throws {
        let server = try await RunningServer()
        // A watcher that never reads its stream must not hold up the others.
        let idle = try RawClient.connect(server.path)
        defer { close(idle) }
        try RawClient.send(idle, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        server.state.broadcast([QueryFixtures.update(99)])  // before the two watchers subscribe: not theirs

        let path = server.path
        let watchers = (0..<2).map { _ in
            Task.detached { () throws -> [UInt64] in
                var ids: [UInt64] = []
                try await QueryClient(path: path).follow("/v1/events") { line in
                    let object = try RunningServer.object(line)
                    XCTAssertEqual(object["event"] as? String, "attack_update")
                    ids.append(UInt64(object["attack_id"] as? Int ?? 0))
                    return ids.count < 3
                }
                return ids
            }
        }
        // Every watcher, the idle one included, has subscribed once the count reaches three.
        for _ in 0..<500 where server.state.subscriberCount < 3 { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(server.state.subscriberCount, 3)
        for id in 1...3 {
            server.state.broadcast([QueryFixtures.update(UInt64(id))])
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        for watcher in watchers {
            let ids = try await watcher.value
            XCTAssertEqual(ids, [1, 2, 3])
        }
        // Watchers that hang up are forgotten.
        for _ in 0..<500 where server.state.subscriberCount > 1 { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(server.state.subscriberCount, 1)
        try await server.stop()
    }

    func testEventStreamIsChunkedNDJSON() async throws {
        let server = try await RunningServer()
        let fd = try RawClient.connect(server.path)
        defer { close(fd) }
        try RawClient.send(fd, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in 0..<500 where server.state.subscriberCount < 1 { try await Task.sleep(nanoseconds: 10_000_000) }
        server.state.broadcast([QueryFixtures.update(7)])
        server.state.finishSubscriptions()
        let text = try RawClient.readToEnd(fd)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"), text)
        XCTAssertTrue(text.contains("\r\nContent-Type: application/x-ndjson\r\n"), text)
        // NIOHTTP1's encoder writes this header's name in lower case; names are case-insensitive (RFC 9110).
        XCTAssertTrue(text.lowercased().contains("\r\ntransfer-encoding: chunked\r\n"), text)
        let line = QueryFixtures.update(7).json.rendered + "\n"
        XCTAssertTrue(text.hasSuffix("\r\n\r\n\(String(line.utf8.count, radix: 16))\r\n\(line)\r\n0\r\n\r\n"), text)
        try await server.stop()
    }

    func testTooManyClientsGet503() async throws {
        let server = try await RunningServer(limits: QueryServer.Limits(maxClients: 2))
        // Two event watchers take both places.
        let watchers = try (0..<2).map { _ in try RawClient.connect(server.path) }
        defer { watchers.forEach { close($0) } }
        for watcher in watchers { try RawClient.send(watcher, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n") }
        for _ in 0..<500 where server.state.subscriberCount < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        let refused = try await server.client.get("/v1/status")
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(
            try RunningServer.object(refused.text)["error"] as? String,
            "too many clients (at most 2); try again"
        )
        close(watchers[0])
        // The server frees the place once it sees the hang-up; each answer frees its own place just after sending.
        var status = 0
        for _ in 0..<100 {
            status = try await server.client.get("/v1/status").status
            if status == 200 { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertEqual(status, 200, "a place is free again")
        try await server.stop()
    }

    func testSlowAndOversizedRequests() async throws {
        let server = try await RunningServer(limits: QueryServer.Limits(maxRequestHead: 1_024, requestTimeout: 0.3))
        let slow = try RawClient.connect(server.path)
        defer { close(slow) }
        try RawClient.send(slow, "GET /v1/status HTTP/1.1\r\n")
        // Meanwhile others are served.
        let meanwhile = try await server.client.get("/v1/status")
        XCTAssertEqual(meanwhile.status, 200)
        XCTAssertTrue(try RawClient.readToEnd(slow).hasPrefix("HTTP/1.1 408 "))
        let large = "GET /v1/status HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 2_000) + "\r\n\r\n"
        XCTAssertTrue(try RawClient.exchange(server.path, large).hasPrefix("HTTP/1.1 431 "))
        // A head that goes on past the limit is answered at once, not at the timeout.
        let endless = "GET /v1/status HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 1_500)
        XCTAssertTrue(try RawClient.exchange(server.path, endless).hasPrefix("HTTP/1.1 431 "))
        let longTarget = "GET /" + String(repeating: "a", count: 2_000) + " HTTP/1.1\r\n\r\n"
        XCTAssertTrue(try RawClient.exchange(server.path, longTarget).hasPrefix("HTTP/1.1 431 "))
        let body = try RawClient.exchange(server.path, "GET /v1/status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertTrue(body.hasPrefix("HTTP/1.1 413 "), body)
        try await server.stop()
    }

    func testOutOfDescriptorsPausesAcceptingAndRecovers() async throws {
        let server = try await RunningServer()
        // Every descriptor taken but one, which the client's socket takes: the server's accept fails with EMFILE.
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        while case let fd = dup(0), fd >= 0 { fillers.append(fd) }
        XCTAssertEqual(errno, EMFILE)
        close(fillers.removeLast())
        let client = try RawClient.connect(server.path)
        defer { close(client) }
        try RawClient.send(client, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        // A blocking sleep, not `Task.sleep`, whose wake-up waits in libdispatch's queues: while they hold work, its
        // worker monitor opens /proc/<tid>/stat once a second and kills the process when it cannot, as here with every
        // descriptor taken (seen once in 74 runs beside busy loops: `_dispatch_workq_monitor_pools`, SIGILL).
        usleep(300_000)
        // Descriptors free again: the waiting connection is accepted and answered.
        fillers.forEach { close($0) }
        fillers = []
        XCTAssertTrue(try RawClient.readToEnd(client).hasPrefix("HTTP/1.1 200 OK\r\n"))
        let response = try await server.client.get("/v1/status")
        XCTAssertEqual(response.status, 200)
        try await server.stop()
    }

    func testCurl() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed")
        let server = try await RunningServer()
        for (path, code) in [
            ("/v1/status", "200"), ("/v1/attacks", "200"), ("/v1/victims", "200"),
            ("/v1/sources?limit=1", "200"), ("/metrics", "200"), ("/nope", "404"),
        ] {
            let (output, status) = try Curl.run([
                "-sS", "--unix-socket", server.path, "-w", "\n%{http_code}",
                "http://localhost\(path)",
            ])
            XCTAssertEqual(status, 0, output)
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.last.map(String.init), code, path)
            if path != "/metrics" {
                XCTAssertNoThrow(try RunningServer.object(lines.dropLast().joined(separator: "\n")), path)
            }
        }
        let (post, _) = try Curl.run([
            "-sS", "--unix-socket", server.path, "-X", "POST", "-w", "%{http_code}",
            "-o", "/dev/null", "http://localhost/v1/status",
        ])
        XCTAssertEqual(post, "405")

        // The event stream, line by line as events arrive.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sSN", "--unix-socket", server.path, "http://localhost/v1/events"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        for _ in 0..<500 where server.state.subscriberCount < 1 { try await Task.sleep(nanoseconds: 10_000_000) }
        server.state.broadcast([QueryFixtures.update(5)])
        server.state.finishSubscriptions()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(output, QueryFixtures.update(5).json.rendered + "\n")
        try await server.stop()
    }
}

/// curl as a child process.
enum Curl {
    static func run(_ arguments: [String]) throws -> (String, Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: output, as: UTF8.self), process.terminationStatus)
    }
}

/// Raw Unix stream sockets, for what QueryClient never sends.
enum RawClient {
    struct Failure: Error {
        var call: String
        var code: Int32
    }

    static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) rethrows {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var result: Int32 = 0
        withAddress(path) { result = Glibc.connect(fd, $0, $1) }
        guard result == 0 else {
            close(fd)
            throw Failure(call: "connect", code: errno)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw Failure(call: "send", code: errno)
        }
    }

    static func readToEnd(_ fd: Int32) throws -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 { throw Failure(call: "recv", code: errno) }
            if count == 0 { break }
            data += buffer[..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Whether the server ends the connection `fd` (end of stream or reset) within `timeout`.
    static func waitForHangUp(_ fd: Int32, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) >= 0 else { return false }
            guard entry.revents != 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return true }
        }
        return false
    }

    /// Sends `request` and reads the response to the end.
    static func exchange(_ path: String, _ request: String) throws -> String {
        let fd = try connect(path)
        defer { close(fd) }
        try send(fd, request)
        return try readToEnd(fd)
    }
}

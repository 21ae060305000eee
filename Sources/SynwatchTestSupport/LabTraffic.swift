import Foundation

/// A real TCP service for lab tests: a Python listener in the server's namespace that accepts, reads one line,
/// answers `ok` and closes, all in one non-blocking loop (no name lookups, no threads), so a slow client never
/// holds the others up. Bounded in time; killed with its lab at the latest.
public enum LabListener {
    /// The listener, run as `python3 -c SCRIPT ADDRESS PORT BACKLOG ACCEPT_PAUSE_MS LIFETIME_S FAST_OPEN`.
    public static let script = """
        import selectors, socket, sys, time
        address, port, backlog = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        pause, lifetime, fast_open = float(sys.argv[4]) / 1000, float(sys.argv[5]), sys.argv[6] == "1"
        listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fast_open:
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 256)
        listener.bind((address, port))
        listener.listen(backlog)
        listener.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, None)
        end = time.monotonic() + lifetime
        while time.monotonic() < end:
            for key, _ in selector.select(timeout=0.1):
                if key.data is None:
                    try:
                        connection, _ = listener.accept()
                    except BlockingIOError:
                        continue
                    connection.setblocking(False)
                    selector.register(connection, selectors.EVENT_READ, [b""])
                    if pause > 0:
                        time.sleep(pause)
                    continue
                connection = key.fileobj
                try:
                    chunk = connection.recv(256)
                except OSError:
                    chunk = b""
                key.data[0] += chunk
                if chunk and not key.data[0].endswith(b"\\n"):
                    continue
                if chunk:
                    try:
                        connection.send(b"ok\\n")
                    except OSError:
                        pass
                selector.unregister(connection)
                connection.close()
        """

    /// Starts a listener on `address`:`port` (the server's IPv4 address unless told) with `listen(backlog)`, pausing
    /// `acceptPause` seconds after each accept, for at most `lifetime` seconds, taking data in SYNs when `fastOpen`
    /// (TCP Fast Open, which the namespace's `net.ipv4.tcp_fastopen` must allow); returns once the kernel shows it
    /// listening.
    /// - Throws: `LabError` when it does not listen within 5 s.
    public static func start(
        in lab: ServerClientLab,
        address: String = ServerClientLab.serverAddress,
        port: UInt16,
        backlog: Int,
        acceptPause: Double = 0,
        lifetime: Int = 60,
        fastOpen: Bool = false
    ) throws -> Process {
        let process = try lab.start(
            in: lab.server,
            [
                "timeout", String(lifetime + 5), "/usr/bin/python3", "-c", script, address,
                String(port), String(backlog), String(acceptPause * 1000), String(lifetime), fastOpen ? "1" : "0",
            ]
        )
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let listening = try lab.serverNamespace.run(["ss", "-Htln", "sport = :\(port)"], mergingErrors: true).output
            if !listening.isEmpty { return process }
            usleep(50_000)
        }
        process.terminate()
        throw LabError(command: "listener on port \(port)", output: "not listening within 5 s")
    }
}

/// Real clients for lab tests: one Python process in the client's namespace that opens connections from given
/// source addresses at a given pace (or all at once), each with non-blocking connects left to the kernel (which
/// retransmits unanswered SYNs after 1, 3, 7… s), then sends a line and waits for the answer. Bounded in count and
/// time; says what came of every connection.
public struct LabCrowd {
    /// The client, run as `python3 -c SCRIPT SERVER PORT SOURCES PER_SOURCE RATE WAIT_S`: SOURCES comma-separated,
    /// RATE connections a second (0: all at once), WAIT_S how long to wait for the last ones after the last
    /// connect. Prints one JSON object.
    public static let script = """
        import errno, json, resource, selectors, socket, sys, time
        server, port, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
        per_source, rate, wait = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        plan = [source for _ in range(per_source) for source in sources]
        selector = selectors.DefaultSelector()
        started = time.monotonic()
        counts = {"attempted": 0, "connected": 0, "answered": 0, "failed": 0}
        errors, connect_times, last_answer, open_count, next_index, deadline = {}, [], 0.0, 0, 0, None
        def finish(sock, error=None):
            global open_count
            selector.unregister(sock)
            sock.close()
            open_count -= 1
            if error is not None:
                counts["failed"] += 1
                errors[error] = errors.get(error, 0) + 1
        def name(number):
            return errno.errorcode.get(number, str(number))
        while True:
            now = time.monotonic() - started
            while next_index < len(plan) and (rate <= 0 or next_index / rate <= now):
                sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET)
                sock.setblocking(False)
                sock.bind((plan[next_index], 0))
                result = sock.connect_ex((server, port))
                counts["attempted"] += 1
                open_count += 1
                selector.register(sock, selectors.EVENT_WRITE, {"begun": time.monotonic(), "data": None})
                if result not in (0, errno.EINPROGRESS):
                    finish(sock, name(result))
                next_index += 1
            if next_index == len(plan):
                if deadline is None:
                    deadline = time.monotonic() + wait
                if open_count == 0 or time.monotonic() > deadline:
                    break
            for key, _ in selector.select(timeout=0.005 if next_index < len(plan) else 0.1):
                sock, state = key.fileobj, key.data
                if state["data"] is None:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        finish(sock, name(error))
                        continue
                    counts["connected"] += 1
                    connect_times.append(time.monotonic() - state["begun"])
                    state["data"] = b""
                    try:
                        sock.send(b"hello\\n")
                    except OSError as failure:
                        finish(sock, name(failure.errno))
                        continue
                    selector.modify(sock, selectors.EVENT_READ, state)
                    continue
                try:
                    chunk = sock.recv(256)
                except OSError as failure:
                    finish(sock, name(failure.errno))
                    continue
                state["data"] += chunk
                if state["data"].endswith(b"\\n"):
                    counts["answered"] += 1
                    last_answer = time.monotonic() - started
                    finish(sock)
                elif not chunk:
                    finish(sock, "EOF")
        counts["unfinished"] = open_count
        counts["errors"] = errors
        counts["connects_after_retransmission"] = sum(1 for t in connect_times if t > 0.9)
        counts["slowest_connect"] = round(max(connect_times, default=0), 3)
        counts["last_answer"] = round(last_answer, 3)
        counts["elapsed"] = round(time.monotonic() - started, 3)
        print(json.dumps(counts), flush=True)
        """

    /// What came of the crowd's connections, from the clients' side.
    public struct Outcome: Decodable, CustomStringConvertible {
        public var attempted: Int
        /// Handshakes the client saw complete.
        public var connected: Int
        /// Connections that got the server's answer.
        public var answered: Int
        public var failed: Int
        /// Still waiting when the crowd gave up.
        public var unfinished: Int
        /// Failures by errno name.
        public var errors: [String: Int]
        /// Connections whose handshake took a retransmitted SYN (over 0.9 s).
        public var connectsAfterRetransmission: Int
        public var slowestConnect: Double
        /// Seconds from the first connect to the last answer.
        public var lastAnswer: Double
        public var elapsed: Double

        public var description: String {
            "\(answered)/\(attempted) answered (\(connected) connected, \(failed) failed \(errors), \(unfinished) "
                + "unfinished; \(connectsAfterRetransmission) needed a retransmitted SYN, slowest handshake "
                + "\(slowestConnect) s, last answer at \(lastAnswer) s of \(elapsed) s)"
        }
    }

    public let process: Process
    private let output: Pipe

    /// Starts `perSource` connections from each of `sources` to the server's address of their family:`port`, `rate` a
    /// second (nil: all at once), round-robin over the sources; waits at most `wait` seconds after the last connect.
    public init(
        in lab: ServerClientLab,
        port: UInt16,
        sources: [String],
        perSource: Int,
        rate: Double?,
        wait: Double
    ) throws {
        precondition(!sources.isEmpty && perSource > 0 && sources.count * perSource <= 20_000)
        let total = Double(sources.count * perSource)
        let bound = Int(((rate.map { total / $0 } ?? 0) + wait + 10).rounded(.up))
        // IPv6 clients connect to the server's IPv6 address.
        let server = sources[0].contains(":") ? ServerClientLab.serverAddress6 : ServerClientLab.serverAddress
        output = Pipe()
        let process = try ChildProcess.start(
            lab.clientNamespace.inside([
                "timeout", String(bound), "/usr/bin/python3", "-c", Self.script, server,
                String(port), sources.joined(separator: ","), String(perSource), String(rate ?? 0), String(wait),
            ]),
            output: .pipe(output)
        )
        self.process = process
    }

    /// Waits for the crowd to finish and reads its outcome.
    /// - Throws: `LabError` when the script printed no outcome.
    public func outcome() throws -> Outcome {
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(Outcome.self, from: data)
        } catch {
            throw LabError(
                command: "crowd (exit \(process.terminationStatus))",
                output: String(decoding: data, as: UTF8.self)
            )
        }
    }
}

/// A real client that uses TCP Fast Open, for lab tests: one Python process in the client's namespace that opens
/// connections one after another at a given pace, each sending its line with `MSG_FASTOPEN` (the first fetches the
/// server's cookie; the others carry the line in their SYN) and reading the answer. Bounded in count and time.
public enum LabFastOpenClient {
    /// The client, run as `python3 -c SCRIPT SERVER PORT COUNT RATE`. Prints one JSON object.
    public static let script = """
        import json, socket, sys, time
        server, port, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        started, answered, failed, errors = time.monotonic(), 0, 0, {}
        for index in range(count):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock = socket.socket()
            try:
                # Blocking: without a cookie yet, the kernel connects first and then sends.
                sock.sendto(b"hello\\n", socket.MSG_FASTOPEN, (server, port))
                sock.settimeout(5)
                if sock.recv(16).startswith(b"ok"):
                    answered += 1
                else:
                    failed += 1
            except OSError as error:
                failed += 1
                errors[str(error)] = errors.get(str(error), 0) + 1
            finally:
                sock.close()
        print(json.dumps({"answered": answered, "failed": failed, "errors": errors}), flush=True)
        """

    /// What came of the client's connections.
    public struct Outcome: Decodable, CustomStringConvertible {
        /// Connections that got the listener's answer.
        public var answered: Int
        public var failed: Int
        /// Failures by Python's description of the error.
        public var errors: [String: Int]

        public var description: String { "\(answered) answered, \(failed) failed \(errors)" }
    }

    /// Runs `count` connections to `ServerClientLab.serverAddress`:`port`, `rate` a second, to their end.
    /// - Throws: `LabError` when the client did not run to its end.
    public static func run(in lab: ServerClientLab, port: UInt16, count: Int, rate: Double) throws -> Outcome {
        precondition(count > 0 && rate > 0 && Double(count) / rate <= 60)
        let bound = Int((Double(count) / rate).rounded(.up)) + 15
        let output = try lab.clientNamespace.check([
            "timeout", String(bound), "/usr/bin/python3", "-c", script, ServerClientLab.serverAddress, String(port),
            String(count), String(rate),
        ])
        do {
            return try JSONDecoder().decode(Outcome.self, from: Data(output.utf8))
        } catch {
            throw LabError(command: "fast open client", output: output)
        }
    }
}

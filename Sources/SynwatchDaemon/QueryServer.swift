import FlyingSocks
import Foundation
import Glibc
import Synchronization
import SynwatchProtocol

/// The daemon's query API: HTTP/1.1 and JSON over a Unix stream socket, one request per connection.
///
/// Serves `GET /v1/status`, `/v1/attacks`, `/v1/victims`, `/v1/sources`, `/v1/events` (a live NDJSON stream)
/// and `/metrics` (Prometheus text) from a `DaemonState`, which it only reads: the capture loop never waits
/// for it. Every client is bounded: the request head in size and time, each write in time, the number of
/// clients in all (past it, 503). It is one long-running task, `run()`, as a swift-service-lifecycle `Service`.
///
/// Built on FlyingSocks (FlyingFox's socket layer) rather than FlyingFox's `HTTPServer`, which binds its own
/// socket (no socket activation), and has no client limit, no request-head limit and no read timeout.
public final class QueryServer: Sendable {
    /// Bounds on what one client can take.
    public struct Limits: Sendable {
        /// Clients served at once (event watchers included); more get 503.
        public var maxClients: Int
        /// Bytes of request line and headers.
        public var maxRequestHead: Int
        /// Seconds a client has to send its whole request head.
        public var requestTimeout: Double
        /// Seconds one write may wait for a client that does not read before it is dropped.
        public var writeTimeout: Double

        public init(
            maxClients: Int = 64,
            maxRequestHead: Int = 8_192,
            requestTimeout: Double = 5,
            writeTimeout: Double = 10
        ) {
            self.maxClients = maxClients
            self.maxRequestHead = maxRequestHead
            self.requestTimeout = requestTimeout
            self.writeTimeout = writeTimeout
        }
    }

    public let endpoint: QueryEndpoint
    public let limits: Limits
    private let routes: QueryRoutes
    private let listening = Mutex<Listening>(.pending([]))
    private let clients = Mutex((served: 0, refused: 0))

    private enum Listening {
        case pending([CheckedContinuation<Void, any Error>])
        case listening
        case failed(any Error)
    }

    /// A server of `state` at `endpoint`.
    /// - Parameters:
    ///   - state: the daemon's state, read for every request.
    ///   - endpoint: a path to create the socket at (default `/run/synwatch/synwatch.sock`) or a socket from
    ///     systemd socket activation.
    ///   - version: the daemon's version, shown by `/v1/status` and `/metrics`.
    ///   - limits: bounds on clients.
    public init(
        state: DaemonState,
        endpoint: QueryEndpoint = .path(QueryEndpoint.defaultPath),
        version: String,
        limits: Limits = Limits()
    ) {
        self.endpoint = endpoint
        self.limits = limits
        routes = QueryRoutes(state: state, version: version)
    }

    /// Returns once the socket listens (for `READY=1`).
    /// - Throws: the error that kept `run()` from listening.
    public func waitUntilListening() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, any Error>? = listening.withLock { listening in
                switch listening {
                case .pending(let waiting):
                    listening = .pending(waiting + [continuation])
                    return nil
                case .listening: return .success(())
                case .failed(let error): return .failure(error)
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// Listens and serves until the task is cancelled, then closes the socket (and removes the file it created).
    /// - Throws: `QuerySocketError` when the socket cannot be set up; errors of the socket layer.
    public func run() async throws {
        let fd: Int32
        let pool: SocketPool<ePoll> = .ePoll()
        let listener: AsyncSocket
        do {
            switch endpoint {
            case .path(let path, let group):
                fd = try QuerySocket.bindAndListen(path: path, group: group, backlog: Int32(limits.maxClients))
            case .fileDescriptor(let activated):
                try QuerySocket.validateActivated(activated)
                fd = activated
            }
            try await pool.prepare()
            listener = try AsyncSocket(socket: Socket(file: .init(rawValue: fd)), pool: pool)
        } catch {
            settle(.failed(error))
            throw error
        }
        defer {
            close(fd)
            if case .path(let path, _) = endpoint { unlink(path) }
        }
        settle(.listening)

        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pool.run() }
                group.addTask { try await self.accept(on: listener) }
                // Either ending (cancellation, a failing pool) ends the other.
                try await group.next()
                group.cancelAll()
            }
        } catch  where Task.isCancelled {
            return
        }
    }

    private func settle(_ state: Listening) {
        let waiting = listening.withLock { listening in
            defer { listening = state }
            if case .pending(let waiting) = listening { return waiting }
            return []
        }
        for continuation in waiting {
            if case .failed(let error) = state { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    private func accept(on listener: AsyncSocket) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let client: AsyncSocket
                do {
                    client = try await listener.accept()
                } catch  where !Task.isCancelled {
                    // Out of descriptors or memory for a moment: a pause, rather than a dead query socket.
                    try await Task.sleep(nanoseconds: 100_000_000)
                    continue
                }
                let admitted = clients.withLock { clients in
                    if clients.served < limits.maxClients {
                        clients.served += 1
                        return true
                    }
                    clients.refused += 1
                    return false
                }
                if admitted {
                    group.addTask {
                        await self.serve(client)
                        self.clients.withLock { $0.served -= 1 }
                    }
                } else {
                    group.addTask {
                        await self.refuse(client)
                        self.clients.withLock { $0.refused -= 1 }
                    }
                }
            }
        }
    }

    /// Answers 503 to a client past the limit; past twice the limit, just hangs up.
    private func refuse(_ client: AsyncSocket) async {
        defer { try? client.close() }
        guard clients.withLock({ $0.refused }) <= limits.maxClients else { return }
        let response = Response.error(503, "too many clients (at most \(limits.maxClients)); try again")
        _ = await write(response.encoded, to: client, timeout: 1)
    }

    private func serve(_ client: AsyncSocket) async {
        defer { try? client.close() }
        let head: RequestHead
        switch await readHead(from: client) {
        case .head(let read): head = read
        case .answer(let response):
            _ = await write(response.encoded, to: client, timeout: limits.writeTimeout)
            return
        case .gone: return
        }
        switch routes.answer(head, now: Self.now()) {
        case .response(let response): _ = await write(response.encoded, to: client, timeout: limits.writeTimeout)
        case .events: await streamEvents(to: client, chunked: head.version == "HTTP/1.1")
        }
    }

    private enum HeadResult {
        case head(RequestHead)
        case answer(Response)
        case gone
    }

    /// The request head, within the size and time limits.
    private func readHead(from client: AsyncSocket) async -> HeadResult {
        let limit = limits.maxRequestHead
        do {
            return try await withDeadline(seconds: limits.requestTimeout) {
                var buffer: [UInt8] = []
                while true {
                    let searchFrom = max(0, buffer.count - 3)
                    buffer += try await client.read(atMost: 4_096)
                    if let end = Self.endOfHead(in: buffer, from: searchFrom) {
                        guard end <= limit else { break }
                        guard let head = RequestHead(buffer[..<end]) else {
                            return .answer(.error(400, "malformed request"))
                        }
                        return .head(head)
                    }
                    if buffer.count > limit { break }
                }
                return .answer(.error(431, "request head larger than \(limit) bytes"))
            }
        } catch is DeadlineExceeded {
            return .answer(.error(408, "no complete request within \(limits.requestTimeout) s"))
        } catch {
            return .gone
        }
    }

    /// Where `\r\n\r\n` starts in `buffer`, looking from `start`.
    private static func endOfHead(in buffer: [UInt8], from start: Int) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in start...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// Follows the daemon's events as NDJSON, one flushed line (and chunk) per event, until the client leaves,
    /// stops reading for longer than the write timeout, or the server stops.
    private func streamEvents(to client: AsyncSocket, chunked: Bool) async {
        // Subscribed before the header goes out: a client that has the header gets every later event.
        let events = routes.state.subscribe()
        var header = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\n"
        header += (chunked ? "Transfer-Encoding: chunked\r\n" : "") + "Connection: close\r\n\r\n"
        guard await write(Array(header.utf8), to: client, timeout: limits.writeTimeout) else { return }
        let timeout = limits.writeTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    let line = event.json.rendered + "\n"
                    let data = chunked ? String(line.utf8.count, radix: 16) + "\r\n" + line + "\r\n" : line
                    guard await self.write(Array(data.utf8), to: client, timeout: timeout) else { return }
                }
                // The daemon ended the subscriptions (shutdown): end the body properly.
                if chunked && !Task.isCancelled {
                    _ = await self.write(Array("0\r\n\r\n".utf8), to: client, timeout: 1)
                }
            }
            group.addTask {
                // Notices the client hanging up while no events flow; anything it sends is discarded.
                while (try? await client.read(atMost: 512)) != nil {}
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Writes `bytes` within `timeout` seconds.
    /// - Returns: false when the client is gone or too slow.
    private func write(_ bytes: [UInt8], to client: AsyncSocket, timeout: Double) async -> Bool {
        do {
            try await withDeadline(seconds: timeout) { try await client.write(Data(bytes)) }
            return true
        } catch {
            return false
        }
    }

    private static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// An operation on a client ran out of time.
struct DeadlineExceeded: Error {}

/// The result of `operation`, or `DeadlineExceeded` after `seconds` (the operation is then cancelled).
func withDeadline<T: Sendable>(
    seconds: Double,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask(operation: operation)
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw CancellationError() }
        return result
    }
}

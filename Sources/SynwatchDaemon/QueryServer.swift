import FlyingSocks
import Foundation
import Glibc
import Synchronization
import SynwatchProtocol

/// The daemon's query API: HTTP/1.1 and JSON over a Unix stream socket, one request per connection.
///
/// Serves `GET /v1/status`, `/v1/attacks`, `/v1/victims`, `/v1/sources`, `/v1/events` (a live NDJSON stream)
/// and `/metrics` (Prometheus text) from a `DaemonState`, which it only reads: the capture loop never waits
/// for it. The socket stays fair (see `Limits`): clients that say nothing cannot keep the operator's query out,
/// nor can one user's watchers, and a burst of connections never fills the listen queue. It is one long-running
/// task, `run()`, as a swift-service-lifecycle `Service`.
///
/// Built on FlyingSocks (FlyingFox's socket layer) rather than FlyingFox's `HTTPServer`: that binds a socket of
/// its own (no socket activation, no mode or group set before `listen`), closes a malformed request without an
/// answer, and has no bound on request heads, their time, or clients.
public final class QueryServer: Sendable {
    /// Bounds on what clients can take, chosen so an operator's query is answered however others behave.
    public struct Limits: Sendable {
        /// Connections past their request (answers being written, event watchers); more get 503. Well under the
        /// daemon's 1,024 descriptors, with room for the capture and the hooks.
        public var maxClients: Int
        /// Of those, what one user (peer uid) may hold: a user's runaway watchers leave room for everyone else.
        public var maxClientsPerUser: Int
        /// Connections still sending their request head. A new one beyond this closes the one waiting longest,
        /// so idle connections can never crowd out a client that asks at once (as every real client does).
        public var maxWaiting: Int
        /// Bytes of request line and headers.
        public var maxRequestHead: Int
        /// Seconds a client has to send its whole request head.
        public var requestTimeout: Double
        /// Seconds one write of an answer may wait for a client that does not read before it is dropped.
        public var writeTimeout: Double
        /// Seconds an event watcher's socket buffer may stay full before the watcher is dropped: one that reads
        /// catches up within it, one that stopped reading must not hold its subscription and a full buffer.
        /// Meanwhile its backlog is bounded by its subscription (`DaemonState.subscriberBuffer` events).
        public var watcherStallTimeout: Double
        /// The listen queue of a socket the server creates: the kernel's own ceiling (`net.core.somaxconn`), so a
        /// burst of connections waits in the queue for the accept loop rather than failing with EAGAIN.
        /// systemd's `Backlog=` sets it for an activated socket (SOMAXCONN by default).
        public var backlog: Int32

        public init(
            maxClients: Int = 256,
            maxClientsPerUser: Int = 64,
            maxWaiting: Int = 64,
            maxRequestHead: Int = 8_192,
            requestTimeout: Double = 5,
            writeTimeout: Double = 10,
            watcherStallTimeout: Double = 2,
            backlog: Int32 = 4_096
        ) {
            self.maxClients = maxClients
            self.maxClientsPerUser = maxClientsPerUser
            self.maxWaiting = maxWaiting
            self.maxRequestHead = maxRequestHead
            self.requestTimeout = requestTimeout
            self.writeTimeout = writeTimeout
            self.watcherStallTimeout = watcherStallTimeout
            self.backlog = backlog
        }
    }

    public let endpoint: QueryEndpoint
    public let limits: Limits
    private let routes: QueryRoutes
    private let admission: Admission
    private let listening = Mutex<Listening>(.pending([]))

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
        admission = Admission(limits)
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
                fd = try QuerySocket.bindAndListen(path: path, group: group, backlog: limits.backlog)
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

    /// Accepts as fast as clients come, each served by a task of its own, so the listen queue drains at once.
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
                let fd = client.socket.file.rawValue
                // Not inherited by hook processes.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                let id = admission.arrive(fd)
                group.addTask {
                    await self.serve(client, id: id)
                    self.admission.leave(id)
                    try? client.close()
                }
            }
        }
    }

    private func serve(_ client: AsyncSocket, id: UInt64) async {
        let head: RequestHead
        switch await readHead(from: client) {
        case .head(let read): head = read
        case .answer(let response):
            admission.stopWaiting(id)
            _ = await write(response.encoded, to: client, timeout: limits.writeTimeout)
            return
        case .gone: return
        }
        let user = Self.peerUser(client.socket.file.rawValue)
        if let refusal = admission.admit(id, user: user) {
            _ = await write(Response.error(503, refusal).encoded, to: client, timeout: 1)
            return
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
    /// stops reading for longer than the watcher stall timeout, or the server stops.
    private func streamEvents(to client: AsyncSocket, chunked: Bool) async {
        // Subscribed before the header goes out: a client that has the header gets every later event.
        let events = routes.state.subscribe()
        var header = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\n"
        header += (chunked ? "Transfer-Encoding: chunked\r\n" : "") + "Connection: close\r\n\r\n"
        guard await write(Array(header.utf8), to: client, timeout: limits.writeTimeout) else { return }
        let timeout = limits.watcherStallTimeout
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

    /// The user id of the peer process (`SO_PEERCRED`), nil if the kernel does not tell.
    private static func peerUser(_ fd: Int32) -> uid_t? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 ? credentials.uid : nil
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

/// `struct ucred`, which Glibc does not export to Swift: the same layout.
private struct PeerCredentials {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}

/// Who holds the query socket: connections still sending their request head, and those past it, per user.
private final class Admission: Sendable {
    private struct State {
        var next: UInt64 = 0
        /// Connections waiting for their head, by arrival (ids grow), with their descriptors.
        var waiting: [UInt64: Int32] = [:]
        /// Connections past their head, and their user.
        var admitted: [UInt64: uid_t?] = [:]
        var perUser: [uid_t: Int] = [:]
    }

    private let limits: QueryServer.Limits
    private let state = Mutex(State())

    init(_ limits: QueryServer.Limits) { self.limits = limits }

    /// Registers a new connection as waiting for its head; past `maxWaiting`, ends the wait of the oldest.
    func arrive(_ fd: Int32) -> UInt64 {
        state.withLock { state in
            let id = state.next
            state.next += 1
            if state.waiting.count >= limits.maxWaiting, let oldest = state.waiting.keys.min() {
                // Its reader sees the end of the stream and closes it. Under the lock: the descriptor is still
                // open, since a connection leaves `waiting` before it is closed.
                shutdown(state.waiting.removeValue(forKey: oldest)!, Int32(SHUT_RDWR))
            }
            state.waiting[id] = fd
            return id
        }
    }

    /// The connection's head is in (or it is answered without one): it is no longer waiting.
    func stopWaiting(_ id: UInt64) {
        _ = state.withLock { $0.waiting.removeValue(forKey: id) }
    }

    /// Admits a connection whose head is in.
    /// - Returns: nil, or why it is refused (503).
    func admit(_ id: UInt64, user: uid_t?) -> String? {
        state.withLock { state in
            state.waiting.removeValue(forKey: id)
            guard state.admitted.count < limits.maxClients else {
                return "too many clients (at most \(limits.maxClients)); try again"
            }
            if let user {
                guard state.perUser[user, default: 0] < limits.maxClientsPerUser else {
                    return "too many clients of user \(user) (at most \(limits.maxClientsPerUser)); try again"
                }
                state.perUser[user, default: 0] += 1
            }
            state.admitted[id] = .some(user)
            return nil
        }
    }

    /// Forgets a connection, before it is closed.
    func leave(_ id: UInt64) {
        state.withLock { state in
            state.waiting.removeValue(forKey: id)
            guard let entry = state.admitted.removeValue(forKey: id), let user = entry else { return }
            state.perUser[user]! -= 1
            if state.perUser[user] == 0 { state.perUser.removeValue(forKey: user) }
        }
    }
}

import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
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
/// On SwiftNIO: NIOHTTP1 decodes requests and encodes answers, `ServerBootstrap` serves the socket that
/// `QuerySocket` (or systemd) bound, so its mode and group are set before anyone can connect.
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
        /// Set on an activated socket too (NIO would leave 128 there, below systemd's default of SOMAXCONN).
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
    ///   - paths: the paths served; others are 404.
    ///   - limits: bounds on clients.
    public init(
        state: DaemonState,
        endpoint: QueryEndpoint = .path(QueryEndpoint.defaultPath),
        version: String,
        paths: QueryRoutes.Paths = .all,
        limits: Limits = Limits()
    ) {
        self.endpoint = endpoint
        self.limits = limits
        routes = QueryRoutes(state: state, version: version, paths: paths)
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
    /// - Throws: `QuerySocketError` when the socket cannot be set up; errors of NIO.
    public func run() async throws {
        let fd: Int32
        let name: String
        do {
            switch endpoint {
            case .path(let path, let group):
                fd = try QuerySocket.bindAndListen(path: path, group: group, backlog: limits.backlog)
                name = path
            case .fileDescriptor(let activated):
                try QuerySocket.validateActivated(activated)
                fd = activated
                name = "file descriptor \(fd)"
            case .tcp(let bound, let address):
                fd = bound
                name = address.description
            }
        } catch {
            // Nothing was bound: a file at the path, if any, is not ours to remove.
            settle(.failed(error))
            throw error
        }
        defer { if case .path(let path, _) = endpoint { unlink(path) } }
        let listener: NIOAsyncChannel<Accepted, Never>
        do {
            listener = try await Self.listen(on: fd, limits: limits, admission: admission)
            // NIO listens again on a socket it is handed, with a backlog of 128: set ours back.
            guard Glibc.listen(fd, limits.backlog) == 0 else {
                let code = errno
                try? await listener.channel.close()
                throw QuerySocketError.system(call: "listen", path: name, errno: code)
            }
        } catch {
            settle(.failed(error))
            throw error
        }
        settle(.listening)
        // Connections accepted but not yet served are closed with the server, and so are any accepted later.
        defer { admission.stop() }

        do {
            // Closes the listening socket once the server stops.
            try await listener.executeThenClose { connections in
                // Accepts as fast as clients come, each served by a task of its own, so the listen queue drains at
                // once; when the server stops, so do they.
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in connections {
                        group.addTask { await self.serve(accepted) }
                    }
                    group.cancelAll()
                }
            }
        } catch  where Task.isCancelled {
            return
        }
    }

    /// A connection as the accept loop hands it over: its pipeline made, not yet reading.
    ///
    /// Not yet an `NIOAsyncChannel`: the accept loop's stream drops what it holds when the server stops, and NIO traps
    /// when an `NIOAsyncChannel` goes unfinished (swift-nio issue 2813). A plain channel can be dropped;
    /// `Admission` closes it.
    private struct Accepted: Sendable {
        var channel: any Channel
        var id: UInt64
    }

    /// NIO's server on the listening socket `fd`: each connection decoded by NIOHTTP1 within the head limits, and
    /// registered with `admission` as it is accepted. Accept errors it can recover from (out of descriptors or
    /// memory) pause accepting for a moment (NIO's `AcceptBackoffHandler`) rather than ending the server.
    private static func listen(
        on fd: Int32,
        limits: Limits,
        admission: Admission
    ) async throws -> NIOAsyncChannel<Accepted, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // Nothing is read before `serve` wraps the connection: what came earlier would pass no one.
            .childChannelOption(.autoRead, value: false)
            .bind(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let headGuard = RequestHeadGuard(
                        limit: limits.maxRequestHead,
                        timeout: limits.requestTimeout,
                        eventLoop: channel.eventLoop
                    )
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(headGuard.bytes)
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try pipeline.addHandler(headGuard.head)
                    return Accepted(channel: channel, id: admission.arrive(channel))
                }
            }
    }

    /// Wraps an accepted connection for Swift concurrency and starts reading it; on its event loop.
    /// - Throws: when the connection is no longer active (a wrapper made on a closed one traps when released). NIO
    ///   activates a connection before the accept loop has it, so that is one closed or closing (seen: clients that
    ///   hung up at once).
    private static func startReading(_ channel: any Channel) throws -> Connection {
        guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let connection = try Connection(wrappingChannelSynchronously: channel)
        try? channel.syncOptions?.setOption(.autoRead, value: true)
        return connection
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

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    private func serve(_ accepted: Accepted) async {
        let (channel, id) = (accepted.channel, accepted.id)
        defer { admission.leave(id) }
        guard let connection = try? await channel.eventLoop.submit({ try Self.startReading(channel) }).get() else {
            channel.close(promise: nil)
            return
        }
        try? await connection.executeThenClose { inbound, outbound in
            var requests = inbound.makeAsyncIterator()
            let head: HTTPRequestHead
            do {
                guard case .head(let read)? = try await requests.next() else { return }
                head = read
            } catch {
                admission.stopWaiting(id)
                if let answer = answer(to: error) {
                    _ = await send(answer.parts, on: channel, within: limits.writeTimeout)
                }
                return
            }
            let user = await Self.peerUser(channel)
            if let refusal = admission.admit(id, user: user) {
                _ = await send(Response.error(503, refusal).parts, on: channel, within: 1)
                return
            }
            let request = Request(head)
            switch routes.answer(request, now: Clocks.wall().seconds) {
            case .response(let response): _ = await send(response.parts, on: channel, within: limits.writeTimeout)
            case .events:
                await streamEvents(to: channel, through: outbound, version: request.version) {
                    // Notices the client hanging up while no events flow; anything it sends is discarded.
                    while (try? await requests.next()) != nil {}
                }
            }
        }
    }

    /// The answer to a request whose head never came whole; nil when the connection itself failed.
    private func answer(to error: any Error) -> Response? {
        switch error {
        case RequestHeadFailure.timedOut: .error(408, "no complete request within \(limits.requestTimeout) s")
        case RequestHeadFailure.tooLarge: .error(431, "request head larger than \(limits.maxRequestHead) bytes")
        case is HTTPParserError: .error(400, "malformed request")
        default: nil
        }
    }

    /// Follows the daemon's events as NDJSON, one flushed line (and chunk, in HTTP/1.1) per event, until the client
    /// leaves (`untilHangUp` returns), stops reading for longer than the watcher stall timeout, or the server stops.
    private func streamEvents(
        to channel: any Channel,
        through outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        version: HTTPVersion,
        untilHangUp: () async -> Void
    ) async {
        // Subscribed before the header goes out: a client that has the header gets every later event.
        let events = routes.state.subscribe()
        // The encoder frames the body in chunks for HTTP/1.1 clients; HTTP/1.0 ones read it to the close.
        let headers = HTTPHeaders([
            ("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-store"), ("Connection", "close"),
        ])
        let head = HTTPServerResponsePart.head(Response.head(200, version: version, headers: headers))
        guard await send([head], on: channel, within: limits.writeTimeout) else { return }
        let stall = limits.watcherStallTimeout
        // Small buffers: a watcher that stops reading costs only the lines that fill them (the kernel makes this
        // about 8 KB; NIO holds one line) before it waits out the stall timeout, so fifty of them cannot take the
        // CPU from the operator's query. The backlog that matters is its subscription's.
        let watching = channel.eventLoop.submit {
            try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: 4_096)
            try channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: 1, high: 1))
            try channel.pipeline.syncOperations.addHandler(StallDrop(timeout: stall), position: .first)
        }
        guard (try? await watching.get()) != nil else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    // The writer waits only while the connection is unwritable; `StallDrop` bounds that wait.
                    for await event in events {
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: event.json.rendered + "\n"))))
                    }
                } catch {
                    return
                }
                // The daemon ended the subscriptions (shutdown): end the body properly.
                if !Task.isCancelled { _ = await self.send([.end(nil)], on: channel, within: 1) }
                channel.close(promise: nil)
            }
            await untilHangUp()
            // Ends a write still waiting, so the stream's task ends now (the client left or the server stops).
            channel.close(promise: nil)
            group.cancelAll()
        }
    }

    /// Writes `parts` and waits until they are on the socket, at most `seconds`: a client that does not take them
    /// in time is dropped (its connection closed). Through the channel rather than `NIOAsyncChannel`'s writer, whose
    /// `write` returns before the bytes are out: an answer must be on the socket before the connection closes.
    /// - Returns: false when the client is gone or too slow.
    private func send(_ parts: [HTTPServerResponsePart], on channel: any Channel, within seconds: Double) async -> Bool
    {
        guard let last = parts.last else { return true }
        for part in parts.dropLast() { channel.write(part, promise: nil) }
        let written: EventLoopFuture<Void> = channel.writeAndFlush(last)
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            try await written.get()
            return true
        } catch {
            return false
        }
    }

    /// The user id of the peer process (`SO_PEERCRED`), nil if the kernel does not tell.
    private static func peerUser(_ channel: any Channel) async -> uid_t? {
        guard let socket = channel as? any SocketOptionProvider else { return nil }
        let credentials: PeerCredentials? = try? await socket.unsafeGetSocketOption(
            level: .socket,
            name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
        ).get()
        return credentials?.uid
    }

}

/// `struct ucred`, which Glibc does not export to Swift: the same layout.
private struct PeerCredentials: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}

/// Who holds the query socket: connections still sending their request head (from the moment they are accepted),
/// and those past it, per user.
private final class Admission: Sendable {
    private struct State {
        var next: UInt64 = 0
        /// Connections waiting for their head, by arrival (ids grow).
        var waiting: [UInt64: any Channel] = [:]
        /// Connections past their head, and their user.
        var admitted: [UInt64: uid_t?] = [:]
        var perUser: [uid_t: Int] = [:]
        /// The server stopped: connections arriving now are closed at once.
        var stopped = false
    }

    private let limits: QueryServer.Limits
    private let state = Mutex(State())

    init(_ limits: QueryServer.Limits) { self.limits = limits }

    /// Registers a connection just accepted as waiting for its head; past `maxWaiting`, ends the wait of the
    /// oldest. Once the server stopped, closes it instead.
    func arrive(_ channel: any Channel) -> UInt64 {
        // Closed outside the lock: a close on this event loop runs the pipeline's handlers at once.
        let (id, closing): (UInt64, (any Channel)?) = state.withLock { state in
            let id = state.next
            state.next += 1
            if state.stopped { return (id, channel) }
            var oldest: (any Channel)?
            if state.waiting.count >= limits.maxWaiting, let key = state.waiting.keys.min() {
                // Its reader sees the end of the stream and returns.
                oldest = state.waiting.removeValue(forKey: key)
            }
            state.waiting[id] = channel
            return (id, oldest)
        }
        closing?.close(promise: nil)
        return id
    }

    /// Closes every connection still waiting for its head, served or not yet, and every one that arrives later.
    func stop() {
        let waiting = state.withLock { state in
            state.stopped = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for channel in waiting { channel.close(promise: nil) }
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

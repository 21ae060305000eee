import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import SynwatchProtocol

/// A failure to query the daemon, in one line an operator can act on.
public enum QueryClientError: Error, CustomStringConvertible, Equatable {
    /// No socket at the path (ENOENT, ENOTDIR).
    case notRunning(path: String)
    /// A socket at the path that nothing listens on (ECONNREFUSED): left by a daemon that was killed.
    case notListening(path: String)
    /// The socket's mode or directory keeps us out (EACCES, EPERM).
    case permissionDenied(path: String)
    /// A system call failed otherwise.
    case system(call: String, path: String, errno: Int32)
    /// The daemon's answer is not the HTTP it should be.
    case badResponse(path: String, reason: String)
    /// The daemon answered with an error status and message.
    case status(Int, message: String)

    public var description: String {
        switch self {
        case .notRunning(let path): "synwatchd is not running (no socket at \(path))"
        case .notListening(let path): "synwatchd is not running (nothing listens on \(path))"
        case .permissionDenied(let path):
            "permission denied on \(path): run as root or as a member of the socket's group"
        case .system(let call, let path, let code):
            "\(call)(\(path)): \(String(cString: strerror(code))) (errno \(code))"
        case .badResponse(let path, let reason): "bad response from synwatchd at \(path): \(reason)"
        case .status(let code, let message): "synwatchd answered \(code): \(message)"
        }
    }
}

/// A client of the daemon's query socket (HTTP/1.1 over AF_UNIX), for the CLI and tests.
///
/// On SwiftNIO: NIOHTTP1 encodes the request and decodes the answer, streamed part by part so `/v1/events` can be
/// followed as it arrives.
public struct QueryClient: Sendable {
    /// A complete response.
    public struct Response: Sendable {
        public var status: Int
        /// Header names lower-cased.
        public var headers: [String: String]
        public var body: [UInt8]

        /// The body as UTF-8 text.
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// The socket's path.
    public let path: String
    /// Seconds a complete response may take (not a followed stream).
    public var timeout: Double

    public init(path: String = QuerySocketPath.standard, timeout: Double = 10) {
        self.path = path
        self.timeout = timeout
    }

    /// `GET target`, read to the end.
    /// - Throws: `QueryClientError`.
    public func get(_ target: String) async throws -> Response {
        try await exchange(target) { parts, _ in
            var response = Response(status: 0, headers: [:], body: [])
            while let part = try await parts.next() {
                switch part {
                case .head(let head):
                    response.status = Int(head.status.code)
                    response.headers = Self.headers(head)
                case .body(let buffer): response.body += buffer.readableBytesView
                case .end: return response
                }
            }
            throw QueryClientError.badResponse(path: path, reason: "connection closed early")
        }
    }

    /// `GET target` as a stream of lines (NDJSON), handing each complete line to `line` as it arrives, until the
    /// daemon ends the stream or `line` returns false.
    /// - Throws: `QueryClientError`, including `.status` when the daemon refuses the request.
    public func follow(_ target: String, _ line: (String) async throws -> Bool) async throws {
        try await exchange(target) { parts, endDeadline in
            guard case .head(let head)? = try await parts.next() else {
                throw QueryClientError.badResponse(path: path, reason: "connection closed early")
            }
            // A stream has no end to wait for: the deadline covers its head.
            endDeadline()
            let status = Int(head.status.code)
            var pending: [UInt8] = []
            while case .body(let buffer)? = try await parts.next() {
                pending += buffer.readableBytesView
                while let newline = pending.firstIndex(of: 10) {
                    let text = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    guard status == 200 else { throw Self.failure(status, body: text) }
                    guard try await line(text) else { return }
                }
            }
            guard status == 200 else {
                throw Self.failure(status, body: String(decoding: pending, as: UTF8.self))
            }
        }
    }

    /// A non-200 response as an error carrying the daemon's `{"error": …}` message.
    public static func failure(_ status: Int, body: String) -> QueryClientError {
        let message = (try? ContractJSON.decode(V1.ErrorBody.self, from: body))?.error
        return .status(status, message: message ?? (body.isEmpty ? "no message" : body))
    }

    private typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    private typealias Parts = NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

    /// Connects, sends `GET target` and hands the response's parts to `read`, all within `timeout` (the connection
    /// is closed when it runs out) unless `read` ends the deadline with the closure it gets.
    private func exchange<T: Sendable>(
        _ target: String,
        _ read: (inout Parts, _ endDeadline: () -> Void) async throws -> T
    ) async throws -> T {
        let connection = try await connect()
        let channel = connection.channel
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
            channel.close(promise: nil)
        }
        do {
            defer { deadline.cancel() }
            return try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                let headers = HTTPHeaders([("Host", "synwatchd"), ("Connection", "close")])
                try await outbound.write(
                    contentsOf: [
                        .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)),
                        .end(nil),
                    ]
                )
                return try await read(&parts) { deadline.cancel() }
            }
        } catch {
            // The deadline ran (rather than being cancelled) and closed the connection.
            if (try? await deadline.futureResult.get()) != nil {
                throw QueryClientError.badResponse(path: path, reason: "no answer in time")
            }
            switch error {
            case let error as IOError: throw QueryClientError.system(call: "recv", path: path, errno: error.errnoCode)
            case let error as HTTPParserError: throw QueryClientError.badResponse(path: path, reason: "\(error)")
            case is ChannelError: throw QueryClientError.badResponse(path: path, reason: "connection closed early")
            // The daemon's refusals (`QueryClientError`) and `read`'s own errors.
            default: throw error
            }
        }
    }

    /// A connection to the socket, with NIOHTTP1's client handlers.
    private func connect() async throws -> Connection {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch SocketAddressError.unixDomainSocketPathTooLong {
            throw QueryClientError.badResponse(path: path, reason: "\(path): too long for a Unix socket path")
        } catch let error as IOError {
            switch error.errnoCode {
            case ENOENT, ENOTDIR: throw QueryClientError.notRunning(path: path)
            case ECONNREFUSED: throw QueryClientError.notListening(path: path)
            case EACCES, EPERM: throw QueryClientError.permissionDenied(path: path)
            default: throw QueryClientError.system(call: "connect", path: path, errno: error.errnoCode)
            }
        }
    }

    /// Header names lower-cased.
    private static func headers(_ head: HTTPResponseHead) -> [String: String] {
        Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    }
}

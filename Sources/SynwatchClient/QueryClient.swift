import FlyingSocks
import FoundationEssentials
import Glibc
import SynwatchProtocol

/// A failure to query the daemon, in one line an operator can act on.
public enum QueryClientError: Error, CustomStringConvertible, Equatable {
    /// Nothing listens at the path (ENOENT, ECONNREFUSED).
    case notRunning(path: String)
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
/// On FlyingSocks rather than FlyingFox's `HTTPClient`, which reads a whole body before returning (so it cannot
/// follow `/v1/events`) and links all of Foundation.
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
        let path = path
        return try await within(seconds: timeout) {
            let connection = try await Connection.open(path)
            defer { connection.close() }
            try await connection.send(target)
            let (status, headers) = try await connection.readHead()
            var body: [UInt8] = []
            if headers["transfer-encoding"]?.lowercased() == "chunked" {
                while let chunk = try await connection.readChunk() { body += chunk }
            } else if let length = headers["content-length"] {
                guard let count = Int(length), count >= 0 else {
                    throw QueryClientError.badResponse(path: path, reason: "Content-Length \(length)")
                }
                body = try await connection.read(count)
            } else {
                while let some = try await connection.readSome() { body += some }
            }
            return Response(status: status, headers: headers, body: body)
        }
    }

    /// `GET target` as a stream of lines (NDJSON), handing each complete line to `line` as it arrives, until the
    /// daemon ends the stream or `line` returns false.
    /// - Throws: `QueryClientError`, including `.status` when the daemon refuses the request.
    public func follow(_ target: String, _ line: (String) async throws -> Bool) async throws {
        let connection = try await within(seconds: timeout) { [path] in
            let connection = try await Connection.open(path)
            do {
                try await connection.send(target)
                return connection
            } catch {
                connection.close()
                throw error
            }
        }
        defer { connection.close() }
        let (status, headers) = try await connection.readHead()
        let chunked = headers["transfer-encoding"]?.lowercased() == "chunked"
        var pending: [UInt8] = []
        while true {
            let data = try await chunked ? connection.readChunk() : connection.readSome()
            guard let data else { break }
            pending += data
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

    /// A non-200 response as an error carrying the daemon's `{"error": …}` message.
    public static func failure(_ status: Int, body: String) -> QueryClientError {
        let message = (try? ContractJSON.decode(V1.ErrorBody.self, from: body))?.error
        return .status(status, message: message ?? (body.isEmpty ? "no message" : body))
    }

    /// `operation`, or `badResponse("no answer in time")` after `seconds`.
    private func within<T: Sendable>(
        seconds: Double,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask(operation: operation)
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw QueryClientError.badResponse(path: path, reason: "no answer in time")
            }
            return result
        }
    }
}

/// One connection to the query socket, read through a buffer.
private final class Connection: @unchecked Sendable {
    // One task at a time reads it (the one that opened it); `@unchecked` only lets it cross into that task.
    let socket: AsyncSocket
    let path: String
    private var buffer: [UInt8] = []
    private var position = 0

    private init(socket: AsyncSocket, path: String) {
        self.socket = socket
        self.path = path
    }

    /// Connects to `path`.
    /// - Throws: `QueryClientError`.
    static func open(_ path: String) async throws -> Connection {
        // FlyingSocks cuts longer paths short silently: refuse them here.
        guard path.utf8.count <= 104 else {
            throw QueryClientError.badResponse(path: path, reason: "\(path): too long for a Unix socket path")
        }
        do {
            let socket = try await AsyncSocket.connected(to: sockaddr_un.unix(path: path), pool: .client)
            return Connection(socket: socket, path: path)
        } catch SocketError.failed(_, let code, _) {
            switch code {
            case ENOENT, ECONNREFUSED, ENOTDIR: throw QueryClientError.notRunning(path: path)
            case EACCES, EPERM: throw QueryClientError.permissionDenied(path: path)
            default: throw QueryClientError.system(call: "connect", path: path, errno: code)
            }
        } catch SocketError.timeout {
            throw QueryClientError.badResponse(path: path, reason: "no answer in time")
        }
    }

    func close() { try? socket.close() }

    /// Sends the request; the connection closes after the response.
    func send(_ target: String) async throws {
        let request = "GET \(target) HTTP/1.1\r\nHost: synwatchd\r\nConnection: close\r\n\r\n"
        do {
            try await socket.write(Data(request.utf8))
        } catch SocketError.disconnected {
            // A daemon refusing us may answer and hang up before reading: its answer is still there.
        } catch {
            throw failure(error, call: "send")
        }
    }

    /// The status code and headers.
    func readHead() async throws -> (Int, [String: String]) {
        let statusLine = try await readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw QueryClientError.badResponse(path: path, reason: "status line \"\(statusLine.prefix(80))\"")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try await readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw QueryClientError.badResponse(path: path, reason: "header \"\(line.prefix(80))\"")
            }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingSpaces
        }
        return (status, headers)
    }

    /// The next chunk of a chunked body, nil after the last.
    func readChunk() async throws -> [UInt8]? {
        let sizeLine = try await readLine()
        guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16), size >= 0 else {
            throw QueryClientError.badResponse(path: path, reason: "chunk size \"\(sizeLine.prefix(40))\"")
        }
        if size == 0 {
            // Trailers, then the blank line; a daemon that closes right away is as good.
            while let line = try? await readLine(), !line.isEmpty {}
            return nil
        }
        let chunk = try await read(size)
        guard try await readLine().isEmpty else {
            throw QueryClientError.badResponse(path: path, reason: "chunk framing")
        }
        return chunk
    }

    /// Exactly `count` bytes.
    func read(_ count: Int) async throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            guard try await fill() else { throw QueryClientError.badResponse(path: path, reason: "body cut short") }
            let take = min(count - result.count, buffer.count - position)
            result += buffer[position..<position + take]
            position += take
        }
        return result
    }

    /// Whatever is buffered or arrives next; nil at the end.
    func readSome() async throws -> [UInt8]? {
        guard try await fill() else { return nil }
        defer { position = buffer.count }
        return Array(buffer[position...])
    }

    /// One CRLF-terminated line, without its end.
    private func readLine() async throws -> String {
        var line: [UInt8] = []
        while true {
            guard try await fill() else {
                throw QueryClientError.badResponse(path: path, reason: "connection closed early")
            }
            if let newline = buffer[position...].firstIndex(of: 10) {
                line += buffer[position..<newline]
                position = newline + 1
                if line.last == 13 { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            line += buffer[position...]
            position = buffer.count
            guard line.count <= 65_536 else { throw QueryClientError.badResponse(path: path, reason: "line too long") }
        }
    }

    /// Makes sure bytes are buffered.
    /// - Returns: false at the end of the stream.
    private func fill() async throws -> Bool {
        if position < buffer.count { return true }
        do {
            buffer = try await socket.read(atMost: 16_384)
            position = 0
            return true
        } catch SocketError.disconnected {
            return false
        } catch {
            throw failure(error, call: "recv")
        }
    }

    private func failure(_ error: any Error, call: String) -> any Error {
        guard case SocketError.failed(_, let code, _) = error else { return error }
        return QueryClientError.system(call: call, path: path, errno: code)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

import Glibc

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

/// A small blocking HTTP/1.1 client of the daemon's query socket (AF_UNIX), for the CLI and tests.
public struct QueryClient: Sendable {
    /// A complete response.
    public struct Response: Sendable {
        public var status: Int
        /// Header names lower-cased.
        public var headers: [String: String]
        public var body: String
    }

    public let path: String
    /// Seconds to wait for each read of a complete response (not for a followed stream).
    public var timeout: Double

    public init(path: String = QueryEndpoint.defaultPath, timeout: Double = 10) {
        self.path = path
        self.timeout = timeout
    }

    /// `GET target`, read to the end.
    /// - Throws: `QueryClientError`.
    public func get(_ target: String) throws -> Response {
        let connection = try Connection(path: path, timeout: timeout)
        defer { connection.close() }
        try connection.send(target)
        let (status, headers) = try connection.readHead()
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let chunk = try connection.readChunk() { body += chunk }
        } else if let length = headers["content-length"] {
            guard let count = Int(length), count >= 0 else {
                throw QueryClientError.badResponse(path: path, reason: "Content-Length \(length)")
            }
            body = try connection.read(count)
        } else {
            body = try connection.readToEnd()
        }
        return Response(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    /// `GET target` as a stream of lines (NDJSON), handing each complete line to `line` as it arrives, until the
    /// daemon ends the stream or `line` returns false.
    /// - Throws: `QueryClientError`, including `.status` when the daemon refuses the request.
    public func follow(_ target: String, _ line: (String) throws -> Bool) throws {
        let connection = try Connection(path: path, timeout: nil)
        defer { connection.close() }
        try connection.send(target)
        let (status, headers) = try connection.readHead()
        let chunked = headers["transfer-encoding"]?.lowercased() == "chunked"
        var pending: [UInt8] = []
        while true {
            let data = try chunked ? connection.readChunk() : connection.readSome()
            guard let data else { break }
            pending += data
            while let newline = pending.firstIndex(of: 10) {
                let text = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                guard status == 200 else { throw Self.failure(status, body: text) }
                guard try line(text) else { return }
            }
        }
        guard status == 200 else {
            throw Self.failure(status, body: String(decoding: pending, as: UTF8.self))
        }
    }

    /// A non-200 response as an error carrying the daemon's `{"error": …}` message.
    public static func failure(_ status: Int, body: String) -> QueryClientError {
        let marker = "\"error\":\""
        guard let start = body.range(of: marker)?.upperBound, let end = body[start...].firstIndex(of: "\"") else {
            return .status(status, message: body.isEmpty ? "no message" : body)
        }
        return .status(status, message: String(body[start..<end]))
    }
}

/// One connection to the query socket, read through a buffer.
private final class Connection {
    let fd: Int32
    let path: String
    private var buffer: [UInt8] = []
    private var position = 0

    init(path: String, timeout: Double?) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QueryClientError.system(call: "socket", path: path, errno: errno) }
        do {
            if let timeout {
                var value = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
            }
            let result = try QuerySocket.withAddress(path) { address, length in
                var result: Int32
                repeat { result = connect(fd, address, length) } while result != 0 && errno == EINTR
                return result == 0 ? 0 : errno
            }
            switch result {
            case 0: break
            case ENOENT, ECONNREFUSED, ENOTDIR: throw QueryClientError.notRunning(path: path)
            case EACCES, EPERM: throw QueryClientError.permissionDenied(path: path)
            default: throw QueryClientError.system(call: "connect", path: path, errno: result)
            }
        } catch let error as QuerySocketError {
            Glibc.close(fd)
            throw QueryClientError.badResponse(path: path, reason: error.description)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    func close() { Glibc.close(fd) }

    /// Sends the request; the connection closes after the response.
    func send(_ target: String) throws {
        let request = Array("GET \(target) HTTP/1.1\r\nHost: synwatchd\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count < 0 {
                if errno == EINTR { continue }
                // A daemon refusing us (503) may answer and hang up before reading: its answer is still there.
                if errno == EPIPE || errno == ECONNRESET { return }
                throw QueryClientError.system(call: "send", path: path, errno: errno)
            }
            sent += count
        }
    }

    /// The status code and headers.
    func readHead() throws -> (Int, [String: String]) {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw QueryClientError.badResponse(path: path, reason: "status line \"\(statusLine.prefix(80))\"")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw QueryClientError.badResponse(path: path, reason: "header \"\(line.prefix(80))\"")
            }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(" ")
        }
        return (status, headers)
    }

    /// The next chunk of a chunked body, nil after the last.
    func readChunk() throws -> [UInt8]? {
        let sizeLine = try readLine()
        guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16), size >= 0 else {
            throw QueryClientError.badResponse(path: path, reason: "chunk size \"\(sizeLine.prefix(40))\"")
        }
        if size == 0 {
            // Trailers, then the blank line; a daemon that closes right away is as good.
            while let line = try? readLine(), !line.isEmpty {}
            return nil
        }
        let chunk = try read(size)
        guard try readLine().isEmpty else { throw QueryClientError.badResponse(path: path, reason: "chunk framing") }
        return chunk
    }

    /// Exactly `count` bytes.
    func read(_ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            guard try fill() else { throw QueryClientError.badResponse(path: path, reason: "body cut short") }
            let take = min(count - result.count, buffer.count - position)
            result += buffer[position..<position + take]
            position += take
        }
        return result
    }

    /// Whatever is buffered or arrives next; nil at the end.
    func readSome() throws -> [UInt8]? {
        guard try fill() else { return nil }
        defer { position = buffer.count }
        return Array(buffer[position...])
    }

    func readToEnd() throws -> [UInt8] {
        var result: [UInt8] = []
        while let some = try readSome() { result += some }
        return result
    }

    /// One CRLF-terminated line, without its end.
    private func readLine() throws -> String {
        var line: [UInt8] = []
        while true {
            guard try fill() else { throw QueryClientError.badResponse(path: path, reason: "connection closed early") }
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

    /// Makes sure bytes are buffered. - Returns: false at the end of the stream.
    private func fill() throws -> Bool {
        if position < buffer.count { return true }
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer = Array(chunk[..<count])
                position = 0
                return true
            }
            if count == 0 { return false }
            switch errno {
            case EINTR: continue
            case EAGAIN: throw QueryClientError.badResponse(path: path, reason: "no answer in time")
            default: throw QueryClientError.system(call: "recv", path: path, errno: errno)
            }
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(_ character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}

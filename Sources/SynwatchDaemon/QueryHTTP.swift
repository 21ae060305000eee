import SynwatchProtocol

/// The head of an HTTP/1.1 request: all the query API reads, since it accepts no bodies.
struct RequestHead: Equatable {
    var method: String
    var path: String
    var query: [String: String]
    var version: String
    /// Header names lower-cased.
    var headers: [String: String]

    /// Parses the bytes before the blank line that ends the head.
    /// - Returns: nil when the request line or a header is malformed.
    init?(_ bytes: ArraySlice<UInt8>) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let parts = lines.first?.split(separator: " ", omittingEmptySubsequences: false) ?? []
        guard parts.count == 3, !parts[0].isEmpty, parts[1].hasPrefix("/"), parts[2].hasPrefix("HTTP/1.") else {
            return nil
        }
        method = String(parts[0])
        version = String(parts[2])
        let target = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(target[0])
        query = [:]
        if target.count == 2 {
            for item in target[1].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(pair[0])] = pair.count == 2 ? String(pair[1]) : ""
            }
        }
        headers = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingSpaces
        }
    }

    /// Whether the client announces a body, which the API never accepts.
    var hasBody: Bool {
        headers["transfer-encoding"] != nil || (headers["content-length"].map { $0 != "0" } ?? false)
    }
}

/// A complete response, always followed by closing the connection.
struct Response {
    var status: Int
    var contentType: String
    var body: String
    var extraHeaders: [(String, String)] = []

    /// A JSON body.
    static func json(_ value: JSONValue, status: Int = 200) -> Response {
        Response(status: status, contentType: "application/json", body: value.rendered + "\n")
    }

    /// `{"error": message}` with `status`.
    static func error(_ status: Int, _ message: String) -> Response {
        .json(ContractJSON.tree(V1.ErrorBody(error: message)), status: status)
    }

    /// The whole response as bytes.
    var encoded: [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

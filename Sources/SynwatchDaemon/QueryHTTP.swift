import NIOCore
import NIOHTTP1
import SynwatchProtocol

/// What the routes read of a request NIOHTTP1 decoded: the API accepts no bodies, so the head is all.
struct Request {
    var method: String
    var path: String
    var query: [String: String]
    var version: HTTPVersion
    /// Whether the client announces a body, which the API never accepts.
    var hasBody: Bool

    init(_ head: HTTPRequestHead) {
        method = head.method.rawValue
        version = head.version
        let target = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(target.first ?? "")
        query = [:]
        if target.count == 2 {
            for item in target[1].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(pair[0])] = pair.count == 2 ? String(pair[1]) : ""
            }
        }
        hasBody =
            head.headers.contains(name: "transfer-encoding") || head.headers["content-length"].contains { $0 != "0" }
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

    /// The response as NIOHTTP1 parts, for the encoder to write.
    var parts: [HTTPServerResponsePart] {
        var headers = HTTPHeaders([
            ("Content-Type", contentType), ("Content-Length", String(body.utf8.count)), ("Connection", "close"),
        ])
        headers.add(contentsOf: extraHeaders)
        return [.head(Self.head(status, headers: headers)), .body(.byteBuffer(ByteBuffer(string: body))), .end(nil)]
    }

    /// A response head in HTTP/1.1 with the API's reason phrases.
    static func head(_ status: Int, version: HTTPVersion = .http1_1, headers: HTTPHeaders) -> HTTPResponseHead {
        HTTPResponseHead(
            version: version,
            // `.custom`: NIO's own phrase for 413 is the older "Payload Too Large".
            status: .custom(code: UInt(status), reasonPhrase: reason(status)),
            headers: headers
        )
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

/// Why a request head never arrived whole; each has its answer.
enum RequestHeadFailure: Error {
    /// Not complete within the request timeout (408).
    case timedOut
    /// More bytes than the head limit before it is complete, or a head larger than it (431).
    case tooLarge
}

/// Bounds on a request head that NIOHTTP1's decoder does not keep: its time and its size, the request line
/// included. The two handlers share one state: `bytes` counts before the decoder, `head` sees it decoded.
final class RequestHeadGuard: Sendable {
    private struct State {
        var bytes = 0
        var complete = false
        var failed = false
        var timer: Scheduled<Void>?
    }

    private let limit: Int
    private let timeout: TimeAmount
    // Touched only on the connection's event loop.
    private let state: NIOLoopBoundBox<State>

    init(limit: Int, timeout: Double, eventLoop: any EventLoop) {
        self.limit = limit
        self.timeout = .nanoseconds(Int64(timeout * 1e9))
        state = NIOLoopBoundBox(State(), eventLoop: eventLoop)
    }

    /// Goes before the decoder.
    var bytes: some ChannelInboundHandler { Bytes(guard: self) }
    /// Goes after the decoder.
    var head: some ChannelInboundHandler { Head(guard: self) }

    private func fail(_ failure: RequestHeadFailure, context: ChannelHandlerContext) {
        guard !state.value.failed else { return }
        state.value.failed = true
        state.value.timer?.cancel()
        context.fireErrorCaught(failure)
    }

    private final class Bytes: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let `guard`: RequestHeadGuard

        init(guard: RequestHeadGuard) { self.guard = `guard` }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let state = self.guard.state
            guard !state.value.failed else { return }
            guard !state.value.complete else { return context.fireChannelRead(data) }
            state.value.bytes += unwrapInboundIn(data).readableBytes
            context.fireChannelRead(data)
            // Checked after the decoder had the bytes: a head it completed from them is measured by `Head`.
            if !state.value.complete && state.value.bytes > self.guard.limit {
                self.guard.fail(.tooLarge, context: context)
            }
        }
    }

    private final class Head: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        let `guard`: RequestHeadGuard

        init(guard: RequestHeadGuard) { self.guard = `guard` }

        func handlerAdded(context: ChannelHandlerContext) {
            let contextBox = NIOLoopBound(context, eventLoop: context.eventLoop)
            let headGuard = self.guard
            headGuard.state.value.timer = context.eventLoop.scheduleTask(in: headGuard.timeout) {
                if !headGuard.state.value.complete { headGuard.fail(.timedOut, context: contextBox.value) }
            }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.guard.state.value.timer?.cancel()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let state = self.guard.state
            guard !state.value.failed else { return }
            if !state.value.complete, case .head(let head) = unwrapInboundIn(data) {
                state.value.complete = true
                state.value.timer?.cancel()
                // What the head took on the wire: request line and header lines.
                let size =
                    head.method.rawValue.utf8.count + head.uri.utf8.count + 12
                    + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
                guard size <= self.guard.limit else { return self.guard.fail(.tooLarge, context: context) }
            }
            context.fireChannelRead(data)
        }
    }
}

/// Drops an event watcher whose connection stays unwritable (its socket buffer and NIO's both full) for longer than
/// `timeout`: one that reads catches up within it, one that stopped reading must not hold its subscription.
/// Watches writability on the event loop, so following the stream costs no timer per event.
final class StallDrop: ChannelInboundHandler {
    typealias InboundIn = Any
    typealias InboundOut = Any

    private let timeout: TimeAmount
    private var drop: Scheduled<Void>?

    init(timeout: Double) { self.timeout = .nanoseconds(Int64(timeout * 1e9)) }

    func handlerAdded(context: ChannelHandlerContext) { update(context) }

    func handlerRemoved(context: ChannelHandlerContext) { drop?.cancel() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        update(context)
        context.fireChannelWritabilityChanged()
    }

    private func update(_ context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drop?.cancel()
            drop = nil
        } else if drop == nil {
            let channel = context.channel
            drop = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
    }
}

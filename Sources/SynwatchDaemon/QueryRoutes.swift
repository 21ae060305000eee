import SynwatchProtocol

/// What a request gets: a complete response, or the live event stream.
enum Answer {
    case response(Response)
    case events
}

/// The routes of the query API, answered from the latest snapshot.
public struct QueryRoutes: Sendable {
    /// Which paths a server answers.
    public enum Paths: Sendable {
        /// The whole API: the query socket.
        case all
        /// `/metrics` alone: the TCP listener Prometheus scrapes.
        case metricsOnly

        var set: Set<String> { self == .all ? QueryRoutes.paths : ["/metrics"] }
    }

    /// The default and the largest `limit` of `/v1/sources` and `/v1/victims`.
    static let defaultLimit = 20
    static let maximumLimit = 1_000

    static let paths: Set<String> = [
        "/v1/status", "/v1/attacks", "/v1/victims", "/v1/sources", "/v1/events", "/metrics",
    ]

    let state: DaemonState
    let version: String
    let paths: Paths
    let metrics = MetricsExposition()

    /// The answer to `head`; `now` is wall-clock seconds since the epoch.
    func answer(_ head: Request, now: Double) -> Answer {
        guard paths.set.contains(head.path) else { return .response(.error(404, "no such path: \(head.path)")) }
        guard head.method == "GET" else {
            var response = Response.error(405, "\(head.method) is not allowed on \(head.path); use GET")
            response.extraHeaders.append(("Allow", "GET"))
            return .response(response)
        }
        if head.hasBody { return .response(.error(413, "requests to the query API carry no body")) }
        if head.path == "/v1/events" { return .events }

        let snapshot = state.snapshot
        switch head.path {
        case "/v1/status": return .response(.json(ContractJSON.tree(snapshot.status(version: version, now: now))))
        case "/v1/attacks": return .response(.json(ContractJSON.tree(snapshot.attacks)))
        case "/v1/victims", "/v1/sources":
            guard let limit = Self.limit(head.query["limit"]) else {
                return .response(.error(400, "limit must be a whole number from 1 to \(Self.maximumLimit)"))
            }
            let body =
                head.path == "/v1/victims"
                ? ContractJSON.tree(snapshot.victims(limit: limit)) : ContractJSON.tree(snapshot.sources(limit: limit))
            return .response(.json(body))
        default:
            return .response(
                Response(
                    status: 200,
                    contentType: MetricsExposition.contentType,
                    body: metrics.render(snapshot, version: version)
                )
            )
        }
    }

    /// The `limit` query parameter, its default when absent, nil when invalid.
    static func limit(_ text: String?) -> Int? {
        guard let text else { return defaultLimit }
        guard let value = Int(text), (1...maximumLimit).contains(value) else { return nil }
        return value
    }
}

import SynwatchEngine

/// An address and TCP port to listen on: `198.18.0.10:9464`, `0.0.0.0:9464` or `[2001:db8::10]:9464`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IPv4 or IPv6 address literal (no host name: nothing is looked up at start).
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Reads `ADDRESS:PORT`, the IPv6 address in brackets; nil for anything else.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0
        else { return nil }
        var host = text[..<colon]
        let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
        if bracketed { host = host.dropFirst().dropLast() }
        guard let address = IPAddress(host), address.isIPv4 != bracketed else { return nil }
        self.init(host: String(host), port: port)
    }

    public var isIPv6: Bool { host.contains(":") }

    /// As written in the configuration: IPv6 in brackets.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The `metrics:` section: Prometheus's `/metrics` over TCP, and how many services its per-service series list.
public struct MetricsConfiguration: Sendable, Equatable {
    /// Where `/metrics` (and nothing else) is served over HTTP; none by default.
    public var listen: [ListenAddress] = []
    /// Most services the per-service series list, busiest first: each costs a dozen series.
    public var maxServices = 100

    /// The largest `max_services`: the services the daemon lists at all.
    public static let maxServicesLimit = 1_000

    public init() {}

    /// Checks that the daemon can use these values.
    /// - Throws: `ConfigurationProblem` naming the first offending key.
    public func validate() throws(ConfigurationProblem) {
        guard Set(listen).count == listen.count else {
            throw ConfigurationProblem(key: "metrics.listen", message: "names an address twice")
        }
        guard (0...Self.maxServicesLimit).contains(maxServices) else {
            throw ConfigurationProblem(
                key: "metrics.max_services",
                message: "must be between 0 and \(Self.maxServicesLimit)"
            )
        }
    }
}

extension Read {
    /// A list of `ADDRESS:PORT`, each an IP address literal (IPv6 in brackets, quoted in YAML) and a port.
    static func listenAddresses(_ node: YAMLNode) throws(ValueProblem) -> [ListenAddress] {
        let expected = "a list of ADDRESS:PORT, such as [198.18.0.10:9464, \"[2001:db8::10]:9464\"]"
        guard case .list(let items) = TypedValue(node) else { throw .wrongType(expected, node) }
        var addresses: [ListenAddress] = []
        for item in items {
            guard let text = item.scalar, !item.isNull else { throw .wrongType(expected, item) }
            guard let address = ListenAddress(text) else {
                throw ValueProblem(
                    kind: .invalidValue,
                    message: "'\(text)' is not ADDRESS:PORT with an IP address and a port from 1 to 65535",
                    position: item.position
                )
            }
            addresses.append(address)
        }
        return addresses
    }
}

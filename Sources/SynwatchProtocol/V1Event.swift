import SynwatchEngine

extension V1 {
    /// An event: `attack_start`, `attack_update`, `attack_end`, or a `scan` or `backscatter` notice.
    ///
    /// One flat object: the header fields, then the groups the event carries, each group's fields written as the
    /// event's own.
    public struct Event: Codable, Hashable, Sendable {
        public var header: Header
        /// The victim's window (attack events).
        public var window: Window?
        /// Duration and peaks (`attack_end`).
        public var end: End?
        public var scan: Scan?
        public var backscatter: Backscatter?
        /// The kernel's view while the attack goes on (live attack events).
        public var kernel: KernelEvidence?

        public init(
            header: Header,
            window: Window? = nil,
            end: End? = nil,
            scan: Scan? = nil,
            backscatter: Backscatter? = nil,
            kernel: KernelEvidence? = nil
        ) {
            self.header = header
            self.window = window
            self.end = end
            self.scan = scan
            self.backscatter = backscatter
            self.kernel = kernel
        }

        public struct Header: Codable, Hashable, Sendable {
            /// `attack_start`, `attack_update`, `attack_end`, `scan` or `backscatter`.
            public var event: EventType
            public var attackID: UInt64?
            public var time: CaptureTime
            public var victim: String?
            public var port: UInt16?
            /// `random-source`, `single-source` or `distributed`.
            public var kind: FloodKind?

            enum CodingKeys: String, CodingKey {
                case event, attackID = "attack_id", time, victim, port, kind
            }
        }

        public struct Window: Codable, Hashable, Sendable {
            public var synPerSecond: Rate
            public var halfOpenPerSecond: Rate
            /// Attempts the server refused with a RST (nothing listens on the port).
            public var refusedPerSecond: Rate
            public var completionRatio: Ratio
            public var distinctSources: Int
            /// Heaviest first.
            public var topSources: [TopSource]
            /// Seconds the victim's handshakes had to complete before they counted as half-open.
            public var completionGrace: Seconds

            enum CodingKeys: String, CodingKey {
                case synPerSecond = "syn_per_s", halfOpenPerSecond = "half_open_per_s", refusedPerSecond =
                    "refused_per_s"
                case completionRatio = "completion_ratio", distinctSources = "distinct_sources"
                case topSources = "top_sources", completionGrace = "completion_grace"
            }
        }

        public struct TopSource: Codable, Hashable, Sendable {
            public var address: String
            public var halfOpen: Int

            enum CodingKeys: String, CodingKey {
                case address, halfOpen = "half_open"
            }
        }

        public struct End: Codable, Hashable, Sendable {
            public var start: CaptureTime
            public var duration: Seconds
            public var peakSynPerSecond: Rate
            public var peakHalfOpenPerSecond: Rate
            public var peakRefusedPerSecond: Rate
            public var peakDistinctSources: Int
            public var totalSyns: Int
            /// `quiet`, or `capture_end` when the capture stopped first.
            public var endReason: String

            enum CodingKeys: String, CodingKey {
                case start, duration, peakSynPerSecond = "peak_syn_per_s"
                case peakHalfOpenPerSecond = "peak_half_open_per_s", peakRefusedPerSecond = "peak_refused_per_s"
                case peakDistinctSources = "peak_distinct_sources", totalSyns = "total_syns", endReason = "end_reason"
            }
        }

        public struct Scan: Codable, Hashable, Sendable {
            public var source: String
            public var distinctTargets: Int
            public var distinctAddresses: Int
            public var syns: Int

            enum CodingKeys: String, CodingKey {
                case source, distinctTargets = "distinct_targets", distinctAddresses = "distinct_addresses", syns
            }
        }

        public struct Backscatter: Codable, Hashable, Sendable {
            public var synAckPerSecond: Rate
            public var distinctSources: Int

            enum CodingKeys: String, CodingKey {
                case synAckPerSecond = "synack_per_s", distinctSources = "distinct_sources"
            }
        }

        /// The kernel's figures: host-wide rates (left out where the kernel does not count them, such as the SYN
        /// proxy's where the kernel has no SYNPROXY), SYN_RECV of the
        /// victim's listener (left out when it is not a listener here or was not read yet), the capture's own loss,
        /// and whether the kernel's figures were needed as evidence.
        public struct KernelEvidence: Codable, Hashable, Sendable {
            public var syncookiesSentPerSecond: KernelRate?
            public var requestQueueFullCookiesPerSecond: KernelRate?
            public var requestQueueFullDropsPerSecond: KernelRate?
            public var listenOverflowsPerSecond: KernelRate?
            public var listenDropsPerSecond: KernelRate?
            public var synproxySynPerSecond: KernelRate?
            public var synproxyCookieValidPerSecond: KernelRate?
            public var synproxyCookieInvalidPerSecond: KernelRate?
            public var synReceived: Int?
            public var captureLoss: Ratio
            public var corroborated: Bool

            enum CodingKeys: String, CodingKey {
                case syncookiesSentPerSecond = "kernel_syncookies_sent_per_s"
                case requestQueueFullCookiesPerSecond = "kernel_reqq_full_do_cookies_per_s"
                case requestQueueFullDropsPerSecond = "kernel_reqq_full_drop_per_s"
                case listenOverflowsPerSecond = "kernel_listen_overflows_per_s"
                case listenDropsPerSecond = "kernel_listen_drops_per_s"
                case synproxySynPerSecond = "kernel_synproxy_syn_received_per_s"
                case synproxyCookieValidPerSecond = "kernel_synproxy_cookie_valid_per_s"
                case synproxyCookieInvalidPerSecond = "kernel_synproxy_cookie_invalid_per_s"
                case synReceived = "kernel_syn_recv", captureLoss = "kernel_capture_loss"
                case corroborated = "kernel_corroborated"
            }
        }

        /// The key whose presence says a group is there: each group's first, or one only it has.
        private enum Marker: String, CodingKey {
            case window = "syn_per_s", end = "end_reason", scan = "source", backscatter = "synack_per_s"
            case kernel = "kernel_corroborated"
        }

        public init(from decoder: any Decoder) throws {
            let present = Set(try decoder.container(keyedBy: Marker.self).allKeys.map(\.stringValue))
            func group<T: Decodable>(_ marker: Marker) throws -> T? {
                present.contains(marker.rawValue) ? try T(from: decoder) : nil
            }
            header = try Header(from: decoder)
            window = try group(.window)
            end = try group(.end)
            scan = try group(.scan)
            backscatter = try group(.backscatter)
            kernel = try group(.kernel)
        }

        public func encode(to encoder: any Encoder) throws {
            let groups: [(any Encodable)?] = [header, window, end, scan, backscatter, kernel]
            try V1.flatten(groups.compactMap { $0 }, into: encoder)
        }
    }
}

extension V1.Event {
    /// The event as the engine reported it.
    public init(_ event: Event) {
        header = Header(
            event: event.type,
            attackID: event.attackID,
            time: CaptureTime(event.time),
            victim: event.victim?.description,
            port: event.port,
            kind: event.kind
        )
        window = event.figures.map(Window.init)
        end = event.summary.map(End.init)
        scan = event.scan.map {
            Scan(
                source: $0.source.description,
                distinctTargets: $0.distinctTargets,
                distinctAddresses: $0.distinctAddresses,
                syns: $0.syns
            )
        }
        backscatter = event.backscatter.map {
            Backscatter(synAckPerSecond: Rate($0.synAckPerSecond), distinctSources: $0.distinctSources)
        }
        kernel = event.kernel.map(KernelEvidence.init)
    }

    /// `victim` and `port` as `198.18.0.2:80`, `[2001:db8::2]:80` or `198.18.0.2 (all ports)`; `?` without a victim.
    public var service: String { V1.serviceText(victim: header.victim, port: header.port) }
}

extension V1 {
    /// A service as operators write it, from the `victim` and `port` fields.
    public static func serviceText(victim: String?, port: UInt16?) -> String {
        guard let victim, let address = IPAddress(victim) else { return victim ?? "?" }
        return address.serviceText(port: port)
    }
}

extension V1.Event.Window {
    public init(_ figures: VictimFigures) {
        synPerSecond = Rate(figures.synPerSecond)
        halfOpenPerSecond = Rate(figures.halfOpenPerSecond)
        refusedPerSecond = Rate(figures.refusedPerSecond)
        completionRatio = Ratio(figures.completionRatio)
        distinctSources = figures.distinctSources
        topSources = figures.topSources.map {
            V1.Event.TopSource(address: $0.address.description, halfOpen: $0.halfOpen)
        }
        completionGrace = Seconds(figures.completionGrace.seconds)
    }

    /// The window's figures as per-attack gauges: `synwatch_attack_<name>`, help text, value.
    public static let metrics: [(name: String, help: String, value: @Sendable (Self) -> Double)] = [
        ("syn_per_second", "SYNs per second to the victim, latest window.", { $0.synPerSecond.value }),
        ("half_open_per_second", "Half-open attempts per second, latest window.", { $0.halfOpenPerSecond.value }),
        (
            "refused_per_second", "Attempts refused by the server's RST per second (a closed port), latest window.",
            { $0.refusedPerSecond.value }
        ),
        ("completion_ratio", "Share of handshakes completed, latest window.", { $0.completionRatio.value }),
        ("distinct_sources", "Estimated distinct sources.", { Double($0.distinctSources) }),
        (
            "completion_grace_seconds", "Seconds the victim's handshakes had to complete before counting as half-open.",
            { $0.completionGrace.value }
        ),
    ]
}

extension V1.Event.End {
    public init(_ summary: AttackSummary) {
        start = CaptureTime(summary.start)
        duration = Seconds(summary.duration.seconds)
        peakSynPerSecond = Rate(summary.peakSynPerSecond)
        peakHalfOpenPerSecond = Rate(summary.peakHalfOpenPerSecond)
        peakRefusedPerSecond = Rate(summary.peakRefusedPerSecond)
        peakDistinctSources = summary.peakDistinctSources
        totalSyns = summary.totalSyns
        endReason = summary.endReason.rawValue
    }
}

extension V1.Event.KernelEvidence {
    public init(_ figures: KernelFigures) {
        let kernel = figures.observation
        syncookiesSentPerSecond = kernel.syncookiesSentPerSecond.map { KernelRate($0) }
        requestQueueFullCookiesPerSecond = kernel.requestQueueFullCookiesPerSecond.map { KernelRate($0) }
        requestQueueFullDropsPerSecond = kernel.requestQueueFullDropsPerSecond.map { KernelRate($0) }
        listenOverflowsPerSecond = kernel.listenOverflowsPerSecond.map { KernelRate($0) }
        listenDropsPerSecond = kernel.listenDropsPerSecond.map { KernelRate($0) }
        synproxySynPerSecond = kernel.synproxySynPerSecond.map { KernelRate($0) }
        synproxyCookieValidPerSecond = kernel.synproxyCookieValidPerSecond.map { KernelRate($0) }
        synproxyCookieInvalidPerSecond = kernel.synproxyCookieInvalidPerSecond.map { KernelRate($0) }
        synReceived = figures.victimSynReceived
        captureLoss = Ratio(kernel.captureLoss)
        corroborated = figures.corroborated
    }
}

extension Event {
    /// The event as one JSON object, exactly as every edge writes it.
    public var json: JSONValue { ContractJSON.tree(V1.Event(self)) }
}

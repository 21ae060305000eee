import SynwatchEngine

/// The fields of an event, named as in shared/DESIGN.md: the same names in JSON output, the
/// HTTP API and (upper-cased, `SYNWATCH_` prefixed) journald.
extension Event {
    /// Rates and ratios keep two decimals: finer figures would only be noise.
    public static let rateDecimals = 2

    /// The event's fields in their fixed order.
    public var fields: [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("event", .string(type.rawValue))]
        if let attackID { fields.append(("attack_id", .int(Int(attackID)))) }
        fields.append(("time", .raw(time.description)))
        if let victim { fields.append(("victim", .string(victim.description))) }
        if let port { fields.append(("port", .int(Int(port)))) }
        if let kind { fields.append(("kind", .string(kind.rawValue))) }
        if let figures { fields += figures.fields }
        if let summary {
            fields += [
                ("start", .raw(summary.start.description)),
                ("duration", .number(summary.duration.seconds, decimals: 3)),
                ("peak_syn_per_s", .number(summary.peakSynPerSecond, decimals: Self.rateDecimals)),
                ("peak_half_open_per_s", .number(summary.peakHalfOpenPerSecond, decimals: Self.rateDecimals)),
                ("peak_distinct_sources", .int(summary.peakDistinctSources)),
                ("total_syns", .int(summary.totalSyns)),
                ("end_reason", .string(summary.endReason.rawValue)),
            ]
        }
        if let scan {
            fields += [
                ("source", .string(scan.source.description)),
                ("distinct_targets", .int(scan.distinctTargets)),
                ("distinct_addresses", .int(scan.distinctAddresses)),
                ("syns", .int(scan.syns)),
            ]
        }
        if let backscatter {
            fields += [
                ("synack_per_s", .number(backscatter.synAckPerSecond, decimals: Self.rateDecimals)),
                ("distinct_sources", .int(backscatter.distinctSources)),
            ]
        }
        if let kernel { fields += kernel.fields }
        return fields
    }

    /// The event as one JSON object.
    public var json: JSONValue { .object(fields) }
}

extension VictimFigures {
    /// The window's figures, named as in events.
    public var fields: [(String, JSONValue)] {
        [
            ("syn_per_s", .number(synPerSecond, decimals: Event.rateDecimals)),
            ("half_open_per_s", .number(halfOpenPerSecond, decimals: Event.rateDecimals)),
            ("completion_ratio", .number(completionRatio, decimals: 3)),
            ("distinct_sources", .int(distinctSources)),
            (
                "top_sources",
                .array(
                    topSources.map {
                        .object([("address", .string($0.address.description)), ("half_open", .int($0.halfOpen))])
                    }
                )
            ),
        ]
    }
}

extension KernelFigures {
    /// The kernel's figures as `kernel_*` fields: host-wide rates per second (left out where the kernel does not
    /// count them), SYN_RECV of the victim's listener (left out when it is not a listener here or was not read
    /// yet), the capture's own loss, and whether the kernel's figures were needed as evidence.
    public var fields: [(String, JSONValue)] {
        func rate(_ value: Double?) -> JSONValue? { value.map { .number($0, decimals: 1) } }
        let kernel = observation
        let known: [(String, JSONValue?)] = [
            ("kernel_syncookies_sent_per_s", rate(kernel.syncookiesSentPerSecond)),
            ("kernel_reqq_full_do_cookies_per_s", rate(kernel.requestQueueFullCookiesPerSecond)),
            ("kernel_reqq_full_drop_per_s", rate(kernel.requestQueueFullDropsPerSecond)),
            ("kernel_listen_overflows_per_s", rate(kernel.listenOverflowsPerSecond)),
            ("kernel_listen_drops_per_s", rate(kernel.listenDropsPerSecond)),
            ("kernel_syn_recv", victimSynReceived.map { .int($0) }),
            ("kernel_capture_loss", .number(kernel.captureLoss, decimals: 3)),
            ("kernel_corroborated", .bool(corroborated)),
        ]
        return known.compactMap { name, value in value.map { (name, $0) } }
    }
}

import SynwatchEngine

extension EngineStatistics {
    /// Traffic and handshake counters, in the order reports list them.
    public var trafficFields: [(String, JSONValue)] {
        [
            ("frames", .int(frames)),
            ("bytes", .int(bytes)),
            ("tcp_segments", .int(self[.tcp])),
            ("syn_packets", .int(synPackets)),
            ("syn_retransmits", .int(synRetransmits)),
            ("syn_acks", .int(synAcks)),
            ("syn_ack_retransmits", .int(synAckRetransmits)),
            ("unsolicited_syn_acks", .int(unsolicitedSynAcks)),
            ("completions", .int(completions)),
            ("resets", .int(resets)),
            ("timeouts", .int(timeouts)),
        ]
    }

    /// Frames that are not TCP, per reason: ordinary traffic the engine does not follow.
    public var skippedFields: [(String, JSONValue)] {
        DecodeOutcome.allCases.filter { $0 != .tcp && !$0.isProblem }.map { ($0.name, .int(self[$0])) }
    }

    /// Malformed frames per reason.
    public var problemFields: [(String, JSONValue)] {
        DecodeOutcome.allCases.filter(\.isProblem).map { ($0.name, .int(self[$0])) }
    }

    /// The whole of the statistics with table occupancy, as the `summary` object carries them.
    public func summaryFields(occupancy: TableOccupancy) -> [(String, JSONValue)] {
        var fields = trafficFields
        if let firstTime, let lastTime {
            fields += [
                ("first_time", .raw(firstTime.description)),
                ("last_time", .raw(lastTime.description)),
                ("duration", .number((lastTime - firstTime).seconds, decimals: 3)),
            ]
        }
        fields.append(("connections", .object(connectionFields)))
        fields += [
            ("attacks", .int(attacks)),
            ("scan_notices", .int(scanNotices)),
            ("backscatter_notices", .int(backscatterNotices)),
            ("skipped", .object(skippedFields)),
            ("problems", .object(problemFields)),
            (
                "tables",
                .object([
                    (
                        "handshakes",
                        .object([
                            ("tracked", .int(occupancy.handshakes)), ("capacity", .int(occupancy.handshakeCapacity)),
                            ("evictions", .int(handshakeEvictions)), ("sampled_out", .int(sampledOut)),
                        ])
                    ),
                    (
                        "victims",
                        .object([
                            ("tracked", .int(occupancy.victims)), ("capacity", .int(occupancy.victimCapacity)),
                            ("evictions", .int(victimEvictions)), ("untracked_syns", .int(victimsUntracked)),
                        ])
                    ),
                    (
                        "sources",
                        .object([
                            ("tracked", .int(occupancy.sources)), ("capacity", .int(occupancy.sourceCapacity)),
                            ("evictions", .int(sourceEvictions)),
                        ])
                    ),
                    (
                        "backscatter",
                        .object([
                            ("tracked", .int(occupancy.backscatterAddresses)),
                            ("capacity", .int(occupancy.backscatterCapacity)),
                            ("evictions", .int(backscatterEvictions)),
                        ])
                    ),
                    (
                        "connections",
                        .object([
                            ("tracked", .int(occupancy.connections)), ("capacity", .int(occupancy.connectionCapacity)),
                            ("evictions", .int(connectionEvictions)),
                        ])
                    ),
                ])
            ),
        ]
        return fields
    }

    /// The connections whose handshake completed in sight: by state now, how they closed, and how many
    /// entered and left the table.
    public var connectionFields: [(String, JSONValue)] {
        connections.fields + [
            ("opened", .int(connectionsOpened)),
            ("closed", .int(connectionsClosed)),
            ("expired", .int(connectionsExpired)),
        ]
    }
}

extension ConnectionCounts {
    /// Connections by server-side state (`fin_wait` is FIN_WAIT_1 and FIN_WAIT_2), then closes by who sent
    /// the first FIN and RST aborts by who sent the RST.
    public var fields: [(String, JSONValue)] {
        [
            ("established", .int(established)),
            ("fin_wait", .int(finWait)),
            ("closing", .int(closing)),
            ("time_wait", .int(timeWait)),
            ("close_wait", .int(closeWait)),
            ("last_ack", .int(lastAck)),
            ("closes_client_first", .int(closesClientFirst)),
            ("closes_server_first", .int(closesServerFirst)),
            ("closes_simultaneous", .int(closesSimultaneous)),
            ("aborted_by_client", .int(abortsByClient)),
            ("aborted_by_server", .int(abortsByServer)),
        ]
    }
}

extension ServiceSummary {
    /// The service's totals, named as in events (`victim`, `port`; no `port` for a whole host).
    public var fields: [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("victim", .string(address.description))]
        if let port { fields.append(("port", .int(Int(port)))) }
        fields += [
            ("first_seen", .raw(firstSeen.description)),
            ("syn_packets", .int(synPackets)),
            ("attempts", .int(attempts)),
            ("retransmits", .int(retransmits)),
            ("completions", .int(completions)),
            ("resets", .int(resets)),
            ("timeouts", .int(timeouts)),
            ("under_attack", .bool(underAttack)),
        ]
        if let connections { fields.append(("connections", .object(connections.fields))) }
        return fields
    }
}

extension AttackStatus {
    /// The attack as the API lists it: the event field names, with the current window's figures.
    public var fields: [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [
            ("attack_id", .int(Int(attackID))),
            ("victim", .string(victim.description)),
        ]
        if let port { fields.append(("port", .int(Int(port)))) }
        fields += [
            ("kind", .string(kind.rawValue)),
            ("start", .raw(start.description)),
        ]
        fields += figures.fields
        fields += [
            ("peak_syn_per_s", .number(peakSynPerSecond, decimals: Event.rateDecimals)),
            ("peak_half_open_per_s", .number(peakHalfOpenPerSecond, decimals: Event.rateDecimals)),
            ("peak_distinct_sources", .int(peakDistinctSources)),
            ("total_syns", .int(totalSyns)),
        ]
        return fields
    }
}

extension SourceSummary {
    public var fields: [(String, JSONValue)] {
        [
            ("address", .string(address.description)),
            ("attempts", .int(attempts)),
            ("completions", .int(completions)),
            ("half_open", .int(halfOpen)),
            ("distinct_targets", .int(distinctTargets)),
            ("last_target", .string(lastTarget.description)),
        ]
    }
}

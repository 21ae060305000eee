import SynwatchEngine
import SynwatchProtocol

extension CaptureStatus {
    /// The capture as `/v1/status` shows it.
    public var fields: [(String, JSONValue)] {
        [
            ("interfaces", .array(interfaces.map { .string($0) })),
            ("state", .string(state.rawValue)),
            ("packets", .int(packets)),
            ("packets_per_s", .number(packetsPerSecond, decimals: Event.rateDecimals)),
            ("kernel_drops", .int(kernelDrops)),
            ("interface_drops", .int(interfaceDrops)),
        ]
    }
}

extension DaemonSnapshot {
    /// The body of `GET /v1/status`: the daemon, its capture, the engine's summary fields and the attack count.
    /// - Parameters:
    ///   - version: the daemon's version.
    ///   - now: wall-clock seconds since the epoch, for the uptime.
    public func statusJSON(version: String, now: Double) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("version", .string(version)),
            ("started_at", .number(startedAt, decimals: 3)),
            ("updated_at", .number(updatedAt, decimals: 3)),
            ("uptime", .number(max(0, now - startedAt), decimals: 3)),
            ("configuration", .string(configurationPath)),
            ("reloads", .int(reloads)),
            ("capture", .object(capture.fields)),
        ]
        fields += statistics.summaryFields(occupancy: occupancy)
        fields.append(("active_attacks", .int(activeAttacks.count)))
        fields.append(("kernel", .object(kernel.fields)))
        fields.append(("hooks", .object(hooks.fields)))
        return .object(fields)
    }

    /// The body of `GET /v1/attacks`: attacks going on, and the latest that ended.
    public var attacksJSON: JSONValue {
        .object([
            ("active", .array(activeAttacks.map { .object($0.fields) })),
            ("recent", .array(recentAttacks.map(\.json))),
        ])
    }

    /// The body of `GET /v1/victims`: the busiest services, at most `limit`.
    public func victimsJSON(limit: Int) -> JSONValue {
        .object([("victims", .array(services.prefix(limit).map { .object($0.fields) }))])
    }

    /// The body of `GET /v1/sources`: the sources with the most half-open attempts, at most `limit`.
    public func sourcesJSON(limit: Int) -> JSONValue {
        let top = sources.enumerated().sorted { lhs, rhs in
            // Stable among equals: the table's own order breaks ties.
            lhs.element.halfOpen != rhs.element.halfOpen
                ? lhs.element.halfOpen > rhs.element.halfOpen : lhs.offset < rhs.offset
        }
        return .object([("sources", .array(top.prefix(limit).map { .object($0.element.fields) }))])
    }
}

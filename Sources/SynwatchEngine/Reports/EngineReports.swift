/// What the engine tells when asked: its counts, its tables' fill, its busiest services, attacks and sources.
extension Engine {
    /// Everything counted so far.
    public var statistics: EngineStatistics {
        var result = counters
        // Each table counts what it drops.
        result.handshakeEvictions = handshakes.slots.evictions
        result.victimEvictions = victims.slots.evictions
        result.sourceEvictions = sources.slots.evictions
        result.backscatterEvictions = backscatter.slots.evictions
        result.outcomes = (0..<DecodeOutcome.allCases.count).map { outcomeCounts[$0] }
        if clock.hasStarted {
            result.firstTime = Timestamp(nanoseconds: clock.start)
            // The input's end, not the time the engine ran on to after it.
            result.lastTime = Timestamp(nanoseconds: inputEnd ?? clock.now)
        }
        return result
    }

    /// How full each bounded table is.
    public var occupancy: TableOccupancy {
        TableOccupancy(
            handshakes: handshakes.slots.count,
            handshakeCapacity: handshakes.slots.capacity,
            victims: victims.slots.count,
            victimCapacity: victims.slots.capacity,
            sources: sources.slots.count,
            sourceCapacity: sources.slots.capacity,
            backscatterAddresses: backscatter.slots.count,
            backscatterCapacity: backscatter.slots.capacity,
            connections: connections.slots.count,
            connectionCapacity: connections.slots.capacity
        )
    }

    /// The services (and hosts) with the most SYNs since they were first seen, busiest first, with the figures of
    /// the detector's current window.
    /// - Complexity: O(victim capacity), and a window's reading for each service listed.
    public func services(limit: Int) -> [ServiceSummary] {
        var busiest: [(slot: Int, synPackets: Int, address: IPAddress, port: UInt16)] = []
        for slot in 0..<victims.slots.capacity where victims.slots.isOccupied(slot) {
            let key = victims.keys[slot]
            busiest.append((slot, victims.states[slot].synPackets, key.address, key.port))
        }
        busiest.sort { ($0.synPackets, $1.address, $1.port) > ($1.synPackets, $0.address, $0.port) }
        let inputs = detectorInputs
        return busiest.prefix(limit).map { entry in
            let slot = entry.slot
            let state = victims.states[slot]
            let measured = inputs.measure(slot, step: clock.step)
            return ServiceSummary(
                address: entry.address,
                port: entry.port == 0 ? nil : entry.port,
                firstSeen: Timestamp(nanoseconds: state.firstSeen),
                synPackets: state.synPackets,
                attempts: state.attempts,
                retransmits: state.retransmits,
                completions: state.completions,
                resets: state.resets,
                timeouts: state.timeouts,
                underAttack: state.phase == .attacked,
                connections: entry.port == 0 ? nil : victims.connections[slot],
                halfOpenPerSecond: measured.halfOpenPerSecond,
                completionRatio: measured.maturedAttempts > 0 ? measured.completionRatio : nil,
                distinctSources: inputs.failingSources(slot),
                attackKind: state.phase == .attacked ? state.kind : nil,
                attacksStarted: state.attacksStarted,
                sampling: sampling(of: slot)
            )
        }
    }

    /// How the service in `slot` is sampled now, by client before by handshake (`handleSyn`).
    func sampling(of slot: Int) -> ServiceSampling? {
        let key = victims.keys[slot]
        let clientShift = thinningShift(key.address, port: key.port)
        if clientShift > 0 { return ServiceSampling(by: .client, shift: clientShift) }
        let state = victims.states[slot]
        guard state.phase == .attacked, state.samplingShift > 0 else { return nil }
        return ServiceSampling(by: .handshake, shift: state.samplingShift)
    }

    /// The attacks going on, with the figures of the latest complete window.
    /// - Complexity: O(victim capacity).
    public func activeAttacks() -> [AttackStatus] {
        var result: [AttackStatus] = []
        let inputs = detectorInputs
        for slot in 0..<victims.slots.capacity
        where victims.slots.isOccupied(slot) && victims.states[slot].phase == .attacked {
            let key = victims.keys[slot]
            let state = victims.states[slot]
            let figures = inputs.figures(slot, inputs.measure(slot, step: clock.step))
            result.append(
                AttackStatus(
                    attackID: state.attackID,
                    victim: key.address,
                    port: key.port == 0 ? nil : key.port,
                    kind: state.kind,
                    start: Timestamp(nanoseconds: state.attackStart),
                    figures: figures,
                    peakSynPerSecond: state.peakSynPerSecond,
                    peakHalfOpenPerSecond: state.peakHalfOpenPerSecond,
                    peakRefusedPerSecond: state.peakRefusedPerSecond,
                    peakDistinctSources: max(state.peakDistinctSources, figures.distinctSources),
                    totalSyns: max(0, state.synPackets - state.synPacketsAtStart)
                )
            )
        }
        return result.sorted { $0.attackID < $1.attackID }
    }

    /// The sources with the most uncompleted attempts over the sources window, most first.
    /// - Complexity: O(source capacity × log limit); only candidates that make the list are built.
    public func topSources(limit: Int) -> [SourceSummary] {
        var top: [SourceSummary] = []
        top.reserveCapacity(limit + 1)
        for slot in 0..<sources.slots.capacity where sources.slots.isOccupied(slot) {
            sources.advanceEpoch(slot, to: clock.epoch)
            let entry = sources.entries.pointer(slot)
            let halfOpen = entry.pointee.halfOpen
            guard entry.pointee.attempts.total > 0 else { continue }
            if top.count == limit, let last = top.last,
                (halfOpen, last.address) <= (last.halfOpen, entry.pointee.address)
            {
                continue
            }
            let summary = SourceSummary(
                address: entry.pointee.address,
                attempts: entry.pointee.attempts.total,
                completions: entry.pointee.completions.total,
                distinctTargets: sources.distinctTargets(slot),
                lastTarget: entry.pointee.lastTarget
            )
            // Most half-open first, then by address, so equal counts list the same way every time.
            var low = 0
            var high = top.count
            while low < high {
                let middle = (low + high) / 2
                if (top[middle].halfOpen, summary.address) > (summary.halfOpen, top[middle].address) {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            top.insert(summary, at: low)
            if top.count > limit { top.removeLast() }
        }
        return top
    }

}

/// What enters the victim, source and backscatter tables, and how an attempt counts on its service.
extension Engine {
    /// Counts a SYN packet in the step its attempt matures in (`step`).
    @inline(__always)
    func countSynPacket(on service: Int, step: Int64, weight: Int) {
        victims.advanceRing(service, to: step)
        victims.stepCounters(service, step: step).pointee.synPackets &+= UInt32(truncatingIfNeeded: weight)
        victims.states[service].synPackets &+= weight
    }

    /// Counts a new attempt on a service or host, maturing in `step`: distinct sources always, the
    /// attempt itself only when tracked (untracked SYNs may be retransmissions), with its weight. A client kept
    /// at `clientShift` stands for 2^clientShift distinct sources; `sourceLevel` is its level.
    @inline(__always)
    func countAttempt(
        on service: Int,
        step: Int64,
        source: IPAddress,
        sourceHash: UInt64,
        sourceLevel: UInt8,
        tracked: Bool,
        weight: UInt32,
        clientShift: UInt8,
        topSources: Bool
    ) {
        let parity = clock.parity
        victims.advanceEpoch(service, to: clock.epoch)
        victims.distinct.add(sourceHash, level: sourceLevel, to: victims.sketch(service, parity: parity))
        victims.noteSketchShift(service, parity: parity, shift: clientShift)
        let counters = victims.stepCounters(service, step: step)
        ClientSampling.forEachStandIn(of: sourceHash, shift: clientShift) { hash in
            LinearCounter.add(hash, to: &counters.pointee.sources)
        }
        guard tracked else { return }
        SourceSample.add(source, hash: sourceHash, to: victims.sample(service, parity: parity), k: victims.sampleK)
        counters.pointee.attempts &+= weight
        let state = victims.states.pointer(service)
        state.pointee.attempts &+= Int(weight)
        state.pointee.epochAttempts[parity] &+= weight
        if topSources {
            SpaceSaving.add(
                source,
                weight: Int32(weight),
                to: victims.top(service, parity: parity),
                k: victims.topK
            )
        }
    }

    /// Counts a client that completed on a service or host, kept at `clientShift`, among its completers, and marks it
    /// in the sample of sources.
    @inline(__always)
    func countCompleter(_ client: IPAddress, on service: Int, hash: UInt64, level: UInt8, clientShift: UInt8) {
        let parity = clock.parity
        victims.distinct.add(hash, level: level, to: victims.completerSketch(service, parity: parity))
        victims.noteSketchShift(service, parity: parity, shift: clientShift)
        SourceSample.markCompleted(client, hash: hash, in: victims.sample(service, parity: parity), k: victims.sampleK)
    }

    /// Credits the completion or refusal of the attempt `entry` to the step it matures in.
    @inline(__always)
    func countClose(_ entry: HandshakeEntry, on service: Int, step: Int64, completed: Bool) {
        let state = victims.states.pointer(service)
        let weight = UInt32(entry.weight)
        if victims.holds(service, step: step) {
            let counters = victims.stepCounters(service, step: step)
            if completed { counters.pointee.completed &+= weight } else { counters.pointee.refused &+= weight }
            if completed && entry.retransmitted && entry.synAckSeen {
                counters.pointee.retransmittedAnsweredCompleted &+= weight
            }
            if completed && entry.optionless { counters.pointee.optionlessCompleted &+= weight }
            counters.pointee.removeOpen(entry)
        }
        if completed { state.pointee.completions &+= Int(weight) } else { state.pointee.resets &+= Int(weight) }
        guard completed else { return }
        victims.advanceEpoch(service, to: clock.epoch)
        state.pointee.epochCompleted[clock.parity] &+= weight
    }

    /// The completion grace learnt from the handshakes of the service in `slot` (nil: of none yet),
    /// else from those of every service, else the configured one, between its floor and ceiling.
    ///
    /// The median, not a high quantile: by then at least half of a real crowd's handshakes complete
    /// (so its undecided attempts never reach nine per completed one), while a flood has none, and
    /// a service whose clients are far away is still judged in a fraction of their slowest round trip.
    /// Late completions are credited to the step of the attempt when they come.
    func learntGrace(slot: Int?) -> Int64 {
        Engine.learntGrace(slot: slot, victims: victims, linkDelays: linkDelays, windows: configuration.windows)
    }

    static func learntGrace(
        slot: Int?,
        victims: VictimTable,
        linkDelays: UnsafeMutablePointer<UInt16>,
        windows: EngineConfiguration.Windows
    ) -> Int64 {
        let quantile = 0.5
        let learnt =
            slot.flatMap { DelayHistogram.upperBound(quantile: quantile, of: victims.delayHistogram($0)) }
            ?? DelayHistogram.upperBound(quantile: quantile, of: linkDelays)
        guard let learnt else { return windows.completionGrace.nanoseconds }
        // A quarter more than the bucket's edge: the edge of a handshake near the top of its bucket.
        return min(
            max(learnt + learnt / 4, windows.completionGraceFloor.nanoseconds),
            windows.completionGraceCeiling.nanoseconds
        )
    }

    /// The slot of a service, added if new; nil when its bucket holds only services under attack.
    func trackVictim(_ key: VictimKey, hash: UInt64) -> Int? {
        if let slot = victims.find(key, hash: hash) {
            victims.states[slot].lastActive = clock.now
            return slot
        }
        let states = victims.states
        // The least recently active service not under attack makes room.
        guard
            let slot = victims.slots.claim(
                hash: hash,
                evicting: { hash in
                    victims.slots.oldestSlot(
                        hash: hash,
                        age: { states[$0].lastActive },
                        evictable: { states[$0].phase == .idle }
                    )
                }
            )
        else {
            counters.victimsUntracked &+= 1
            return nil
        }
        victims.open(
            slot,
            key: key,
            hash: hash,
            time: clock.now,
            step: clock.step,
            epoch: clock.epoch,
            grace: learntGrace(slot: nil)
        )
        return slot
    }

    /// Counts the SYN `segment` for its source, admitting the source on its second SYN.
    /// - Parameters:
    ///   - sourceHash: the source address's hash.
    ///   - targetHash: the target service's hash.
    ///   - addressHash: the target address's hash (its host-wide victim hash).
    func recordSourceAttempt(_ segment: inout TCPSegment, sourceHash: UInt64, targetHash: UInt64, addressHash: UInt64) {
        let address = segment.source
        let epoch = clock.epoch
        let parity = clock.parity
        guard let slot = sources.find(address, hash: sourceHash) else {
            guard admission.admit(sourceHash, at: clock.now) else { return }
            let slot = sources.slots.claim(hash: sourceHash)
            sources.slots.occupy(slot, hash: sourceHash)
            // Built in registers and stored once: the entry's line is not read while it is fetched.
            // The admitting SYN is the second: the first one's target is unknown.
            var fresh = SourceEntry(address: address, epoch: epoch)
            fresh.attempts[parity] = 2
            fresh.lastTarget = segment.destination
            LinearCounter.add(targetHash, to: &fresh.targets[parity])
            LinearCounter.add(addressHash, to: &fresh.addresses[parity])
            sources.entries[slot] = fresh
            return
        }
        sources.advanceEpoch(slot, to: epoch)
        let entry = sources.entries.pointer(slot)
        entry.pointee.attempts[parity] &+= 1
        entry.pointee.lastTarget = segment.destination
        LinearCounter.add(targetHash, to: &entry.pointee.targets[parity])
        LinearCounter.add(addressHash, to: &entry.pointee.addresses[parity])
        if !entry.pointee.scanCandidate, entry.pointee.targets.union.nonzeroBitCount >= settings.scanCandidateBits,
            detector.scanCandidates.count < Detector.maximumScanCandidates
        {
            entry.pointee.scanCandidate = true
            detector.scanCandidates.append((slot, address, clock.now))
        }
    }

    /// Counts the unsolicited SYN-ACK `segment`, whose handshake key is `key`, for the address it was sent to.
    func recordBackscatter(_ segment: inout TCPSegment, key: (hash: UInt64, fingerprint: UInt64)) {
        let address = segment.destination
        let hash = hasher.hash(address)
        let now = clock.now
        let epoch = now / BackscatterTable.epochLength
        let slot: Int
        if let held = backscatter.find(address, hash: hash) {
            slot = held
        } else {
            slot = backscatter.slots.claim(hash: hash)
            backscatter.slots.occupy(slot, hash: hash)
            backscatter.entries[slot] = BackscatterEntry(address: address, epoch: epoch)
            backscatter.sketch(slot, parity: 0).update(repeating: 0, count: backscatter.distinct.registerCount * 2)
        }
        let parity = Int(epoch & 1)
        backscatter.advanceEpoch(slot, to: epoch)
        backscatter.entries.pointer(slot).pointee.synAcks[parity] &+= 1
        backscatter.distinct.add(hasher.hash(segment.source), to: backscatter.sketch(slot, parity: parity))
        backscatter.remember(key, serverISN: segment.sequence, slot: slot)
    }
}

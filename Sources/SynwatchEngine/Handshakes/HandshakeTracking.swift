/// Every handshake from its SYN to its completing ACK, RST or time-out, counted on its service and its host.
extension Engine {
    /// - Parameter hashes: the SYN's keys hashed, maybe on the thread that decoded it; nil to hash them here.
    func handleSyn(_ segment: inout TCPSegment, _ hashes: KeyHashes?) {
        counters.synPackets &+= 1
        // A service thinned by client is left before any of its work: the kernel drops the same SYNs.
        let clientShift = thinningShift(segment.destination, port: segment.destinationPort)
        if clientShift > 0 && !clientSampling.keeps(segment.source, shift: clientShift) {
            counters.thinnedOut &+= 1
            return
        }
        let hashes = hashes ?? KeyHashes(syn: segment, hasher)
        let now = clock.now
        let victimKey = VictimKey(address: segment.destination, port: segment.destinationPort)
        let victimHash = hashes.service
        let victim = trackVictim(victimKey, hash: victimHash)
        // The whole host too (port 0), where a flood spread over random ports adds up.
        let hostKey = VictimKey(address: segment.destination, port: 0)
        let hostHash = hashes.host
        let host = segment.destinationPort == 0 ? nil : trackVictim(hostKey, hash: hostHash)
        // Everything about the attempt is counted in the step it matures in.
        let grace = victim.map { victims.states[$0].grace } ?? configuration.windows.completionGrace.nanoseconds
        let graceCentiseconds = UInt8(truncatingIfNeeded: (grace + 9_999_999) / 10_000_000)
        let step = clock.step(of: now + Int64(graceCentiseconds) * 10_000_000)
        let synWeight = Int(1) << Int(clientShift)
        if let victim { countSynPacket(on: victim, step: step, weight: synWeight) }
        if let host { countSynPacket(on: host, step: step, weight: synWeight) }

        let key = HandshakeKey(segment, sentBy: .client)
        let hashed = hashes.handshake
        // A service under a heavy attack has its attempts sampled by handshake (4-tuple and ISN), so a flood
        // stops filling the table (and evicting other services' handshakes) once it is known. Retransmissions
        // are sampled with their attempt. A tracked attempt stands for `weight` attempts. Under a spoofed
        // storm the clients were sampled instead (above), and every attempt of a kept client is tracked.
        let shift =
            clientShift > 0
            ? clientShift
            : max(
                victim.map { victims.states[$0].samplingShift } ?? 0,
                host.map { victims.states[$0].samplingShift } ?? 0
            )
        // A SYN repeated past `maximumSends` is remembered on its service (its host when the service is untracked).
        let memo = victim ?? host
        let repeated =
            clientShift == 0 && shift > 0 && memo.map { victims.states[$0].repeatedSyn == hashed.fingerprint } == true
        let tracked =
            clientShift > 0 || repeated
            || HandshakeKey.isSampled(fingerprint: hashed.fingerprint, isn: segment.sequence, shift: shift)
        let weight = repeated ? 1 : UInt32(1) << UInt32(shift)
        if tracked {
            let slot: Int
            var sends: UInt8 = 1
            if let held = handshakes.find(hashed) {
                let again = handshakes.entries[held].clientISN == segment.sequence
                if again && handshakes.entries[held].sends < HandshakeEntry.maximumSends {
                    handshakes.entries[held].sends &+= 1
                    counters.synRetransmits &+= 1
                    if let victim { victims.states[victim].retransmits &+= 1 }
                    // A live stack: undecided while it is open. The same SYN sooner than any stack retransmits is
                    // a copy of it, which says nothing of the client.
                    if !handshakes.entries[held].retransmitted
                        && now - handshakes.entries[held].synTime >= settings.minRetransmissionDelay
                    {
                        handshakes.entries[held].retransmitted = true
                        let answered = handshakes.entries[held].synAckSeen
                        // Sent again as a stack sends it, it is judged as a stack's, whatever its options.
                        let optionless = handshakes.entries[held].optionless
                        handshakes.entries[held].optionless = false
                        forEachMaturityStep(of: held, key) { counters, weight in
                            counters.pointee.retransmitted &+= weight
                            if answered { counters.pointee.retransmittedAnswered &+= weight }
                            if optionless { counters.pointee.optionless -= min(counters.pointee.optionless, weight) }
                        }
                    }
                    return
                }
                // A new ISN on the same 4-tuple is a new attempt; the old one never completed. So is the same SYN sent
                // more often than a stack sends it, and every one after it: one packet repeated as a flood.
                let old = handshakes.entries[held]
                if old.retransmitted {
                    forEachMaturityStep(of: held, key) { counters, _ in counters.pointee.removeRetransmission(of: old) }
                }
                handshakes.slots.vacate(held)
                slot = held
                if again {
                    sends = HandshakeEntry.maximumSends
                    if let memo { victims.states[memo].repeatedSyn = hashed.fingerprint }
                }
            } else {
                slot = handshakes.slots.claim(hash: hashed.hash)
            }
            handshakes.open(
                slot,
                hashed,
                isn: segment.sequence,
                time: now,
                victim: victim,
                weight: UInt8(weight),
                graceCentiseconds: graceCentiseconds,
                sends: sends,
                optionless: !segment.hasOptions && sends < HandshakeEntry.maximumSends
            )
            // One packet repeated as a flood, or a SYN no stack sent: decided when it matures (`StepCounters`).
            if sends == HandshakeEntry.maximumSends {
                if let victim { victims.stepCounters(victim, step: step).pointee.repeated &+= weight }
                if let host { victims.stepCounters(host, step: step).pointee.repeated &+= weight }
            } else if !segment.hasOptions {
                if let victim { victims.stepCounters(victim, step: step).pointee.optionless &+= weight }
                if let host { victims.stepCounters(host, step: step).pointee.optionless &+= weight }
            }
        } else {
            counters.sampledOut &+= 1
        }

        let sourceHash = hashes.source
        let sourceLevel = clientSampling.level(of: segment.source)
        if let victim {
            countAttempt(
                on: victim,
                step: step,
                source: segment.source,
                sourceHash: sourceHash,
                sourceLevel: sourceLevel,
                tracked: tracked,
                weight: weight,
                clientShift: clientShift,
                topSources: true
            )
        }
        // No heavy hitters on a host, only a sample of its sources (`VictimTable.tops`).
        if let host {
            countAttempt(
                on: host,
                step: step,
                source: segment.source,
                sourceHash: sourceHash,
                sourceLevel: sourceLevel,
                tracked: tracked,
                weight: weight,
                clientShift: clientShift,
                topSources: false
            )
        }
        // The sources of a spoofed storm send one SYN each: following them one by one would only
        // churn the source table. Scanners still show through their SYNs to other services.
        if !isUnderSpoofedAttack(victim) && !isUnderSpoofedAttack(host) {
            recordSourceAttempt(&segment, sourceHash: sourceHash, targetHash: victimHash, addressHash: hostHash)
        }
    }

    @inline(__always)
    func isUnderSpoofedAttack(_ slot: Int?) -> Bool {
        guard let slot else { return false }
        return victims.states[slot].phase == .attacked && victims.states[slot].kind == .randomSource
    }

    /// - Parameter hashes: the SYN-ACK's handshake hashed, maybe on the thread that decoded it; nil to hash it here.
    func handleSynAck(_ segment: inout TCPSegment, _ hashes: KeyHashes?) {
        counters.synAcks &+= 1
        let clientShift = thinningShift(segment.source, port: segment.sourcePort)
        if clientShift > 0 && !clientSampling.keeps(segment.destination, shift: clientShift) {
            counters.thinnedOut &+= 1
            return
        }
        let hashed = hashes?.handshake ?? handshakes.hash(HandshakeKey(segment, sentBy: .server))
        guard let slot = handshakes.find(hashed) else {
            // Backscatter is SYN-ACKs from others. A service of ours that receives SYNs answers attempts evicted
            // (unsolicited now: their SYN is forgotten) or sampled out under attack (not: their SYN was seen).
            let service = VictimKey(address: segment.source, port: segment.sourcePort)
            guard let victim = victims.find(service, hash: victims.hash(service)) else {
                counters.unsolicitedSynAcks &+= 1
                recordBackscatter(&segment, key: hashed)
                return
            }
            let shift = victims.states[victim].samplingShift
            let isn = segment.acknowledgement &- 1
            if HandshakeKey.isSampled(fingerprint: hashed.fingerprint, isn: isn, shift: shift) {
                counters.unsolicitedSynAcks &+= 1
            }
            return
        }
        let entry = handshakes.entries.pointer(slot)
        guard Self.isInFirstWindow(segment.acknowledgement, of: entry.pointee.clientISN) else { return }
        if entry.pointee.synAckSeen && entry.pointee.serverISN == segment.sequence {
            counters.synAckRetransmits &+= 1
        } else {
            if !entry.pointee.synAckSeen { countAnswer(of: slot, HandshakeKey(segment, sentBy: .server)) }
            entry.pointee.synAckSeen = true
            entry.pointee.serverISN = segment.sequence
        }
    }

    /// Counts the first answer to the attempt in `slot` on its service and its host: answers their clients ignore
    /// tell a flood from one source (`DetectorInputs.ignoredAnswerEvidence`), and a host's answers a flood over its
    /// ports from a scan (`DetectorInputs.heldPastDeadline`). Out of line: under a flood most SYN-ACKs answer attempts
    /// sampled out, and `handleSynAck` stays small.
    @inline(never)
    func countAnswer(of slot: Int, _ key: HandshakeKey) {
        // Answered only after the client sent its SYN again (the server's queue had dropped it): retransmitted and
        // answered from now on, as if the answer had come first.
        let retransmitted = handshakes.entries[slot].retransmitted
        forEachMaturityStep(of: slot, key) { counters, weight in
            counters.pointee.answered &+= weight
            if retransmitted { counters.pointee.retransmittedAnswered &+= weight }
        }
    }

    func handleAck(_ segment: inout TCPSegment) {
        // The sender of a SYN-ACK counted as backscatter that goes on with its connection answered a SYN out of sight.
        if clock.now < backscatter.rememberedUntil {
            backscatter.forget(
                handshakes.hash(HandshakeKey(segment, sentBy: .server)),
                to: segment.destination,
                sequence: segment.sequence
            )
        }
        // Most ACKs carry data of established connections: look in the handshake table only when the
        // destination is a service that had a SYN within the longest handshake time-out, and in the connection
        // table only when the service has a FIN of its own waiting for the client's ACK.
        let victimKey = VictimKey(address: segment.destination, port: segment.destinationPort)
        guard let victim = victims.find(victimKey, hash: victims.hash(victimKey)) else { return }
        if victims.states[victim].lastActive >= clock.now - settings.retransmittedTimeout,
            completeHandshake(&segment, on: victim)
        {
            return
        }
        if victims.connections[victim].awaitingFinAck > 0 { acknowledgeServerFin(&segment) }
    }

    /// Whether `segment` completes a tracked handshake on `victim`; if so, it is counted and the connection
    /// followed from then on.
    func completeHandshake(_ segment: inout TCPSegment, on victim: Int) -> Bool {
        let key = HandshakeKey(segment, sentBy: .client)
        let hashed = handshakes.hash(key)
        guard let slot = handshakes.find(hashed) else {
            let isn = segment.sequence &- 1
            noteSampledOutCompleter(segment.source, on: victim, fingerprint: hashed.fingerprint, isn: isn)
            return false
        }
        let entry = handshakes.entries[slot]
        guard Self.isInFirstWindow(segment.sequence, of: entry.clientISN),
            !entry.synAckSeen || Self.isInFirstWindow(segment.acknowledgement, of: entry.serverISN)
        else { return false }
        counters.completions &+= 1
        close(slot, of: key, completed: true)
        openConnection(&segment, service: victim, weight: entry.weight)
        return true
    }

    /// Counts the sender of an ACK whose handshake was sampled out as a source that completed: its handshake is not
    /// tracked, but a source that acknowledges on a connection of the service is no failing one. Without this,
    /// distinct sources under sampling would count the service's own clients as failing. Only the service's: a host
    /// is sampled under a flood spread over its ports, whose sources far outnumber its clients. Most ACKs end at the
    /// first guard. `isn` is the ACK's seq − 1: the client's ISN for the completing ACK; for a later one, whatever it
    /// decides, the sender holds a connection.
    func noteSampledOutCompleter(_ client: IPAddress, on victim: Int, fingerprint: UInt64, isn: UInt32) {
        let shift = victims.states[victim].samplingShift
        guard shift > 0, !HandshakeKey.isSampled(fingerprint: fingerprint, isn: isn, shift: shift) else { return }
        // Sampled by client, a kept client's attempts are all tracked, and an unkept one is no source at all.
        let key = victims.keys[victim]
        guard thinningShift(key.address, port: key.port) == 0 else { return }
        let sourceHash = hasher.hash(client)
        victims.advanceEpoch(victim, to: clock.epoch)
        countCompleter(client, on: victim, hash: sourceHash, level: clientSampling.level(of: client), clientShift: 0)
        if let source = sources.find(client, hash: sourceHash) { sources.entries[source].acknowledged = true }
    }

    func handleReset(_ segment: inout TCPSegment) {
        // From the client: it gives up, or its kernel resets a SYN-ACK it never asked for (a flood
        // from a real host), or a scanner tears down. The attempt ends without completing: it stays
        // counted as half-open, and only leaves the table.
        let fromClient = HandshakeKey(segment, sentBy: .client)
        if let slot = handshakes.find(handshakes.hash(fromClient)) {
            counters.resets &+= 1
            // The client never wanted the connection (it did not send the SYN, or gave up): decided at once.
            let entry = handshakes.entries[slot]
            forEachMaturityStep(of: slot, fromClient) { counters, weight in
                counters.pointee.clientReset &+= weight
                counters.pointee.removeOpen(entry)
            }
            handshakes.slots.vacate(slot)
            return
        }
        // From the server: nothing listens on that port (RST/ACK acknowledging the SYN).
        let fromServer = HandshakeKey(segment, sentBy: .server)
        if let slot = handshakes.find(handshakes.hash(fromServer)) {
            guard
                !segment.flags.contains(.ack)
                    || Self.isInFirstWindow(segment.acknowledgement, of: handshakes.entries[slot].clientISN)
            else { return }
            counters.resets &+= 1
            close(slot, of: fromServer, completed: false)
            return
        }
        // Otherwise it may abort a connection that completed.
        resetConnection(&segment)
    }

    /// Whether a sequence or acknowledgement number lies in the first window after `isn`: the SYN's own data (TCP
    /// Fast Open: the server acknowledges it in its SYN-ACK, and the client's ACK follows it), and what follows a
    /// completing ACK the capture lost (the first data segment, or an ACK of the server's banner).
    @inline(__always)
    static func isInFirstWindow(_ number: UInt32, of isn: UInt32) -> Bool {
        number &- (isn &+ 1) < 0x1_0000
    }

    /// Ends the attempt in `slot` by a completing ACK or the server's RST (nothing listens), crediting
    /// the step of its SYN on its service and its host.
    func close(_ slot: Int, of key: HandshakeKey, completed: Bool) {
        let client = key.client
        let entry = handshakes.entries[slot]
        let step = entry.maturityStep(resolution: clock.resolution)
        let weight = UInt32(entry.weight)
        handshakes.slots.vacate(slot)
        let parity = clock.parity
        let victim = victimSlot(of: key)
        let host = hostSlot(of: key)
        let clientHash = completed ? hasher.hash(client) : 0
        if let host { countClose(entry, on: host, step: step, completed: completed) }
        if let victim {
            countClose(entry, on: victim, step: step, completed: completed)
            // Completers are subtracted from the sources of the service and of its host, and delays learnt per
            // service and for the link (hosts use the link's).
            if completed {
                let key = victims.keys[victim]
                let clientShift = thinningShift(key.address, port: key.port)
                let clientLevel = clientSampling.level(of: client)
                countCompleter(client, on: victim, hash: clientHash, level: clientLevel, clientShift: clientShift)
                if let host {
                    countCompleter(client, on: host, hash: clientHash, level: clientLevel, clientShift: clientShift)
                }
                // After a retransmission the delay measures the client's time-out, not the path.
                if !entry.retransmitted {
                    DelayHistogram.add(clock.now - entry.synTime, to: victims.delayHistogram(victim))
                    DelayHistogram.add(clock.now - entry.synTime, to: linkDelays)
                }
                // A refused attempt stays among the source's failing ones: a flood at a closed port is refused whole.
                SpaceSaving.remove(
                    client,
                    weight: Int32(weight),
                    from: victims.top(victim, parity: parity),
                    k: victims.topK
                )
            }
        }
        if completed, let source = sources.find(client, hash: clientHash) {
            sources.advanceEpoch(source, to: clock.epoch)
            // Every SYN of the source is counted, but only tracked attempts complete here: each stands for
            // its weight, or a sampled service's busy clients would look half-open.
            sources.entries.pointer(source).pointee.completions[parity] &+= weight
        }
    }

    /// Drops attempts that timed out by `time` (those whose SYN was retransmitted, later) from `buckets` buckets of
    /// the table: a slice per step.
    func sweepTimeouts(at time: Int64, buckets: Int) {
        // Past the input's end the attempts are only let pass their deadline; none times out after the capture.
        guard inputEnd == nil else { return }
        let slots = handshakes.slots
        let cutoff = time - settings.timeout
        let retransmittedCutoff = time - settings.retransmittedTimeout
        for _ in 0..<min(buckets, slots.bucketMask + 1) {
            let bucket = handshakes.sweepCursor
            handshakes.sweepCursor = (bucket + 1) & slots.bucketMask
            guard slots.tags[bucket] != 0 else { continue }
            for slot in (bucket * 8)..<(bucket * 8 + 8) where slots.isOccupied(slot) {
                let entry = handshakes.entries[slot]
                guard entry.synTime < (entry.retransmitted ? retransmittedCutoff : cutoff) else { continue }
                // The service may have been evicted (and its slot reused) since: a stale count is harmless.
                if let victim = entry.victimSlot, victims.slots.isOccupied(victim) {
                    let weight = Int(entry.weight)
                    victims.states[victim].timeouts &+= weight
                    let hostKey = VictimKey(address: victims.keys[victim].address, port: 0)
                    if let host = victims.find(hostKey, hash: victims.hash(hostKey)), host != victim {
                        victims.states[host].timeouts &+= weight
                    }
                }
                counters.timeouts &+= 1
                slots.vacate(slot)
            }
        }
    }

    /// Calls `body` with the counters of the step in which the attempt in `slot` matures, on its service and on
    /// its host (each while that step is still in its ring), and with the attempts it stands for.
    @inline(__always)
    func forEachMaturityStep(
        of slot: Int,
        _ key: HandshakeKey,
        _ body: (UnsafeMutablePointer<StepCounters>, UInt32) -> Void
    ) {
        let entry = handshakes.entries[slot]
        let step = entry.maturityStep(resolution: clock.resolution)
        // Two calls, not a loop over an array: a flood from a real host resets every attempt.
        if let service = victimSlot(of: key), victims.holds(service, step: step) {
            body(victims.stepCounters(service, step: step), UInt32(entry.weight))
        }
        if let host = hostSlot(of: key), victims.holds(host, step: step) {
            body(victims.stepCounters(host, step: step), UInt32(entry.weight))
        }
    }

    /// The slot of the attempt's service.
    @inline(__always)
    func victimSlot(of key: HandshakeKey) -> Int? {
        let victimKey = VictimKey(address: key.server, port: key.serverPort)
        return victims.find(victimKey, hash: victims.hash(victimKey))
    }

    /// The host-wide slot of the attempt's server.
    @inline(__always)
    func hostSlot(of key: HandshakeKey) -> Int? {
        guard key.serverPort != 0 else { return nil }
        let hostKey = VictimKey(address: key.server, port: 0)
        return victims.find(hostKey, hash: victims.hash(hostKey))
    }
}

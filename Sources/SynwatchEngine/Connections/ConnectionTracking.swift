/// Every connection whose handshake completed, through its close as the server's kernel sees it.
extension Engine {
    /// The connection table's hash of `segment`'s 4-tuple, with its endpoints in a fixed order so
    /// both directions find one entry, and whether the segment's source is the first (low) endpoint.
    @inline(__always)
    func connectionHash(_ segment: TCPSegment) -> (hashed: (hash: UInt64, fingerprint: UInt64), sourceIsLow: Bool) {
        let source = segment.source
        let destination = segment.destination
        let sourcePort = segment.sourcePort
        let destinationPort = segment.destinationPort
        let sourceIsLow = (source.high, source.low, sourcePort) < (destination.high, destination.low, destinationPort)
        let hashed =
            sourceIsLow
            ? hasher.hash(source, destination, ports: UInt32(sourcePort) << 16 | UInt32(destinationPort))
            : hasher.hash(destination, source, ports: UInt32(destinationPort) << 16 | UInt32(sourcePort))
        return (hashed, sourceIsLow)
    }

    /// Whether `acknowledgement` covers the FIN at sequence number `fin` (serial arithmetic, RFC 1982).
    ///
    /// Nothing follows a FIN, so the exact ACK is `fin + 1`; taking any later one as well keeps a FIN whose
    /// payload length the IP header did not give (segmentation offload) from waiting forever.
    @inline(__always)
    static func acknowledges(_ acknowledgement: UInt32, fin: UInt32) -> Bool {
        Int32(bitPattern: acknowledgement &- fin) > 0
    }

    /// Starts following the connection whose handshake `segment` (from the client) completed.
    func openConnection(_ segment: inout TCPSegment, service: Int, weight: UInt8) {
        let (hashed, sourceIsLow) = connectionHash(segment)
        if let held = connections.find(hashed) {
            // The server accepted a new SYN on a 4-tuple it held: a TIME_WAIT reused, or a close out of sight.
            endConnection(held, connections.entries[held].state == .timeWait ? .closed : .expired)
        }
        let slot: Int
        if let free = connections.slots.freeSlot(hash: hashed.hash) {
            slot = free
        } else {
            // Not `claim`: an evicted connection leaves the counts of its state too, as every end does.
            slot = connections.evictionSlot(hash: hashed.hash)
            endConnection(slot, .evicted)
        }
        connections.slots.occupy(slot, hash: hashed.hash)
        connections.entries[slot] = ConnectionEntry(
            fingerprint: hashed.fingerprint,
            since: clock.now,
            victim: UInt32(truncatingIfNeeded: service + 1),
            victimSerial: victims.states[service].serial,
            serverIsLow: !sourceIsLow,
            weight: weight
        )
        counters.connectionsOpened &+= 1
        counters.connections.established &+= 1
        victims.connections[service].established &+= Int(weight)
    }

    /// The client's ACK, when it acknowledges the FIN of a server waiting for it.
    func acknowledgeServerFin(_ segment: inout TCPSegment) {
        let (hashed, sourceIsLow) = connectionHash(segment)
        guard let slot = connections.find(hashed) else { return }
        let entry = connections.entries.pointer(slot)
        guard sourceIsLow != entry.pointee.serverIsLow,
            Engine.acknowledges(segment.acknowledgement, fin: entry.pointee.serverFin)
        else { return }
        switch entry.pointee.state {
        case .finWait1: moveConnection(slot, to: .finWait2)
        case .closing: moveConnection(slot, to: .timeWait)
        case .lastAck: endConnection(slot, .closed)
        default: break
        }
    }

    /// A FIN from either side. Any ACK it carries was taken first (`handleAck`), as the receiver takes it.
    func handleFin(_ segment: inout TCPSegment) {
        guard connections.slots.count > 0 else { return }
        let (hashed, sourceIsLow) = connectionHash(segment)
        guard let slot = connections.find(hashed) else { return }
        let entry = connections.entries.pointer(slot)
        if sourceIsLow == entry.pointee.serverIsLow {
            // The FIN takes the sequence number after the segment's data.
            let fin = segment.sequence &+ UInt32(truncatingIfNeeded: segment.payloadLength)
            switch entry.pointee.state {
            case .established:
                entry.pointee.serverFin = fin
                moveConnection(slot, to: .finWait1)
            case .closeWait:
                entry.pointee.serverFin = fin
                moveConnection(slot, to: .lastAck)
                countClose(slot, .clientFirst)
            default:
                // A retransmission.
                break
            }
        } else {
            switch entry.pointee.state {
            case .established:
                moveConnection(slot, to: .closeWait)
            case .finWait1:
                moveConnection(slot, to: .closing)
                countClose(slot, .simultaneous)
            case .finWait2:
                moveConnection(slot, to: .timeWait)
                countClose(slot, .serverFirst)
            case .timeWait:
                // A retransmitted FIN: the server acknowledges it again and restarts its TIME_WAIT.
                entry.pointee.since = clock.now
            default:
                // A retransmission.
                break
            }
        }
    }

    /// A RST that answers no handshake: it aborts the connection (and ends a TIME_WAIT, as Linux lets it).
    ///
    /// Its sequence number is not checked against the window, which the engine does not follow.
    func resetConnection(_ segment: inout TCPSegment) {
        guard connections.slots.count > 0 else { return }
        let (hashed, sourceIsLow) = connectionHash(segment)
        guard let slot = connections.find(hashed) else { return }
        guard connections.entries[slot].state != .timeWait else { return endConnection(slot, .closed) }
        countClose(slot, sourceIsLow == connections.entries[slot].serverIsLow ? .abortedByServer : .abortedByClient)
        endConnection(slot, .aborted)
    }

    /// Ends TIME_WAITs that ran out and closing states that outlived the FIN time-out, `buckets` buckets on.
    func sweepConnections(at time: Int64, buckets: Int) {
        let slots = connections.slots
        // Past the input's end (`finish()` letting the last attempts pass their deadline) the connections stay as
        // the capture left them: the summary tells their states at its end.
        guard slots.count > 0, inputEnd == nil else { return }
        let timeWait = configuration.connections.timeWait.nanoseconds
        let finTimeout = configuration.connections.finTimeout.nanoseconds
        for _ in 0..<min(buckets, slots.bucketMask + 1) {
            let bucket = connections.sweepCursor
            connections.sweepCursor = (bucket + 1) & slots.bucketMask
            guard slots.tags[bucket] != 0 else { continue }
            for slot in (bucket * 8)..<(bucket * 8 + 8) where slots.isOccupied(slot) {
                let entry = connections.entries[slot]
                switch entry.state {
                case .timeWait where time - entry.since >= timeWait:
                    endConnection(slot, .closed)
                case .finWait1, .finWait2, .closing, .lastAck:
                    if time - entry.since >= finTimeout { endConnection(slot, .expired) }
                default:
                    break
                }
            }
        }
    }

    // MARK: Connection counts

    /// The slot of the connection's service, while it still holds the slot it had: otherwise its counts went
    /// with it.
    @inline(__always)
    func connectionService(_ slot: Int) -> Int? {
        let entry = connections.entries[slot]
        guard entry.victim > 0 else { return nil }
        let service = Int(entry.victim) - 1
        guard victims.slots.isOccupied(service), victims.states[service].serial == entry.victimSerial else {
            return nil
        }
        return service
    }

    /// Moves the connection in `slot` to `state`, in the table's counts and its service's.
    func moveConnection(_ slot: Int, to state: ConnectionState) {
        let entry = connections.entries.pointer(slot)
        let old = entry.pointee.state
        counters.connections[old] &-= 1
        counters.connections[state] &+= 1
        if let service = connectionService(slot) {
            let weight = Int(entry.pointee.weight)
            victims.connections[service][old] &-= weight
            victims.connections[service][state] &+= weight
        }
        entry.pointee.state = state
        entry.pointee.since = clock.now
    }

    /// Counts a close or an abort of the connection in `slot`, once in all and with its weight on its service.
    ///
    /// A switch rather than a key path: an opaque key path applied inside an access to `counters` would make
    /// the compiler check every access to it at run time, on the SYN path too.
    func countClose(_ slot: Int, _ close: ConnectionClose) {
        counters.connections.count(close, weight: 1)
        if let service = connectionService(slot) {
            victims.connections[service].count(close, weight: Int(connections.entries[slot].weight))
        }
    }

    /// Removes the connection in `slot` from the table and from the counts of its state.
    func endConnection(_ slot: Int, _ end: ConnectionEnd) {
        let state = connections.entries[slot].state
        counters.connections[state] &-= 1
        if let service = connectionService(slot) {
            victims.connections[service][state] &-= Int(connections.entries[slot].weight)
        }
        connections.slots.vacate(slot)
        switch end {
        case .closed: counters.connectionsClosed &+= 1
        case .aborted: break
        case .expired: counters.connectionsExpired &+= 1
        case .evicted: counters.connectionEvictions &+= 1
        }
    }
}

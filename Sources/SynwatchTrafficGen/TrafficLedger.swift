/// Every handshake attempt and SYN packet a generated capture holds, per victim service: the ground truth
/// a detector's figures are checked against, at any capture time and over any window.
///
/// Filled by `Scenario.write(…, ledger:)` from the segments as they are written (after the direction
/// filter), so it holds exactly what the capture holds. Times are nanoseconds since the epoch, in
/// capture order.
public final class TrafficLedger {
    /// A victim service: the server's address and port of a handshake.
    public struct Service: Hashable, Sendable, CustomStringConvertible {
        public var address: NetAddress
        public var port: UInt16

        public init(_ address: NetAddress, _ port: UInt16) {
            self.address = address
            self.port = port
        }

        public var description: String { "\(address):\(port)" }
    }

    /// One SYN packet to a service (a retransmission is a packet of its own).
    public struct SynPacket: Sendable {
        public var time: Int64
        public var source: NetAddress
    }

    /// One connection attempt: a SYN with a new ISN on its 4-tuple, and how it ended, if it did.
    public struct Attempt: Sendable {
        public var source: NetAddress
        /// Capture time of its first SYN.
        public var syn: Int64
        /// Its SYN packets, the first included.
        public var synPackets: Int
        /// When the client's ACK completed it.
        public var completed: Int64?
        /// When the server refused it (RST, nothing listens).
        public var refused: Int64?
        /// When the client reset it before completing.
        public var clientReset: Int64?

        /// Whether, at `time`, it had neither completed nor been refused (a client's reset leaves it half-open).
        public func isHalfOpen(at time: Int64) -> Bool {
            !((completed.map { $0 <= time } ?? false) || (refused.map { $0 <= time } ?? false))
        }
    }

    private struct Key: Hashable {
        var client: NetAddress
        var clientPort: UInt16
        var service: Service
    }

    /// SYN packets per service, in capture order.
    public private(set) var synPackets: [Service: [SynPacket]] = [:]
    /// Attempts per service, in the order of their first SYN.
    public private(set) var attempts: [Service: [Attempt]] = [:]
    /// The open attempt of each 4-tuple: its index in `attempts[service]` and its ISN.
    private var open: [Key: (index: Int, isn: UInt32)] = [:]

    public init() {}

    /// Takes note of one written segment.
    func record(_ segment: Segment) {
        if case .rest = segment.fragment { return }
        let flags = segment.flags
        if segment.inbound {
            let service = Service(segment.destination, segment.destinationPort)
            let key = Key(client: segment.source, clientPort: segment.sourcePort, service: service)
            if flags.contains(.syn) && !flags.contains(.ack) && !flags.contains(.rst) {
                synPackets[service, default: []].append(SynPacket(time: segment.time, source: segment.source))
                if let known = open[key], known.isn == segment.sequence {
                    attempts[service]![known.index].synPackets += 1
                    return
                }
                let list = attempts[service, default: []]
                open[key] = (list.count, segment.sequence)
                attempts[service, default: []].append(
                    Attempt(source: segment.source, syn: segment.time, synPackets: 1)
                )
            } else if flags.contains(.rst) {
                guard let known = open.removeValue(forKey: key) else { return }
                attempts[service]![known.index].clientReset = segment.time
            } else if flags.contains(.ack), let known = open[key], segment.sequence == known.isn &+ 1 {
                open.removeValue(forKey: key)
                attempts[service]![known.index].completed = segment.time
            }
        } else if flags.contains(.rst) {
            let service = Service(segment.source, segment.sourcePort)
            let key = Key(client: segment.destination, clientPort: segment.destinationPort, service: service)
            guard let known = open[key], segment.acknowledgment == known.isn &+ 1 else { return }
            open.removeValue(forKey: key)
            attempts[service]![known.index].refused = segment.time
        }
    }

    /// SYN packets to `service` captured in `[from, until)`, optionally from one source only.
    /// - Complexity: O(log n) for all sources; O(n) in the window for one.
    public func synPacketCount(to service: Service, from: Int64, until: Int64, source: NetAddress? = nil) -> Int {
        guard let packets = synPackets[service] else { return 0 }
        let lower = Self.firstIndex(in: packets, atOrAfter: from)
        let upper = Self.firstIndex(in: packets, atOrAfter: until)
        guard lower < upper else { return 0 }
        guard let source else { return upper - lower }
        return packets[lower..<upper].reduce(0) { $0 + ($1.source == source ? 1 : 0) }
    }

    /// The attempts on `service` whose first SYN was captured in `[from, until)`.
    public func attempts(on service: Service, from: Int64, until: Int64) -> ArraySlice<Attempt> {
        guard let list = attempts[service] else { return [] }
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].syn < from { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < list.count && list[end].syn < until { end += 1 }
        return list[low..<end]
    }

    private static func firstIndex(in packets: [SynPacket], atOrAfter time: Int64) -> Int {
        var low = 0
        var high = packets.count
        while low < high {
            let middle = (low + high) / 2
            if packets[middle].time < time { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

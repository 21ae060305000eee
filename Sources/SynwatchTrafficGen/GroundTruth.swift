import Foundation

/// What a generated capture contains, for comparing a detector's findings with the truth.
///
/// Times are capture times in seconds since the epoch (fractional), as in synwatch's events. In JSON the
/// keys are snake_case; the flood fields use the event names (`syn_per_s`, `distinct_sources`).
public struct GroundTruth: Codable, Sendable, Equatable {
    public var seed: UInt64
    public var family: AddressFamily
    /// Frames written to the capture (after the direction filter).
    public var packets: Int
    /// Capture times of the first and last frame; nil for an empty capture.
    public var firstPacket: Double?
    public var lastPacket: Double?
    /// Benign connections started by the background traffic (flash crowds not included).
    public var backgroundConnections: Int
    public var floods: [FloodTruth]
    public var scans: [ScanTruth]
    public var backscatter: [BackscatterTruth]
    public var flashCrowds: [FlashCrowdTruth]
    /// Whether the capture holds a flash crowd (which must raise no alert).
    public var hasFlashCrowd: Bool

    init(seed: UInt64, family: AddressFamily) {
        self.seed = seed
        self.family = family
        packets = 0
        backgroundConnections = 0
        floods = []
        scans = []
        backscatter = []
        flashCrowds = []
        hasFlashCrowd = false
    }

    /// The truth as pretty-printed JSON with sorted keys and snake_case names.
    ///
    /// - Throws: an `EncodingError` (not expected for these plain values).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }

    /// Reads truth written by `jsonData()`.
    ///
    /// - Parameters:
    ///   - data: the JSON text.
    /// - Throws: a `DecodingError` when the text is not such a truth.
    public static func decode(_ data: Data) throws -> GroundTruth {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(GroundTruth.self, from: data)
    }
}

/// One flood of the capture.
public struct FloodTruth: Codable, Sendable, Equatable {
    public var victim: NetAddress
    public var port: UInt16
    public var kind: FloodKind
    /// Time of the first SYN and of the last new SYN (retransmissions excluded).
    public var start: Double
    public var end: Double
    /// New SYNs per second while the flood was on (retransmissions excluded).
    public var synPerSecond: Double
    /// Connection attempts: distinct SYNs, each counted once however often it was retransmitted.
    public var attempts: Int
    /// SYN packets, retransmissions included.
    public var synPackets: Int
    public var distinctSources: Int
    public var style: SYNStyle
    public var pulse: Pulse?

    enum CodingKeys: String, CodingKey {
        case victim, port, kind, start, end, attempts, style, pulse
        case synPerSecond = "synPerS"
        case synPackets, distinctSources
    }
}

/// How a scan moves through its targets.
public enum ScanShape: String, Sendable, Codable {
    /// Many ports of one address.
    case vertical
    /// One port across many addresses.
    case horizontal
}

/// One scan of the capture.
public struct ScanTruth: Codable, Sendable, Equatable {
    public var source: NetAddress
    public var shape: ScanShape
    /// The scanned address of a vertical scan.
    public var target: NetAddress?
    /// The scanned port of a horizontal scan.
    public var port: UInt16?
    public var start: Double
    public var end: Double
    /// SYN probes sent.
    public var probes: Int
    /// Distinct ports and addresses probed.
    public var ports: Int
    public var targets: Int
}

/// Backscatter arriving at one of our addresses.
public struct BackscatterTruth: Codable, Sendable, Equatable {
    /// Our address, which someone else spoofed.
    public var address: NetAddress
    public var start: Double
    public var end: Double
    /// SYN-ACK packets (retransmissions included) and RST/ACK packets received.
    public var synAcks: Int
    public var resets: Int
    /// Distinct reflectors that answered.
    public var reflectors: Int
}

/// One flash crowd of the capture.
public struct FlashCrowdTruth: Codable, Sendable, Equatable {
    public var service: NetAddress
    public var port: UInt16
    /// Time of the first and last new connection of the surge.
    public var start: Double
    public var end: Double
    /// Connections opened (all of them complete).
    public var connections: Int
    public var connectionsPerSecond: Double
}

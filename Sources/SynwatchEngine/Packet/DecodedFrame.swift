/// A frame decoded ahead of the engine, on another thread (`Engine.process(decoded:)`): what `Engine.process(_:)`
/// decodes for itself, so that both give the same events.
public struct DecodedFrame: Sendable {
    /// Capture time in nanoseconds.
    public var time: Int64
    public var wireLength: Int
    public var outcome: DecodeOutcome
    /// Meaningful when `outcome` is `.tcp`.
    public var segment: TCPSegment
    /// For a SYN, its table keys' hashes.
    var synHashes: SynHashes

    @inline(__always)
    init(_ frame: Frame, hasher: KeyedHasher) {
        time = frame.time.nanoseconds
        wireLength = frame.wireLength
        segment = .empty
        outcome = PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment)
        synHashes =
            outcome == .tcp && segment.flags.intersection([.syn, .ack, .rst]) == .syn
            ? SynHashes(segment, hasher) : SynHashes()
    }

    /// Nothing decoded yet: a value to fill buffers with.
    public static let empty = DecodedFrame()

    private init() {
        time = 0
        wireLength = 0
        outcome = .notIP
        segment = .empty
        synHashes = SynHashes()
    }
}

/// Decodes frames for an engine on another thread: the decoding, and the hashing of a SYN's keys, which depends on
/// the engine's hash seed only.
public struct FrameDecoder: Sendable {
    let hasher: KeyedHasher

    @inline(__always)
    public func decode(_ frame: Frame) -> DecodedFrame { DecodedFrame(frame, hasher: hasher) }
}

/// The hashes of a SYN's service, host, handshake and source keys: the SYN path's hashing, done where the frame is
/// decoded, by the same functions the tables hash their keys with.
struct SynHashes: Sendable {
    var service: UInt64 = 0
    var host: UInt64 = 0
    var handshake: (hash: UInt64, fingerprint: UInt64) = (0, 0)
    var source: UInt64 = 0

    init() {}

    @inline(__always)
    init(_ segment: TCPSegment, _ hasher: KeyedHasher) {
        service = VictimKey(address: segment.destination, port: segment.destinationPort).hashed(by: hasher)
        host = VictimKey(address: segment.destination, port: 0).hashed(by: hasher)
        handshake = HandshakeKey(segment, sentBy: .client).hashed(by: hasher)
        source = hasher.hash(segment.source)
    }
}

/// A frame decoded ahead of the engine, on another thread (`Engine.process(decoded:count:)`): what `Engine.process(_:)`
/// decodes for itself, so that both give the same events.
public struct DecodedFrame: Sendable {
    /// Capture time in nanoseconds.
    public var time: Int64
    public var wireLength: Int
    public var outcome: DecodeOutcome
    /// Meaningful when `outcome` is `.tcp`.
    public var segment: TCPSegment
    /// For a SYN or a SYN-ACK, its table keys' hashes.
    var keyHashes: KeyHashes

    @inline(__always)
    init(_ frame: Frame, hasher: KeyedHasher, thinned: [SampledService], sampling: ClientSampling) {
        time = frame.time.nanoseconds
        wireLength = frame.wireLength
        segment = .empty
        outcome = PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment)
        guard outcome == .tcp else {
            keyHashes = KeyHashes()
            return
        }
        switch segment.flags.intersection([.syn, .ack, .rst]) {
        case .syn:
            // A SYN the engine will thin out is not hashed: on a storm, its four keys were a sixth of the reading
            // thread's time. Should the engine keep it after all (the list changed since), it hashes them itself.
            let shift = thinned.isEmpty ? 0 : thinned.shift(of: segment.destination, port: segment.destinationPort)
            keyHashes = sampling.keeps(segment.source, shift: shift) ? KeyHashes(syn: segment, hasher) : KeyHashes()
        case [.syn, .ack]: keyHashes = KeyHashes(synAck: segment, hasher)
        default: keyHashes = KeyHashes()
        }
    }

    /// Nothing decoded yet: a value to fill buffers with.
    public static let empty = DecodedFrame()

    private init() {
        time = 0
        wireLength = 0
        outcome = .notIP
        segment = .empty
        keyHashes = KeyHashes()
    }
}

/// Decodes frames for an engine on another thread: the decoding, and the hashing of a SYN's or a SYN-ACK's keys,
/// which depends on the engine's hash seed only.
public struct FrameDecoder: Sendable {
    let hasher: KeyedHasher
    let sampling: ClientSampling
    /// The engine's `thinned` as last seen: SYNs it thins out need no hashes. Stale is harmless, only slower.
    public var thinned: [SampledService] = []

    @inline(__always)
    public func decode(_ frame: Frame) -> DecodedFrame {
        DecodedFrame(frame, hasher: hasher, thinned: thinned, sampling: sampling)
    }
}

/// The hashes of the table keys a SYN or a SYN-ACK looks up: their paths' hashing, done where the frame is decoded,
/// by the same functions the tables hash their keys with. Zero where the frame has no such key.
struct KeyHashes: Sendable {
    var service: UInt64 = 0
    var host: UInt64 = 0
    var handshake: (hash: UInt64, fingerprint: UInt64) = (0, 0)
    var source: UInt64 = 0

    init() {}

    /// A SYN's service, host, handshake and source.
    @inline(__always)
    init(syn segment: TCPSegment, _ hasher: KeyedHasher) {
        service = VictimKey(address: segment.destination, port: segment.destinationPort).hashed(by: hasher)
        host = VictimKey(address: segment.destination, port: 0).hashed(by: hasher)
        handshake = HandshakeKey(segment, sentBy: .client).hashed(by: hasher)
        source = hasher.hash(segment.source)
    }

    /// A SYN-ACK's handshake: the one its server answers.
    @inline(__always)
    init(synAck segment: TCPSegment, _ hasher: KeyedHasher) {
        handshake = HandshakeKey(segment, sentBy: .server).hashed(by: hasher)
    }
}

/// A frame decoded ahead of the engine, on another thread (`Engine.process(decoded:)`): what `Engine.process(_:)`
/// decodes for itself, so that both give the same events.
public struct DecodedFrame: Sendable {
    /// Capture time in nanoseconds.
    public var time: Int64
    public var wireLength: Int
    public var outcome: DecodeOutcome
    /// Meaningful when `outcome` is `.tcp`.
    public var segment: TCPSegment

    /// Decodes `frame`; its bytes are not needed afterwards.
    @inline(__always)
    public init(_ frame: Frame) {
        time = frame.time.nanoseconds
        wireLength = frame.wireLength
        segment = .empty
        outcome = PacketDecoder.decode(frame.bytes, linkType: frame.linkType, into: &segment)
    }

    /// Nothing decoded yet: a value to fill buffers with.
    public static let empty = DecodedFrame()

    private init() {
        time = 0
        wireLength = 0
        outcome = .notIP
        segment = .empty
    }
}

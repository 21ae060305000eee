/// One captured frame as the engine reads it: the captured bytes in place, never copied.
///
/// `bytes` is only valid for the duration of the call that receives the frame (it points into
/// libpcap's buffer or a mapped file).
public struct Frame {
    /// Capture time of the frame.
    public var time: Timestamp
    /// Link-layer framing of `bytes`.
    public var linkType: LinkType
    /// The captured bytes (at most the snap length).
    public var bytes: UnsafeRawBufferPointer
    /// The frame's length on the wire, which may exceed `bytes.count` when the capture was truncated.
    public var wireLength: Int

    public init(time: Timestamp, linkType: LinkType, bytes: UnsafeRawBufferPointer, wireLength: Int) {
        self.time = time
        self.linkType = linkType
        self.bytes = bytes
        self.wireLength = wireLength
    }
}

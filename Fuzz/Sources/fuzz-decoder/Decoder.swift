import SynwatchEngine

/// The packet decoder on one frame: the first byte picks the link type (modulo the number of link types the
/// engine decodes), the rest is the frame. The frame is libFuzzer's own buffer, so a read past its end is caught.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let linkTypes = LinkType.allCases
    let linkType = linkTypes[Int(start.load(as: UInt8.self)) % linkTypes.count]
    let frame = UnsafeRawBufferPointer(start: start + 1, count: count - 1)
    var segment = TCPSegment.empty
    _ = PacketDecoder.decode(frame, linkType: linkType, into: &segment)
    return 0
}

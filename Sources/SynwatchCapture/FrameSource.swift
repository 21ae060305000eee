import SynwatchEngine

/// A source of captured frames read in batches: one capture file, several in a row, and later a live interface.
///
/// Batches give the caller a place, between two calls, to report progress, tick timers or stop; the frames
/// themselves go to a closure with no copy and no allocation.
public protocol FrameSource: AnyObject {
    /// Hands up to `limit` frames to `body`, in capture order.
    ///
    /// `frame.bytes` points into the source's buffer or mapped file: it is valid only until `body` returns.
    /// - Parameters:
    ///   - limit: the most frames to deliver in this call (at least 1).
    ///   - body: called once per frame.
    /// - Returns: the number of frames delivered, or `nil` once the source has no more.
    /// - Throws: `CaptureError`; frames delivered before the failure are counted in its `framesRead`.
    func readFrames(upTo limit: Int, _ body: (Frame) -> Void) throws(CaptureError) -> Int?
}

extension FrameSource {
    /// Hands every remaining frame to `body`, in capture order.
    ///
    /// - Throws: `CaptureError`, after the frames read before the failure have been delivered.
    public func forEachFrame(_ body: (Frame) -> Void) throws(CaptureError) {
        while try readFrames(upTo: 4096, body) != nil {}
    }
}

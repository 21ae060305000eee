/// Why a capture could not be opened or read to its end, with the failing call and its message.
///
/// `description` is a complete sentence for a command-line tool to print, naming the input.
public struct CaptureError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong, in terms an operator can act on.
    public enum Reason: Equatable, Sendable {
        /// The file does not exist.
        case fileNotFound
        /// The file exists but cannot be read: permissions, a directory, an I/O error while opening.
        case unreadable
        /// libpcap recognises neither pcap nor pcapng (`unknown file format`), or the header is damaged.
        case notACaptureFile
        /// The capture's link-layer type is not one the engine decodes.
        case unsupportedLinkType(DataLinkType)
        /// The input ends inside a record; `framesRead` complete frames were delivered before it.
        case truncated(framesRead: Int)
        /// A record could not be read (I/O error, impossible length); `framesRead` frames came before it.
        case readFailed(framesRead: Int)
        /// The interface to capture on does not exist.
        case noSuchInterface
        /// Capturing needs a privilege the process lacks (`CAP_NET_RAW`, or `CAP_NET_ADMIN` for promiscuous mode).
        case permissionDenied
        /// A live capture could not be set up: an option, the filter, or the interface refused it.
        case captureSetupFailed
        /// The interface went down or disappeared while capturing, after `framesRead` frames; the capture must be
        /// reopened (`LiveCapture.reopened()`) once the interface is back.
        case interfaceGone(framesRead: Int)
    }

    /// What went wrong.
    public var reason: Reason
    /// The input being read.
    public var input: CaptureInput
    /// The C function that failed, such as `open`, `pcap_next_ex` or `pcap_activate` (`mapped read` for the
    /// memory-mapped reader's own record checks).
    public var call: String
    /// The failing call's own message: libpcap's error buffer or `strerror(errno)`.
    public var message: String

    /// An error about `input`, raised by the C function `call` with its `message`.
    public init(_ reason: Reason, input: CaptureInput, call: String, message: String) {
        self.reason = reason
        self.input = input
        self.call = call
        self.message = message
    }

    public var description: String {
        let cause = "(\(call): \(message))"
        switch reason {
        case .fileNotFound:
            return "\(input): no such file \(cause)"
        case .unreadable:
            return "\(input): cannot read \(cause)"
        case .notACaptureFile:
            return "\(input): not a pcap or pcapng capture file \(cause)"
        case .unsupportedLinkType(let type):
            return "\(input): unsupported link-layer type \(type); synwatch reads Ethernet (with PPPoE), "
                + "Linux cooked v1/v2, raw IP, PPP, NFLOG and loopback captures"
        case .truncated(let frames):
            return "\(input): truncated after \(frames) frames \(cause)"
        case .readFailed(let frames):
            return "\(input): read error after \(frames) frames \(cause)"
        case .noSuchInterface:
            return "\(input): no such interface \(cause)"
        case .permissionDenied:
            return "\(input): permission denied, capturing needs CAP_NET_RAW \(cause)"
        case .captureSetupFailed:
            return "\(input): cannot set up the capture \(cause)"
        case .interfaceGone(let frames):
            return "\(input): went down or disappeared after \(frames) frames \(cause)"
        }
    }
}

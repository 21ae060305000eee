/// Where a capture is read from: a file, or standard input (`-` on the command line).
public enum CaptureInput: Hashable, Sendable, CustomStringConvertible {
    /// A capture file by path.
    case file(String)
    /// Standard input, which is read through libpcap's stdio stream.
    case standardInput

    /// Interprets a command-line argument: `-` is standard input, anything else a path.
    public init(argument: String) {
        self = argument == "-" ? .standardInput : .file(argument)
    }

    /// The path, or `standard input`: how messages name the input.
    public var description: String {
        switch self {
        case .file(let path): path
        case .standardInput: "standard input"
        }
    }
}

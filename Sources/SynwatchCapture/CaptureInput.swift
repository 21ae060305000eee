/// Where a capture is read from: a file, standard input (`-` on the command line), or a live interface.
public enum CaptureInput: Hashable, Sendable, CustomStringConvertible {
    /// A capture file by path.
    case file(String)
    /// Standard input, which is read through libpcap's stdio stream.
    case standardInput
    /// A network interface by name (`any` for all of them), read by `LiveCapture`, never by the file readers.
    case interface(String)

    /// Interprets a command-line argument: `-` is standard input, anything else a path.
    public init(argument: String) {
        self = argument == "-" ? .standardInput : .file(argument)
    }

    /// The path, `standard input` or `interface NAME`: how messages name the input.
    public var description: String {
        switch self {
        case .file(let path): path
        case .standardInput: "standard input"
        case .interface(let name): "interface \(name)"
        }
    }
}

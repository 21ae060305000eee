/// Why a configuration file cannot be used, and where in it to look.
///
/// The description reads like a compiler's: `/etc/synwatch/synwatch.yaml:14:20: detection.top_sources: must be at
/// most 32`. Parts that are unknown are left out: the position when the key is not in the file (its default is at
/// fault), the key when the problem is the file as a whole.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// The file exists but cannot be read as UTF-8 text.
        case unreadable
        /// The text is not YAML.
        case syntax
        /// A key the configuration does not have.
        case unknownKey
        /// A key given twice in one section.
        case duplicateKey
        /// A value of the wrong type: text where a number belongs, a list where a section belongs.
        case wrongType
        /// A value of the right type that cannot work: out of range, or at odds with another value.
        case invalidValue
    }

    /// A place in the file, both counted from 1 (columns in Unicode scalars).
    public struct Position: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int

        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }

        public var description: String { "\(line):\(column)" }
    }

    public var kind: Kind
    /// The file's path; `nil` for text that did not come from a file.
    public var path: String?
    /// The dotted key, such as `detection.half_open_per_s`; `nil` when no single key is at fault.
    public var key: String?
    /// Where the offending key or value is; `nil` when it is not in the file.
    public var position: Position?
    /// What is wrong and, where it helps, what would be right.
    public var message: String

    /// Creates an error from its parts.
    public init(kind: Kind, path: String?, key: String?, position: Position?, message: String) {
        self.kind = kind
        self.path = path
        self.key = key
        self.position = position
        self.message = message
    }

    public var description: String {
        let place = [path, position?.description].compactMap { $0 }.joined(separator: ":")
        return [place.isEmpty ? nil : place, key, message].compactMap { $0 }.joined(separator: ": ")
    }
}

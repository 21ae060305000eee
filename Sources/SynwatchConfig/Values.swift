import SynwatchEngine

/// Why one value cannot be read; the loader adds the key and the position.
struct ValueProblem: Error {
    var kind: ConfigurationError.Kind
    var message: String
    /// The part of the value at fault, such as one item of a list; `nil` for the whole value.
    var position: ConfigurationError.Position?

    /// The value is not of the expected form.
    static func wrongType(_ expected: String, _ node: YAMLNode) -> ValueProblem {
        let found: String
        switch TypedValue(node) {
        case .null: found = "no value"
        case .list: found = "a list"
        case .section: found = "a section"
        case .flag, .integer, .number, .text: found = "'\(node.scalar ?? "")'"
        }
        return ValueProblem(kind: .wrongType, message: "expected \(expected), found \(found)", position: node.position)
    }

    /// The value has the right form but cannot be used.
    static func invalid(_ message: String) -> ValueProblem { ValueProblem(kind: .invalidValue, message: message) }
}

/// A YAML node as the configuration reads it.
///
/// Plain scalars follow YAML 1.1's implicit types except its surprises, which no configuration means: `010` is ten
/// (not octal eight), `1:30` is text (not ninety). Quoted scalars are always text.
enum TypedValue {
    case null
    case flag(Bool)
    /// `nil` when the digits do not fit an `Int`.
    case integer(Int?)
    case number(Double)
    case text(String)
    case list([YAMLNode])
    case section([(key: YAMLNode, value: YAMLNode)])

    init(_ node: YAMLNode) {
        switch node.content {
        case .mapping(let pairs): self = .section(pairs)
        case .sequence(let items): self = .list(items)
        case .scalar(let text, let isPlain): self = isPlain ? TypedValue(plain: text) : .text(text)
        }
    }

    private init(plain string: String) {
        switch string {
        case "", "~", "null", "Null", "NULL":
            self = .null
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON":
            self = .flag(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
            self = .flag(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF":
            self = .number(.infinity)
        case "-.inf", "-.Inf", "-.INF":
            self = .number(-.infinity)
        case ".nan", ".NaN", ".NAN":
            self = .number(.nan)
        default:
            let body = string.first == "+" || string.first == "-" ? string.dropFirst() : Substring(string)
            let withoutSeparators = string.filter { $0 != "_" }
            if body.first?.isDecimalDigit == true, body.allSatisfy({ $0.isDecimalDigit || $0 == "_" }) {
                self = .integer(Int(withoutSeparators))
            } else if body.contains(where: \.isDecimalDigit),
                body.allSatisfy({ $0.isDecimalDigit || "_.eE+-".contains($0) }),
                let number = Double(withoutSeparators)
            {
                self = .number(number)
            } else {
                self = .text(string)
            }
        }
    }
}

/// Readers of one kind of value each, the only places that say what a key accepts.
enum Read {
    /// The longest duration accepted: far beyond any sensible setting, far below `TimeSpan`'s range.
    static let longestDuration = TimeSpan.seconds(7 * 24 * 3_600)

    private static let durationForms =
        "a duration: a number of seconds (5, 0.3) or a number with a unit ms, s, m or h (300ms, 5s, 2m, 1h)"

    /// A duration: a number of seconds (`5`, `0.3`) or a number with a unit (`300ms`, `5s`, `2m`, `1h`).
    static func duration(_ node: YAMLNode) throws(ValueProblem) -> TimeSpan {
        let nanoseconds: Double
        switch TypedValue(node) {
        case .integer(let seconds?): nanoseconds = Double(seconds) * 1e9
        case .integer(nil): throw .invalid("must be at most 168h (7 days)")
        case .number(let seconds): nanoseconds = seconds * 1e9
        case .text(let text):
            guard let parsed = nanosecondsWithUnit(text) else { throw .wrongType(durationForms, node) }
            nanoseconds = parsed
        case .null, .flag, .list, .section: throw .wrongType(durationForms, node)
        }
        guard !nanoseconds.isNaN else { throw .invalid("must be a number") }
        guard nanoseconds >= 0 else { throw .invalid("must not be negative") }
        guard nanoseconds <= Double(longestDuration.nanoseconds) else {
            throw .invalid("must be at most 168h (7 days)")
        }
        return TimeSpan(nanoseconds: Int64(nanoseconds.rounded()))
    }

    /// The nanoseconds of `300ms`, `5 s`, `1.5m` or `-2h`, or `nil` when `text` is not a number with a unit.
    private static func nanosecondsWithUnit(_ text: String) -> Double? {
        let units: [(suffix: String, nanoseconds: Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3_600e9)]
        // "ms" before "s", so that "300ms" is not read as "300m" followed by garbage.
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
        let number = text.dropLast(unit.suffix.count).trimmingSpaces
        let body = number.first == "+" || number.first == "-" ? number.dropFirst() : number
        guard body.contains(where: \.isDecimalDigit), body.allSatisfy({ $0.isDecimalDigit || $0 == "." }),
            let value = Double(number)
        else { return nil }
        return value * unit.nanoseconds
    }

    /// A size in bytes: a whole number of bytes or a whole number with a unit (`64KiB`, `64MiB`, `1GiB`).
    static func byteSize(_ node: YAMLNode) throws(ValueProblem) -> Int {
        let forms = "a size: a whole number of bytes or a whole number with a unit KiB, MiB or GiB (64MiB)"
        switch TypedValue(node) {
        case .integer(let bytes?):
            return bytes
        case .integer(nil):
            throw .invalid("is too large")
        case .text(let text):
            let units: [(suffix: String, shift: Int)] = [("KiB", 10), ("MiB", 20), ("GiB", 30)]
            guard let unit = units.first(where: { text.hasSuffix($0.suffix) }),
                let count = Int(text.dropLast(unit.suffix.count).trimmingSpaces)
            else { throw .wrongType(forms, node) }
            guard count.magnitude <= Int.max >> unit.shift else { throw .invalid("is too large") }
            return count << unit.shift
        case .null, .flag, .number, .list, .section:
            throw .wrongType(forms, node)
        }
    }

    /// A whole number.
    static func integer(_ node: YAMLNode) throws(ValueProblem) -> Int {
        switch TypedValue(node) {
        case .integer(let value?): return value
        case .integer(nil): throw .invalid("is too large")
        case .null, .flag, .number, .text, .list, .section: throw .wrongType("a whole number", node)
        }
    }

    /// A finite number, whole or not.
    static func number(_ node: YAMLNode) throws(ValueProblem) -> Double {
        switch TypedValue(node) {
        case .integer(let value?): return Double(value)
        case .integer(nil): throw .invalid("is too large")
        case .number(let value):
            guard value.isFinite else { throw .invalid("must be a finite number") }
            return value
        case .null, .flag, .text, .list, .section: throw .wrongType("a number", node)
        }
    }

    /// `true` or `false` (YAML's `yes`, `no`, `on` and `off` too).
    static func flag(_ node: YAMLNode) throws(ValueProblem) -> Bool {
        guard case .flag(let value) = TypedValue(node) else { throw .wrongType("true or false", node) }
        return value
    }

    /// A name: any scalar, read as the text it is written as (`user: 1000` is the text "1000").
    static func name(_ node: YAMLNode) throws(ValueProblem) -> String {
        guard let text = node.scalar, !node.isNull else { throw .wrongType("a name", node) }
        return text
    }

    /// A name, or `null` for none.
    static func optionalName(_ node: YAMLNode) throws(ValueProblem) -> String? {
        guard !node.isNull else { return nil }
        guard let text = node.scalar else { throw .wrongType("a name or null", node) }
        return text
    }

    /// A list of names, such as `[eth0, eth1]`.
    static func names(_ node: YAMLNode) throws(ValueProblem) -> [String] {
        let expected = "a list of names, such as [eth0]"
        guard case .list(let items) = TypedValue(node) else { throw .wrongType(expected, node) }
        var names: [String] = []
        for item in items {
            guard let text = item.scalar, !item.isNull else { throw .wrongType(expected, item) }
            names.append(text)
        }
        return names
    }
}

extension Read {
    /// The events a hook may run on: the attack events, never the notices.
    static let attackEventTypes: [EventType] = [.attackStart, .attackUpdate, .attackEnd]

    /// A command: the program's path and its arguments as a list of names, or `null` for none.
    static func command(_ node: YAMLNode) throws(ValueProblem) -> [String]? {
        let expected =
            "the program's absolute path and its arguments as a list, such as [/usr/local/sbin/hook, -q], "
            + "or null"
        guard !node.isNull else { return nil }
        guard case .list(let items) = TypedValue(node) else { throw .wrongType(expected, node) }
        var arguments: [String] = []
        for item in items {
            guard let text = item.scalar, !item.isNull else { throw .wrongType(expected, item) }
            arguments.append(text)
        }
        return arguments
    }

    /// A list of attack event types, such as `[attack_start, attack_end]`, each named once.
    static func attackEvents(_ node: YAMLNode) throws(ValueProblem) -> Set<EventType> {
        let names = attackEventTypes.map(\.rawValue)
        let allowed = names.joined(separator: ", ")
        let expected = "a list of events, such as [attack_start, attack_end]"
        guard case .list(let items) = TypedValue(node) else { throw .wrongType(expected, node) }
        var events: Set<EventType> = []
        for item in items {
            guard let name = item.scalar, !item.isNull else { throw .wrongType(expected, item) }
            guard let event = EventType(rawValue: name), attackEventTypes.contains(event) else {
                let message: String
                if EventType(rawValue: name) != nil {
                    message = "'\(name)' is a notice, not an attack event; hooks run on \(allowed)"
                } else if let nearest = Suggestion.words(near: name, among: names).first {
                    message = "unknown event '\(name)'; did you mean \(nearest)?"
                } else {
                    message = "unknown event '\(name)'; hooks run on \(allowed)"
                }
                throw ValueProblem(kind: .invalidValue, message: message, position: item.position)
            }
            guard events.insert(event).inserted else {
                throw ValueProblem(kind: .invalidValue, message: "names \(name) twice", position: item.position)
            }
        }
        return events
    }
}

extension YAMLNode {
    /// An empty value, `~` or `null`.
    var isNull: Bool {
        if case .null = TypedValue(self) { return true }
        return false
    }
}

extension Substring {
    /// The text without leading and trailing spaces.
    fileprivate var trimmingSpaces: Substring {
        let start = drop { $0 == " " }
        return start.dropLast(start.reversed().prefix { $0 == " " }.count)
    }
}

extension Character {
    /// 0 to 9, and no other script's digits.
    fileprivate var isDecimalDigit: Bool { isASCII && isNumber }
}

import FoundationEssentials
import SynwatchEngine

/// How many decimals a fixed-point figure keeps.
public protocol DecimalPlaces: Sendable {
    static var places: Int { get }
}

/// One decimal: the kernel's counter rates.
public enum OneDecimal: DecimalPlaces { public static let places = 1 }
/// Two decimals: rates; finer figures would only be noise.
public enum TwoDecimals: DecimalPlaces { public static let places = 2 }
/// Three decimals: ratios, durations and wall-clock times (milliseconds).
public enum ThreeDecimals: DecimalPlaces { public static let places = 3 }

/// A figure written with at most `Places.places` decimals; the exact value is kept for metrics.
public struct Fixed<Places: DecimalPlaces>: Codable, Hashable, Sendable, JSONNumberText, ExpressibleByFloatLiteral,
    ExpressibleByIntegerLiteral
{
    public var value: Double

    public init(_ value: Double) { self.value = value }
    public init(floatLiteral value: Double) { self.value = value }
    public init(integerLiteral value: Int) { self.value = Double(value) }

    public var jsonNumberText: String { JSONValue.format(value, decimals: Places.places) }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Double.self)
    }

    /// Encoders other than the contract's own get the same text as a `Decimal`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Decimal(string: jsonNumberText) ?? 0)
    }
}

/// Events per second.
public typealias Rate = Fixed<TwoDecimals>
/// A share from 0 to 1.
public typealias Ratio = Fixed<ThreeDecimals>
/// Seconds: a duration, or wall-clock seconds since the epoch.
public typealias Seconds = Fixed<ThreeDecimals>
/// The kernel's counter rates per second.
public typealias KernelRate = Fixed<OneDecimal>

/// A capture time: seconds since the epoch with all nine decimals, so no nanosecond is lost on the way.
public struct CaptureTime: Codable, Hashable, Sendable, JSONNumberText {
    public var timestamp: Timestamp

    public init(_ timestamp: Timestamp) { self.timestamp = timestamp }

    public var jsonNumberText: String { timestamp.description }

    /// Read exactly, as a decimal: a `Double` keeps only about a microsecond of a present-day time.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(Decimal.self).description
        guard let timestamp = CaptureTime.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a capture time: \(text)")
        }
        self.timestamp = timestamp
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Decimal(string: jsonNumberText) ?? 0)
    }

    /// `1700000000.5` as nanoseconds; nil for anything but plain decimal text.
    static func parse(_ text: String) -> Timestamp? {
        let negative = text.hasPrefix("-")
        let parts = (negative ? text.dropFirst() : Substring(text)).split(
            separator: ".",
            omittingEmptySubsequences: false
        )
        guard (1...2).contains(parts.count), let whole = Int64(parts[0]) else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard digits.count <= 9, let value = Int64(digits) else { return nil }
            fraction = value * Int64(pow10(9 - digits.count))
        }
        let nanoseconds = whole * 1_000_000_000 + fraction
        return Timestamp(nanoseconds: negative ? -nanoseconds : nanoseconds)
    }

    private static func pow10(_ exponent: Int) -> Int { (0..<exponent).reduce(1) { result, _ in result * 10 } }
}

/// A field that is always present and may be `null` (a figure that could not be read), unlike an optional field,
/// which is left out.
public struct Nullable<Wrapped: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var value: Wrapped?

    public init(_ value: Wrapped?) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// Names in a fixed order, for objects whose keys are a list of reasons or counters.
public protocol FieldNames: Sendable {
    static var names: [String] { get }
}

/// An object of counts keyed by name, in the order `Names` lists them; decoding puts names `Names` does not know
/// (a newer daemon's) after them, alphabetically.
public struct NamedCounts<Names: FieldNames, Value: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var entries: [(name: String, value: Value)]

    public init(_ entries: [(name: String, value: Value)]) { self.entries = entries }

    public subscript(name: String) -> Value? { entries.first { $0.name == name }?.value }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.name)
            hasher.combine(entry.value)
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let rank = Dictionary(uniqueKeysWithValues: Names.names.enumerated().map { ($1, $0) })
        let keys = container.allKeys.sorted { lhs, rhs in
            let left = rank[lhs.stringValue] ?? Int.max
            let right = rank[rhs.stringValue] ?? Int.max
            return left != right ? left < right : lhs.stringValue < rhs.stringValue
        }
        entries = try keys.map { ($0.stringValue, try container.decode(Value.self, forKey: $0)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for entry in entries { try container.encode(entry.value, forKey: Key(stringValue: entry.name)) }
    }
}

import SynwatchEngine

/// Version 1 of what synwatch says to the outside: the bodies of the query API under `/v1/`, its event stream, the
/// lines of `synwatch analyze --json`, and (through the same values) the journald fields, the hooks' input and
/// environment, and the metrics. Field names are those of DESIGN.md; a type's fields are declared in the order they
/// are written.
public enum V1 {
    /// Writes one group's fields into the enclosing object, as if they were the object's own.
    static func flatten(_ groups: [any Encodable], into encoder: any Encoder) throws {
        for group in groups { try group.encode(to: encoder) }
    }
}

extension V1 {
    /// The body of any answer that is not 200: `{"error": "…"}`, one sentence for the operator.
    public struct ErrorBody: Codable, Hashable, Sendable {
        public var error: String

        public init(error: String) { self.error = error }
    }
}

/// The engine's own names are the wire's: `random-source`, `attack_start`, …
extension FloodKind: Codable {}
extension EventType: Codable {}

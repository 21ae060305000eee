/// A contract value as flat text fields, the way journald entries and hook environments carry events: each member
/// of the encoded object becomes one `SYNWATCH_<NAME>` field, so every figure of the JSON is there under the same
/// name, upper-cased.
public struct FlatFields: Sendable {
    /// How a list (such as `top_sources`) reads as text.
    public enum Lists: Sendable {
        /// `198.18.7.1:40,2001:db8::7:12`: elements comma-separated, an object's members colon-separated (journald;
        /// split an IPv6 address from its count at the last colon).
        case full
        /// `198.18.7.1 2001:db8::7`: each element's first member, space-separated (shell loops in hooks).
        case firstMembers
    }

    public var prefix = "SYNWATCH_"
    public var lists: Lists

    public init(lists: Lists) { self.lists = lists }

    /// The fields of `value`: strings bare, numbers as in JSON, lists as `lists` says.
    public func fields(of value: some Encodable) -> [(name: String, value: String)] {
        guard case .object(let members) = ContractJSON.tree(value) else { return [] }
        return members.map { (prefix + $0.0.uppercased(), text(of: $0.1)) }
    }

    private func text(of value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .array(let elements):
            switch lists {
            case .full: elements.map(text(of:)).joined(separator: ",")
            case .firstMembers:
                elements.map { element in
                    if case .object(let members) = element, let first = members.first {
                        text(of: first.1)
                    } else {
                        text(of: element)
                    }
                }.joined(separator: " ")
            }
        case .object(let members): members.map { text(of: $0.1) }.joined(separator: ":")
        case .null, .bool, .int, .number, .raw: value.rendered
        }
    }
}

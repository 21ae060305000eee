import FoundationEssentials

/// A number whose JSON text is fixed by the contract (decimals, nanoseconds), written as is.
public protocol JSONNumberText {
    var jsonNumberText: String { get }
}

/// Encoding and decoding of contract values.
///
/// Encoding goes through `JSONValue`, synwatch's ordered JSON tree: swift-foundation's `JSONEncoder` orders keys by
/// hash (or sorts them) and drops a timestamp's trailing zeros, and the wire keeps the order and text it always had.
/// Decoding is `JSONDecoder`'s, for which key order does not matter.
public enum ContractJSON {
    /// The value as a JSON tree, keys in the order the type encodes them.
    public static func tree(_ value: some Encodable) -> JSONValue {
        let box = TreeBox()
        do {
            try box.store(value, codingPath: [])
        } catch {
            // TreeEncoder itself never throws; only a contract type's own encode(to:) could, and none does.
            preconditionFailure("contract value failed to encode: \(error)")
        }
        return box.resolved
    }

    /// The value as compact JSON text.
    public static func text(_ value: some Encodable) -> String { tree(value).rendered }

    /// A contract value from JSON; a missing required field or a wrong type is an error.
    /// - Throws: `DecodingError` naming the field.
    public static func decode<T: Decodable>(_ type: T.Type, from text: some StringProtocol) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// One node of the tree being encoded; containers share it so a type can write several groups into one object.
final class TreeBox {
    enum Content {
        case empty
        case leaf(JSONValue)
        case object([(String, TreeBox)])
        case array([TreeBox])
    }

    var content = Content.empty

    var resolved: JSONValue {
        switch content {
        case .empty: .null
        case .leaf(let value): value
        case .object(let members): .object(members.map { ($0.0, $0.1.resolved) })
        case .array(let elements): .array(elements.map(\.resolved))
        }
    }

    func store(_ value: some Encodable, codingPath: [any CodingKey]) throws {
        switch value {
        case let number as any JSONNumberText: content = .leaf(.raw(number.jsonNumberText))
        case let text as String: content = .leaf(.string(text))
        case let flag as Bool: content = .leaf(.bool(flag))
        case let number as Int: content = .leaf(.int(number))
        case let number as any BinaryInteger: content = .leaf(.raw("\(number)"))
        case let number as any BinaryFloatingPoint:
            content = .leaf(.number(Double(number), decimals: 6))
        default: try value.encode(to: TreeEncoder(box: self, codingPath: codingPath))
        }
    }

    func member(_ key: String) -> TreeBox {
        let child = TreeBox()
        if case .object(var members) = content {
            members.removeAll { $0.0 == key }
            members.append((key, child))
            content = .object(members)
        } else {
            content = .object([(key, child)])
        }
        return child
    }

    func element() -> TreeBox {
        let child = TreeBox()
        if case .array(let elements) = content {
            content = .array(elements + [child])
        } else {
            content = .array([child])
        }
        return child
    }
}

struct TreeEncoder: Encoder {
    let box: TreeBox
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = box.content {} else { box.content = .object([]) }
        return KeyedEncodingContainer(KeyedTreeContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = box.content {} else { box.content = .array([]) }
        return UnkeyedTreeContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleTreeContainer(box: box, codingPath: codingPath)
    }
}

struct KeyedTreeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: TreeBox
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.member(key.stringValue).content = .leaf(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try box.member(key.stringValue).store(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        TreeEncoder(box: box.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        TreeEncoder(box: box.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(box: box, codingPath: codingPath) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        TreeEncoder(box: box.member(key.stringValue), codingPath: codingPath + [key])
    }
}

struct UnkeyedTreeContainer: UnkeyedEncodingContainer {
    let box: TreeBox
    let codingPath: [any CodingKey]

    var count: Int {
        if case .array(let elements) = box.content { elements.count } else { 0 }
    }

    mutating func encodeNil() throws { box.element().content = .leaf(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try box.element().store(value, codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        TreeEncoder(box: box.element(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        TreeEncoder(box: box.element(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(box: box.element(), codingPath: codingPath) }
}

struct SingleTreeContainer: SingleValueEncodingContainer {
    let box: TreeBox
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { box.content = .leaf(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws { try box.store(value, codingPath: codingPath) }
}

import CYAML

/// One node of a YAML document, composed from libyaml's parser events: what the configuration reads.
///
/// libyaml (Debian's libyaml-0-2, the parser Yams wraps) does the parsing; this type only builds the tree, so the
/// daemon links no Foundation for it. Tags are not resolved: the configuration types plain scalars itself.
struct YAMLNode {
    enum Content {
        /// A scalar's text, and whether it was written plain (not quoted, not a block scalar): only plain scalars
        /// have implicit types.
        case scalar(String, isPlain: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    var content: Content
    /// Where the node starts in the text.
    var position: ConfigurationError.Position

    /// The text of a scalar; `nil` for a list or a mapping.
    var scalar: String? {
        if case .scalar(let text, _) = content { return text }
        return nil
    }
}

/// Why a text is not one YAML document the configuration can read.
enum YAMLError: Error {
    /// libyaml's message, with its context and position when it gives them.
    case syntax(String, at: ConfigurationError.Position?)
    /// A mapping names `key` more than once; `position` is its first appearance, `parents` the keys of the
    /// mappings around it, outermost first (empty at the top level).
    case duplicateKey(String, at: ConfigurationError.Position, parents: [String])
}

extension YAMLNode {
    /// The single document of `yaml`, with aliases resolved; `nil` when the text holds no document.
    ///
    /// Calls libyaml's `yaml_parser_parse`.
    /// - Throws: `YAMLError` for the first problem: a syntax error, more than one document, an undefined alias,
    ///   or a key given twice in one mapping (found when the mapping ends, as Yams does).
    static func compose(_ yaml: String) throws(YAMLError) -> YAMLNode? {
        let bytes = Array(yaml.utf8)
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(YAMLError) -> YAMLNode? in
                let composer = Composer(buffer)
                return try composer.document()
            }
        }
        return try result.get()
    }
}

/// One parse of a text; the text must outlive it.
private final class Composer {
    private struct Event {
        enum Kind {
            case streamStart, streamEnd, documentStart, documentEnd
            case alias(anchor: String)
            case scalar(String, isPlain: Bool, anchor: String?)
            case sequenceStart(anchor: String?)
            case sequenceEnd
            case mappingStart(anchor: String?)
            case mappingEnd
        }

        var kind: Kind
        var position: ConfigurationError.Position
    }

    private var parser = yaml_parser_t()
    private let text: UnsafeBufferPointer<UInt8>
    /// Nodes by anchor; a later anchor of the same name replaces an earlier one.
    private var anchors: [String: YAMLNode] = [:]
    /// Collections nested deeper are refused: composing recurses once per level (the configuration needs three),
    /// and a few thousand `[` overflowed the stack (a finding of the `config` fuzz target).
    static let maximumDepth = 64

    init(_ text: UnsafeBufferPointer<UInt8>) {
        self.text = text
        yaml_parser_initialize(&parser)
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, text.baseAddress, text.count)
    }

    deinit {
        yaml_parser_delete(&parser)
    }

    func document() throws(YAMLError) -> YAMLNode? {
        _ = try next()  // The stream's start.
        if case .streamEnd = try next().kind { return nil }  // Otherwise the document's start.
        let root = try node(from: try next(), parents: [], depth: 0)
        _ = try next()  // The document's end.
        let after = try next()
        guard case .streamEnd = after.kind else {
            throw .syntax(
                "but found another document (expected a single document in the stream at 1:1)",
                at: after.position
            )
        }
        return root
    }

    private func node(from event: Event, parents: [String], depth: Int) throws(YAMLError) -> YAMLNode {
        let node: YAMLNode
        let anchor: String?
        guard depth < Self.maximumDepth else {
            throw .syntax("collections nested more than \(Self.maximumDepth) levels deep", at: event.position)
        }
        switch event.kind {
        case .alias(let name):
            guard let target = anchors[name] else { throw .syntax("found undefined alias", at: event.position) }
            return target
        case .scalar(let text, let isPlain, let name):
            node = YAMLNode(content: .scalar(text, isPlain: isPlain), position: event.position)
            anchor = name
        case .sequenceStart(let name):
            var items: [YAMLNode] = []
            while true {
                let next = try next()
                if case .sequenceEnd = next.kind { break }
                items.append(try self.node(from: next, parents: parents, depth: depth + 1))
            }
            node = YAMLNode(content: .sequence(items), position: event.position)
            anchor = name
        case .mappingStart(let name):
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            while true {
                let next = try next()
                if case .mappingEnd = next.kind { break }
                let key = try self.node(from: next, parents: parents, depth: depth + 1)
                let value = try self.node(
                    from: try self.next(),
                    parents: parents + [key.scalar ?? ""],
                    depth: depth + 1
                )
                pairs.append((key, value))
            }
            try Self.checkDuplicates(pairs.map(\.key), parents: parents)
            node = YAMLNode(content: .mapping(pairs), position: event.position)
            anchor = name
        case .streamStart, .streamEnd, .documentStart, .documentEnd, .sequenceEnd, .mappingEnd:
            preconditionFailure("libyaml emits only nodes inside a document")
        }
        if let anchor { anchors[anchor] = node }
        return node
    }

    /// Throws for a key that appears twice: of several, the first in text order of the names, at its first place.
    private static func checkDuplicates(_ keys: [YAMLNode], parents: [String]) throws(YAMLError) {
        var first: [String: ConfigurationError.Position] = [:]
        var duplicate: (name: String, position: ConfigurationError.Position)?
        for key in keys {
            guard let name = key.scalar else { continue }
            guard let position = first[name] else {
                first[name] = key.position
                continue
            }
            if duplicate.map({ name < $0.name }) ?? true { duplicate = (name, position) }
        }
        if let duplicate { throw .duplicateKey(duplicate.name, at: duplicate.position, parents: parents) }
    }

    /// The next event, copied out of libyaml's.
    private func next() throws(YAMLError) -> Event {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { throw error() }
        defer { yaml_event_delete(&event) }
        let position = Self.position(event.start_mark)
        let kind: Event.Kind
        switch event.type {
        case YAML_STREAM_START_EVENT: kind = .streamStart
        case YAML_STREAM_END_EVENT: kind = .streamEnd
        case YAML_DOCUMENT_START_EVENT: kind = .documentStart
        case YAML_DOCUMENT_END_EVENT: kind = .documentEnd
        case YAML_ALIAS_EVENT: kind = .alias(anchor: Self.string(event.data.alias.anchor) ?? "")
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let isPlain = scalar.style == YAML_PLAIN_SCALAR_STYLE || scalar.style == YAML_ANY_SCALAR_STYLE
            kind = .scalar(text, isPlain: isPlain, anchor: Self.string(scalar.anchor))
        case YAML_SEQUENCE_START_EVENT: kind = .sequenceStart(anchor: Self.string(event.data.sequence_start.anchor))
        case YAML_SEQUENCE_END_EVENT: kind = .sequenceEnd
        case YAML_MAPPING_START_EVENT: kind = .mappingStart(anchor: Self.string(event.data.mapping_start.anchor))
        case YAML_MAPPING_END_EVENT: kind = .mappingEnd
        default: preconditionFailure("libyaml emitted no event")
        }
        return Event(kind: kind, position: position)
    }

    /// The parser's error: its problem, the context it was in and where, as libyaml words them.
    private func error() -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        switch parser.error {
        case YAML_READER_ERROR:
            // A byte offset (a control character, say); the position counts lines and Unicode scalars.
            guard parser.problem_offset <= text.count else { return .syntax(problem, at: nil) }
            let before = String(decoding: text[..<parser.problem_offset], as: UTF8.self)
            let lines = before.split(separator: "\n", omittingEmptySubsequences: false)
            let column = (lines.last?.unicodeScalars.count ?? 0) + 1
            return .syntax(problem, at: ConfigurationError.Position(line: lines.count, column: column))
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR, YAML_COMPOSER_ERROR:
            let context = parser.context.map {
                "\(problem) (\(String(cString: $0)) at \(Self.position(parser.context_mark)))"
            }
            return .syntax(context ?? problem, at: Self.position(parser.problem_mark))
        default:
            return .syntax("libyaml ran out of memory", at: nil)
        }
    }

    private static func position(_ mark: yaml_mark_t) -> ConfigurationError.Position {
        ConfigurationError.Position(line: mark.line + 1, column: mark.column + 1)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

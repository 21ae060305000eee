import SynwatchEngine
import Yams

/// The configuration read from a path, and whether there was a file at all.
public struct LoadedConfiguration: Sendable, Equatable {
    /// The file's settings over the built-in defaults; only the defaults when the file is missing.
    public var configuration: SynwatchConfiguration
    /// The path that was read.
    public var path: String
    /// Nothing exists at `path`, so `configuration` is the built-in defaults: worth a line in the log.
    public var fileWasMissing: Bool

    /// Creates a result from its parts.
    public init(configuration: SynwatchConfiguration, path: String, fileWasMissing: Bool) {
        self.configuration = configuration
        self.path = path
        self.fileWasMissing = fileWasMissing
    }
}

extension SynwatchConfiguration {
    /// Reads a configuration from YAML text. Keys left out keep their defaults; empty text is all defaults.
    /// - Parameters:
    ///   - yaml: The text of a configuration file.
    ///   - path: The file the text came from, named in errors.
    /// - Throws: `ConfigurationError` for the first problem, naming its key and its position in the text.
    public init(yaml: String, path: String? = nil) throws(ConfigurationError) {
        self = try Loader(yaml: yaml, path: path).configuration()
    }

    /// Reads the configuration file at `path`. A missing file means the built-in defaults.
    /// - Parameter path: The file to read, `/etc/synwatch/synwatch.yaml` unless given.
    /// - Returns: The configuration, and whether the file was missing so the caller can log it.
    /// - Throws: `ConfigurationError` when the file exists but cannot be read, or its content is not valid.
    public static func load(path: String = defaultPath) throws(ConfigurationError) -> LoadedConfiguration {
        let bytes: [UInt8]?
        do {
            bytes = try ConfigurationFile.contents(of: path)
        } catch {
            throw ConfigurationError(kind: .unreadable, path: path, key: nil, position: nil, message: "\(error)")
        }
        guard let bytes else {
            return LoadedConfiguration(configuration: SynwatchConfiguration(), path: path, fileWasMissing: true)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(
                kind: .unreadable,
                path: path,
                key: nil,
                position: nil,
                message: "is not UTF-8 text"
            )
        }
        let configuration = try SynwatchConfiguration(yaml: text, path: path)
        return LoadedConfiguration(configuration: configuration, path: path, fileWasMissing: false)
    }
}

/// Turns one YAML text into a configuration, or into the error of its first problem.
private struct Loader {
    let yaml: String
    let path: String?

    func configuration() throws(ConfigurationError) -> SynwatchConfiguration {
        var configuration = SynwatchConfiguration()
        // Where each key's value stands, so that problems found by `validate()` can point at it.
        var positions: [String: ConfigurationError.Position] = [:]

        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml, .default, .default, .utf8)
        } catch {
            throw syntaxError(error)
        }
        // No document, or one that is only `~`: nothing is set.
        guard let root, !root.isNull else { return configuration }
        guard case .mapping(let sections) = root else {
            throw problem(.wrongType("sections such as 'detection:'", root), key: nil, at: root)
        }
        for (sectionKey, sectionValue) in sections {
            let sectionName = try name(of: sectionKey, in: nil)
            guard let section = Schema.section(named: sectionName) else {
                throw unknownKey(sectionName, in: nil, at: sectionKey)
            }
            // A section whose keys are all commented out.
            if sectionValue.isNull { continue }
            guard case .mapping(let settings) = sectionValue else {
                let expected = "a section of keys such as 'capacity: 4096'"
                throw problem(.wrongType(expected, sectionValue), key: sectionName, at: sectionValue)
            }
            for (settingKey, settingValue) in settings {
                let settingName = try name(of: settingKey, in: section)
                guard let setting = section.setting(named: settingName) else {
                    throw unknownKey(settingName, in: section, at: settingKey)
                }
                let key = "\(section.name).\(setting.name)"
                do {
                    try setting.read(settingValue, &configuration)
                } catch {
                    throw problem(error, key: key, at: settingValue)
                }
                positions[key] = position(of: settingValue.mark)
            }
        }

        do {
            try configuration.validate()
        } catch {
            let position = positions[error.key]
            var message = error.message
            if position == nil { message += " (the key is not in the file: its default applies)" }
            throw self.error(.invalidValue, key: error.key, at: position, message)
        }
        return configuration
    }

    /// The name a key node spells.
    private func name(of key: Node, in section: Section?) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = key else {
            throw problem(.wrongType("a key name", key), key: section?.name, at: key)
        }
        return scalar.string
    }

    private func unknownKey(_ name: String, in section: Section?, at node: Node) -> ConfigurationError {
        let key = section.map { "\($0.name).\(name)" } ?? name
        let message: String
        if name == "hash_seed" {
            message =
                "is not a configuration key: synwatchd draws a random hash seed at every start, "
                + "so that no attacker can aim at a table bucket"
        } else {
            let suggestions = Suggestion.keys(near: name, in: section)
            if let last = suggestions.last {
                let others = suggestions.dropLast().joined(separator: ", ")
                message = "unknown key; did you mean \(others.isEmpty ? last : "\(others) or \(last)")?"
            } else if let section {
                message = "unknown key; \(section.name) has \(section.settings.map(\.name).joined(separator: ", "))"
            } else {
                message = "unknown section; the sections are \(Schema.sections.map(\.name).joined(separator: ", "))"
            }
        }
        return error(.unknownKey, key: key, at: position(of: node.mark), message)
    }

    private func problem(_ problem: ValueProblem, key: String?, at node: Node) -> ConfigurationError {
        error(problem.kind, key: key, at: position(of: problem.mark ?? node.mark), problem.message)
    }

    private func error(
        _ kind: ConfigurationError.Kind,
        key: String?,
        at position: ConfigurationError.Position?,
        _ message: String
    ) -> ConfigurationError {
        ConfigurationError(kind: kind, path: path, key: key, position: position, message: message)
    }

    private func position(of mark: Mark?) -> ConfigurationError.Position? {
        mark.map { ConfigurationError.Position(line: $0.line, column: $0.column) }
    }

    /// The error for text that Yams cannot compose, at the position libyaml reports.
    private func syntaxError(_ error: any Error) -> ConfigurationError {
        func explained(_ problem: String, _ context: YamlError.Context?) -> String {
            context.map { "\(problem) (\($0.text) at \($0.mark))" } ?? problem
        }

        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return self.error(.syntax, key: nil, at: position(of: mark), explained(problem, context))
        case .reader(let problem, let offset, _, _):
            let position = offset.map { offset in
                let lines = yaml.prefix(offset).split(separator: "\n", omittingEmptySubsequences: false)
                let column = (lines.last?.unicodeScalars.count ?? 0) + 1
                return ConfigurationError.Position(line: lines.count, column: column)
            }
            return self.error(.syntax, key: nil, at: position, problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return duplicateKey(duplicates.first ?? "", at: context.mark)
        default:
            return self.error(.syntax, key: nil, at: nil, "\(error)")
        }
    }

    /// A key given twice. Yams reports only its name and its first position, so the section is the one whose
    /// header line comes last before it.
    private func duplicateKey(_ name: String, at mark: Mark) -> ConfigurationError {
        let position = ConfigurationError.Position(line: mark.line, column: mark.column)
        if position.column == 1 {
            return error(.duplicateKey, key: name, at: position, "appears more than once at the top level")
        }
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).prefix(position.line)
        let header = lines.last { $0.first?.isLetter == true }.map { String($0.prefix { $0 != ":" }) }
        var key = name
        if let section = header.flatMap(Schema.section(named:)), section.setting(named: name) != nil {
            key = "\(section.name).\(name)"
        }
        return error(.duplicateKey, key: key, at: position, "is given more than once in its section; this is the first")
    }
}

import SynwatchEngine

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

        let root: YAMLNode?
        do {
            root = try YAMLNode.compose(yaml)
        } catch {
            throw composeError(error)
        }
        // No document, or one that is only `~`: nothing is set.
        guard let root, !root.isNull else { return configuration }
        guard case .mapping(let sections) = root.content else {
            throw problem(.wrongType("sections such as 'detection:'", root), key: nil, at: root)
        }
        for (sectionKey, sectionValue) in sections {
            let sectionName = try name(of: sectionKey, in: nil)
            guard let section = Schema.section(named: sectionName) else {
                throw unknownKey(sectionName, in: nil, at: sectionKey)
            }
            // A section whose keys are all commented out.
            if sectionValue.isNull { continue }
            guard case .mapping(let settings) = sectionValue.content else {
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
                positions[key] = settingValue.position
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
    private func name(of key: YAMLNode, in section: Section?) throws(ConfigurationError) -> String {
        guard let name = key.scalar else {
            throw problem(.wrongType("a key name", key), key: section?.name, at: key)
        }
        return name
    }

    private func unknownKey(_ name: String, in section: Section?, at node: YAMLNode) -> ConfigurationError {
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
        return error(.unknownKey, key: key, at: node.position, message)
    }

    private func problem(_ problem: ValueProblem, key: String?, at node: YAMLNode) -> ConfigurationError {
        error(problem.kind, key: key, at: problem.position ?? node.position, problem.message)
    }

    private func error(
        _ kind: ConfigurationError.Kind,
        key: String?,
        at position: ConfigurationError.Position?,
        _ message: String
    ) -> ConfigurationError {
        ConfigurationError(kind: kind, path: path, key: key, position: position, message: message)
    }

    /// The error for text that is not one YAML document, at the position libyaml reports.
    private func composeError(_ error: YAMLError) -> ConfigurationError {
        switch error {
        case .syntax(let message, let position):
            return self.error(.syntax, key: nil, at: position, message)
        case .duplicateKey(let name, let position, let parents):
            guard let sectionName = parents.first else {
                return self.error(.duplicateKey, key: name, at: position, "appears more than once at the top level")
            }
            var key = name
            if parents.count == 1, let section = Schema.section(named: sectionName), section.setting(named: name) != nil
            {
                key = "\(section.name).\(name)"
            }
            let message = "is given more than once in its section; this is the first"
            return self.error(.duplicateKey, key: key, at: position, message)
        }
    }
}

/// What an operator most likely meant by a key the configuration does not have.
enum Suggestion {
    /// The keys closest to `name`: first among the keys of `section` (the section names when `section` is `nil`),
    /// then, for a key put in the wrong place, among the keys of every other section.
    /// - Returns: Dotted keys, best first; empty when nothing is close.
    static func keys(near name: String, in section: Section?) -> [String] {
        let wanted = normalized(name)
        let prefix = section.map { "\($0.name)." } ?? ""
        let local = section.map { $0.settings.map(\.name) } ?? Schema.sections.map(\.name)
        let nearby = closest(to: wanted, among: local.map { (key: prefix + $0, name: $0) })
        if !nearby.isEmpty { return nearby }
        let elsewhere = Schema.sections.filter { $0.name != section?.name }.flatMap { other in
            other.settings.map { (key: "\(other.name).\($0.name)", name: $0.name) }
        }
        return closest(to: wanted, among: elsewhere)
    }

    /// The words among `candidates` nearest to `word`, if near enough to be a slip: for values such as event names.
    static func words(near word: String, among candidates: [String]) -> [String] {
        closest(to: normalized(word), among: candidates.map { (key: $0, name: $0) })
    }

    /// The keys whose name is nearest to `wanted`, if near enough to be a slip rather than another word.
    private static func closest(to wanted: [Character], among candidates: [(key: String, name: String)]) -> [String] {
        let tolerance = max(1, wanted.count / 3)
        let scored = candidates.map { (key: $0.key, distance: editDistance(wanted, normalized($0.name))) }
        guard let best = scored.map(\.distance).min(), best <= tolerance else { return [] }
        return scored.filter { $0.distance == best }.map(\.key)
    }

    /// `name` in the file's spelling: `completionGrace` and `Completion-Grace` become `completion_grace`.
    private static func normalized(_ name: String) -> [Character] {
        var characters: [Character] = []
        for character in name {
            if character.isUppercase, !characters.isEmpty, characters.last != "_" { characters.append("_") }
            characters.append(character == "-" || character == " " ? "_" : Character(character.lowercased()))
        }
        return characters
    }

    /// Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        var current = previous
        for i in a.indices {
            current[0] = i + 1
            for j in b.indices {
                let substitution = previous[j] + (a[i] == b[j] ? 0 : 1)
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

import Foundation
import Testing

@testable import SynwatchConfig

/// `Config/synwatch.yaml` documents every key with its default, so the file and the code cannot drift apart.
@Suite struct ShippedExampleTests {
    let lines: [Substring]

    init() throws {
        lines = try String(contentsOfFile: shippedExamplePath, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// The dotted keys of the example and the line each stands on, read from its block layout: a section at
    /// column 1, its keys indented by two spaces.
    var keyLines: [(key: String, line: Int)] {
        var section = ""
        var keys: [(key: String, line: Int)] = []
        for (index, line) in lines.enumerated() where !line.drop(while: { $0 == " " }).hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon].drop { $0 == " " })
            if line.first?.isLetter == true {
                section = name
            } else if line.hasPrefix("  "), !line.hasPrefix("   ") {
                keys.append((key: "\(section).\(name)", line: index + 1))
            }
        }
        return keys
    }

    @Test("The example loads to exactly the built-in defaults")
    func equalsDefaults() throws {
        let loaded = try SynwatchConfiguration.load(path: shippedExamplePath)
        #expect(!loaded.fileWasMissing)
        #expect(loaded.configuration == SynwatchConfiguration())
    }

    @Test("The example sets every key the loader accepts, once, in the loader's order")
    func setsEveryKey() {
        let keys = keyLines.map(\.key)
        #expect(keys == Schema.keys)
        #expect(Set(keys).count == keys.count)
    }

    @Test("Every key of the example has a comment just above it")
    func everyKeyIsExplained() {
        for (key, line) in keyLines {
            let above = lines[line - 2].drop { $0 == " " }
            #expect(above.hasPrefix("# "), "\(key) on line \(line) has no comment above it")
        }
    }

    @Test("The example keeps to 100 columns and has no tabs")
    func layout() {
        for (index, line) in lines.enumerated() {
            #expect(line.count <= 100, "line \(index + 1) is \(line.count) characters long")
            #expect(!line.contains("\t"), "line \(index + 1) has a tab")
        }
    }
}

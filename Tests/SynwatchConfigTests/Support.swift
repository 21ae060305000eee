import Foundation
import SynwatchConfig
import Testing

/// The shipped example, found from this file's place in the repository.
let shippedExamplePath: String = {
    var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)  // Tests/SynwatchConfigTests/Support.swift
    return (components + ["Config", "synwatch.yaml"]).joined(separator: "/")
}()

/// A directory of its own for one test, removed when the test lets go of it.
final class TemporaryDirectory {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("synwatch-config-\(UUID())").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the file's path.
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = "\(path)/\(name)"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
        return file
    }
}

/// The error that loading `yaml` throws, or `nil` (and a failed expectation) when it loads.
func loadingError(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    #expect(throws: ConfigurationError.self, sourceLocation: sourceLocation) {
        try SynwatchConfiguration(yaml: yaml)
    }
}

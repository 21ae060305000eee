import Foundation
import SynwatchEngine
import SynwatchSystemd
import SynwatchTestSupport
import XCTest

/// packaging/synwatch.catalog explains every MESSAGE_ID the daemon sends, and systemd's own parser reads it.
final class CatalogTests: XCTestCase {
    static let catalog = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("packaging/synwatch.catalog")

    func testEveryMessageIDHasOneEntryWithSubject() throws {
        let text = try String(contentsOf: Self.catalog, encoding: .utf8)
        // Entries start at "-- ID" lines; the header lines follow up to the first empty line.
        let entries = text.components(separatedBy: "\n-- ").dropFirst().map { $0.split(separator: "\n") }
        let ids = entries.compactMap { $0.first.map(String.init) }
        XCTAssertEqual(ids.sorted(), EventType.allCases.map(\.messageID).sorted())
        for entry in entries {
            let headers = text.components(separatedBy: "\n-- \(entry[0])\n")[1].components(separatedBy: "\n\n")[0]
            XCTAssert(headers.contains("Subject: "), "\(entry[0]) has no Subject")
            XCTAssert(headers.contains("Defined-By: synwatch"), "\(entry[0]) is not defined by synwatch")
            XCTAssert(headers.contains("Documentation: "), "\(entry[0]) has no Documentation")
        }
    }

    func testJournalctlBuildsTheCatalogDatabase() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("synwatch-catalog-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("usr/lib/systemd/catalog")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.catalog, to: directory.appendingPathComponent("synwatch.catalog"))

        let update = try ChildProcess.run(["/usr/bin/journalctl", "--root=\(root.path)", "--update-catalog"])
        XCTAssertEqual(update.status, 0)
        XCTAssertEqual(update.errors, "", "journalctl's parser complained")
        let list = try ChildProcess.run(["/usr/bin/journalctl", "--root=\(root.path)", "--list-catalog"])
        XCTAssertEqual(list.status, 0)
        let lines = list.output.split(separator: "\n")
        for type in EventType.allCases {
            let line = lines.filter { $0.hasPrefix(type.messageID + " synwatch: ") }
            XCTAssertEqual(line.count, 1, "\(type.rawValue) in \(list.output)")
        }
        XCTAssertEqual(lines.count, EventType.allCases.count)
    }
}

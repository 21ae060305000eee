import Foundation
import Logging
import Synchronization
import SynwatchSystemd
import SynwatchTestSupport
import XCTest

final class JournalLogHandlerTests: XCTestCase {
    /// Entries a handler produced, captured through its sink.
    final class Captured: Sendable {
        let entries = Mutex<[JournalEntry]>([])

        var sink: JournalLogHandler.Sink { { entry in self.entries.withLock { $0.append(entry) } } }
        var all: [JournalEntry] { entries.withLock { $0 } }
    }

    struct CaptureFailed: Error, CustomStringConvertible {
        var description: String { "pcap_activate: permission denied" }
    }

    func testRecordsBecomeEntriesWithMetadataFields() throws {
        let captured = Captured()
        var logger = Logger(label: "synwatchd.capture") { JournalLogHandler(label: $0, sink: captured.sink) }
        logger[metadataKey: "interface"] = "eth0"
        logger[metadataKey: "dropped"] = "1"
        let line = #line + 1
        logger.warning("capture falls behind", metadata: ["dropped": "12", "attack-id": .stringConvertible(7)])
        logger.debug("not at the default level")
        logger.error("capture failed", error: CaptureFailed())

        XCTAssertEqual(captured.all.count, 2)
        let entry = try XCTUnwrap(captured.all.first)
        XCTAssertEqual(
            entry.fields.map { "\($0.name)=\($0.value)" },
            [
                "MESSAGE=capture falls behind",
                "PRIORITY=4",
                "SYSLOG_IDENTIFIER=synwatchd",
                "CODE_FILE=\(#fileID)",
                "CODE_LINE=\(line)",
                "CODE_FUNC=testRecordsBecomeEntriesWithMetadataFields()",
                "SYNWATCH_LOGGER=synwatchd.capture",
                "SYNWATCH_ATTACK_ID=7",
                "SYNWATCH_DROPPED=12",
                "SYNWATCH_INTERFACE=eth0",
            ]
        )
        let failure = try XCTUnwrap(captured.all.last)
        XCTAssertEqual(failure["PRIORITY"], "3")
        XCTAssertEqual(failure["SYNWATCH_ERROR"], "pcap_activate: permission denied")
    }

    func testLevelsMapToPriorities() {
        let captured = Captured()
        var logger = Logger(label: "levels") { JournalLogHandler(label: $0, sink: captured.sink) }
        logger.logLevel = .trace
        for level in Logger.Level.allCases { logger.log(level: level, "level") }
        XCTAssertEqual(captured.all.map { $0["PRIORITY"] }, ["7", "7", "6", "5", "4", "3", "2"])
    }

    func testMetadataProviderFillsInAndRecordMetadataWins() {
        let captured = Captured()
        let provider = Logger.MetadataProvider { ["config": "/etc/synwatch/synwatch.yaml", "interface": "any"] }
        var logger = Logger(label: "provided") {
            JournalLogHandler(label: $0, metadataProvider: provider, sink: captured.sink)
        }
        logger[metadataKey: "interface"] = "eth0"
        logger.info("reloaded", metadata: ["interface": "eth1"])
        XCTAssertEqual(captured.all.first?["SYNWATCH_CONFIG"], "/etc/synwatch/synwatch.yaml")
        XCTAssertEqual(captured.all.first?["SYNWATCH_INTERFACE"], "eth1")
    }

    func testRecordsReachTheRealJournal() throws {
        try TestJournald.require()
        let marker = UUID().uuidString
        let logger = Logger(label: "synwatchd.test") { JournalLogHandler(label: $0) }
        logger.notice("configuration reloaded", metadata: ["test_marker": "\(marker)", "services": "3"])
        let entry = try XCTUnwrap(TestJournald.entries(where: "SYNWATCH_TEST_MARKER", is: marker).first)
        XCTAssertEqual(entry["MESSAGE"], "configuration reloaded")
        XCTAssertEqual(entry["PRIORITY"], "5")
        XCTAssertEqual(entry["SYSLOG_IDENTIFIER"], "synwatchd")
        XCTAssertEqual(entry["SYNWATCH_LOGGER"], "synwatchd.test")
        XCTAssertEqual(entry["SYNWATCH_SERVICES"], "3")
        XCTAssertEqual(entry["CODE_FUNC"], "testRecordsReachTheRealJournal()")
    }
}

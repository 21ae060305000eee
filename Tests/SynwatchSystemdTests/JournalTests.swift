import Foundation
import Glibc
import SynwatchEngine
import SynwatchSystem
import SynwatchSystemd
import SynwatchTestSupport
import XCTest

/// Entries through a real systemd-journald, read back with journalctl.
final class JournalTests: XCTestCase {
    func testEveryAlertArrivesWithAllItsFields() throws {
        try TestJournald.require()
        let marker = UUID().uuidString
        var sent: [JournalEntry] = []
        for event in Samples.all {
            var entry = JournalEntry(event: event)
            entry.append("SYNWATCH_TEST_MARKER", marker)
            try Journal().send(entry)
            sent.append(entry)
        }
        let received = try TestJournald.entries(where: "SYNWATCH_TEST_MARKER", is: marker, count: sent.count)
        XCTAssertEqual(received.count, sent.count)
        for (entry, fields) in zip(sent, received) {
            for field in entry.fields {
                XCTAssertEqual(fields[field.name], field.value, "\(field.name) of \(entry["MESSAGE"] ?? "")")
            }
            XCTAssertEqual(fields["_TRANSPORT"], "journal")
        }
        let start = try XCTUnwrap(received.first)
        XCTAssertEqual(start["MESSAGE_ID"], "82044201de1b4a5bbade0a6e98526953")
        XCTAssertEqual(start["PRIORITY"], "2")
        XCTAssertEqual(start["SYSLOG_IDENTIFIER"], "synwatchd")
        XCTAssertEqual(start["SYNWATCH_TOP_SOURCES"], "198.18.7.1:40,2001:db8::7:12")
    }

    func testValuesKeepLineBreaksAndNonASCIIText() throws {
        try TestJournald.require()
        let marker = UUID().uuidString
        let entry = JournalEntry(fields: [
            JournalField("MESSAGE", "first line\nsecond line, café"),
            JournalField("SYNWATCH_TEST_MARKER", marker),
        ])
        try Journal().send(entry)
        let received = try TestJournald.entries(where: "SYNWATCH_TEST_MARKER", is: marker)
        XCTAssertEqual(received.first?["MESSAGE"], "first line\nsecond line, café")
    }

    func testRefusedEntriesAreErrorsNamingTheCall() {
        let invalid = SystemCallError(call: "sd_journal_sendv", errno: EINVAL)
        XCTAssertThrowsError(try Journal().send(JournalEntry())) { XCTAssertEqual($0 as? SystemCallError, invalid) }
        let nameless = JournalEntry(fields: [JournalField("MESSAGE", "hello"), JournalField("", "value")])
        XCTAssertThrowsError(try Journal().send(nameless)) {
            XCTAssertEqual($0 as? SystemCallError, invalid)
            XCTAssertEqual("\($0)", "sd_journal_sendv failed: Invalid argument (errno 22)")
        }
    }
}

import SynwatchEngine
import XCTest

@testable import SynwatchSystemd

/// The fields and messages of alert entries, without a journal.
final class EventJournalEntryTests: XCTestCase {
    func testAttackStartCarriesEveryFieldUpperCased() throws {
        let entry = JournalEntry(event: Samples.attackStart)
        XCTAssertEqual(
            entry.fields.map { "\($0.name)=\($0.value)" },
            [
                "MESSAGE=SYN flood on 198.18.0.2:80: random-source, 24k half-open/s from ~23k sources",
                "MESSAGE_ID=82044201de1b4a5bbade0a6e98526953",
                "PRIORITY=2",
                "SYSLOG_IDENTIFIER=synwatchd",
                "SYNWATCH_EVENT=attack_start",
                "SYNWATCH_ATTACK_ID=7",
                "SYNWATCH_TIME=1700000000.120000000",
                "SYNWATCH_VICTIM=198.18.0.2",
                "SYNWATCH_PORT=80",
                "SYNWATCH_KIND=random-source",
                "SYNWATCH_SYN_PER_S=24100.46",
                "SYNWATCH_HALF_OPEN_PER_S=23990",
                "SYNWATCH_REFUSED_PER_S=0",
                "SYNWATCH_COMPLETION_RATIO=0.001",
                "SYNWATCH_DISTINCT_SOURCES=23312",
                "SYNWATCH_TOP_SOURCES=198.18.7.1:40,2001:db8::7:12",
                "SYNWATCH_COMPLETION_GRACE=0",
            ]
        )
    }

    func testAttackEndCarriesDurationAndPeaks() {
        let entry = JournalEntry(event: Samples.attackEnd)
        XCTAssertEqual(entry["MESSAGE"], "SYN flood on 198.18.0.2:80 ended after 42 s: peak 31k SYN/s")
        XCTAssertEqual(entry["PRIORITY"], "4")
        XCTAssertEqual(entry["SYNWATCH_START"], "1700000000.000000000")
        XCTAssertEqual(entry["SYNWATCH_DURATION"], "42.25")
        XCTAssertEqual(entry["SYNWATCH_PEAK_SYN_PER_S"], "31020")
        XCTAssertEqual(entry["SYNWATCH_PEAK_HALF_OPEN_PER_S"], "30900.5")
        XCTAssertEqual(entry["SYNWATCH_PEAK_DISTINCT_SOURCES"], "29001")
        XCTAssertEqual(entry["SYNWATCH_TOTAL_SYNS"], "1000000")
        XCTAssertEqual(entry["SYNWATCH_END_REASON"], "quiet")
    }

    func testUnknownKernelFiguresAreLeftOutAndAQuietUpdateSubsides() {
        var start = Samples.attackStart
        start.kernel = KernelFigures(
            observation: KernelObservation(syncookiesSentPerSecond: 1_500, captureLoss: 0),
            victimSynReceived: nil,
            corroborated: false
        )
        let entry = JournalEntry(event: start)
        XCTAssertEqual(entry["SYNWATCH_KERNEL_SYNCOOKIES_SENT_PER_S"], "1500")
        XCTAssertNil(entry["SYNWATCH_KERNEL_SYN_RECV"], "not read yet: left out")
        XCTAssertNil(entry["SYNWATCH_KERNEL_LISTEN_DROPS_PER_S"], "not counted: left out")
        XCTAssertFalse(entry.fields.contains { $0.value == "null" }, "\(entry.fields)")

        var quiet = Samples.hostUpdate
        quiet.figures?.halfOpenPerSecond = 0
        XCTAssertEqual(
            JournalEntry(event: quiet)["MESSAGE"]?.hasPrefix("SYN flood on [2001:db8::2] (all ports) is subsiding: "),
            true
        )
    }

    func testMessagesOfEveryEventType() throws {
        XCTAssertEqual(
            JournalEntry(event: Samples.hostUpdate)["MESSAGE"],
            "SYN flood on [2001:db8::2] (all ports) goes on: random-source, 1.2k half-open/s from ~980 sources"
        )
        XCTAssertEqual(
            JournalEntry(event: Samples.singleSourceStart)["MESSAGE"],
            "SYN flood on [2001:db8::2]:443: single-source, 850 half-open/s from 198.18.9.9"
        )
        // At a closed port the kernel refuses every SYN: nothing is half-open, and the message says why.
        var refused = Samples.singleSourceStart
        refused.figures?.refusedPerSecond = 850
        refused.figures?.halfOpenPerSecond = 0
        XCTAssertEqual(
            JournalEntry(event: refused)["MESSAGE"],
            "SYN flood on [2001:db8::2]:443: single-source, 850 refused/s (port closed) from 198.18.9.9"
        )
        var refusedUpdate = Samples.hostUpdate
        refusedUpdate.figures?.refusedPerSecond = 1_200
        refusedUpdate.figures?.halfOpenPerSecond = 0
        XCTAssertEqual(
            JournalEntry(event: refusedUpdate)["MESSAGE"]?.hasPrefix(
                "SYN flood on [2001:db8::2] (all ports) goes on: "
            ),
            true
        )
        var ended = Samples.attackEnd
        ended.summary?.endReason = .captureEnd
        ended.summary?.duration = .seconds(192.4)
        XCTAssertEqual(
            JournalEntry(event: ended)["MESSAGE"],
            "SYN flood on 198.18.0.2:80 ended after 3 min 12 s: peak 31k SYN/s (capture stopped)"
        )
        XCTAssertEqual(
            JournalEntry(event: Samples.scan)["MESSAGE"],
            "Scan from 198.18.1.1: 250 ports of 198.18.0.9 probed"
        )
        XCTAssertEqual(
            JournalEntry(event: Samples.wideScan)["MESSAGE"],
            "Scan from 198.18.1.1: 1.5k services on 12 hosts probed"
        )
        XCTAssertEqual(
            JournalEntry(event: Samples.backscatter)["MESSAGE"],
            "Backscatter at 198.18.0.3: 813 unsolicited SYN-ACK/s from ~400 hosts; someone spoofs this address"
        )
    }

    func testPrioritiesAndMessageIDs() {
        XCTAssertEqual(EventType.allCases.map(\.journalPriority), [.critical, .notice, .warning, .info, .notice])
        let ids = EventType.allCases.map(\.messageID)
        XCTAssertEqual(Set(ids).count, ids.count)
        for id in ids {
            XCTAssertEqual(id.count, 32)
            XCTAssert(id.allSatisfy { $0.isHexDigit && !$0.isUppercase }, id)
        }
    }

    func testFiguresReadInThreeSignificantDigits() {
        let cases: [(Double, String)] = [
            (0, "0"), (-3, "0"), (.nan, "0"), (999.4, "999"), (999.5, "1k"), (1_049, "1k"), (1_050, "1.1k"),
            (9_949, "9.9k"), (9_950, "10k"), (23_512, "24k"), (999_499, "999k"), (999_500, "1M"), (3_140_000, "3.1M"),
            (2.5e12, "2500G"),
        ]
        for (value, text) in cases { XCTAssertEqual(JournalEntry.compact(value), text, "\(value)") }
        XCTAssertEqual(
            [0, 59.4, 60, 192.4, 3_599, 7_500].map(JournalEntry.duration),
            ["0 s", "59 s", "1 min 0 s", "3 min 12 s", "59 min 59 s", "2 h 5 min"]
        )
    }

    func testFieldNamesAreMadeValid() {
        XCTAssertEqual(JournalEntry.fieldName("attack_id"), "SYNWATCH_ATTACK_ID")
        XCTAssertEqual(JournalEntry.fieldName("peer.address-v6"), "SYNWATCH_PEER_ADDRESS_V6")
        XCTAssertEqual(JournalEntry.fieldName(String(repeating: "x", count: 80)).count, 64)
    }
}

/// Events of every type with round figures.
enum Samples {
    static let victim = IPAddress("198.18.0.2")!
    static let victim6 = IPAddress("2001:db8::2")!

    static let attackStart = Event(
        type: .attackStart,
        time: Timestamp(seconds: 1_700_000_000, nanoseconds: 120_000_000),
        victim: victim,
        port: 80,
        attackID: 7,
        kind: .randomSource,
        figures: VictimFigures(
            synPerSecond: 24_100.456,
            halfOpenPerSecond: 23_990,
            completionRatio: 0.0012,
            distinctSources: 23_312,
            topSources: [
                SourceCount(address: IPAddress("198.18.7.1")!, halfOpen: 40),
                SourceCount(address: IPAddress("2001:db8::7")!, halfOpen: 12),
            ]
        )
    )

    static let attackEnd = Event(
        type: .attackEnd,
        time: Timestamp(seconds: 1_700_000_052),
        victim: victim,
        port: 80,
        attackID: 7,
        kind: .randomSource,
        figures: VictimFigures(synPerSecond: 3, halfOpenPerSecond: 1, completionRatio: 0.5, distinctSources: 3),
        summary: AttackSummary(
            start: Timestamp(seconds: 1_700_000_000),
            duration: .seconds(42.25),
            peakSynPerSecond: 31_020,
            peakHalfOpenPerSecond: 30_900.5,
            peakDistinctSources: 29_001,
            totalSyns: 1_000_000,
            endReason: .quiet
        )
    )

    static let hostUpdate = Event(
        type: .attackUpdate,
        time: Timestamp(seconds: 1_700_000_010),
        victim: victim6,
        attackID: 8,
        kind: .randomSource,
        figures: VictimFigures(synPerSecond: 1_300, halfOpenPerSecond: 1_234, completionRatio: 0, distinctSources: 980)
    )

    static let singleSourceStart = Event(
        type: .attackStart,
        time: Timestamp(seconds: 1_700_000_020),
        victim: victim6,
        port: 443,
        attackID: 9,
        kind: .singleSource,
        figures: VictimFigures(
            synPerSecond: 900,
            halfOpenPerSecond: 850.2,
            completionRatio: 0.01,
            distinctSources: 1,
            topSources: [SourceCount(address: IPAddress("198.18.9.9")!, halfOpen: 850)]
        )
    )

    static let scan = Event(
        type: .scan,
        time: Timestamp(seconds: 1_700_000_030),
        victim: IPAddress("198.18.0.9"),
        scan: ScanFigures(source: IPAddress("198.18.1.1")!, distinctTargets: 250, distinctAddresses: 1, syns: 260)
    )

    static let wideScan = Event(
        type: .scan,
        time: Timestamp(seconds: 1_700_000_031),
        scan: ScanFigures(source: IPAddress("198.18.1.1")!, distinctTargets: 1_490, distinctAddresses: 12, syns: 1_600)
    )

    static let backscatter = Event(
        type: .backscatter,
        time: Timestamp(seconds: 1_700_000_040),
        victim: IPAddress("198.18.0.3"),
        backscatter: BackscatterFigures(synAckPerSecond: 812.5, distinctSources: 400)
    )

    static let all = [attackStart, attackEnd, hostUpdate, singleSourceStart, scan, wideScan, backscatter]
}

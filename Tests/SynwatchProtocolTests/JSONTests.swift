import SynwatchEngine
import SynwatchProtocol
import XCTest

final class JSONTests: XCTestCase {
    func testNumbersAreFixedPointWithoutTrailingZeros() {
        let cases: [(Double, Int, String)] = [
            (0, 2, "0"), (1, 2, "1"), (1.5, 2, "1.5"), (1.005, 3, "1.005"), (0.001, 2, "0"), (0.01, 2, "0.01"),
            (-2.25, 2, "-2.25"), (-0.001, 2, "0"), (123_456_789.125, 2, "123456789.13"), (1e-7, 3, "0"),
            (.nan, 2, "0"), (.infinity, 2, "0"), (24_000.4, 0, "24000"),
        ]
        for (value, decimals, expected) in cases {
            XCTAssertEqual(JSONValue.number(value, decimals: decimals).rendered, expected, "\(value)")
        }
    }

    func testStringsAreEscaped() {
        XCTAssertEqual(JSONValue.string("a\"b\\c\n\t\u{1}é").rendered, #""a\"b\\c\n\t\u0001é""#)
    }

    func testObjectsKeepTheirKeyOrder() {
        let value = JSONValue.object([("z", .int(1)), ("a", .array([.bool(true), .null])), ("m", .raw("1.500000000"))])
        XCTAssertEqual(value.rendered, #"{"z":1,"a":[true,null],"m":1.500000000}"#)
    }

    func testAttackStartCarriesTheDesignFieldsInOrder() throws {
        let event = Event(
            type: .attackStart,
            time: Timestamp(seconds: 1_700_000_000, nanoseconds: 120_000_000),
            victim: IPAddress("198.18.0.2"),
            port: 80,
            attackID: 7,
            kind: .randomSource,
            figures: VictimFigures(
                synPerSecond: 24_000.456,
                halfOpenPerSecond: 23_990,
                completionRatio: 0.0004,
                distinctSources: 23_512,
                topSources: [SourceCount(address: try XCTUnwrap(IPAddress("2001:db8::1")), halfOpen: 3)]
            )
        )
        XCTAssertEqual(
            event.json.rendered,
            #"{"event":"attack_start","attack_id":7,"time":1700000000.120000000,"victim":"198.18.0.2","port":80,"#
                + #""kind":"random-source","syn_per_s":24000.46,"half_open_per_s":23990,"refused_per_s":0,"#
                + #""completion_ratio":0,"#
                + #""distinct_sources":23512,"top_sources":[{"address":"2001:db8::1","half_open":3}],"completion_grace":0}"#
        )
    }

    func testNoticesCarryTheirOwnFigures() {
        let scan = Event(
            type: .scan,
            time: Timestamp(seconds: 5),
            victim: IPAddress("198.18.0.9"),
            scan: ScanFigures(
                source: IPAddress(ipv4: 0xC612_0001),
                distinctTargets: 250,
                distinctAddresses: 1,
                syns: 260
            )
        )
        XCTAssertEqual(
            scan.json.rendered,
            #"{"event":"scan","time":5.000000000,"victim":"198.18.0.9","source":"198.18.0.1","distinct_targets":250,"#
                + #""distinct_addresses":1,"syns":260}"#
        )
        let backscatter = Event(
            type: .backscatter,
            time: Timestamp(seconds: 6),
            victim: IPAddress("198.18.0.3"),
            backscatter: BackscatterFigures(synAckPerSecond: 812.5, distinctSources: 400)
        )
        XCTAssertEqual(
            backscatter.json.rendered,
            #"{"event":"backscatter","time":6.000000000,"victim":"198.18.0.3","synack_per_s":812.5,"#
                + #""distinct_sources":400}"#
        )
    }
}

import SynwatchConfig
import SynwatchEngine
import Testing

/// Durations: a number of seconds, or a number with a unit, and a clear error for anything else.
@Suite struct DurationTests {
    /// `scan.notice_interval` as read from `value`; a key with no relation to others, so any duration is valid.
    func noticeInterval(_ value: String) throws -> TimeSpan {
        try SynwatchConfiguration(yaml: "scan:\n  notice_interval: \(value)\n").engine.scan.noticeInterval
    }

    @Test(
        "Seconds as numbers, and numbers with a unit",
        arguments: [
            ("5", TimeSpan.seconds(5)), ("0.3", .milliseconds(300)), (".5", .milliseconds(500)),
            ("0", .seconds(0)), ("2e-3", .milliseconds(2)), ("+7", .seconds(7)),
            ("300ms", .milliseconds(300)), ("0.5ms", TimeSpan(nanoseconds: 500_000)), ("5s", .seconds(5)),
            ("1.5s", .milliseconds(1_500)), ("2m", .seconds(120)), ("1h", .seconds(3_600)),
            ("168h", .seconds(604_800)), ("300 ms", .milliseconds(300)), ("'300ms'", .milliseconds(300)),
            ("\"2m\"", .seconds(120)),
        ]
    )
    func accepted(text: String, expected: TimeSpan) throws {
        #expect(try noticeInterval(text) == expected)
    }

    @Test(
        "Not a duration: the error says which forms are",
        arguments: [
            ("5x", "'5x'"), ("ms", "'ms'"), ("1:30", "'1:30'"), ("1.2.3s", "'1.2.3s'"), ("5 sec", "'5 sec'"),
            ("true", "'true'"), ("'5'", "'5'"), ("[1]", "a list"), ("{s: 1}", "a section"), ("", "no value"),
        ]
    )
    func wrongForm(text: String, found: String) {
        let error = loadingError("scan:\n  notice_interval: \(text)\n")
        #expect(error?.kind == .wrongType)
        #expect(error?.key == "scan.notice_interval")
        #expect(error?.position?.line == 2)
        #expect(
            error?.message == "expected a duration: a number of seconds (5, 0.3) or a number with a unit ms, s, m "
                + "or h (300ms, 5s, 2m, 1h), found \(found)"
        )
    }

    @Test(
        "Durations out of range",
        arguments: [
            ("-1", "must not be negative"), ("-2s", "must not be negative"), ("-0.5ms", "must not be negative"),
            ("169h", "must be at most 168h (7 days)"), ("604801", "must be at most 168h (7 days)"),
            ("99999999999999999999", "must be at most 168h (7 days)"), (".inf", "must be at most 168h (7 days)"),
            (".nan", "must be a number"),
        ]
    )
    func outOfRange(text: String, message: String) {
        let error = loadingError("scan:\n  notice_interval: \(text)\n")
        #expect(error?.kind == .invalidValue)
        #expect(error?.key == "scan.notice_interval")
        #expect(error?.position == ConfigurationError.Position(line: 2, column: 20))
        #expect(error?.message == message)
    }
}

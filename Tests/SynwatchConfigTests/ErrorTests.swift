import SynwatchConfig
import Testing

/// Each kind of error names the key and the line and column to fix.
@Suite struct ErrorTests {
    typealias Position = ConfigurationError.Position

    @Test(
        "Unknown keys, with the key most likely meant",
        arguments: [
            (
                "detection:\n  half_open_per_sec: 50\n", "detection.half_open_per_sec", Position(line: 2, column: 3),
                "unknown key; did you mean detection.half_open_per_s?"
            ),
            (
                "windows:\n  resolution: 50ms\n  completionGrace: 1s\n", "windows.completionGrace",
                Position(line: 3, column: 3), "unknown key; did you mean windows.completion_grace?"
            ),
            (
                "windows:\n  half_open_per_s: 5\n", "windows.half_open_per_s", Position(line: 2, column: 3),
                "unknown key; did you mean detection.half_open_per_s?"
            ),
            (
                "timeout: 5s\n", "timeout", Position(line: 1, column: 1),
                "unknown key; did you mean handshakes.timeout or hooks.timeout?"
            ),
            (
                "detections:\n  top_sources: 5\n", "detections", Position(line: 1, column: 1),
                "unknown key; did you mean detection?"
            ),
            (
                "detection:\n  capacity: 5\n", "detection.capacity", Position(line: 2, column: 3),
                "unknown key; did you mean handshakes.capacity, victims.capacity, sources.capacity, "
                    + "connections.capacity or backscatter.capacity?"
            ),
            (
                "scan:\n  frobnicate: 1\n", "scan.frobnicate", Position(line: 2, column: 3),
                "unknown key; scan has min_targets, max_completion_ratio, notice_interval"
            ),
            (
                "# comment\n\nzzz: 1\n", "zzz", Position(line: 3, column: 1),
                "unknown section; the sections are daemon, handshakes, victims, sources, connections, windows, "
                    + "detection, baseline, classification, scan, backscatter, hooks, metrics"
            ),
            (
                "hash_seed: 42\n", "hash_seed", Position(line: 1, column: 1),
                "is not a configuration key: synwatchd draws a random hash seed at every start, so that no attacker can "
                    + "aim at a table bucket"
            ),
        ]
    )
    func unknownKey(yaml: String, key: String, position: Position, message: String) {
        let error = loadingError(yaml)
        #expect(error?.kind == .unknownKey)
        #expect(error?.key == key)
        #expect(error?.position == position)
        #expect(error?.message == message)
    }

    @Test(
        "Values of the wrong type",
        arguments: [
            (
                "handshakes:\n  capacity: lots\n", "handshakes.capacity", Position(line: 2, column: 13),
                "expected a whole number, found 'lots'"
            ),
            (
                "handshakes:\n  timeout: 5s\n  capacity: 1.5\n", "handshakes.capacity", Position(line: 3, column: 13),
                "expected a whole number, found '1.5'"
            ),
            (
                "handshakes:\n  capacity: 0x100\n", "handshakes.capacity", Position(line: 2, column: 13),
                "expected a whole number, found '0x100'"
            ),
            (
                "detection:\n  half_open_per_s: \"100\"\n", "detection.half_open_per_s", Position(line: 2, column: 20),
                "expected a number, found '100'"
            ),
            (
                "baseline:\n  enabled: 1\n", "baseline.enabled", Position(line: 2, column: 12),
                "expected true or false, found '1'"
            ),
            (
                "detection: 5\n", "detection", Position(line: 1, column: 12),
                "expected a section of keys such as 'capacity: 4096', found '5'"
            ),
            (
                "detection:\n  - top_sources: 5\n", "detection", Position(line: 2, column: 3),
                "expected a section of keys such as 'capacity: 4096', found a list"
            ),
            (
                "daemon:\n  interfaces: eth0\n", "daemon.interfaces", Position(line: 2, column: 15),
                "expected a list of names, such as [eth0], found 'eth0'"
            ),
            (
                "daemon:\n  interfaces: [eth0, [eth1]]\n", "daemon.interfaces", Position(line: 2, column: 22),
                "expected a list of names, such as [eth0], found a list"
            ),
            ("daemon:\n  user: [a]\n", "daemon.user", Position(line: 2, column: 9), "expected a name, found a list"),
            ("daemon:\n  user:\n", "daemon.user", Position(line: 2, column: 8), "expected a name, found no value"),
            (
                "daemon:\n  buffer_size: 64MB\n", "daemon.buffer_size", Position(line: 2, column: 16),
                "expected a size: a whole number of bytes or a whole number with a unit KiB, MiB or GiB (64MiB), "
                    + "found '64MB'"
            ),
        ]
    )
    func wrongType(yaml: String, key: String, position: Position, message: String) {
        let error = loadingError(yaml)
        #expect(error?.kind == .wrongType)
        #expect(error?.key == key)
        #expect(error?.position == position)
        #expect(error?.message == message)
    }

    @Test("The top level must hold sections")
    func topLevel() {
        let error = loadingError("- detection\n")
        #expect(error?.kind == .wrongType)
        #expect(error?.key == nil)
        #expect(error?.position == Position(line: 1, column: 1))
        #expect(error?.message == "expected sections such as 'detection:', found a list")
    }

    @Test(
        "Values out of range, found while reading or by the engine's and the daemon's checks",
        arguments: [
            (
                "handshakes:\n  capacity: 99999999999999999999\n", "handshakes.capacity", Position(line: 2, column: 13),
                "is too large"
            ),
            (
                "detection:\n  max_completion_ratio: .nan\n", "detection.max_completion_ratio",
                Position(line: 2, column: 25), "must be a finite number"
            ),
            (
                "# tuned\ndetection:\n  min_attempts: 20\n  top_sources: 40\n", "detection.top_sources",
                Position(line: 4, column: 16), "must be at most 32"
            ),
            ("victims: {capacity: 8}\n", "victims.capacity", Position(line: 1, column: 21), "must be at least 16"),
            // A capacity near Int.max made the engine's table size overflow at start.
            (
                "handshakes:\n  capacity: 9223372036854775807\n", "handshakes.capacity", Position(line: 2, column: 13),
                "must be at most 67108864"
            ),
            (
                "victims: {capacity: 1048577}\n", "victims.capacity", Position(line: 1, column: 21),
                "must be at most 1048576"
            ),
            (
                "detection:\n  half_open_per_s: 0\n", "detection.half_open_per_s", Position(line: 2, column: 20),
                "must be positive"
            ),
            // The threshold of a service whose SYN queue the kernel finds full, even with the baseline off.
            (
                "baseline:\n  enabled: false\n  min_half_open_per_s: 0\n", "baseline.min_half_open_per_s",
                Position(line: 3, column: 24), "must be positive"
            ),
            (
                "windows:\n  resolution: 1s\n  rate: 20m\n", "windows.rate", Position(line: 3, column: 9),
                "must span 2 to 600 resolution steps"
            ),
            (
                "daemon:\n  interfaces: [any, eth0]\n", "daemon.interfaces", Position(line: 2, column: 15),
                "'any' already covers every interface"
            ),
            (
                "daemon:\n  interfaces: [eth0, eth0]\n", "daemon.interfaces", Position(line: 2, column: 15),
                "names an interface twice"
            ),
            (
                "daemon:\n  interfaces: []\n", "daemon.interfaces", Position(line: 2, column: 15),
                "must name at least one interface"
            ),
            (
                "daemon:\n  socket_path: synwatch.sock\n", "daemon.socket_path", Position(line: 2, column: 16),
                "must be an absolute path"
            ),
            (
                "daemon:\n  socket_group: ''\n", "daemon.socket_group", Position(line: 2, column: 17),
                "must be a group name, or null for none"
            ),
            (
                "daemon:\n  buffer_size: 512KiB\n", "daemon.buffer_size", Position(line: 2, column: 16),
                "must be between 1MiB and 2047MiB"
            ),
            (
                "daemon:\n  snap_length: 64\n", "daemon.snap_length", Position(line: 2, column: 16),
                "must be between 82 and 262144"
            ),
            (
                "daemon:\n  buffer_timeout: 0\n", "daemon.buffer_timeout", Position(line: 2, column: 19),
                "must be between 1ms and 1s"
            ),
            (
                "daemon:\n  capture_shards: 17\n", "daemon.capture_shards", Position(line: 2, column: 19),
                "must be between 0 (one per core) and 16"
            ),
            (
                "metrics:\n  listen: [198.18.0.10:9464, 2001:db8::10:9464]\n", "metrics.listen",
                Position(line: 2, column: 30),
                "'2001:db8::10:9464' is not ADDRESS:PORT with an IP address and a port from 1 to 65535"
            ),
            (
                "metrics:\n  listen: [localhost:9464]\n", "metrics.listen", Position(line: 2, column: 12),
                "'localhost:9464' is not ADDRESS:PORT with an IP address and a port from 1 to 65535"
            ),
            (
                "metrics:\n  listen: [0.0.0.0:9464, 0.0.0.0:9464]\n", "metrics.listen", Position(line: 2, column: 11),
                "names an address twice"
            ),
            (
                "metrics:\n  max_services: 1001\n", "metrics.max_services", Position(line: 2, column: 17),
                "must be between 0 and 1000"
            ),
        ]
    )
    func invalidValue(yaml: String, key: String, position: Position, message: String) {
        let error = loadingError(yaml)
        #expect(error?.kind == .invalidValue)
        #expect(error?.key == key)
        #expect(error?.position == position)
        #expect(error?.message == message)
    }

    @Test("A check that fails on a key left out of the file says that its default applies")
    func checkOnDefault() {
        let error = loadingError("handshakes:\n  timeout: 1s\n")
        #expect(error?.kind == .invalidValue)
        #expect(error?.key == "handshakes.retransmission_deadline")
        #expect(error?.position == nil)
        #expect(
            error?.message
                == "must be longer than windows.completion_grace_ceiling and shorter than handshakes.timeout"
                + " (the key is not in the file: its default applies)"
        )
    }

    @Test(
        "Text that is not YAML, at the place libyaml gives",
        arguments: [
            (
                "handshakes:\n\ttimeout: 5s\n", Position(line: 2, column: 1),
                "found character that cannot start any token (while scanning for the next token at 2:1)"
            ),
            (
                "detection:\n  top_sources: [5\n", Position(line: 3, column: 1),
                "did not find expected ',' or ']' (while parsing a flow sequence at 2:16)"
            ),
            (
                "detection:\n  top_sources: 5\n min_attempts: 3\n", Position(line: 3, column: 2),
                "did not find expected key (while parsing a block mapping at 1:1)"
            ),
            (
                "detection:\n  top_sources: 5\n---\nscan:\n", Position(line: 3, column: 1),
                "but found another document (expected a single document in the stream at 1:1)"
            ),
            ("detection:\n  top_sources: *five\n", Position(line: 2, column: 16), "found undefined alias"),
            (
                "detection:\n  top_sources: 5\u{1}\n", Position(line: 2, column: 17),
                "control characters are not allowed"
            ),
            // The config fuzz target's first finding: thousands of `[` overflowed the composer's stack.
            (
                "detection:\n  top_sources: " + String(repeating: "[", count: 5_000), Position(line: 2, column: 78),
                "collections nested more than 64 levels deep"
            ),
        ]
    )
    func syntax(yaml: String, position: Position, message: String) {
        let error = loadingError(yaml)
        #expect(error?.kind == .syntax)
        #expect(error?.key == nil)
        #expect(error?.position == position)
        #expect(error?.message == message)
    }

    @Test("A key given twice, and a section given twice")
    func duplicates() {
        let key = loadingError("handshakes:\n  capacity: 100000\n  timeout: 5s\n  capacity: 200000\n")
        #expect(key?.kind == .duplicateKey)
        #expect(key?.key == "handshakes.capacity")
        #expect(key?.position == Position(line: 2, column: 3))
        #expect(key?.message == "is given more than once in its section; this is the first")

        let section = loadingError("detection:\n  top_sources: 5\nscan: {min_targets: 9}\ndetection: {}\n")
        #expect(section?.kind == .duplicateKey)
        #expect(section?.key == "detection")
        #expect(section?.position == Position(line: 1, column: 1))
        #expect(section?.message == "appears more than once at the top level")

        let flow = loadingError("scan: {min_targets: 9, notice_interval: 5s, min_targets: 3}\n")
        #expect(flow?.kind == .duplicateKey)
        #expect(flow?.key == "scan.min_targets")
        #expect(flow?.position == Position(line: 1, column: 8))
    }

    @Test("The description reads like a compiler's, leaving out what is unknown")
    func description() {
        let path = "/etc/synwatch/synwatch.yaml"
        #expect(
            ConfigurationError(
                kind: .invalidValue,
                path: path,
                key: "detection.top_sources",
                position: Position(line: 14, column: 16),
                message: "must be at most 32"
            ).description == "/etc/synwatch/synwatch.yaml:14:16: detection.top_sources: must be at most 32"
        )
        let withoutPath = loadingError("detection:\n  top_sources: 40\n")
        #expect(withoutPath?.description == "2:16: detection.top_sources: must be at most 32")
        #expect(
            ConfigurationError(kind: .syntax, path: path, key: nil, position: .init(line: 3, column: 1), message: "x")
                .description == "/etc/synwatch/synwatch.yaml:3:1: x"
        )
        #expect(
            ConfigurationError(kind: .invalidValue, path: path, key: "windows.sources", position: nil, message: "bad")
                .description == "/etc/synwatch/synwatch.yaml: windows.sources: bad"
        )
    }
}

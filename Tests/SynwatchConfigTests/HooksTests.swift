import SynwatchConfig
import SynwatchEngine
import SynwatchHooks
import Testing

/// The `hooks:` section: the command as an argument list, the attack events it runs on, and their limits.
@Suite struct HooksTests {
    typealias Position = ConfigurationError.Position

    @Test("By default no hook runs, and one that is set runs on attack_start and attack_end")
    func defaults() {
        let hooks = SynwatchConfiguration().hooks
        #expect(hooks.command == nil)
        #expect(hooks.events == [.attackStart, .attackEnd])
        #expect(hooks.timeout == .seconds(10))
        #expect(hooks.maxConcurrent == 4)
    }

    @Test("The command is a list kept as written: a quoted argument is text, not something a shell would expand")
    func commandIsAnArgumentList() throws {
        let yaml = """
            hooks:
              command: [/usr/local/bin/hook, "$(touch /tmp/x)", 'a b;c', 10, "", '*']

            """
        let hooks = try SynwatchConfiguration(yaml: yaml).hooks
        #expect(hooks.command == ["/usr/local/bin/hook", "$(touch /tmp/x)", "a b;c", "10", "", "*"])
        for empty in ["null", "~", ""] {
            #expect(try SynwatchConfiguration(yaml: "hooks:\n  command: \(empty)\n").hooks.command == nil)
        }
        let block = try SynwatchConfiguration(yaml: "hooks:\n  command:\n    - /usr/bin/env\n    - A=1\n").hooks
        #expect(block.command == ["/usr/bin/env", "A=1"])
    }

    @Test("Events are the attack events, in any order and spelling YAML allows")
    func events() throws {
        let all = try SynwatchConfiguration(yaml: "hooks:\n  events: [attack_end, 'attack_update', attack_start]\n")
        #expect(all.hooks.events == [.attackStart, .attackUpdate, .attackEnd])
        let one = try SynwatchConfiguration(yaml: "hooks:\n  events:\n    - attack_update\n")
        #expect(one.hooks.events == [.attackUpdate])
    }

    @Test(
        "Mistakes name the key, the line and column of the value or of the item at fault, and what would be right",
        arguments: [
            (
                "hooks:\n  command: /usr/local/bin/hook\n", ConfigurationError.Kind.wrongType, "hooks.command",
                Position(line: 2, column: 12),
                "expected the program's absolute path and its arguments as a list, such as [/usr/local/sbin/hook, -q], "
                    + "or null, found '/usr/local/bin/hook'"
            ),
            (
                "hooks:\n  command: [/bin/hook, [a]]\n", .wrongType, "hooks.command", Position(line: 2, column: 24),
                "expected the program's absolute path and its arguments as a list, such as [/usr/local/sbin/hook, -q], "
                    + "or null, found a list"
            ),
            (
                "hooks:\n  command: [bin/hook, -q]\n", .invalidValue, "hooks.command", Position(line: 2, column: 12),
                "must start with the program's absolute path, not 'bin/hook'"
            ),
            (
                "hooks:\n  command: []\n", .invalidValue, "hooks.command", Position(line: 2, column: 12),
                "must name the program to run, or be null for no hook"
            ),
            (
                "hooks:\n  command: ['']\n", .invalidValue, "hooks.command", Position(line: 2, column: 12),
                "must name the program to run, or be null for no hook"
            ),
            (
                "hooks:\n  command: [/bin/hook, \"a\\0b\"]\n", .invalidValue, "hooks.command",
                Position(line: 2, column: 12), "must not contain a NUL character"
            ),
            (
                "hooks:\n  events: [attack_start, attack_stop]\n", .invalidValue, "hooks.events",
                Position(line: 2, column: 26), "unknown event 'attack_stop'; did you mean attack_start?"
            ),
            (
                "hooks:\n  events: [start]\n", .invalidValue, "hooks.events", Position(line: 2, column: 12),
                "unknown event 'start'; hooks run on attack_start, attack_update, attack_end"
            ),
            (
                "hooks:\n  events: [scan]\n", .invalidValue, "hooks.events", Position(line: 2, column: 12),
                "'scan' is a notice, not an attack event; hooks run on attack_start, attack_update, attack_end"
            ),
            (
                "hooks:\n  events: [attack_end, attack_end]\n", .invalidValue, "hooks.events",
                Position(line: 2, column: 24), "names attack_end twice"
            ),
            (
                "hooks:\n  events: []\n", .invalidValue, "hooks.events", Position(line: 2, column: 11),
                "must name at least one event; set command to null for no hook"
            ),
            (
                "hooks:\n  events: attack_start\n", .wrongType, "hooks.events", Position(line: 2, column: 11),
                "expected a list of events, such as [attack_start, attack_end], found 'attack_start'"
            ),
            (
                "hooks:\n  timeout: 50ms\n", .invalidValue, "hooks.timeout", Position(line: 2, column: 12),
                "must be between 100ms and 10m"
            ),
            (
                "hooks:\n  timeout: 1h\n", .invalidValue, "hooks.timeout", Position(line: 2, column: 12),
                "must be between 100ms and 10m"
            ),
            (
                "hooks:\n  max_concurrent: 0\n", .invalidValue, "hooks.max_concurrent", Position(line: 2, column: 19),
                "must be between 1 and 64"
            ),
            (
                "hooks:\n  max_concurrent: 65\n", .invalidValue, "hooks.max_concurrent", Position(line: 2, column: 19),
                "must be between 1 and 64"
            ),
            (
                "hooks:\n  comand: [/bin/hook]\n", .unknownKey, "hooks.comand", Position(line: 2, column: 3),
                "unknown key; did you mean hooks.command?"
            ),
            (
                "hooks:\n  event: [attack_start]\n", .unknownKey, "hooks.event", Position(line: 2, column: 3),
                "unknown key; did you mean hooks.events?"
            ),
            (
                "hook:\n  command: null\n", .unknownKey, "hook", Position(line: 1, column: 1),
                "unknown key; did you mean hooks?"
            ),
        ]
    )
    func mistakes(yaml: String, kind: ConfigurationError.Kind, key: String, position: Position, message: String) {
        let error = loadingError(yaml)
        #expect(error?.kind == kind)
        #expect(error?.key == key)
        #expect(error?.position == position)
        #expect(error?.message == message)
    }
}

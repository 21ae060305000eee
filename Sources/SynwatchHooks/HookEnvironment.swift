import SynwatchEngine
import SynwatchProtocol

extension Event {
    /// The variables every hook starts with: a fixed `PATH` (the daemon's own is not passed on) and a UTF-8 locale.
    public static let hookBaseEnvironment: [(name: String, value: String)] = [
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ("LANG", "C.UTF-8"),
    ]

    /// The event's fields as a hook's environment variables: each field of `V1.Event` upper-cased after
    /// `SYNWATCH_`, the names journald entries use (`SYNWATCH_EVENT`, `SYNWATCH_ATTACK_ID`, `SYNWATCH_VICTIM`,
    /// `SYNWATCH_PORT`, `SYNWATCH_KIND`, `SYNWATCH_SYN_PER_S`, …). Strings are bare, numbers as in JSON, and
    /// `SYNWATCH_TOP_SOURCES` lists the addresses alone, separated by spaces, heaviest first.
    public var hookEnvironment: [(name: String, value: String)] {
        FlatFields(lists: .firstMembers).fields(of: V1.Event(self))
    }
}

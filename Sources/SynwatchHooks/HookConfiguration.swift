import SynwatchEngine

/// What the response hook runs, on which events, and within which limits: the `hooks:` section of the
/// configuration file, which the daemon passes on.
public struct HookConfiguration: Sendable, Equatable {
    /// The program's absolute path, then its arguments, passed as they are (no shell); `nil` runs no hook.
    public var command: [String]?
    /// The events that run the command, each at most once per attack. Only attack events can: notices have no
    /// attack to run once for.
    public var events: Set<EventType>
    /// Longest a run may take: then its process group gets `SIGTERM`, and `SIGKILL` after
    /// `HookRunner.terminationGrace`.
    public var timeout: TimeSpan
    /// Most runs at once; an event that finds them all busy runs no hook and is counted as dropped.
    public var maxConcurrent: Int

    /// A configuration from its parts, the configuration file's defaults unless given.
    public init(
        command: [String]? = nil,
        events: Set<EventType> = [.attackStart, .attackEnd],
        timeout: TimeSpan = .seconds(10),
        maxConcurrent: Int = 4
    ) {
        self.command = command
        self.events = events
        self.timeout = timeout
        self.maxConcurrent = maxConcurrent
    }
}

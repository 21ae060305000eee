import CSystemd
import Glibc
import SynwatchSystem

/// Tells the service manager how the daemon is doing, over `$NOTIFY_SOCKET` (`sd_notify(3)`).
///
/// Every message is a no-op that returns `false` when the process was not started with a notify socket (no
/// `NOTIFY_SOCKET`, as outside systemd or with `Type=simple`). The notifier holds no state and libsystemd opens a
/// socket per message, so any thread may use it at any time.
public struct ServiceNotifier: Sendable {
    public init() {}

    /// Sends newline-separated `KEY=VALUE` assignments with `sd_notify(0, state)`.
    ///
    /// - Parameter state: The assignments, for example `"READY=1\nSTATUS=capturing on eth0"`.
    /// - Returns: `true` when sent, `false` when there is no notify socket.
    /// - Throws: `SystemCallError` naming `sd_notify`. Retried on `EINTR`.
    @discardableResult
    public func send(_ state: String) throws -> Bool {
        try SystemCall.checkedNegativeErrno("sd_notify") { sd_notify(0, state) } > 0
    }

    /// `READY=1`: start-up (or a reload) is complete. Send it only once the daemon does its job.
    @discardableResult
    public func ready() throws -> Bool { try send("READY=1") }

    /// `STATUS=text`: the one-line summary `systemctl status` shows. Line breaks become spaces: each one would
    /// start a new assignment.
    @discardableResult
    public func status(_ text: String) throws -> Bool {
        try send("STATUS=" + String(text.map { $0.isNewline ? " " : $0 }))
    }

    /// `WATCHDOG=1`: the daemon is making progress. Send it at least every half `watchdogInterval`.
    @discardableResult
    public func watchdog() throws -> Bool { try send("WATCHDOG=1") }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (`CLOCK_MONOTONIC` now): a reload begins; `ready()` ends it.
    ///
    /// systemd 253 and later pair the timestamp with the reload request (`Type=notify-reload`); 252 ignores it.
    @discardableResult
    public func reloading() throws -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
        return try send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// `STOPPING=1`: the daemon is shutting down.
    @discardableResult
    public func stopping() throws -> Bool { try send("STOPPING=1") }

    /// How often the service manager expects `WATCHDOG=1`, from `sd_watchdog_enabled(0, &usec)`
    /// (`WATCHDOG_USEC`, for this process when `WATCHDOG_PID` is set); nil when the watchdog is off.
    ///
    /// - Throws: `SystemCallError` naming `sd_watchdog_enabled` for a malformed environment.
    public var watchdogInterval: Duration? {
        get throws {
            var microseconds: UInt64 = 0
            guard
                try SystemCall.checkedNegativeErrno("sd_watchdog_enabled", { sd_watchdog_enabled(0, &microseconds) })
                    > 0
            else {
                return nil
            }
            return .microseconds(Int64(clamping: microseconds))
        }
    }
}

import Glibc
import SynwatchEngine

/// The daemon's clocks, read in one place.
enum Clocks {
    /// Nanoseconds of CLOCK_MONOTONIC: for intervals the wall clock must not bend (the watchdog, rates).
    static func monotonicNanoseconds() -> Int64 { nanoseconds(of: CLOCK_MONOTONIC) }

    /// Nanoseconds of CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
    static func threadCPUNanoseconds() -> Int64 { nanoseconds(of: CLOCK_THREAD_CPUTIME_ID) }

    private static func nanoseconds(of clock: clockid_t) -> Int64 {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// The wall clock as a capture timestamp: what the kernel stamps frames with, and what status reports.
    static func wall() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int64(spec.tv_nsec))
    }
}

import Glibc
import SynwatchSystem
import SystemPackage

/// How one run of a hook ended.
enum HookOutcome: Equatable {
    /// The program exited with this status.
    case exited(CInt)
    /// A signal the runner did not send ended the program.
    case signaled(CInt)
    /// The time limit ended the program: its process group was killed.
    case timedOut
    /// The daemon's shutdown ended the program: its process group was killed.
    case stoppedAtShutdown
    /// The program could not be started.
    case spawnFailed(SystemCallError)
}

/// What a finished run leaves: how it ended, how long it took, and the start of what it wrote to standard error.
struct HookResult {
    var outcome: HookOutcome
    var duration: Duration
    /// The first `HookProcess.stderrKept` bytes written to standard error.
    var stderr: [UInt8]
}

/// One run of a hook program: `posix_spawn` without a shell, in a process group of its own, with `input` on a
/// pipe to its standard input, standard output to `/dev/null` and standard error on a pipe that is read while it
/// runs. The caller's thread waits for it, so a run belongs on a thread of its own.
struct HookProcess {
    /// Bytes of standard error kept for the log; the rest is read and dropped, so the program never blocks on it.
    static let stderrKept = 4_096
    /// How often an unfinished run is looked at: the delay between an exit and its reaping, at most.
    static let checkInterval = Duration.milliseconds(10)
    /// How long a program still open for writing (`ETXTBSY`) is tried again: a script being replaced, or written
    /// just now while another thread forked (the child holds a copy of the writer's descriptor until it execs, close
    /// on exec or not). Either passes within milliseconds.
    static let busyProgramWait = Duration.seconds(1)

    let arguments: [String]
    let environment: [String]
    let input: [UInt8]

    /// Spawns the program and waits for its end, which comes at the latest `grace` after `deadline` or after
    /// `shouldStop()` turns true: its process group gets `SIGTERM` then, and `SIGKILL` `grace` later. The program
    /// is always reaped; `started` learns its process id first.
    func run(
        deadline: ContinuousClock.Instant,
        grace: Duration,
        shouldStop: () -> Bool,
        started: (pid_t) -> Void
    ) -> HookResult {
        let clock = ContinuousClock()
        let start = clock.now
        Self.blockBrokenPipeSignal()
        let spawned: Spawned
        do {
            spawned = try spawn()
        } catch {
            return HookResult(outcome: .spawnFailed(error), duration: clock.now - start, stderr: [])
        }
        started(spawned.pid)

        var stdinFD: FileDescriptor? = spawned.stdinFD
        var stderrFD: FileDescriptor? = spawned.stderrFD
        var written = 0
        var stderr: [UInt8] = []
        var stopAt: ContinuousClock.Instant?
        var timedOut = false
        var killed = false
        defer {
            try? stdinFD?.close()
            try? stderrFD?.close()
        }

        while !Self.hasExited(spawned.pid) {
            let now = clock.now
            if stopAt == nil, now >= deadline || shouldStop() {
                timedOut = now >= deadline
                // The whole group, so that what the program started ends too.
                kill(-spawned.pid, SIGTERM)
                stopAt = now
            } else if let stopAt, !killed, now >= stopAt + grace {
                kill(-spawned.pid, SIGKILL)
                killed = true
            }
            if let fd = stdinFD, !Self.writeSome(input, from: &written, to: fd) {
                try? fd.close()
                stdinFD = nil
            }
            Self.wait(readingFrom: &stderrFD, into: &stderr, for: Self.checkInterval)
        }
        if stopAt != nil {
            // The exited leader, not yet reaped, keeps the group id from being reused while its stragglers die.
            kill(-spawned.pid, SIGKILL)
        }
        // What the program wrote just before it ended; a straggler holding the pipe open is not waited for.
        Self.wait(readingFrom: &stderrFD, into: &stderr, for: .zero)
        let status = Self.reap(spawned.pid)
        let outcome: HookOutcome
        if stopAt != nil {
            outcome = timedOut ? .timedOut : .stoppedAtShutdown
        } else if status & 0x7F == 0 {
            outcome = .exited((status >> 8) & 0xFF)
        } else {
            outcome = .signaled(status & 0x7F)
        }
        return HookResult(outcome: outcome, duration: clock.now - start, stderr: stderr)
    }

    /// A started program and the parent's ends of its pipes.
    private struct Spawned {
        var pid: pid_t
        var stdinFD: FileDescriptor
        var stderrFD: FileDescriptor
    }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), which Swift's Glibc module does not declare: closes
    /// in the child every descriptor the daemon did not open close-on-exec, such as capture sockets.
    private static let addCloseFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt).self)
    }

    private func spawn() throws(SystemCallError) -> Spawned {
        guard let path = arguments.first, path.hasPrefix("/") else {
            throw SystemCallError(call: "posix_spawn", errno: .noSuchFileOrDirectory)
        }
        // Both pipes close on exec from their creation, so a child spawned meanwhile by another run inherits neither.
        let stdinPipe = try Self.makePipe()
        let stderrPipe: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do throws(SystemCallError) {
            stderrPipe = try Self.makePipe()
        } catch {
            try? stdinPipe.readEnd.close()
            try? stdinPipe.writeEnd.close()
            throw error
        }
        // The child's ends belong to the child alone; the parent's ends stay with the caller on success.
        defer {
            try? stdinPipe.readEnd.close()
            try? stderrPipe.writeEnd.close()
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.readEnd.rawValue, STDIN_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.writeEnd.rawValue, STDERR_FILENO)
        if let addCloseFrom = Self.addCloseFrom { _ = addCloseFrom(&actions, STDERR_FILENO + 1) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Default dispositions and no blocked signal: the daemon ignores SIGTERM, SIGHUP and SIGPIPE to handle
        // them itself, and an ignored signal stays ignored across exec.
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        // A process group of its own, so that the time limit reaches whatever the program starts.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        )

        var pid: pid_t = 0
        func spawnOnce() -> CInt {
            Self.withCStrings(arguments) { argv in
                Self.withCStrings(environment) { envp in posix_spawn(&pid, path, &actions, &attributes, argv, envp) }
            }
        }
        let busyUntil = ContinuousClock.now + Self.busyProgramWait
        var result = spawnOnce()
        while result == ETXTBSY, ContinuousClock.now < busyUntil {
            usleep(UInt32(Self.checkInterval / .microseconds(1)))
            result = spawnOnce()
        }
        guard result == 0 else {
            try? stdinPipe.writeEnd.close()
            try? stderrPipe.readEnd.close()
            throw SystemCallError(call: "posix_spawn", errno: result)
        }
        return Spawned(pid: pid, stdinFD: stdinPipe.writeEnd, stderrFD: stderrPipe.readEnd)
    }

    /// A pipe whose ends are closed on exec. Wraps `pipe2(2)`.
    private static func makePipe() throws(SystemCallError) -> (readEnd: FileDescriptor, writeEnd: FileDescriptor) {
        try SystemCall.named("pipe") { try FileDescriptor.pipe(options: .closeOnExec) }
    }

    /// A NULL-terminated array of C strings for `strings`, valid during `body`.
    private static func withCStrings<Result>(
        _ strings: [String],
        _ body: ([UnsafeMutablePointer<CChar>?]) -> Result
    ) -> Result {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return body(copies + [nil])
    }

    /// A write to a program that closed its standard input fails with `EPIPE` instead of signalling the daemon.
    /// Blocked on this thread only, where a pending `SIGPIPE` ends with the thread.
    private static func blockBrokenPipeSignal() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Writes what the pipe takes without blocking; false once the input is written, or the program stopped reading.
    private static func writeSome(_ input: [UInt8], from written: inout Int, to fd: FileDescriptor) -> Bool {
        while written < input.count {
            var target = pollfd(fd: fd.rawValue, events: Int16(POLLOUT), revents: 0)
            guard poll(&target, 1, 0) == 1, target.revents & Int16(POLLOUT) != 0 else {
                // Not writable: full (try again later), or closed by the program (give up).
                return target.revents & Int16(POLLERR | POLLHUP) == 0
            }
            // Writable means room for at least PIPE_BUF bytes, so a write of no more never blocks.
            let count = min(input.count - written, Int(PIPE_BUF))
            do {
                written += try input.withUnsafeBytes { bytes in
                    try fd.write(UnsafeRawBufferPointer(rebasing: bytes[written..<written + count]))
                }
            } catch Errno.resourceTemporarilyUnavailable {
                continue
            } catch {
                return false
            }
        }
        return false
    }

    /// Reads standard error for up to `interval` (a plain sleep once it is closed), keeping its first bytes.
    private static func wait(readingFrom fd: inout FileDescriptor?, into kept: inout [UInt8], for interval: Duration) {
        let milliseconds = CInt(interval.wholeMilliseconds)
        guard let open = fd else {
            _ = poll(nil, 0, milliseconds)
            return
        }
        var target = pollfd(fd: open.rawValue, events: Int16(POLLIN), revents: 0)
        var timeout = milliseconds
        // A bounded number of reads, so that a program writing without pause is still looked at in time.
        for _ in 0..<16 {
            guard poll(&target, 1, timeout) == 1 else { return }
            var chunk = [UInt8](repeating: 0, count: 4_096)
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try open.read(into: $0) }
            } catch Errno.resourceTemporarilyUnavailable {
                continue
            } catch {
                count = -1
            }
            guard count > 0 else {
                try? open.close()
                fd = nil
                return
            }
            kept += chunk[..<min(count, stderrKept - kept.count)]
            // Read what else is there at once, up to the bound.
            timeout = 0
            target.revents = 0
        }
    }

    /// Whether `pid` has exited, without reaping it. Calls `waitid(2)` with `WNOWAIT`.
    private static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        // Only EINTR can happen for a child of ours; any other failure means there is nothing left to wait for.
        guard
            (try? SystemCall.checked("waitid") { waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) }) != nil
        else { return true }
        return info._sifields._kill.si_pid == pid
    }

    /// Reaps `pid` and returns its wait status. Calls `waitpid(2)`, retrying on `EINTR`.
    private static func reap(_ pid: pid_t) -> CInt {
        var status: CInt = 0
        _ = try? SystemCall.checked("waitpid") { waitpid(pid, &status, 0) }
        return status
    }
}

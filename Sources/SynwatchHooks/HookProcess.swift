import Glibc
import Synchronization

/// A system call that failed: which call, and its errno.
public struct HookSystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function that failed, such as `posix_spawn`.
    public var call: String
    public var errno: CInt

    public init(call: String, errno: CInt) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

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
    case spawnFailed(HookSystemError)
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

        var stdinFD: CInt? = spawned.stdinFD
        var stderrFD: CInt? = spawned.stderrFD
        var written = 0
        var stderr: [UInt8] = []
        var stopAt: ContinuousClock.Instant?
        var timedOut = false
        var killed = false
        defer {
            if let stdinFD { close(stdinFD) }
            if let stderrFD { close(stderrFD) }
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
                close(fd)
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
        var stdinFD: CInt
        var stderrFD: CInt
    }

    /// Creating pipes and spawning, one run at a time: without `closefrom`, a child spawned by another run between
    /// `pipe` and `FD_CLOEXEC` would inherit this run's pipe and hold its standard input open.
    private static let spawnLock = Mutex(())

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), which Swift's Glibc module does not declare: closes
    /// in the child every descriptor the daemon did not open close-on-exec, such as capture sockets.
    private static let addCloseFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt).self)
    }

    private func spawn() throws(HookSystemError) -> Spawned {
        guard let path = arguments.first, path.hasPrefix("/") else {
            throw HookSystemError(call: "posix_spawn", errno: ENOENT)
        }
        return try Self.spawnLock.withLock { _ throws(HookSystemError) -> Spawned in
            let stdinPipe = try Self.makePipe()
            let stderrPipe: (read: CInt, write: CInt)
            do throws(HookSystemError) {
                stderrPipe = try Self.makePipe()
            } catch {
                close(stdinPipe.read)
                close(stdinPipe.write)
                throw error
            }
            // The child's ends belong to the child alone; the parent's ends stay with the caller on success.
            defer {
                close(stdinPipe.read)
                close(stderrPipe.write)
            }

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, STDIN_FILENO)
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, STDERR_FILENO)
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
            let result = Self.withCStrings(arguments) { argv in
                Self.withCStrings(environment) { envp in posix_spawn(&pid, path, &actions, &attributes, argv, envp) }
            }
            guard result == 0 else {
                close(stdinPipe.write)
                close(stderrPipe.read)
                throw HookSystemError(call: "posix_spawn", errno: result)
            }
            return Spawned(pid: pid, stdinFD: stdinPipe.write, stderrFD: stderrPipe.read)
        }
    }

    /// A pipe whose ends are closed on exec. Calls `pipe(2)` and `fcntl(2)`.
    private static func makePipe() throws(HookSystemError) -> (read: CInt, write: CInt) {
        var ends: [CInt] = [-1, -1]
        guard pipe(&ends) == 0 else { throw HookSystemError(call: "pipe", errno: errno) }
        for end in ends where fcntl(end, F_SETFD, FD_CLOEXEC) != 0 {
            let code = errno
            close(ends[0])
            close(ends[1])
            throw HookSystemError(call: "fcntl", errno: code)
        }
        return (ends[0], ends[1])
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
    private static func writeSome(_ input: [UInt8], from written: inout Int, to fd: CInt) -> Bool {
        while written < input.count {
            var target = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&target, 1, 0) == 1, target.revents & Int16(POLLOUT) != 0 else {
                // Not writable: full (try again later), or closed by the program (give up).
                return target.revents & Int16(POLLERR | POLLHUP) == 0
            }
            // Writable means room for at least PIPE_BUF bytes, so a write of no more never blocks.
            let count = min(input.count - written, Int(PIPE_BUF))
            let result = input.withUnsafeBytes { write(fd, $0.baseAddress! + written, count) }
            if result < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return false
            }
            written += result
        }
        return false
    }

    /// Reads standard error for up to `interval` (a plain sleep once it is closed), keeping its first bytes.
    private static func wait(readingFrom fd: inout CInt?, into kept: inout [UInt8], for interval: Duration) {
        let (seconds, attoseconds) = interval.components
        let milliseconds = CInt(seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
        guard let open = fd else {
            _ = poll(nil, 0, milliseconds)
            return
        }
        var target = pollfd(fd: open, events: Int16(POLLIN), revents: 0)
        var timeout = milliseconds
        // A bounded number of reads, so that a program writing without pause is still looked at in time.
        for _ in 0..<16 {
            guard poll(&target, 1, timeout) == 1 else { return }
            var chunk = [UInt8](repeating: 0, count: 4_096)
            let count = chunk.withUnsafeMutableBytes { read(open, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR || errno == EAGAIN { continue }
            guard count > 0 else {
                close(open)
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
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 {
            // Only EINTR can happen for a child of ours; anything else means there is nothing left to wait for.
            guard errno == EINTR else { return true }
        }
        return info._sifields._kill.si_pid == pid
    }

    /// Reaps `pid` and returns its wait status. Calls `waitpid(2)`, retrying on `EINTR`.
    private static func reap(_ pid: pid_t) -> CInt {
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }
}

import Foundation
import Glibc
import SynwatchEngine
import SynwatchProtocol
import SystemPackage
import Testing

@testable import SynwatchHooks

/// Real hook scripts run by the runner: what they receive, when they run, and how their failures are told.
@Suite struct HookRunnerTests {
    @Test("A hook gets the event's JSON object on standard input and its fields in SYNWATCH_* variables, nothing else")
    func receivesTheEvent() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("hook", recordingHook)
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(command: [hook, directory.path]), logger: logs.logger)
        let start = Events.start(7)
        let end = Events.end(7)
        runner.handle([start, end])
        #expect(await runner.finished(runs: 2))

        for event in [start, end] {
            let name = "\(event.type.rawValue).7"
            // Exactly the line `synwatch analyze --json` prints for the event.
            #expect(directory.read("\(name).stdin") == event.json.rendered + "\n")
            let variables = environment(directory.read("\(name).env") ?? "")
            let synwatch = variables.filter { $0.key.hasPrefix("SYNWATCH_") }
            #expect(synwatch == Dictionary(uniqueKeysWithValues: event.hookEnvironment.map { ($0.name, $0.value) }))
            #expect(variables["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin")
            #expect(variables["LANG"] == "C.UTF-8")
            // Nothing of the test's own environment (HOME, TMPDIR, …) reaches the hook; the shell adds PWD and such.
            let shells = ["PATH", "LANG", "PWD", "SHLVL", "_"]
            let others = Set(variables.keys).subtracting(synwatch.keys).subtracting(shells)
            #expect(others.isEmpty, "unexpected variables \(others)")
        }
        let started = environment(directory.read("attack_start.7.env") ?? "")
        #expect(started["SYNWATCH_EVENT"] == "attack_start")
        #expect(started["SYNWATCH_ATTACK_ID"] == "7")
        #expect(started["SYNWATCH_VICTIM"] == "198.18.0.2")
        #expect(started["SYNWATCH_PORT"] == "80")
        #expect(started["SYNWATCH_KIND"] == "distributed")
        #expect(started["SYNWATCH_SYN_PER_S"] == "12345.68")
        #expect(started["SYNWATCH_TOP_SOURCES"] == "198.18.7.1 2001:db8::7 198.18.7.3")
        let ended = environment(directory.read("attack_end.7.env") ?? "")
        #expect(ended["SYNWATCH_EVENT"] == "attack_end")
        #expect(ended["SYNWATCH_DURATION"] == "42.377")
        #expect(ended["SYNWATCH_END_REASON"] == "quiet")

        let succeeded = logs.records("Response hook succeeded")
        #expect(succeeded.count == 2)
        #expect(succeeded.allSatisfy { $0.level == .info && $0.metadata["command"] == hook })
        #expect(Set(succeeded.compactMap { $0.metadata["event"] }) == ["attack_start", "attack_end"])
        #expect(succeeded.first?.metadata["attack_id"] == "7")
        #expect(succeeded.first?.metadata["victim"] == "198.18.0.2")
        #expect(logs.records("Response hook started").count == 2)
        #expect(runner.counters == counters(runs: 2, succeeded: 2))
    }

    @Test("The variables are the event's fields in order, named as journald's, the sources as bare addresses")
    func environmentOfAnEvent() {
        var event = Events.start(3, port: nil, kind: .singleSource)
        event.figures?.topSources = [SourceCount(address: IPAddress("198.18.5.5")!, halfOpen: 9)]
        let variables = event.hookEnvironment.map { "\($0.name)=\($0.value)" }
        #expect(
            variables == [
                "SYNWATCH_EVENT=attack_start",
                "SYNWATCH_ATTACK_ID=3",
                "SYNWATCH_TIME=1700000000.123456789",
                "SYNWATCH_VICTIM=198.18.0.2",
                "SYNWATCH_KIND=single-source",
                "SYNWATCH_SYN_PER_S=12345.68",
                "SYNWATCH_HALF_OPEN_PER_S=9876.5",
                "SYNWATCH_REFUSED_PER_S=0",
                "SYNWATCH_COMPLETION_RATIO=0.013",
                "SYNWATCH_DISTINCT_SOURCES=3",
                "SYNWATCH_TOP_SOURCES=198.18.5.5",
                "SYNWATCH_COMPLETION_GRACE=0",
            ]
        )
    }

    @Test("At most one run per attack and event type, also across capture interfaces that reuse attack ids")
    func oncePerAttackAndType() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("hook", recordingHook)
        let configuration = HookConfiguration(command: [hook, directory.path], events: [.attackStart, .attackUpdate])
        let runner = HookRunner(configuration: configuration, logger: LogCapture().logger)
        runner.handle([Events.start(1), Events.start(1)])
        runner.handle([Events.update(1), Events.update(1)])
        #expect(await runner.finished(runs: 2))
        runner.handle([Events.start(1), Events.update(1)])
        // Another interface's engine numbers its attacks from 1 too: another victim is another attack.
        runner.handle([Events.start(1, victim: IPAddress("198.18.0.3")!)])
        #expect(await runner.finished(runs: 3))
        let runs = directory.read("runs")?.split(separator: "\n").sorted()
        #expect(runs == ["attack_start.1", "attack_start.1", "attack_update.1"])
        #expect(runner.counters == counters(runs: 3, succeeded: 3))
    }

    @Test("Events not configured, and notices, run nothing; no command runs nothing")
    func onlyConfiguredAttackEvents() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("hook", recordingHook)
        let endOnly = HookRunner(
            configuration: HookConfiguration(command: [hook, directory.path], events: [.attackEnd]),
            logger: LogCapture().logger
        )
        endOnly.handle([Events.start(1), Events.update(1), Events.scan, Events.backscatter])
        #expect(endOnly.counters.runs == 0)
        endOnly.handle([Events.end(1)])
        #expect(await endOnly.finished(runs: 1))
        #expect(directory.read("runs") == "attack_end.1\n")

        // Notices have no attack to run once for, even when a configuration made by hand lists them.
        let notices = HookRunner(
            configuration: HookConfiguration(command: [hook, directory.path], events: [.scan, .backscatter]),
            logger: LogCapture().logger
        )
        notices.handle([Events.scan, Events.backscatter])
        let noCommand = HookRunner(configuration: HookConfiguration(), logger: LogCapture().logger)
        noCommand.handle([Events.start(2), Events.end(2)])
        #expect(notices.counters == HookCounters())
        #expect(noCommand.counters == HookCounters())
    }

    @Test("The time limit stops a hook that sleeps and its children, logs a timeout, and leaves no zombie")
    func timeLimit() async throws {
        let directory = try TemporaryDirectory()
        // The shell passes no signal on, so its child gets SIGTERM only if the whole group does; the trap records how
        // the child ended, and reaps it rather than leaving it to init.
        let hook = try directory.script(
            "slow",
            """
            trap 'wait $!; echo $? > "$1/child-status"; exit 143' TERM
            sleep 60 &
            echo $! > "$1/child"
            wait
            """
        )
        let logs = LogCapture()
        let runner = HookRunner(
            configuration: HookConfiguration(command: [hook, directory.path], timeout: .seconds(1)),
            logger: logs.logger
        )
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1, within: .seconds(90)))
        #expect(runner.counters == counters(runs: 1, failures: 1, timeouts: 1))

        let timedOut = try #require(logs.records("Response hook timed out and was killed").first)
        #expect(timedOut.level == .error)
        #expect(timedOut.metadata["timeout"] == "1.000")
        // The run's own duration, measured on its thread: a wall clock around the await would also count the time
        // this task waits for a thread of the pool while other tests keep both busy.
        let duration = try #require(Double(timedOut.metadata["duration"] ?? ""))
        #expect(duration >= 1 && duration < 30, "the hook ran on towards its 60 s: \(duration) s")
        let pid = try #require(logs.records("Response hook started").first?.metadata["pid"].flatMap { Int32($0) })
        #expect(!processExists(pid), "the hook was not reaped")
        let childText = directory.read("child")?.trimmingCharacters(in: .whitespacesAndNewlines)
        let child = try #require(childText.flatMap { Int32($0) })
        #expect(!processIsAlive(child), "the hook's own child outlived the time limit")
        #expect(directory.read("child-status") == "\(128 + SIGTERM)\n", "SIGTERM did not reach the hook's child")
    }

    @Test("A hook starts with no signal blocked or ignored, whatever the daemon's threads block or ignore")
    func defaultSignals() async throws {
        // As a daemon does (synwatchd ignores the signals it handles itself); harmless in a test process.
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
        let directory = try TemporaryDirectory()
        let hook = try directory.script("signals", #"exec grep -E '^Sig(Blk|Ign)' /proc/self/status > "$1/signals""#)
        let runner = HookRunner(
            configuration: HookConfiguration(command: [hook, directory.path]),
            logger: LogCapture().logger
        )
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        let masks = environment((directory.read("signals") ?? "").replacingOccurrences(of: ":\t", with: "="))
        let blocked = try #require(masks["SigBlk"].flatMap { UInt64($0, radix: 16) })
        let ignored = try #require(masks["SigIgn"].flatMap { UInt64($0, radix: 16) })
        // The runner's threads block SIGPIPE, and an ignored or blocked SIGTERM would leave the time limit to SIGKILL.
        #expect(blocked == 0)
        // posix_spawn leaves glibc's two internal signals (32 and 33) ignored, which no program sends another.
        #expect(ignored & ~(1 << 31 | 1 << 32) == 0)
    }

    @Test("A hook that ignores SIGTERM gets SIGKILL after the grace")
    func ignoresTermination() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("stubborn", "trap '' TERM\nsleep 60")
        let logs = LogCapture()
        let runner = HookRunner(
            configuration: HookConfiguration(command: [hook], timeout: .milliseconds(200)),
            logger: logs.logger
        )
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters == counters(runs: 1, failures: 1, timeouts: 1))
        let duration = try #require(logs.records("Response hook timed out and was killed").first?.metadata["duration"])
        // SIGTERM did nothing, so the end came with SIGKILL.
        #expect(Double(duration) ?? 0 >= 2)
    }

    @Test("A failing hook is logged with its status and the first lines of its standard error")
    func failure() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("failing", "echo 'nft: permission denied' >&2\necho 'second line' >&2\nexit 3")
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(command: [hook]), logger: logs.logger)
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        let failed = try #require(logs.records("Response hook failed").first)
        #expect(failed.level == .warning)
        #expect(failed.metadata["status"] == "3")
        #expect(failed.metadata["stderr"] == "nft: permission denied\nsecond line")
        #expect(failed.metadata["event"] == "attack_start")
        #expect(runner.counters == counters(runs: 1, failures: 1))
    }

    @Test("A hook ended by a signal is logged with the signal")
    func signal() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("killed", "kill -KILL $$")
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(command: [hook]), logger: logs.logger)
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        let killed = try #require(logs.records("Response hook was killed by a signal").first)
        #expect(killed.metadata["signal"] == "\(SIGKILL)")
        #expect(killed.metadata["signal_name"] == "Killed")
        #expect(runner.counters == counters(runs: 1, failures: 1))
    }

    @Test("A command that cannot be started is reported when configured and when run, as a spawn error")
    func cannotStart() async throws {
        let directory = try TemporaryDirectory()
        let notExecutable = "\(directory.path)/not-executable"
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: notExecutable))
        let cases = [
            ("/nonexistent/synwatch-hook", "No such file or directory (errno 2)"),
            (notExecutable, "Permission denied (errno 13)"),
        ]
        for (command, reason) in cases {
            let logs = LogCapture()
            let runner = HookRunner(configuration: HookConfiguration(command: [command]), logger: logs.logger)
            let warning = logs.records("Response hook command cannot be executed").first
            #expect(warning?.metadata["error"] == "access failed: \(reason)")
            runner.handle([Events.start(1)])
            #expect(await runner.finished(runs: 1))
            let failed = try #require(logs.records("Response hook could not be started").first)
            #expect(failed.level == .error)
            #expect(failed.metadata["error"] == "posix_spawn failed: \(reason)")
            #expect(failed.metadata["command"] == command)
            #expect(runner.counters == counters(runs: 1, failures: 1))
        }

        let logs = LogCapture()
        let relative = HookRunner(configuration: HookConfiguration(command: ["hook"]), logger: logs.logger)
        #expect(logs.records("Response hook command is not an absolute path").first?.metadata["command"] == "hook")
        relative.handle([Events.start(1)])
        #expect(await relative.finished(runs: 1))
        #expect(relative.counters == counters(runs: 1, failures: 1))
    }

    @Test("A program open for writing when its run starts is tried again for a second, then reported busy")
    func busyProgram() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("busy", "exit 0")
        // While a descriptor writes to it, here or in a child forked meanwhile, exec fails with ETXTBSY.
        var writer: FileDescriptor? = try FileDescriptor.open(hook, .writeOnly, options: .closeOnExec)
        defer { try? writer?.close() }
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(command: [hook]), logger: logs.logger)
        runner.handle([Events.start(1)])
        usleep(50_000)
        try writer?.close()
        writer = nil
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters == counters(runs: 1, succeeded: 1), "\(logs.all)")

        // Held for longer than the wait: the run fails, and says why.
        writer = try FileDescriptor.open(hook, .writeOnly, options: .closeOnExec)
        runner.handle([Events.start(2)])
        #expect(await runner.finished(runs: 2))
        let failed = try #require(logs.records("Response hook could not be started").first)
        #expect(failed.metadata["error"] == "posix_spawn failed: Text file busy (errno 26)")
        #expect(runner.counters == counters(runs: 2, succeeded: 1, failures: 1))
    }

    @Test("Arguments with shell metacharacters reach the hook verbatim: no shell runs them")
    func noShell() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("hook", recordingHook)
        let trap = "\(directory.path)/injected"
        let arguments = [
            "$(touch \(trap))", "`touch \(trap)`", "; touch \(trap)", "| touch \(trap)", "&& touch \(trap)", "a  b",
            "*", "$SYNWATCH_VICTIM", "'single'", "\"double\"", "back\\slash", "", "~",
        ]
        let runner = HookRunner(
            configuration: HookConfiguration(command: [hook, directory.path] + arguments),
            logger: LogCapture().logger
        )
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters.succeeded == 1)
        #expect(directory.read("attack_start.1.args") == arguments.map { $0 + "\n" }.joined())
        #expect(!directory.exists("injected"))
    }

    @Test("A hook that never reads its input, or closes it at once, succeeds all the same")
    func unreadInput() async throws {
        let directory = try TemporaryDirectory()
        let ignoring = try directory.script("ignoring", "exit 0")
        let closing = try directory.script("closing", "exec 0<&-\nsleep 0.2")
        for hook in [ignoring, closing] {
            let runner = HookRunner(configuration: HookConfiguration(command: [hook]), logger: LogCapture().logger)
            runner.handle([Events.start(1), Events.end(1)])
            #expect(await runner.finished(runs: 2))
            #expect(runner.counters == counters(runs: 2, succeeded: 2))
        }
    }

    @Test("Beyond max_concurrent running hooks an event is dropped, counted and logged, not queued")
    func concurrencyBound() async throws {
        let directory = try TemporaryDirectory()
        // Waits (at most 30 s) for the test to let it finish.
        let hook = try directory.script(
            "held",
            """
            i=0
            while [ ! -e "$1/release" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
            echo "$SYNWATCH_ATTACK_ID" >> "$1/runs"
            """
        )
        let logs = LogCapture()
        let runner = HookRunner(
            configuration: HookConfiguration(
                command: [hook, directory.path],
                timeout: .seconds(3600),
                maxConcurrent: 2
            ),
            logger: logs.logger
        )
        runner.handle([Events.start(1), Events.start(2), Events.start(3)])
        #expect(runner.counters == counters(runs: 2, dropped: 1, running: 2))
        let dropped = try #require(logs.records("Response hook not run: too many hooks running").first)
        #expect(dropped.level == .warning)
        #expect(dropped.metadata["attack_id"] == "3")
        #expect(dropped.metadata["max_concurrent"] == "2")

        #expect(FileManager.default.createFile(atPath: "\(directory.path)/release", contents: nil))
        #expect(await runner.finished(runs: 2))
        // A dropped event did not run, so it still may once there is room.
        runner.handle([Events.start(3)])
        #expect(await runner.finished(runs: 3))
        #expect(directory.read("runs")?.split(separator: "\n").sorted() == ["1", "2", "3"])
        #expect(runner.counters == counters(runs: 3, succeeded: 3, dropped: 1))
    }

    @Test("Shutdown waits for running hooks up to its limit, stops the rest, and starts no more")
    func shutdown() async throws {
        let directory = try TemporaryDirectory()
        let quick = try directory.script("quick", "sleep 0.2")
        let quickLogs = LogCapture()
        let quickRunner = HookRunner(configuration: HookConfiguration(command: [quick]), logger: quickLogs.logger)
        quickRunner.handle([Events.start(1)])
        #expect(await quickRunner.shutdown(waitingAtMost: .seconds(30)) == 0)
        #expect(quickRunner.counters == counters(runs: 1, succeeded: 1), "\(quickLogs.all)")

        // The time limit is far beyond the test's life: on a loaded machine seconds may pass before shutdown,
        // and a timeout would stop the hook before shutdown could.
        let slow = try directory.script("slow", "sleep 600")
        let logs = LogCapture()
        let runner = HookRunner(
            configuration: HookConfiguration(command: [slow], timeout: .seconds(3600)),
            logger: logs.logger
        )
        runner.handle([Events.start(1)])
        #expect(await eventually { !logs.records("Response hook started").isEmpty })
        #expect(await runner.shutdown(waitingAtMost: .milliseconds(200)) == 1)
        #expect(runner.counters == counters(runs: 1, failures: 1))
        #expect(logs.records("Response hook stopped: synwatchd is stopping").count == 1)

        runner.handle([Events.start(2)])
        #expect(runner.counters == counters(runs: 1, failures: 1, dropped: 1))
        #expect(logs.records("Response hook not run: synwatchd is stopping").first?.metadata["attack_id"] == "2")
    }

    @Test("A new configuration applies to the events that follow; what ran before is still not repeated")
    func reconfigure() async throws {
        let directory = try TemporaryDirectory()
        let hook = try directory.script("hook", recordingHook)
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(), logger: logs.logger)
        runner.handle([Events.start(1)])
        #expect(runner.counters.runs == 0)

        runner.reconfigure(HookConfiguration(command: [hook, directory.path], events: [.attackStart, .attackUpdate]))
        runner.handle([Events.start(1), Events.update(1), Events.update(1)])
        #expect(await runner.finished(runs: 2))

        let all = HookConfiguration(
            command: [hook, directory.path],
            events: [.attackStart, .attackUpdate, .attackEnd],
            timeout: .seconds(5)
        )
        runner.reconfigure(all)
        #expect(runner.configuration == all)
        runner.handle([Events.start(1), Events.update(1), Events.end(1)])
        #expect(await runner.finished(runs: 3))
        let runs = directory.read("runs")?.split(separator: "\n").sorted()
        #expect(runs == ["attack_end.1", "attack_start.1", "attack_update.1"])

        runner.reconfigure(HookConfiguration(command: ["/nonexistent/hook"]))
        #expect(logs.records("Response hook command cannot be executed").count == 1)
    }

    @Test("The memory of what ran is bounded: the oldest run is forgotten first")
    func boundedMemory() {
        var recent = RecentRuns(capacity: 3)
        let keys = (1...4).map { HookRunner.RunKey(attackID: $0, victim: Events.victim, port: 80, type: .attackStart) }
        for key in keys { recent.insert(key) }
        #expect(!recent.contains(keys[0]))
        #expect(keys.dropFirst().allSatisfy(recent.contains))
        recent.insert(keys[0])
        #expect(recent.contains(keys[0]))
        #expect(!recent.contains(keys[1]))
    }

    @Test("An empty command, possible only in a configuration made by hand, fails to start like a missing one")
    func emptyCommand() async {
        let logs = LogCapture()
        let runner = HookRunner(configuration: HookConfiguration(command: []), logger: logs.logger)
        runner.handle([Events.start(1)])
        #expect(await runner.finished(runs: 1))
        #expect(runner.counters == counters(runs: 1, failures: 1))
        #expect(logs.records("Response hook could not be started").count == 1)
    }

    @Test("The counters as status and metrics name them")
    func counterFields() {
        let hooks = counters(runs: 6, succeeded: 2, failures: 3, timeouts: 1, dropped: 4, running: 1).contract
        #expect(
            ContractJSON.text(hooks)
                == #"{"runs":6,"succeeded":2,"failures":3,"timeouts":1,"dropped":4,"running":1}"#
        )
    }

    @Test("Durations and standard error read well in the log")
    func logText() {
        #expect(HookRunner.seconds(.milliseconds(1_234)) == "1.234")
        #expect(HookRunner.seconds(.milliseconds(5)) == "0.005")
        #expect(HookRunner.seconds(.seconds(10)) == "10.000")
        let stderr = Array("one\n\ntwo\r\nthree\nfour\nfive\nsix\n".utf8)
        #expect(HookRunner.firstLines(of: stderr) == "one\ntwo\nthree\nfour\nfive")
    }

    private func counters(
        runs: Int = 0,
        succeeded: Int = 0,
        failures: Int = 0,
        timeouts: Int = 0,
        dropped: Int = 0,
        running: Int = 0
    ) -> HookCounters {
        var counters = HookCounters()
        counters.runs = runs
        counters.succeeded = succeeded
        counters.failures = failures
        counters.timeouts = timeouts
        counters.dropped = dropped
        counters.running = running
        return counters
    }
}

/// Whether any process, a zombie included, has `pid`.
func processExists(_ pid: Int32) -> Bool { FileManager.default.fileExists(atPath: "/proc/\(pid)") }

/// Whether `pid` is a process that still runs (a zombie has ended).
func processIsAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

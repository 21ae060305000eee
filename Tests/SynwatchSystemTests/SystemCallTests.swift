import Glibc
import Synchronization
import SynwatchSystem
import SystemPackage
import Testing

/// The syscall layer against real calls: errors name the call and its errno, `EINTR` is retried and nothing else.
@Suite struct SystemCallTests {
    @Test("A failing call throws its name, subject and errno, described as the daemon logs it")
    func failure() {
        let error = #expect(throws: SystemCallError.self) {
            try SystemCall.checked("close", subject: "fd -1") { close(-1) }
        }
        #expect(error == SystemCallError(call: "close", subject: "fd -1", errno: .badFileDescriptor))
        #expect(error?.description == "close(fd -1) failed: Bad file descriptor (errno 9)")
        #expect(
            SystemCallError(call: "sd_notify", errno: ENOENT).description
                == "sd_notify failed: No such file or directory (errno 2)"
        )
    }

    @Test("EINTR is retried unless the caller asks otherwise; other errors are not")
    func interrupted() {
        var attempts = 0
        let result = try? SystemCall.checked("poll") { () -> CInt in
            attempts += 1
            if attempts < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(attempts == 3)

        attempts = 0
        let once = #expect(throws: SystemCallError.self) {
            try SystemCall.checked("poll", retryOnInterrupt: false) { () -> CInt in
                attempts += 1
                errno = EINTR
                return -1
            }
        }
        #expect(once?.errno == .interrupted)
        #expect(attempts == 1)
    }

    @Test("libsystemd's negative errno: -EINTR is retried, another is thrown positive")
    func negativeErrno() {
        var results: [CInt] = [-EINTR, 1]
        #expect((try? SystemCall.checkedNegativeErrno("sd_notify") { results.removeFirst() }) == 1)
        let error = #expect(throws: SystemCallError.self) {
            try SystemCall.checkedNegativeErrno("sd_listen_fds") { -EBADF }
        }
        #expect(error == SystemCallError(call: "sd_listen_fds", errno: EBADF))
    }

    @Test("swift-system's errors get the call's name")
    func named() {
        let error = #expect(throws: SystemCallError.self) {
            try SystemCall.named("open", subject: "/nonexistent") {
                try FileDescriptor.open("/nonexistent/synwatch", .readOnly)
            }
        }
        #expect(error == SystemCallError(call: "open", subject: "/nonexistent", errno: .noSuchFileOrDirectory))
    }

    @Test("A detached thread runs its body under its name")
    func detachedThread() throws {
        let name = Mutex<String?>(nil)
        let done = Mutex(false)
        try SystemCall.detachThread(named: "synwatch test thread") {
            let comm = try? FileDescriptor.open("/proc/thread-self/comm", .readOnly)
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = (try? buffer.withUnsafeMutableBytes { try comm?.read(into: $0) ?? 0 }) ?? 0
            try? comm?.close()
            name.withLock { $0 = String(decoding: buffer[..<count], as: UTF8.self) }
            done.withLock { $0 = true }
        }
        for _ in 0..<500 where !done.withLock({ $0 }) { usleep(10_000) }
        #expect(name.withLock { $0 } == "synwatch test t\n")
    }
}

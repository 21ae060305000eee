import Glibc
import Synchronization

/// A datagram socket standing in for systemd's notify socket: every message a daemon sends, kept in order.
/// `wait` and `next` return the first message after the last one they returned that starts with a prefix.
public final class NotifyListener: Sendable {
    public let path: String
    private let descriptor: CInt
    private let received = Mutex<[String]>([])
    private let consumed = Mutex(0)

    public init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw LabError(command: "socket", output: "errno \(errno)") }
        var address = sockaddr_un(path: path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw LabError(command: "bind \(path)", output: "errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// Blocking, for a test that runs the daemon as another process: within `timeout` seconds.
    public func wait(for prefix: String, timeout: Double) -> String? {
        let deadline = ContinuousClock.now + .seconds(timeout)
        repeat {
            receive(flags: 0)
            if let found = take(prefix) { return found }
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Polled without blocking a thread of the cooperative pool, for a daemon running in the test's process.
    public func next(startingWith prefix: String, timeout: Double) async -> String? {
        let deadline = ContinuousClock.now + .seconds(timeout)
        repeat {
            while receive(flags: CInt(MSG_DONTWAIT)) {}
            if let found = take(prefix) { return found }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return nil
    }

    /// One datagram into the kept messages; false when none came.
    @discardableResult
    private func receive(flags: CInt) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = recv(descriptor, &buffer, buffer.count, flags)
        guard count > 0 else { return false }
        let message = String(decoding: buffer[..<count], as: UTF8.self)
        received.withLock { $0.append(message) }
        return true
    }

    private func take(_ prefix: String) -> String? {
        received.withLock { messages in
            consumed.withLock { start in
                guard let index = messages[start...].firstIndex(where: { $0.hasPrefix(prefix) }) else { return nil }
                start = index + 1
                return messages[index]
            }
        }
    }
}

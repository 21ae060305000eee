import Glibc

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// An `AF_UNIX` socket of the test's own, bound in a new temporary directory; `close()` removes both.
final class TestSocket {
    let descriptor: CInt
    let directory: String
    let path: String

    /// A datagram socket, or a listening stream socket.
    init(stream: Bool = false) throws {
        var template = Array("/tmp/synwatch-systemd-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw TestFailure(description: "mkdtemp: errno \(errno)") }
        directory = String(cString: created)
        path = directory + "/socket"
        let type = stream ? SOCK_STREAM : SOCK_DGRAM
        descriptor = socket(AF_UNIX, CInt(type.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure(description: "socket: errno \(errno)") }
        var address = sockaddr_un(path: path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, !stream || listen(descriptor, 8) == 0 else {
            throw TestFailure(description: "bind/listen \(path): errno \(errno)")
        }
    }

    /// The next datagram as text, or nil when none arrives within `timeout` seconds.
    func receive(timeout: Double = 2) -> String? {
        var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&waiting, 1, CInt(timeout * 1_000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
    }

    func close() {
        _ = Glibc.close(descriptor)
        unlink(path)
        rmdir(directory)
    }
}

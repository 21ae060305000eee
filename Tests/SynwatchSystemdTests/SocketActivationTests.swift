import Glibc
import SynwatchSystem
import SynwatchSystemd
import XCTest

final class SocketActivationTests: XCTestCase {
    /// systemd's hand-over, reproduced in this process: the socket at descriptor 3 and `LISTEN_PID`/`LISTEN_FDS`.
    /// Whatever the test process had at 3 is put back right after (XCTest runs one test at a time).
    func testPassedSocketIsFoundAtDescriptorThree() throws {
        let socket = try TestSocket(stream: true)
        defer { socket.close() }
        let saved = fcntl(3, F_DUPFD_CLOEXEC, 100)
        XCTAssertEqual(dup2(socket.descriptor, 3), 3)
        defer {
            if saved >= 0 {
                dup2(saved, 3)
                close(saved)
            } else {
                close(3)
            }
        }
        let passed = try withEnvironment(["LISTEN_PID": String(getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": nil]) {
            let passed = try SocketActivation.listenFileDescriptors()
            XCTAssertNil(getenv("LISTEN_FDS"), "the variables are removed for children")
            return passed
        }
        XCTAssertEqual(passed, [SocketActivation.FileDescriptor(rawValue: 3)])
        let descriptor = try XCTUnwrap(passed.first)
        XCTAssertTrue(try descriptor.isUnixStreamSocket())
        XCTAssertTrue(try descriptor.isUnixStreamSocket(listening: true, path: socket.path))
        XCTAssertFalse(try descriptor.isUnixStreamSocket(listening: false))
        XCTAssertFalse(try descriptor.isUnixStreamSocket(path: socket.path + ".other"))
    }

    func testNothingIsPassedWithoutTheVariablesOrToAnotherProcess() throws {
        try withEnvironment(["LISTEN_PID": nil, "LISTEN_FDS": nil]) {
            XCTAssertEqual(try SocketActivation.listenFileDescriptors(), [])
        }
        try withEnvironment(["LISTEN_PID": String(getppid()), "LISTEN_FDS": "1"]) {
            XCTAssertEqual(try SocketActivation.listenFileDescriptors(unsetEnvironment: false), [])
            XCTAssertEqual(getenv("LISTEN_FDS").map { String(cString: $0) }, "1")
        }
    }

    func testOtherDescriptorsAreNotUnixStreamSockets() throws {
        let datagram = try TestSocket()
        defer { datagram.close() }
        XCTAssertFalse(try SocketActivation.FileDescriptor(rawValue: datagram.descriptor).isUnixStreamSocket())
        var pipeEnds: [CInt] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        XCTAssertFalse(try SocketActivation.FileDescriptor(rawValue: pipeEnds[0]).isUnixStreamSocket())
        close(pipeEnds[0])
        close(pipeEnds[1])
        XCTAssertThrowsError(try SocketActivation.FileDescriptor(rawValue: pipeEnds[0]).isUnixStreamSocket()) {
            XCTAssertEqual($0 as? SystemCallError, SystemCallError(call: "sd_is_socket_unix", errno: EBADF))
        }
    }
}

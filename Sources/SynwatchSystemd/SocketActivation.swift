import CSystemd
import Glibc
import SynwatchSystem

/// Sockets handed over by the service manager (`sd_listen_fds(3)`): with a `.socket` unit, systemd binds the
/// query socket and passes it from file descriptor 3 (`SD_LISTEN_FDS_START`) on.
public enum SocketActivation {
    /// A file descriptor passed by the service manager. The process owns it; nothing here closes it.
    public struct FileDescriptor: RawRepresentable, Hashable, Sendable {
        public var rawValue: CInt

        public init(rawValue: CInt) {
            self.rawValue = rawValue
        }

        /// Whether this is a Unix stream socket, with `sd_is_socket_unix(fd, SOCK_STREAM, listening, path, 0)`.
        ///
        /// - Parameters:
        ///   - listening: `true` to require a listening socket, `false` a non-listening one, nil for either.
        ///   - path: The file system path the socket must be bound to, or nil for any.
        /// - Throws: `SystemCallError` naming `sd_is_socket_unix`, for example `EBADF` for a closed descriptor.
        public func isUnixStreamSocket(listening: Bool? = nil, path: String? = nil) throws -> Bool {
            let listen: CInt = listening.map { $0 ? 1 : 0 } ?? -1
            return try SystemCall.checkedNegativeErrno("sd_is_socket_unix") {
                sd_is_socket_unix(rawValue, CInt(SOCK_STREAM.rawValue), listen, path, 0)
            } > 0
        }
    }

    /// The descriptors passed to this process, from `sd_listen_fds(unsetEnvironment)`: empty when none were, or when
    /// `LISTEN_PID` names another process (the variables were inherited). Each gets `FD_CLOEXEC`.
    ///
    /// - Parameter unsetEnvironment: Whether to remove `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, so
    ///   children do not inherit them.
    /// - Throws: `SystemCallError` naming `sd_listen_fds` for a malformed environment or a descriptor not open.
    public static func listenFileDescriptors(unsetEnvironment: Bool = true) throws -> [FileDescriptor] {
        let count = try SystemCall.checkedNegativeErrno("sd_listen_fds") { sd_listen_fds(unsetEnvironment ? 1 : 0) }
        return (0..<count).map { FileDescriptor(rawValue: SD_LISTEN_FDS_START + $0) }
    }
}

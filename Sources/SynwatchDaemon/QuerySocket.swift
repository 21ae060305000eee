import Glibc
import NIOCore
import SynwatchConfig
import SynwatchProtocol

/// Where the query server listens.
public enum QueryEndpoint: Sendable, Equatable {
    /// A Unix stream socket the server creates at `path` with mode 0660, owned by `group` when named.
    case path(String, group: String? = nil)
    /// A socket already bound and listening, handed over by systemd socket activation (`sd_listen_fds`).
    case fileDescriptor(Int32)
    /// A TCP socket bound and listening at `address` (`QuerySocket.bindAndListen(tcp:backlog:)`), for `/metrics`.
    case tcp(Int32, ListenAddress)

    /// The default path of the daemon's socket.
    public static let defaultPath = QuerySocketPath.standard
}

/// A failure to set up or serve the query socket, naming the call and errno as swift-system does.
public enum QuerySocketError: Error, CustomStringConvertible, Equatable {
    /// A system call failed.
    case system(call: String, path: String, errno: Int32)
    /// The group named for the socket does not exist.
    case unknownGroup(String)
    /// A file that is not a socket stands where the socket goes; it is never removed.
    case notASocket(String)
    /// Another process answers on the socket: a second daemon is running.
    case inUse(String)
    /// The path does not fit in `sockaddr_un.sun_path`.
    case pathTooLong(String)
    /// A file descriptor from socket activation that is not a listening Unix stream socket.
    case notAListeningSocket(Int32)

    public var description: String {
        switch self {
        case .system(let call, let path, let code):
            "\(call)(\(path)): \(String(cString: strerror(code))) (errno \(code))"
        case .unknownGroup(let name): "no group named \(name) for the query socket"
        case .notASocket(let path): "\(path) exists and is not a socket; not replacing it"
        case .inUse(let path): "\(path) is in use: another synwatchd answers on it"
        case .pathTooLong(let path): "\(path): too long for a Unix socket path"
        case .notAListeningSocket(let fd): "file descriptor \(fd) is not a listening Unix stream socket"
        }
    }
}

/// The system calls that set up the query socket.
enum QuerySocket {
    /// The mode of the socket file: the daemon's user and group may connect, others may not.
    static let mode: mode_t = 0o660

    /// Creates, binds and listens on a Unix stream socket at `path`.
    ///
    /// Creates the parent directory (0755) if missing, replaces a stale socket file (one nobody answers on),
    /// sets mode 0660 and the group before `listen(2)`, so no client connects while the file is still open
    /// to others.
    /// - Returns: the listening descriptor.
    /// - Throws: `QuerySocketError`.
    static func bindAndListen(path: String, group: String?, backlog: Int32) throws -> Int32 {
        let groupID = try group.map(lookUpGroup)
        try makeParentDirectory(of: path)
        try removeStaleSocket(at: path)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QuerySocketError.system(call: "socket", path: path, errno: errno) }
        do {
            try withAddress(path) { address, length in
                guard bind(fd, address, length) == 0 else {
                    throw QuerySocketError.system(call: "bind", path: path, errno: errno)
                }
            }
        } catch {
            // Not bound: the file at `path`, if any, is not ours to remove.
            close(fd)
            throw error
        }
        do {
            guard chmod(path, mode) == 0 else { throw QuerySocketError.system(call: "chmod", path: path, errno: errno) }
            if let groupID, chown(path, uid_t.max, groupID) != 0 {
                throw QuerySocketError.system(call: "chown", path: path, errno: errno)
            }
            guard listen(fd, backlog) == 0 else {
                throw QuerySocketError.system(call: "listen", path: path, errno: errno)
            }
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        return fd
    }

    /// Creates, binds and listens on a TCP socket at `address`: called while the daemon may still bind any port.
    /// - Returns: the listening descriptor.
    /// - Throws: `QuerySocketError` naming the address.
    static func bindAndListen(tcp address: ListenAddress, backlog: Int32) throws -> Int32 {
        let name = address.description
        let socketAddress: SocketAddress
        do {
            socketAddress = try SocketAddress(ipAddress: address.host, port: Int(address.port))
        } catch {
            throw QuerySocketError.system(call: "inet_pton", path: name, errno: EINVAL)
        }
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QuerySocketError.system(call: "socket", path: name, errno: errno) }
        do {
            var on: Int32 = 1
            // A restart binds again at once, although the previous run's connections linger in TIME_WAIT.
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw QuerySocketError.system(call: "setsockopt", path: name, errno: errno)
            }
            // An IPv6 address serves IPv6 only: `[::]:9464` and `0.0.0.0:9464` can both be listed.
            if family == AF_INET6,
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) != 0
            {
                throw QuerySocketError.system(call: "setsockopt", path: name, errno: errno)
            }
            try socketAddress.withSockAddr { pointer, size in
                guard bind(fd, pointer, socklen_t(size)) == 0 else {
                    throw QuerySocketError.system(call: "bind", path: name, errno: errno)
                }
            }
            guard listen(fd, backlog) == 0 else {
                throw QuerySocketError.system(call: "listen", path: name, errno: errno)
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Checks that `fd` (from socket activation) is a listening Unix stream socket.
    /// - Throws: `QuerySocketError.notAListeningSocket`.
    static func validateActivated(_ fd: Int32) throws {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard option(SO_DOMAIN) == AF_UNIX, option(SO_TYPE) == Int32(SOCK_STREAM.rawValue),
            option(SO_ACCEPTCONN) == 1
        else { throw QuerySocketError.notAListeningSocket(fd) }
    }

    /// The group id of `name` (`getgrnam_r`).
    private static func lookUpGroup(_ name: String) throws -> gid_t {
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let code = getgrnam_r(name, &group, &buffer, buffer.count, &result)
        guard code == 0 else { throw QuerySocketError.system(call: "getgrnam_r", path: name, errno: code) }
        guard result != nil else { throw QuerySocketError.unknownGroup(name) }
        return group.gr_gid
    }

    private static func makeParentDirectory(of path: String) throws {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let parent = String(path[..<slash])
        var info = stat()
        if stat(parent, &info) == 0 { return }
        try makeParentDirectory(of: parent)
        // EEXIST: created meanwhile by someone else, which is as good.
        guard mkdir(parent, 0o755) == 0 || errno == EEXIST else {
            throw QuerySocketError.system(call: "mkdir", path: parent, errno: errno)
        }
    }

    /// Removes a socket file left by a daemon that died; refuses to touch one that still answers.
    private static func removeStaleSocket(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            guard errno == ENOENT else { throw QuerySocketError.system(call: "lstat", path: path, errno: errno) }
            return
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw QuerySocketError.notASocket(path) }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw QuerySocketError.system(call: "socket", path: path, errno: errno) }
        defer { close(probe) }
        let answered = try withAddress(path) { address, length in connect(probe, address, length) == 0 }
        guard !answered else { throw QuerySocketError.inUse(path) }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw QuerySocketError.system(call: "unlink", path: path, errno: errno)
        }
    }

    /// Calls `body` with `path` as a `sockaddr_un`.
    static func withAddress<R>(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R
    ) throws -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw QuerySocketError.pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}

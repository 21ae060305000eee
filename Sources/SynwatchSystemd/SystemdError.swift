import Glibc

/// A libsystemd call that failed: which call, and the errno it returned.
public struct SystemdError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function that failed, for example `sd_journal_sendv`.
    public var call: String
    /// The errno value, positive (libsystemd returns it negated).
    public var errno: CInt

    public init(call: String, errno: CInt) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Runs a libsystemd function that returns `-errno` on failure, again while it returns `-EINTR`: an interrupted
/// send has sent nothing, so repeating it cannot duplicate a message.
func systemdCall(_ name: String, _ body: () -> CInt) throws -> CInt {
    while true {
        let result = body()
        if result >= 0 { return result }
        if result != -EINTR { throw SystemdError(call: name, errno: -result) }
    }
}

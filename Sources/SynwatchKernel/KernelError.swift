import Glibc

/// A failed call on the kernel's interfaces: the call, what it worked on, and `errno`.
public struct KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function or netlink request that failed, such as `open` or `SOCK_DIAG_BY_FAMILY`.
    public var call: String
    /// The file, namespace or socket family the call worked on, when there is one.
    public var subject: String?
    /// The `errno` value, positive.
    public var errno: Int32

    public init(call: String, subject: String? = nil, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// `strerror(3)` of `errno`.
    public var message: String { String(cString: strerror(errno)) }

    public var description: String {
        let on = subject.map { "(\($0))" } ?? ""
        return "\(call)\(on) failed: \(message) (errno \(errno))"
    }
}

/// Runs a system call that returns -1 and sets `errno` on failure, again while it fails with `EINTR`.
func retryingOnInterrupt<Result: BinaryInteger>(
    _ call: String,
    subject: String? = nil,
    _ body: () -> Result
) throws(KernelError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw KernelError(call: call, subject: subject, errno: code) }
    }
}

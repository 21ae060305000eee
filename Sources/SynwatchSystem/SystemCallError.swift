import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A system call or C library function that failed: its name, what it worked on, and its errno.
///
/// The one error type of synwatch's own calls to the kernel, libsystemd and the C library, so that every message
/// reads alike: `read(/proc/net/netstat) failed: Is a directory (errno 21)`.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function or request that failed, such as `open`, `sd_notify` or `SOCK_DIAG_BY_FAMILY`.
    public var call: String
    /// The file, namespace or socket family the call worked on, when there is one worth naming.
    public var subject: String?
    /// What the call reported.
    public var errno: Errno

    /// The failure of `call` on `subject` with `errno`.
    public init(call: String, subject: String? = nil, errno: Errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// The failure of `call` on `subject` with the C `errno` value `code`, positive.
    public init(call: String, subject: String? = nil, errno code: CInt) {
        self.init(call: call, subject: subject, errno: Errno(rawValue: code))
    }

    /// `strerror(3)` of `errno`.
    public var message: String { errno.description }

    public var description: String {
        let on = subject.map { "(\($0))" } ?? ""
        return "\(call)\(on) failed: \(message) (errno \(errno.rawValue))"
    }
}

/// The one place where interrupted calls are retried, for the calls swift-system does not wrap.
///
/// swift-system's own calls (`FileDescriptor.open`, `read`, …) retry on `EINTR` themselves; `named(_:subject:_:)`
/// only names them in the error.
public enum SystemCall {
    /// Runs `body`, a call that returns -1 and sets `errno` on failure, again while it fails with `EINTR`.
    /// - Parameters:
    ///   - call: The C function's name, for the error.
    ///   - subject: What the call works on, for the error.
    ///   - retryOnInterrupt: Whether to call again after `EINTR`; `false` where the caller must look at its own
    ///     state first, such as a `poll` whose deadline may have passed.
    /// - Throws: `SystemCallError` with the call's errno.
    @inline(__always)
    public static func checked<Result: FixedWidthInteger>(
        _ call: String,
        subject: String? = nil,
        retryOnInterrupt: Bool = true,
        _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        try retrying(call, subject: subject, retryOnInterrupt: retryOnInterrupt) {
            let result = body()
            return result == -1 ? .failure(Errno(rawValue: Glibc.errno)) : .success(result)
        }
    }

    /// Runs `body`, a function that returns `-errno` on failure as libsystemd's do, again while it returns
    /// `-EINTR`: an interrupted call has done nothing, so repeating it cannot duplicate a message.
    /// - Throws: `SystemCallError` with the errno `body` returned.
    @inline(__always)
    public static func checkedNegativeErrno(_ call: String, _ body: () -> CInt) throws(SystemCallError) -> CInt {
        try retrying(call, subject: nil, retryOnInterrupt: true) {
            let result = body()
            return result < 0 ? .failure(Errno(rawValue: -result)) : .success(result)
        }
    }

    /// Runs swift-system calls, which retry on `EINTR` themselves, and names their failure `call`.
    /// - Throws: `SystemCallError` with the errno swift-system threw.
    public static func named<Result>(
        _ call: String,
        subject: String? = nil,
        _ body: () throws -> Result
    ) throws(SystemCallError) -> Result {
        do {
            return try body()
        } catch let errno as Errno {
            throw SystemCallError(call: call, subject: subject, errno: errno)
        } catch {
            // swift-system throws nothing but `Errno`.
            preconditionFailure("\(call): \(error)")
        }
    }

    @inline(__always)
    private static func retrying<Value>(
        _ call: String,
        subject: String?,
        retryOnInterrupt: Bool,
        _ attempt: () -> Swift.Result<Value, Errno>
    ) throws(SystemCallError) -> Value {
        while true {
            switch attempt() {
            case .success(let value): return value
            case .failure(.interrupted) where retryOnInterrupt: continue
            case .failure(let errno): throw SystemCallError(call: call, subject: subject, errno: errno)
            }
        }
    }
}

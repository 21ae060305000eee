@preconcurrency import Glibc

/// A failed system call: its name and `errno`.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C function that failed, such as `open` or `pipe`.
    public var call: String
    /// Its `errno`.
    public var errno: Int32

    /// `strerror(3)` of `errno`.
    public var message: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(message)" }
}

/// A file descriptor opened read-only, with the few calls the capture file readers need.
///
/// Every call retries on `EINTR`: a signal (SIGHUP for a reload, say) must not fail a read.
struct ReadOnlyFile: ~Copyable {
    let descriptor: Int32

    /// Opens `path` read-only and close-on-exec.
    ///
    /// Wraps `open(2)`.
    init(path: String) throws(SystemCallError) {
        descriptor = try retryingOnInterrupt("open") { open(path, O_RDONLY | O_CLOEXEC) }
    }

    deinit {
        close(descriptor)
    }

    /// Gives up ownership of the descriptor, which the caller must now close.
    consuming func take() -> Int32 {
        let descriptor = self.descriptor
        discard self
        return descriptor
    }

    /// The file's type and size.
    ///
    /// Wraps `fstat(2)`.
    func status() throws(SystemCallError) -> (isRegular: Bool, isDirectory: Bool, size: Int) {
        var info = stat()
        _ = try retryingOnInterrupt("fstat") { fstat(descriptor, &info) }
        let type = info.st_mode & S_IFMT
        return (type == S_IFREG, type == S_IFDIR, Int(info.st_size))
    }

    /// Reads the file's first `count` bytes, or fewer if it is shorter, without moving the file position.
    ///
    /// Wraps `pread(2)`.
    func readPrefix(upTo count: Int) throws(SystemCallError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(SystemCallError) -> Int in
                var done = 0
                while done < count {
                    let read = try retryingOnInterrupt("pread") {
                        pread(descriptor, buffer.baseAddress! + done, count - done, off_t(done))
                    }
                    if read == 0 { break }
                    done += read
                }
                return done
            }
        }
        bytes.removeLast(count - (try result.get()))
        return bytes
    }

    /// Maps the first `size` bytes read-only and tells the kernel they will be read in order.
    ///
    /// Wraps `mmap(2)` and `madvise(2)` (`MADV_SEQUENTIAL`, a hint whose failure is harmless).
    func mapReadOnly(size: Int) throws(SystemCallError) -> UnsafeRawBufferPointer {
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw SystemCallError(call: "mmap", errno: errno)
        }
        _ = madvise(address, size, MADV_SEQUENTIAL)
        return UnsafeRawBufferPointer(start: address, count: size)
    }
}

/// Calls `body` again while it fails with `EINTR`; any other failure (-1) throws with `call`'s name.
private func retryingOnInterrupt<Result: BinaryInteger>(
    _ call: String,
    _ body: () -> Result
) throws(SystemCallError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        if errno != EINTR { throw SystemCallError(call: call, errno: errno) }
    }
}

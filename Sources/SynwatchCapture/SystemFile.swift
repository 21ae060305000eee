@preconcurrency import Glibc
import SynwatchSystem
import SystemPackage

/// A file descriptor opened read-only, with the few calls the capture file readers need.
///
/// swift-system retries every call on `EINTR`: a signal (SIGHUP for a reload, say) must not fail a read.
struct ReadOnlyFile: ~Copyable {
    let descriptor: FileDescriptor

    /// Opens `path` read-only and close-on-exec.
    ///
    /// Wraps `open(2)`.
    init(path: String) throws(SystemCallError) {
        descriptor = try SystemCall.named("open") { try FileDescriptor.open(path, .readOnly, options: .closeOnExec) }
    }

    deinit {
        try? descriptor.close()
    }

    /// Gives up ownership of the descriptor, which the caller must now close.
    consuming func take() -> Int32 {
        let descriptor = self.descriptor
        discard self
        return descriptor.rawValue
    }

    /// The file's type and size.
    ///
    /// Wraps `fstat(2)`.
    func status() throws(SystemCallError) -> (isRegular: Bool, isDirectory: Bool, size: Int) {
        let info = try SystemCall.named("fstat") { try descriptor.stat() }
        return (info.type == .regular, info.type == .directory, Int(info.size))
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
                    let read = try SystemCall.named("pread") {
                        try descriptor.read(
                            fromAbsoluteOffset: Int64(done),
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
                        )
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
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor.rawValue, 0), address != MAP_FAILED
        else {
            throw SystemCallError(call: "mmap", errno: errno)
        }
        _ = madvise(address, size, MADV_SEQUENTIAL)
        return UnsafeRawBufferPointer(start: address, count: size)
    }
}

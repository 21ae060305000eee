#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call while reading the file, named with its errno.
struct FileProblem: Error, CustomStringConvertible {
    var description: String

    /// The failure of `call`, described from the current `errno`.
    init(call: String, errno code: Int32) {
        description = "\(call): \(String(cString: strerror(code))) (errno \(code))"
    }

    init(_ description: String) {
        self.description = description
    }
}

/// Reads the configuration file, which is small and read once per start or reload.
enum ConfigurationFile {
    /// No configuration file comes near this; it stops a wrong path such as `/dev/zero` from reading forever.
    static let sizeLimit = 1 << 20

    /// The bytes of the file at `path`, or `nil` when nothing exists there.
    ///
    /// Only a missing file is `nil`: a file that exists but cannot be read is an error, never the defaults.
    /// Calls `open(2)` and `read(2)`, retrying both on `EINTR`.
    /// - Throws: `FileProblem` naming the failing call and its errno.
    static func contents(of path: String) throws(FileProblem) -> [UInt8]? {
        var descriptor: Int32
        repeat { descriptor = open(path, O_RDONLY | O_CLOEXEC) } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            throw FileProblem(call: "open", errno: code)
        }
        defer { close(descriptor) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileProblem(call: "read", errno: code)
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= sizeLimit else { throw FileProblem("is larger than 1 MiB: not a configuration file") }
        }
    }
}

import SynwatchSystem
import SystemPackage

/// Why the configuration file cannot be read: a failed call, or a file too large to be a configuration.
enum FileProblem: Error, CustomStringConvertible {
    case failed(SystemCallError)
    case tooLarge

    var description: String {
        switch self {
        case .failed(let error): "\(error.call): \(error.message) (errno \(error.errno.rawValue))"
        case .tooLarge: "is larger than 1 MiB: not a configuration file"
        }
    }
}

/// Reads the configuration file, which is small and read once per start or reload.
enum ConfigurationFile {
    /// No configuration file comes near this; it stops a wrong path such as `/dev/zero` from reading forever.
    static let sizeLimit = 1 << 20

    /// The bytes of the file at `path`, or `nil` when nothing exists there.
    ///
    /// Only a missing file is `nil`: a file that exists but cannot be read is an error, never the defaults.
    /// Calls `open(2)` and `read(2)` through swift-system, which retries both on `EINTR`.
    /// - Throws: `FileProblem` naming the failing call and its errno.
    static func contents(of path: String) throws(FileProblem) -> [UInt8]? {
        let file: FileDescriptor
        do {
            file = try SystemCall.named("open") { try FileDescriptor.open(path, .readOnly, options: .closeOnExec) }
        } catch {
            if error.errno == .noSuchFileOrDirectory { return nil }
            throw .failed(error)
        }
        defer { try? file.close() }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count: Int
            do {
                count = try SystemCall.named("read") { try chunk.withUnsafeMutableBytes { try file.read(into: $0) } }
            } catch {
                throw .failed(error)
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= sizeLimit else { throw .tooLarge }
        }
    }
}

import Foundation
import Glibc
import XCTest

/// A real systemd-journald for tests: the one listening on `/run/systemd/journal/socket`, or else one started here
/// (`/lib/systemd/systemd-journald`, standalone, no systemd) and left running for later tests and runs, as the
/// machine's journal. Self-contained, so the daemon's end-to-end tests can share it.
public enum TestJournald {
    public static let socketPath = "/run/systemd/journal/socket"
    public static let binary = "/lib/systemd/systemd-journald"

    /// An entry's fields by name, as text.
    public typealias Fields = [String: String]

    /// Why no journald is available, or nil when one listens. Found or started once per process.
    public static let unavailableReason: String? = {
        _ = firstRequired
        return start()
    }()

    /// When this process first needed the journal: older entries are not its own, even where a process ID matches
    /// (the journal is kept across runs, and process IDs come round again).
    private static let firstRequired = Date().addingTimeInterval(-1)

    /// Skips the calling test, with the reason, when no journald is available.
    public static func require() throws {
        if let unavailableReason { throw XCTSkip("no systemd-journald: \(unavailableReason)") }
    }

    /// The entries with `field=value`, as `journalctl -o json` shows them (field name to text), once at least
    /// `count` are readable or `timeout` seconds have passed.
    public static func entries(
        where field: String,
        is value: String,
        count: Int = 1,
        timeout: Double = 5
    ) throws -> [Fields] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            _ = try ChildProcess.run(["/usr/bin/journalctl", "--sync"])
            let result = try ChildProcess.run([
                "/usr/bin/journalctl", "-o", "json", "--all", "--no-pager",
                "--since", "@\(Int(firstRequired.timeIntervalSince1970))", "\(field)=\(value)",
            ])
            let entries = try result.output.split(separator: "\n").map { try parse(Data($0.utf8)) }
            if entries.count >= count || Date() >= deadline { return entries }
            usleep(50_000)
        }
    }

    /// Whether something is bound to the datagram socket at `path` (connect succeeds only then).
    private static func isListening(_ path: String) -> Bool {
        let socket = Glibc.socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_un(path: path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    private static func start() -> String? {
        if isListening(socketPath) { return nil }
        guard getuid() == 0 else { return "nothing listens on \(socketPath), and starting journald needs root" }
        guard access(binary, X_OK) == 0 else { return "nothing listens on \(socketPath), and \(binary) is missing" }
        let process: Process
        do {
            try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
            process = try ChildProcess.start([binary])
        } catch {
            return "could not start \(binary): \(error)"
        }
        for _ in 0..<100 {
            if isListening(socketPath) { return nil }
            guard process.isRunning else { return "\(binary) exited with status \(process.terminationStatus)" }
            usleep(50_000)
        }
        process.terminate()
        return "\(binary) did not listen on \(socketPath) within 5 s"
    }

    /// One JSON entry; journalctl shows values that are not printable text as arrays of bytes.
    private static func parse(_ line: Data) throws -> Fields {
        guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else { return [:] }
        return object.compactMapValues { value in
            if let text = value as? String { return text }
            if let bytes = value as? [UInt8] { return String(decoding: bytes, as: UTF8.self) }
            return nil
        }
    }
}

extension sockaddr_un {
    /// An `AF_UNIX` address for a file system path (at most 107 bytes).
    public init(path: String) {
        self.init()
        sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sun_path) { buffer in
            let bytes = Array(path.utf8.prefix(buffer.count - 1))
            buffer.copyBytes(from: bytes)
        }
    }
}

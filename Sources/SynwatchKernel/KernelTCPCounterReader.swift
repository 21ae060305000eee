import Glibc
import SynwatchSystem
import SystemPackage

/// Reads the TCP counters of a network namespace from its `net` folder under procfs.
///
/// `/proc/net` belongs to the network namespace of the reading thread, which is what the daemon wants;
/// `/proc/PID/net` is that of process PID, which lets tests read a namespace they made.
public struct KernelTCPCounterReader: Sendable {
    /// The folder holding `netstat`, `snmp` and `stat/synproxy`, such as `/proc/net`.
    public let netDirectory: String

    /// The largest file read: the real ones are a few KiB.
    static let maximumFileSize = 1 << 20

    /// A reader of `procRoot/net`: `/proc/net` by default.
    public init(procRoot: String = "/proc") {
        self.init(netDirectory: procRoot + "/net")
    }

    /// A reader of the `netstat`, `snmp` and `stat/synproxy` files in `netDirectory`, such as `/proc/1234/net`.
    public init(netDirectory: String) {
        self.netDirectory = netDirectory
    }

    /// A reader of the network namespace of process `pid`, through `/proc/PID/net`.
    public static func process(_ pid: Int32) -> KernelTCPCounterReader {
        KernelTCPCounterReader(netDirectory: "/proc/\(pid)/net")
    }

    /// Reads the files now (`netstat`, `snmp`, and `stat/synproxy` where the kernel has SYNPROXY); a missing file
    /// leaves its counters nil.
    ///
    /// - Throws: `SystemCallError` naming the call and the file, for any failure but a missing file.
    public func read() throws(SystemCallError) -> KernelTCPCounters {
        let netstat = try Self.readFile(netDirectory + "/netstat")
        let snmp = try Self.readFile(netDirectory + "/snmp")
        let synproxy = try Self.readFile(netDirectory + "/stat/synproxy")
        return KernelTCPCounters(netstat: netstat, snmp: snmp, synproxy: synproxy)
    }

    /// Reads the files now and stamps them with the monotonic clock.
    ///
    /// - Throws: `SystemCallError` as `read()` does.
    public func sample() throws(SystemCallError) -> KernelTCPSample {
        let counters = try read()
        return KernelTCPSample(time: .now, counters: counters)
    }

    /// The whole text of `path`, nil if it (or its folder) does not exist.
    ///
    /// Procfs files report a size of 0, so this reads to the end. Wraps `open(2)` and `read(2)` through
    /// swift-system, which retries both on `EINTR`.
    static func readFile(_ path: String) throws(SystemCallError) -> String? {
        let file: FileDescriptor
        do {
            file = try SystemCall.named("open", subject: path) {
                try FileDescriptor.open(path, .readOnly, options: .closeOnExec)
            }
        } catch  where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        let chunk = 16 << 10
        while true {
            let start = bytes.count
            guard start < maximumFileSize else {
                throw SystemCallError(call: "read", subject: path, errno: .fileTooLarge)
            }
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let count = try SystemCall.named("read", subject: path) {
                try bytes.withUnsafeMutableBytes {
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[start...]))
                }
            }
            bytes.removeLast(chunk - count)
            if count == 0 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

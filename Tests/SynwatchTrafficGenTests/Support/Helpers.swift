import Foundation
import SynwatchTestSupport

/// Runs `tcpdump` on capture files: the reference reader every written format must satisfy.
enum Tcpdump {
    static let executable = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static var isAvailable: Bool { executable != nil }

    /// `tcpdump -nn -r FILE ARGUMENTS`: its output lines, and its error text when it failed.
    static func read(_ file: String, _ arguments: [String] = []) throws -> [String] {
        let result = try ChildProcess.run([executable!, "-nn", "-r", file] + arguments)
        guard result.status == 0 else {
            throw TcpdumpFailed(status: result.status, result.errors)
        }
        return result.output.split(separator: "\n").map(String.init)
    }

    struct TcpdumpFailed: Error, CustomStringConvertible {
        var status: Int32
        var stderr: String

        init(status: Int32, _ stderr: String) {
            self.status = status
            self.stderr = stderr
        }

        var description: String { "tcpdump exited with \(status): \(stderr)" }
    }
}

/// A directory of its own for one test's files, removed afterwards.
func withScratchDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("synwatch-trafficgen-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.path)
}

/// A TCP connection's identity in one direction.
struct FourTuple: Hashable {
    var source: [UInt8]
    var sourcePort: UInt16
    var destination: [UInt8]
    var destinationPort: UInt16

    init(_ packet: DecodedPacket) {
        source = packet.source
        sourcePort = packet.tcp!.sourcePort
        destination = packet.destination
        destinationPort = packet.tcp!.destinationPort
    }

    var reversed: FourTuple {
        var copy = self
        (copy.source, copy.destination) = (destination, source)
        (copy.sourcePort, copy.destinationPort) = (destinationPort, sourcePort)
        return copy
    }
}

/// One connection attempt: retransmitted SYNs share it.
struct Attempt: Hashable {
    var flow: FourTuple
    var isn: UInt32
}

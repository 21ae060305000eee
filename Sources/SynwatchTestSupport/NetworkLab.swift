import Foundation
import Testing

/// A veth pair of the test's own: `capturePort` in the root namespace (no address, no route, IPv6 off), where
/// the test captures, and `replayPort` in a fresh namespace, where `tcpreplay` sends the generator's captures.
///
/// Names are `sw` and 6 random hex digits, so parallel and concurrent runs never meet; the lab deletes its own
/// namespace and link when released, and never touches any other name.
public final class NetworkLab {
    /// Whether the tests can build labs: root, and an `ip` that knows network namespaces.
    public static let isAvailable =
        geteuid() == 0 && (try? run(["ip", "netns", "list"]).status) == 0
        && (try? run(["tcpreplay", "--version"]).status) == 0

    /// Why lab tests are skipped, when they are.
    public static let unavailableReason: Comment = "needs root, ip netns and tcpreplay"

    /// The namespace's name, also the prefix of both interfaces.
    public let name: String
    /// The root-namespace end of the pair.
    public let capturePort: String
    /// The end inside the namespace.
    public let replayPort: String

    public init() throws {
        name = "sw" + String(format: "%06x", UInt32.random(in: 0..<0x100_0000))
        capturePort = name + "a"
        replayPort = name + "b"
        do {
            try Self.check(["ip", "netns", "add", name])
            try Self.check(
                ["ip", "link", "add", capturePort, "type", "veth", "peer", "name", replayPort, "netns", name])
            // No address on either end: nothing but the replayed frames crosses the pair.
            try Self.check(["sysctl", "-q", "-w", "net.ipv6.conf.\(capturePort).disable_ipv6=1"])
            try Self.check([
                "ip", "netns", "exec", name, "sysctl", "-q", "-w",
                "net.ipv6.conf.\(replayPort).disable_ipv6=1",
            ])
            try Self.check(["ip", "link", "set", capturePort, "up"])
            try Self.check(["ip", "-n", name, "link", "set", replayPort, "up"])
        } catch {
            delete()
            throw error
        }
    }

    deinit {
        delete()
    }

    /// Removes the namespace (which takes the pair with it) and the root end, if still there.
    private func delete() {
        _ = try? Self.run(["ip", "netns", "delete", name])
        _ = try? Self.run(["ip", "link", "delete", capturePort])
    }

    /// How fast `tcpreplay` sends.
    public enum ReplaySpeed {
        /// At the pace of the capture's own timestamps.
        case asCaptured
        case packetsPerSecond(Int)
        case topSpeed
    }

    /// Starts `tcpreplay` of `files` out of `replayPort` at `pps` packets a second (nil: as fast as it can),
    /// bounded to 60 seconds.
    public func startReplay(_ files: [String], pps: Int?) throws -> Process {
        try startReplay(files, speed: pps.map { .packetsPerSecond($0) } ?? .topSpeed)
    }

    /// Starts `tcpreplay` of `files` out of `replayPort`, bounded to 60 seconds.
    public func startReplay(_ files: [String], speed: ReplaySpeed) throws -> Process {
        let rate: [String]
        switch speed {
        case .asCaptured: rate = []
        case .packetsPerSecond(let pps): rate = ["--pps", String(pps)]
        case .topSpeed: rate = ["--topspeed"]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["timeout", "60", "ip", "netns", "exec", name, "tcpreplay", "-q", "-i", replayPort]
            + rate + files
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs a command to its end; its exit status and what it wrote (standard output and error together).
    @discardableResult
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Runs a command that must succeed.
    public static func check(_ arguments: [String]) throws {
        let (status, output) = try run(arguments)
        guard status == 0 else { throw LabError(command: arguments.joined(separator: " "), output: output) }
    }
}

/// A lab command that failed.
public struct LabError: Error, CustomStringConvertible {
    public var command: String
    public var output: String

    public init(command: String, output: String) {
        self.command = command
        self.output = output
    }

    public var description: String { "\(command): \(output)" }
}

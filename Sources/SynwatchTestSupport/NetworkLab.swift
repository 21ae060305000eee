import Foundation
import Glibc
import Testing

/// A network namespace of the test's own: added when made, deleted (with its interfaces) when released. Every lab
/// of the tests is built of these, so none outlives its test and none touches another name.
public final class NetworkNamespace {
    /// The namespace's name: a prefix of the lab's and 6 random hex digits, so parallel and concurrent runs never
    /// meet; often also the prefix of the lab's interfaces.
    public let name: String

    /// Whether the tests can make namespaces: root, and an `ip` that knows them.
    public static let isAvailable = geteuid() == 0 && (try? ChildProcess.run(["ip", "netns", "list"]).status) == 0

    /// A fresh name for a lab's namespaces and interfaces (at most 15 bytes with their suffixes).
    public static func freshName(_ prefix: String = "sw") -> String {
        prefix + String(format: "%06x", UInt32.random(in: 0..<0x100_0000))
    }

    /// Adds the namespace `name`.
    public init(_ name: String) throws {
        self.name = name
        try ChildProcess.check(["ip", "netns", "add", name])
    }

    deinit {
        _ = try? ChildProcess.run(["ip", "netns", "delete", name])
    }

    /// `ip netns exec` of the namespace before `arguments`.
    public func inside(_ arguments: [String]) -> [String] {
        ["ip", "netns", "exec", name] + arguments
    }

    /// Runs `arguments` inside the namespace, which must succeed, and returns what it wrote.
    /// - Throws: `LabError` when it exits with a status other than 0.
    @discardableResult
    public func check(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        try ChildProcess.check(inside(arguments), environment: environment)
    }

    /// Runs `arguments` inside the namespace to its end.
    public func run(
        _ arguments: [String],
        environment: [String: String]? = nil,
        mergingErrors: Bool = false
    ) throws -> CommandResult {
        try ChildProcess.run(inside(arguments), environment: environment, mergingErrors: mergingErrors)
    }
}

/// A veth pair of the test's own: `capturePort` in the root namespace (no address, no route, IPv6 off), where
/// the test captures, and `replayPort` in a fresh namespace, where `tcpreplay` sends the generator's captures.
///
/// The lab deletes its namespace and link when released, and never touches any other name.
public final class NetworkLab {
    /// Whether the tests can build labs: namespaces, and `tcpreplay`.
    public static let isAvailable =
        NetworkNamespace.isAvailable && (try? ChildProcess.run(["tcpreplay", "--version"]).status) == 0

    /// Why lab tests are skipped, when they are.
    public static let unavailableReason: Comment = "needs root, ip netns and tcpreplay"

    private let namespace: NetworkNamespace
    /// The namespace's name, also the prefix of both interfaces.
    public var name: String { namespace.name }
    /// The root-namespace end of the pair.
    public let capturePort: String
    /// The end inside the namespace.
    public let replayPort: String

    public init() throws {
        namespace = try NetworkNamespace(NetworkNamespace.freshName())
        capturePort = namespace.name + "a"
        replayPort = namespace.name + "b"
        try createPair()
    }

    /// Makes the pair again, under the same names, after a test deleted it: an interface that came back.
    public func createPair() throws {
        do {
            try ChildProcess.check([
                "ip", "link", "add", capturePort, "type", "veth", "peer", "name", replayPort, "netns", name,
            ])
            // No address on either end: nothing but the replayed frames crosses the pair.
            try ChildProcess.check(["sysctl", "-q", "-w", "net.ipv6.conf.\(capturePort).disable_ipv6=1"])
            try namespace.check(["sysctl", "-q", "-w", "net.ipv6.conf.\(replayPort).disable_ipv6=1"])
            try ChildProcess.check(["ip", "link", "set", capturePort, "up"])
            try ChildProcess.check(["ip", "-n", name, "link", "set", replayPort, "up"])
        } catch {
            deleteCapturePort()
            throw error
        }
    }

    deinit {
        deleteCapturePort()
    }

    /// Removes the root end, if still there (the namespace takes the pair with it).
    private func deleteCapturePort() {
        _ = try? ChildProcess.run(["ip", "link", "delete", capturePort])
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
        return try ChildProcess.start(
            ["timeout", "60"] + namespace.inside(["tcpreplay", "-q", "-i", replayPort] + rate + files)
        )
    }
}

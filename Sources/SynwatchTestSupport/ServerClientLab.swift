import Foundation
import Glibc

/// Two namespaces of the test's own joined by a veth pair: a server at 198.18.0.10 and clients at 198.18.0.20,
/// with no default route, so nothing leaves them. Deleted when released.
public final class ServerClientLab {
    public static let serverAddress = "198.18.0.10"
    public static let clientAddress = "198.18.0.20"

    public let server: String
    public let client: String
    public let serverPort: String
    public let clientPort: String
    private var processes: [Process] = []

    public init() throws {
        let name = "sw" + String(UInt32.random(in: 0..<0x100_0000), radix: 16)
        server = name + "s"
        client = name + "c"
        serverPort = name + "s0"
        clientPort = name + "c0"
        do {
            try NetworkLab.check(["ip", "netns", "add", server])
            try NetworkLab.check(["ip", "netns", "add", client])
            try NetworkLab.check(
                [
                    "ip", "link", "add", serverPort, "netns", server, "type", "veth", "peer", "name", clientPort,
                    "netns", client,
                ]
            )
            for (namespace, port, address) in [
                (server, serverPort, Self.serverAddress), (client, clientPort, Self.clientAddress),
            ] {
                try NetworkLab.check(["ip", "-n", namespace, "addr", "add", "\(address)/24", "dev", port])
                try NetworkLab.check(["ip", "-n", namespace, "link", "set", port, "up"])
                try NetworkLab.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
            }
            // Spoofed sources have no route back: let them in, as an Internet-facing server does.
            for key in ["all", "default", serverPort] {
                try NetworkLab.check([
                    "ip", "netns", "exec", server, "sysctl", "-q", "-w", "net.ipv4.conf.\(key).rp_filter=0",
                ])
            }
        } catch {
            delete()
            throw error
        }
    }

    deinit {
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        delete()
    }

    private func delete() {
        _ = try? NetworkLab.run(["ip", "netns", "delete", server])
        _ = try? NetworkLab.run(["ip", "netns", "delete", client])
    }

    /// The server port's MAC address, where replayed frames must go to reach the server's TCP stack.
    public func serverMAC() throws -> String {
        let (_, output) = try NetworkLab.run(["ip", "-n", server, "-o", "link", "show", serverPort])
        guard let range = output.range(of: "link/ether ") else {
            throw LabError(command: "ip link show", output: output)
        }
        return String(output[range.upperBound...].prefix(17))
    }

    /// Starts `arguments` inside `namespace` (`env` and `ip netns exec` exec into it: the process is the command
    /// itself, for signals and journal `_PID`s); killed with the lab at the latest.
    public func start(
        in namespace: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        log: String? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError =
            try log.map { try FileHandle(forWritingTo: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        try process.run()
        processes.append(process)
        return process
    }
}

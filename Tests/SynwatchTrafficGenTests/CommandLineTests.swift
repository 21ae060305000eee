import Foundation
import SynwatchTestSupport
import SynwatchTrafficGen
import Testing

/// The `synwatch-trafficgen` built next to the test bundle (`swift test` builds it too).
private let executable: String? = {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let path = products.appendingPathComponent("synwatch-trafficgen").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}()

/// Runs the built command as its users do.
@Suite("synwatch-trafficgen command", .enabled(if: executable != nil, "the synwatch-trafficgen binary is not built"))
struct CommandLineTests {
    private func run(_ arguments: [String]) throws -> CommandResult {
        try ChildProcess.run([executable!] + arguments)
    }

    @Test("flood writes the capture and the truth it reports")
    func flood() throws {
        try withScratchDirectory { directory in
            let capture = "\(directory)/flood.pcapng"
            let truthPath = "\(directory)/flood.json"
            let result = try run([
                "flood", "--kind", "distributed", "--bots", "12", "--rate", "100", "--duration", "3",
                "--flood-start", "0.5", "--flood-duration", "1", "--background-rate", "20", "--ipv6",
                "--format", "pcapng", "--precision", "ns", "--link", "linux-sll", "--direction", "incoming-only",
                "-o", capture, "--truth", truthPath,
            ])
            #expect(result.status == 0, "\(result.errors)")
            let truth = try GroundTruth.decode(Data(contentsOf: URL(fileURLWithPath: truthPath)))
            #expect(result.output.hasPrefix("wrote \(truth.packets) packets to \(capture)"))
            #expect(truth.family == .ipv6 && truth.floods.first?.kind == .distributed)
            #expect(truth.floods.first?.distinctSources == 12)
            let parsed = try Capture(path: capture)
            #expect(
                parsed.frames.count == truth.packets && parsed.linkType == 113 && parsed.resolution == 1_000_000_000
            )
        }
    }

    @Test("spoofed-bulk writes the requested packets and sources")
    func spoofedBulk() throws {
        try withScratchDirectory { directory in
            let capture = "\(directory)/bulk.pcap"
            let result = try run(["spoofed-bulk", "--packets", "3000", "--sources", "1000", "-o", capture])
            #expect(result.status == 0, "\(result.errors)")
            let (_, packets) = try decodeCapture(capture)
            #expect(packets.count == 3000 && Set(packets.map(\.source)).count == 1000)
        }
    }

    @Test("mistakes are reported with the option's name and a failing status")
    func validation() throws {
        try withScratchDirectory { directory in
            let capture = "\(directory)/x.pcap"
            let cases: [([String], String)] = [
                (["flood", "-o", capture, "--pulse-on", "1"], "--pulse-on and --pulse-off go together"),
                (["flood", "-o", capture, "--link", "raw", "--vlan", "100"], "--vlan needs --link ethernet"),
                (["flood", "-o", capture, "--victim", "[2001:db8::a]:80"], "does not match the address family"),
                (["spoofed-bulk", "-o", capture, "--sources", "70000"], "do not fit in 198.19.0.0/16"),
                (["scan", "-o", capture, "--ports", "9-1"], "--ports must look like 1-1024"),
            ]
            for (arguments, message) in cases {
                let result = try run(arguments)
                #expect(result.status != 0)
                #expect(result.errors.contains(message), "\(arguments): \(result.errors)")
            }
        }
    }
}

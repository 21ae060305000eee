import Foundation
import SynwatchCapture
import SynwatchEngine
import SynwatchTrafficGen

/// A flood as one interface of the attacked server would capture it, over benign background traffic.
struct FloodCase {
    var name: String
    var flood: Flood
    /// `.incomingOnly`: a router's ingress or a mirror of inbound traffic, without the server's answers.
    var direction: CaptureDirection = .both

    /// The kinds the engine follows differently: a random-source storm is sampled by client once recognised,
    /// the others by handshake, and a botnet's sources fill the source table.
    static let all: [FloodCase] = [
        FloodCase(name: "random-source", flood: steady(.randomSource)),
        FloodCase(name: "single-source", flood: steady(.singleSource)),
        FloodCase(name: "distributed, 2,000 bots", flood: steady(.distributed, bots: 2_000)),
        FloodCase(
            name: "distributed, 8,000 bots, inbound only",
            flood: steady(.distributed, bots: 8_000),
            direction: .incomingOnly
        ),
    ]

    private static func steady(_ kind: SynwatchTrafficGen.FloodKind, bots: Int = 200) -> Flood {
        Flood(kind, rate: 200_000, start: 1, duration: 4, bots: bots)
    }

    /// Writes the capture unless it is there from an earlier run.
    func write(to path: String) throws {
        defer { evictFromPageCache(path) }
        if FileManager.default.fileExists(atPath: path) { return }
        let scenario = Scenario(seed: 1, duration: 6).background(Background(rate: 2_000)).flood(flood)
        try scenario.write(to: path + ".partial", direction: direction)
        try FileManager.default.moveItem(atPath: path + ".partial", toPath: path)
    }
}

/// The engine's own nanoseconds per frame of a capture, best of `rounds`: the frames are decoded ahead, a batch at a
/// time as the reading thread decodes them, and only the engine's work on each batch is timed. What one engine
/// thread takes per second is 10^9 / this, whatever reads and decodes for it. A batch is small enough to stay in
/// the core's cache, as the reading thread's batches are when the engine takes them.
func engineNanosecondsPerFrame(_ path: String, rounds: Int) throws -> Double {
    let batchCapacity = 4_096
    let batch = UnsafeMutablePointer<DecodedFrame>.allocate(capacity: batchCapacity)
    defer { batch.deallocate() }
    let clock = ContinuousClock()
    var best = Double.infinity
    for _ in 0..<rounds {
        let engine = try Engine()
        let decoder = engine.frameDecoder
        let source = try CaptureFileSequence([.file(path)])
        var filled = 0
        var frames = 0
        var elapsed = Duration.zero
        func runEngine() {
            elapsed += clock.measure {
                engine.process(decoded: batch, count: filled)
            }
            batch.deinitialize(count: filled)
            frames += filled
            filled = 0
        }
        while try source.readFrames(
            upTo: batchCapacity,
            { frame in
                (batch + filled).initialize(to: decoder.decode(frame))
                filled += 1
            }
        ) != nil {
            runEngine()
        }
        engine.finish()
        best = min(best, seconds(elapsed) * 1e9 / Double(frames))
    }
    return best
}

/// Prints the engine's own cost per frame on a flood of each kind, against the raw libpcap read of the same capture,
/// and the rate one engine thread takes: what decides whether one engine thread per interface keeps up. Returns the
/// kinds whose ratio is above `maximumRatio`.
func reportEngineByFloodKind(_ options: Options, maximumRatio: Double?) throws -> [String] {
    let lineRate = 14_880_000.0
    var failures: [String] = []
    print("the engine alone (frames decoded ahead), per flood kind, best of \(options.rounds)")
    for flood in FloodCase.all {
        let path = "\(options.work)/flood-\(flood.name.filter { $0.isLetter || $0.isNumber }).pcap"
        try flood.write(to: path)
        let read = 1e9 / (try rawRate(path, method: .pcapNextEx, rounds: options.rounds))
        let engine = try engineNanosecondsPerFrame(path, rounds: options.rounds)
        let figures = String(
            format: "%5.1f ns/frame (%.2f x the libpcap read's %.1f ns): %5.1f M frames/s, %.2f x 10 GbE line rate",
            engine,
            engine / read,
            read,
            1e3 / engine,
            1e9 / engine / lineRate
        )
        print("  \(flood.name.padding(toLength: 38, withPad: " ", startingAt: 0)) \(figures)")
        if let maximumRatio, engine / read > maximumRatio {
            let ratio = String(format: "%.2f x the libpcap read, above %.2f", engine / read, maximumRatio)
            failures.append("the engine on the \(flood.name) flood took \(ratio)")
        }
    }
    return failures
}

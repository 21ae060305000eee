// synwatch-benchmark: the throughput of `synwatch analyze` against the raw libpcap read rate of the same
// capture, measured in the same process, and the peak resident size of `synwatch analyze` on a capture with
// ten million distinct spoofed sources. Results are ratios and sizes, checked against thresholds.json. Then
// the engine's own cost per frame on a flood of each kind, against the raw read of the same capture, and the
// rate one engine thread takes.
//
// Usage: synwatch-benchmark --synwatch PATH [--work DIR] [--packets N] [--rss-sources N] [--rounds N] [--engine-only]

import Foundation
import Glibc
import SynwatchCapture
import SynwatchEngine
import SynwatchTrafficGen

struct Options {
    var synwatch = ""
    var work = "/tmp/synwatch-benchmark"
    var packets = 4_000_000
    var rssSources = 10_000_000
    var rounds = 3
    /// Only the engine per flood kind, and only its threshold.
    var engineOnly = false
    var thresholds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("thresholds.json").path

    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let name = iterator.next() {
            if name == "--engine-only" {
                engineOnly = true
                continue
            }
            guard let value = iterator.next() else { fail("\(name) needs a value") }
            switch name {
            case "--synwatch": synwatch = value
            case "--work": work = value
            case "--packets": packets = Int(value) ?? packets
            case "--rss-sources": rssSources = Int(value) ?? rssSources
            case "--rounds": rounds = max(1, Int(value) ?? rounds)
            case "--thresholds": thresholds = value
            default: fail("unknown option \(name)")
            }
        }
        guard !synwatch.isEmpty else { fail("--synwatch PATH (a release build of synwatch) is required") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("synwatch-benchmark: \(message)\n".utf8))
    exit(2)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Packets per second of the whole `analyze` path (reader, decoder, engine, events) on `threads` threads, as
/// `synwatch analyze --threads` runs it, and the attacks it found.
func analyzeRate(_ path: String, threads: Int) throws -> (rate: Double, attacks: Int) {
    let engine = try Engine()
    let source = try CaptureFileSequence([.file(path)])
    var frames = 0
    let elapsed = try ContinuousClock().measure {
        if threads == 1 {
            while let count = try source.readFrames(upTo: 16_384, engine.process) {
                frames += count
                if engine.hasEvents { _ = engine.takeEvents() }
            }
        } else {
            try DecodingReader(source, decoders: threads - 1).run(into: engine) { position in
                frames = position.framesRead
                if engine.hasEvents { _ = engine.takeEvents() }
            }
        }
        engine.finish()
    }
    return (Double(frames) / seconds(elapsed), engine.statistics.attacks)
}

/// Packets per second of a bare `pcap_next_ex` loop over the file, best of `rounds`.
func rawRate(_ path: String, method: RawReadMeasurement.Method, rounds: Int) throws -> Double {
    var best = 0.0
    for _ in 0..<rounds {
        best = max(best, try RawReadMeasurement.measure(path, method: method).framesPerSecond)
    }
    return best
}

/// Peak resident size in MiB of `synwatch analyze --json path`, run as a child process: its own high-water mark
/// (`VmHWM`), read every 2 ms while it runs. Its rusage would not do: a child spawned with the parent's memory
/// (posix_spawn's vfork) takes the parent's high-water mark along through exec, and this process's peak (writing
/// the capture just before) was twice the child's.
func peakResidentMiB(synwatch: String, path: String) throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: synwatch)
    process.arguments = ["analyze", "--json", path]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let status = "/proc/\(process.processIdentifier)/status"
    var peakKiB = 0
    while process.isRunning {
        // Gone once the child has exited (a zombie has no memory): the last reading is its peak.
        if let text = try? String(contentsOfFile: status, encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        {
            peakKiB = max(peakKiB, kib)
        }
        usleep(2_000)
    }
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("\(synwatch) analyze exited with \(process.terminationStatus)") }
    guard peakKiB > 0 else { fail("no VmHWM read for \(synwatch) analyze") }
    return Double(peakKiB) / 1024
}

/// Drops the file from the page cache, so it is read back as a capture on disk would be: pages fresh from
/// `write` sit in small folios that cost the mapped reader about a third of its speed.
func evictFromPageCache(_ path: String) {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { return }
    fdatasync(descriptor)
    _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
    close(descriptor)
}

func makeCapture(_ path: String, packets: Int, sources: Int) throws {
    defer { evictFromPageCache(path) }
    if FileManager.default.fileExists(atPath: path) { return }
    // A /8 holds the sources of the 10-million-source capture; the file is only read, never sent.
    let bulk = SpoofedBulk(
        seed: 1,
        packets: packets,
        sources: sources,
        rate: 1_000_000,
        victim: nil,
        sourcePrefix: NetPrefix("10.0.0.0/8"),
        family: .ipv4,
        startTime: 1_735_689_600
    )
    _ = try bulk.write(to: path + ".partial")
    try FileManager.default.moveItem(atPath: path + ".partial", toPath: path)
}

/// `analyze` against the raw read of the same capture, and its peak resident size: printed, and checked against
/// thresholds.json. Returns what failed.
func checkThroughputAndMemory(_ options: Options, thresholds: [String: Double]) throws -> [String] {
    // One SYN per spoofed source, as a spoofing tool's random addresses give (the /8 holds 2^24 of them).
    let throughputCapture = "\(options.work)/spoofed-\(options.packets)-distinct.pcap"
    try makeCapture(throughputCapture, packets: options.packets, sources: min(options.packets, 1 << 24))
    _ = try rawRate(throughputCapture, method: .pcapNextEx, rounds: 1)  // page cache warm-up
    // Rounds alternate the readers so that a noisy neighbour slows all of them alike; the best of each counts.
    var libpcap = 0.0, mapped = 0.0
    // Three threads: two decoding threads taking turns to read.
    let threadCounts = [1, 2, 3]
    var analysis = Dictionary(uniqueKeysWithValues: threadCounts.map { ($0, (rate: 0.0, attacks: 0)) })
    for _ in 0..<options.rounds {
        libpcap = max(libpcap, try rawRate(throughputCapture, method: .pcapNextEx, rounds: 1))
        mapped = max(mapped, try rawRate(throughputCapture, method: .captureFileReader, rounds: 1))
        for threads in threadCounts {
            let run = try analyzeRate(throughputCapture, threads: threads)
            analysis[threads] = (max(analysis[threads]!.rate, run.rate), run.attacks)
        }
    }
    let ratio = analysis[2]!.rate / libpcap

    let rssCapture = "\(options.work)/spoofed-sources-\(options.rssSources).pcap"
    try makeCapture(rssCapture, packets: options.rssSources, sources: options.rssSources)
    let resident = try peakResidentMiB(synwatch: options.synwatch, path: rssCapture)

    func mpps(_ rate: Double) -> String { String(format: "%.2f Mpps (%.1f ns/packet)", rate / 1e6, 1e9 / rate) }
    print("spoofed SYN capture: \(options.packets) packets, \(options.rounds) rounds, best of each")
    print("  raw libpcap read (pcap_next_ex)   \(mpps(libpcap))")
    print("  raw mapped read                   \(mpps(mapped))")
    for threads in threadCounts {
        let run = analysis[threads]!
        print("  analyze path, --threads \(threads)         \(mpps(run.rate)), \(run.attacks) attack(s)")
    }
    for threads in threadCounts {
        print(String(format: "  analyze --threads %d / raw libpcap %.2f", threads, analysis[threads]!.rate / libpcap))
    }
    print("capture with \(options.rssSources) distinct spoofed sources")
    print(String(format: "  peak RSS of synwatch analyze      %.1f MiB", resident))

    var failures: [String] = []
    if let minimum = thresholds["analyze_vs_libpcap_min_ratio"], ratio < minimum {
        failures.append(String(format: "analyze / libpcap %.2f is below %.2f", ratio, minimum))
    }
    if let maximum = thresholds["peak_rss_max_mib"], resident > maximum {
        failures.append(String(format: "peak RSS %.1f MiB is above %.0f MiB", resident, maximum))
    }
    for (threads, run) in analysis.sorted(by: { $0.key < $1.key }) where run.attacks != 1 {
        failures.append("expected 1 attack in the spoofed capture with \(threads) thread(s), found \(run.attacks)")
    }
    return failures
}

let options = Options(CommandLine.arguments.dropFirst())
try FileManager.default.createDirectory(atPath: options.work, withIntermediateDirectories: true)
let thresholdsFile = URL(fileURLWithPath: options.thresholds)
guard let thresholds = try JSONSerialization.jsonObject(with: Data(contentsOf: thresholdsFile)) as? [String: Double]
else { fail("\(options.thresholds): not an object of numbers") }
var failures = options.engineOnly ? [] : try checkThroughputAndMemory(options, thresholds: thresholds)
failures += try reportEngineByFloodKind(options, maximumRatio: thresholds["engine_flood_vs_libpcap_max_ratio"])
for failure in failures { print("FAIL: \(failure)") }
exit(failures.isEmpty ? 0 : 1)

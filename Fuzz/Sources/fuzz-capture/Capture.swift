@preconcurrency import Glibc
import SynwatchCapture
import SynwatchEngine
import SynwatchProtocol

/// One capture file through the path `synwatch analyze --json` takes: the file is opened by path (a memory file,
/// so the mapped pcap and pcapng readers map it as they would a file on disk, and libpcap reads what they leave),
/// every frame goes into an engine, its events are encoded as JSON and its summary built.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    CaptureInputFile.shared.replaceContents(with: UnsafeRawBufferPointer(start: start, count: count))
    analyze(CaptureInputFile.shared.path)
    return 0
}

/// The smallest tables the engine accepts: a few fuzzed frames then reach eviction, which the defaults'
/// tables (tens of megabytes per engine) would not.
let smallTables: EngineConfiguration = {
    var configuration = EngineConfiguration()
    configuration.handshakes.capacity = 64
    configuration.victims.capacity = 16
    configuration.sources.capacity = 64
    configuration.backscatter.capacity = 16
    configuration.connections.capacity = 64
    return configuration
}()

/// What `Analyze.run()` does with one file, its events encoded and dropped.
func analyze(_ path: String) {
    let engine: Engine
    do {
        engine = try Engine(configuration: smallTables)
    } catch {
        fatalError("the fuzzing configuration is invalid: \(error)")
    }
    var readError: CaptureError?
    do {
        let source = try CaptureFileSequence([.file(path)])
        while try source.readFrames(upTo: 16_384, engine.process) != nil {
            encode(engine.takeEvents())
        }
    } catch {
        readError = error
    }
    engine.finish()
    encode(engine.takeEvents())
    // The summary is built but not rendered: its JSON is the same shape for every input, and rendering it would
    // cost more than the rest of the run.
    let statistics = engine.statistics
    _ = V1.Summary(
        files: [path],
        traffic: V1.Traffic(statistics),
        totals: V1.EngineTotals(statistics, occupancy: engine.occupancy),
        services: engine.services(limit: 10).map(V1.Service.init),
        error: readError?.description
    )
}

func encode(_ events: [Event]) {
    for event in events { _ = ContractJSON.text(V1.Event(event)) }
}

/// A file in memory that holds the current input, opened by its `/proc/self/fd` path: a file on /dev/shm (tmpfs),
/// unlinked at once (Glibc's module does not declare `memfd_create`).
final class CaptureInputFile: @unchecked Sendable {
    /// libFuzzer runs one input at a time on one thread.
    static let shared = CaptureInputFile()

    let descriptor: Int32
    let path: String

    private init() {
        var template = Array("/dev/shm/synwatch-fuzz-XXXXXX".utf8CString)
        descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { fatalError("mkstemp: errno \(errno)") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        path = "/proc/self/fd/\(descriptor)"
    }

    /// Makes the file exactly `bytes`. No reader has it mapped by then: the last one was released.
    func replaceContents(with bytes: UnsafeRawBufferPointer) {
        guard ftruncate(descriptor, off_t(bytes.count)) == 0 else { fatalError("ftruncate: errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(written))
            guard result > 0 else { fatalError("pwrite: errno \(errno)") }
            written += result
        }
    }
}

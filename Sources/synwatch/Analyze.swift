import ArgumentParser
@preconcurrency import Glibc
import SynwatchCapture
import SynwatchEngine
import SynwatchProtocol

/// `synwatch analyze FILE…`: the daemon's engine over capture files.
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analyse pcap and pcapng files offline with the daemon's detection engine.",
        discussion: """
            Files are read in the order given, as one continuous capture; `-` reads standard input. \
            Without --json, prints a report of the attacks, notices, traffic and decode problems. \
            With --json, prints one JSON object per line: every event in capture-time order, then \
            one object whose "event" is "summary".
            """
    )

    /// The busiest services the summary and the report list.
    static let servicesListed = 10

    @Argument(help: ArgumentHelp("Capture files (pcap or pcapng); `-` for standard input.", valueName: "file"))
    var files: [String]

    @Flag(help: "Print JSON lines (events, then a summary) instead of the report.")
    var json = false

    @OptionGroup var configurationOptions: ConfigurationOptions

    @Flag(help: "Read pcap and pcapng files through libpcap even where the memory-mapped readers apply.")
    var noMapping = false

    @Option(
        help: ArgumentHelp(
            "Threads to use, at most 16: 1 reads, decodes and analyses on one; N above 1 reads and decodes on N - 1 threads, ahead of the engine's. The events are the same for every count. (default: the cores, at most 4)",
            valueName: "n"
        )
    )
    var threads: Int?

    /// The default's cap: reading and decoding take about 42 ns a frame on one thread, so three would take about 14 ns
    /// each, below the engine thread's 29–84 ns on every flood kind of the benchmark (an estimate: two cores here).
    static let defaultMaximumThreads = 4
    /// Beyond this, more threads would only wait for the engine's.
    static let maximumThreads = 16

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("Name at least one capture file, or - for standard input.") }
        guard files.filter({ $0 == "-" }).count <= 1 else {
            throw ValidationError("Standard input (-) can be read only once.")
        }
        if let threads, threads < 1 { throw ValidationError("--threads takes a count of at least 1.") }
    }

    /// `--threads`, else as many as the machine has cores, up to the default's cap.
    var threadCount: Int {
        let cores = max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN)))
        return min(Self.maximumThreads, threads ?? min(Self.defaultMaximumThreads, cores))
    }

    func run() throws {
        let engineConfiguration = try configurationOptions.engineConfiguration()
        let engine: Engine
        do {
            engine = try Engine(configuration: engineConfiguration)
        } catch {
            throw CommandFailure("invalid configuration: \(error)")
        }
        let inputs = files.map(CaptureInput.init(argument:))
        let output = OutputStream.standardOutput
        var report = AnalysisReport(files: files)
        let progress = ProgressBar.onTerminal()

        let source: CaptureFileSequence
        do {
            source = try CaptureFileSequence(inputs, allowsMapping: !noMapping)
        } catch {
            throw CommandFailure(error.description)
        }
        var readError: CaptureError?
        do {
            if threadCount == 1 {
                while try source.readFrames(upTo: 16_384, engine.process) != nil {
                    if engine.hasEvents { deliver(engine.takeEvents(), to: &report, output: output) }
                    progress?.show(source.progress)
                }
            } else {
                try DecodingReader(source, decoders: threadCount - 1).run(into: engine) { position in
                    if engine.hasEvents { deliver(engine.takeEvents(), to: &report, output: output) }
                    progress?.show(position)
                }
            }
        } catch let error as CaptureError {
            // Frames before the damage were analysed: report them, then fail.
            readError = error
        } catch {
            throw CommandFailure("cannot start a reading thread: \(error)")
        }
        engine.finish()
        deliver(engine.takeEvents(), to: &report, output: output)
        progress?.clear()

        let statistics = engine.statistics
        if json {
            let summary = V1.Summary(
                files: files,
                traffic: V1.Traffic(statistics),
                totals: V1.EngineTotals(statistics, occupancy: engine.occupancy),
                services: engine.services(limit: Self.servicesListed).map(V1.Service.init),
                error: readError?.description
            )
            output.write(ContractJSON.text(summary) + "\n")
        } else {
            output.write(
                report.render(
                    statistics: statistics,
                    occupancy: engine.occupancy,
                    services: engine.services(limit: Self.servicesListed)
                )
            )
        }
        output.flush()
        if let readError { throw CommandFailure(readError.description) }
    }

    private func deliver(_ events: [Event], to report: inout AnalysisReport, output: OutputStream) {
        for event in events {
            if json {
                output.write(ContractJSON.text(V1.Event(event)) + "\n")
            } else {
                report.record(event)
            }
        }
    }
}

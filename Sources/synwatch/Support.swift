import ArgumentParser
@preconcurrency import Glibc
import SynwatchCapture
import SynwatchConfig
import SynwatchEngine

/// A failure the command reports in one sentence, with a non-zero exit and no stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}

/// `--config`: the YAML configuration shared by every subcommand that runs the engine.
struct ConfigurationOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Configuration file (YAML). Without it, built-in defaults (those of Config/synwatch.yaml).",
            valueName: "path"
        )
    )
    var config: String?

    /// The engine configuration from `--config`, or the defaults.
    /// - Throws: `CommandFailure` naming the file, the key and the line when the file is invalid.
    func engineConfiguration() throws -> EngineConfiguration {
        guard let config else { return EngineConfiguration() }
        let loaded: LoadedConfiguration
        do {
            loaded = try SynwatchConfiguration.load(path: config)
        } catch {
            throw CommandFailure(error.description)
        }
        // Named on the command line, a missing file is a mistake rather than a wish for defaults.
        guard !loaded.fileWasMissing else { throw CommandFailure("\(config): no such configuration file") }
        return loaded.configuration.engine
    }
}

/// Standard output written through stdio, so large reports and JSON streams are buffered.
struct OutputStream {
    static let standardOutput = OutputStream()

    func write(_ text: String) {
        fputs(text, stdout)
    }

    func flush() {
        fflush(stdout)
    }
}

/// A one-line progress bar on standard error, shown only when it is a terminal.
final class ProgressBar {
    private var lastDraw: Double = 0
    private var drawn = false

    /// A progress bar when standard error is a terminal, otherwise nil.
    static func onTerminal() -> ProgressBar? {
        isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
    }

    func show(_ progress: CaptureProgress) {
        let now = ProgressBar.monotonicSeconds()
        guard now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let width = 30
        var line = "\r"
        if let fraction = progress.fraction {
            let filled = Int((fraction * Double(width)).rounded(.down))
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            line += "\(Int((fraction * 100).rounded(.down)))%  "
        }
        line += "file \(progress.inputIndex + 1)/\(progress.inputCount)  \(progress.framesRead) frames"
        fputs(line + "\u{1B}[K", stderr)
        drawn = true
    }

    func clear() {
        if drawn { fputs("\r\u{1B}[K", stderr) }
    }

    private static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

@preconcurrency import Glibc
import SynwatchEngine
import SynwatchSystem
import SystemPackage

/// How far a run over one or more captures has got, for a progress display.
public struct CaptureProgress: Equatable, Sendable {
    /// Index in the run's inputs of the capture being read.
    public var inputIndex: Int
    /// How many captures the run reads.
    public var inputCount: Int
    /// Frames delivered so far, all captures together.
    public var framesRead: Int
    /// Bytes consumed so far, all captures together, or `nil` while reading a capture that cannot tell (a pipe).
    public var bytesConsumed: Int?
    /// Bytes in all captures together, or `nil` when a size is unknown (a pipe).
    public var totalBytes: Int?

    /// A progress report with every figure given.
    public init(inputIndex: Int, inputCount: Int, framesRead: Int, bytesConsumed: Int?, totalBytes: Int?) {
        self.inputIndex = inputIndex
        self.inputCount = inputCount
        self.framesRead = framesRead
        self.bytesConsumed = bytesConsumed
        self.totalBytes = totalBytes
    }

    /// The fraction of bytes consumed, from 0 to 1, when both figures are known.
    public var fraction: Double? {
        guard let bytesConsumed, let totalBytes else { return nil }
        return totalBytes == 0 ? 1 : min(1, Double(bytesConsumed) / Double(totalBytes))
    }
}

/// Reads several captures one after the other, in the order given, as one source of frames.
///
/// Every file is checked to exist when the sequence is made, so a mistyped last name fails before hours of
/// reading; each is opened only when its turn comes. A batch never spans two captures: between two calls,
/// `currentReader` names the capture and method the last frames came from.
public final class CaptureFileSequence: FrameSource {
    /// The captures, in reading order.
    public let inputs: [CaptureInput]
    /// The reader of the capture being read, or last read; `nil` before the first batch.
    public private(set) var currentReader: CaptureFileReader?

    private let allowsMapping: Bool
    /// Whether each reader opened from now on leaves its pages to the consumer (`CaptureFileReader.deferPageRelease`).
    var defersPageRelease = false
    /// Bytes in all inputs, `nil` if a size is unknown.
    private let totalBytes: Int?
    private var currentIndex = -1
    private var currentEnded = true
    private var framesInEarlierInputs = 0
    private var bytesInEarlierInputs = 0

    /// Prepares to read `inputs` in order.
    ///
    /// - Parameters:
    ///   - inputs: files, and at most once standard input.
    ///   - allowsMapping: passed to each `CaptureFileReader`.
    /// - Throws: `CaptureError` with reason `fileNotFound` or `unreadable` for the first file that is missing
    ///   or a directory (or an interface).
    public init(_ inputs: [CaptureInput], allowsMapping: Bool = true) throws(CaptureError) {
        var sizes = [Int?]()
        for input in inputs {
            switch input {
            case .standardInput:
                let info = try? FileDescriptor.standardInput.stat()
                sizes.append(info.flatMap { $0.type == .regular ? Int($0.size) : nil })
            case .file(let path):
                let info: Stat
                do {
                    info = try SystemCall.named("stat") { try FilePath(path).stat() }
                } catch {
                    let reason: CaptureError.Reason =
                        error.errno == .noSuchFileOrDirectory ? .fileNotFound : .unreadable
                    throw CaptureError(reason, input: input, call: error.call, message: error.message)
                }
                guard info.type != .directory else {
                    throw CaptureError(.unreadable, input: input, call: "stat", message: Errno.isDirectory.description)
                }
                sizes.append(info.type == .regular ? Int(info.size) : nil)
            case .interface:
                throw CaptureError(
                    .unreadable,
                    input: input,
                    call: "stat",
                    message: "an interface is read by LiveCapture"
                )
            }
        }
        self.inputs = inputs
        totalBytes = sizes.reduce(0 as Int?) { sum, size in sum.flatMap { sum in size.map { sum + $0 } } }
        self.allowsMapping = allowsMapping
    }

    /// Where the run stands now.
    public var progress: CaptureProgress {
        var consumed: Int? = bytesInEarlierInputs
        if let currentReader, !currentEnded {
            consumed = currentReader.bytesConsumed.map { bytesInEarlierInputs + $0 }
        }
        let frames = framesInEarlierInputs + (currentEnded ? 0 : currentReader?.framesRead ?? 0)
        return CaptureProgress(
            inputIndex: max(currentIndex, 0),
            inputCount: inputs.count,
            framesRead: frames,
            bytesConsumed: consumed,
            totalBytes: totalBytes
        )
    }

    public func readFrames(upTo limit: Int, _ body: (Frame) -> Void) throws(CaptureError) -> Int? {
        while true {
            let reader: CaptureFileReader
            if let currentReader, !currentEnded {
                reader = currentReader
            } else {
                guard currentIndex + 1 < inputs.count else { return nil }
                currentIndex += 1
                reader = try CaptureFileReader(inputs[currentIndex], allowsMapping: allowsMapping)
                if defersPageRelease { reader.deferPageRelease() }
                currentReader = reader
                currentEnded = false
            }
            if let count = try reader.readFrames(upTo: limit, body) { return count }
            currentEnded = true
            framesInEarlierInputs += reader.framesRead
            bytesInEarlierInputs += reader.totalBytes ?? reader.bytesConsumed ?? 0
        }
    }
}

@available(*, unavailable, message: "a sequence belongs to the task that reads it")
extension CaptureFileSequence: Sendable {}

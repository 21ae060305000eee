/// The engine's only clock: the capture time of its input, cut into resolution steps and sources epochs.
///
/// Dividing happens only when a step ends, not per packet (`step(of:)` divides once per step it is asked about).
struct StepClock {
    /// Nanoseconds of one step.
    let resolution: Int64
    /// Nanoseconds of one sources epoch: half the sources window, at least a step.
    let epochLength: Int64
    /// Capture time of the newest frame (or tick); `.min` before the first. Frames from the past are taken as
    /// happening now.
    private(set) var now: Int64 = .min
    /// Capture time of the first frame; `.min` before it.
    private(set) var start: Int64 = .min
    private(set) var step: Int64 = 0
    /// The sources epoch of `step` (or of the step being run).
    private(set) var epoch: Int64 = 0
    /// Start of the step after `step`.
    private var nextStepStart: Int64 = .min
    /// The step last asked of `step(of:)`, and its start and end.
    private var lastAsked: (step: Int64, start: Int64, end: Int64) = (0, 0, 0)

    init(resolution: Int64, epochLength: Int64) {
        self.resolution = resolution
        self.epochLength = epochLength
    }

    /// Whether a frame has been seen.
    var hasStarted: Bool { now != .min }

    /// The parity of the current sources epoch: which half of the per-epoch counters is counting.
    var parity: Int { Int(epoch & 1) }

    /// Moves `now` forward to `time`.
    /// - Returns: the step `time` falls in, when steps ended up to it and must run; nil otherwise.
    @inline(__always)
    mutating func advance(to time: Int64) -> Int64? {
        guard time > now else { return nil }
        if now == .min {
            start = time
            settle(at: time / resolution)
        }
        now = time
        return time >= nextStepStart ? time / resolution : nil
    }

    /// The step of the non-negative `time`, dividing only when it falls outside the step last asked about: on the
    /// SYN path (the step an attempt matures in), SYN after SYN falls in the same one.
    @inline(__always)
    mutating func step(of time: Int64) -> Int64 {
        if time >= lastAsked.start && time < lastAsked.end { return lastAsked.step }
        let step = time / resolution
        lastAsked = (step, step * resolution, step * resolution + resolution)
        return step
    }

    /// Enters step `step` while running it: it is the current step, in its own sources epoch, as a silence's steps
    /// run one by one.
    mutating func enter(_ step: Int64) {
        self.step = step
        epoch = step * resolution / epochLength
    }

    /// Makes `step` the current step once every step up to it has run.
    mutating func settle(at step: Int64) {
        self.step = step
        nextStepStart = (step + 1) * resolution
        // Epochs are counted from the start of the step: at most one step early, which no count notices.
        epoch = step * resolution / epochLength
    }
}

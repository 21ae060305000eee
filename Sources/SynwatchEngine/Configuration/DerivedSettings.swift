#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The configuration in the units the per-packet path and the steps use, derived again on a reload.
struct DerivedSettings {
    /// Handshake time-out, nanoseconds.
    let timeout: Int64
    /// Time-out of an attempt whose SYN was retransmitted, nanoseconds.
    let retransmittedTimeout: Int64
    /// Retransmission deadline, nanoseconds.
    let retransmissionDeadline: Int64
    /// The least delay of a SYN's retransmission, nanoseconds: the same SYN sooner is a copy.
    let minRetransmissionDelay: Int64
    /// Steps from the one an attempt matures in to one by which it surely passed its retransmission
    /// deadline: its SYN came at least one grace floor before the end of its maturity step.
    let deadlineSteps: Int64
    /// Steps from the one an attempt matures in to one by which its client has surely acknowledged an answer: the
    /// longest a handshake may take (`windows.completion_grace_ceiling`).
    let answerSteps: Int64
    /// Buckets of the handshake table swept per step, so the whole table is swept once per time-out.
    let handshakeSweepBuckets: Int
    /// Buckets of the connection table swept per step.
    let connectionSweepBuckets: Int
    /// Bits a source's target counter must have set to be a scan candidate.
    let scanCandidateBits: Int
    /// Weight of one step's measurement in a service's baseline.
    let baselineAlpha: Double
    /// Steps after which an idle engine has nothing left to decide: longer gaps are skipped.
    let settleSteps: Int64

    init(_ configuration: EngineConfiguration, handshakes: HandshakeTable, connections: ConnectionTable) {
        let windows = configuration.windows
        let detection = configuration.detection
        let resolution = windows.resolution.nanoseconds
        timeout = configuration.handshakes.timeout.nanoseconds
        retransmittedTimeout = configuration.handshakes.retransmittedTimeout.nanoseconds
        retransmissionDeadline = configuration.handshakes.retransmissionDeadline.nanoseconds
        minRetransmissionDelay = configuration.handshakes.minRetransmissionDelay.nanoseconds
        deadlineSteps =
            (retransmissionDeadline - windows.completionGraceFloor.nanoseconds + resolution - 1) / resolution
        answerSteps = (windows.completionGraceCeiling.nanoseconds + resolution - 1) / resolution
        handshakeSweepBuckets = handshakes.bucketsPerSweep(
            resolution: windows.resolution,
            timeout: configuration.handshakes.timeout
        )
        connectionSweepBuckets = connections.bucketsPerSweep(resolution: windows.resolution)
        scanCandidateBits = LinearCounter.bitsNeeded(for: configuration.scan.minTargets, of: 64)
        // Notice intervals only limit how often notices come: after two backscatter epochs of silence
        // there is nothing left to count.
        let longest = [
            windows.rate.nanoseconds + windows.completionGraceCeiling.nanoseconds + detection.quietPeriod.nanoseconds
                + retransmissionDeadline,
            windows.sources.nanoseconds, timeout, 2 * BackscatterTable.epochLength,
        ].max()!
        baselineAlpha = 1 - pow(2, -Double(resolution) / Double(configuration.baseline.halfLife.nanoseconds))
        settleSteps = longest / resolution + 2
    }
}

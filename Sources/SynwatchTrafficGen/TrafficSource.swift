/// A generator of one kind of traffic inside a scenario.
///
/// The scenario asks every source for the time of its next event and lets the earliest one plan that
/// event's segments (all at or after the event's time) into the shared schedule. Because events are
/// played in time order, the schedule's earliest segment is safe to write once no source has an earlier
/// event: the capture comes out in time order without sorting it.
protocol TrafficSource {
    /// The capture time of the next event, or nil when the source is done.
    var nextTime: Int64? { get }
    /// Plans the segments of the event at `nextTime` and moves on to the following event.
    mutating func playNext(into schedule: inout Schedule)
    /// Adds what this source wrote to the ground truth.
    func record(into truth: inout GroundTruth)
}

/// Switches a flood on and off: `on` seconds of traffic, then `off` seconds of silence, repeated.
public struct Pulse: Hashable, Sendable, Codable {
    public var on: Double
    public var off: Double

    /// A pulse of `on` seconds of traffic followed by `off` seconds of silence.
    public init(on: Double, off: Double) {
        self.on = on
        self.off = off
    }
}

/// The event times of a Poisson process of `rate` per second between `start` and `end`, optionally pulsed.
struct Arrivals {
    let start: Int64
    let end: Int64
    let rate: Double
    let pulse: (on: Int64, off: Int64)?
    /// Time elapsed while the process was on; mapped to capture time by skipping the off periods.
    private var activeTime: Int64 = 0

    init(start: Int64, end: Int64, rate: Double, pulse: Pulse? = nil) {
        self.start = start
        self.end = end
        self.rate = rate
        self.pulse = pulse.map { (Int64($0.on * 1e9), Int64($0.off * 1e9)) }
    }

    /// The next event time, or nil once it would fall at or after `end`.
    mutating func next(using rng: inout SeededRandom) -> Int64? {
        activeTime += rng.exponentialGap(rate: rate)
        let time: Int64
        if let pulse {
            time = start + activeTime / pulse.on * (pulse.on + pulse.off) + activeTime % pulse.on
        } else {
            time = start + activeTime
        }
        return time < end ? time : nil
    }

    /// The seconds during which the process is on between `start` and `end`.
    var activeSeconds: Double {
        let span = end - start
        guard let pulse else { return Double(span) / 1e9 }
        let cycle = pulse.on + pulse.off
        return Double(span / cycle * pulse.on + min(span % cycle, pulse.on)) / 1e9
    }
}

/// What every source needs from its scenario: the family, the address plan and the time frame.
struct ScenarioFrame {
    let family: AddressFamily
    let plan: AddressPlan
    /// Scenario start and end, ns since the epoch.
    let origin: Int64
    let end: Int64

    /// The capture-time window of a part that starts `start` seconds into the scenario and lasts `duration`.
    func window(start: Double, duration: Double?, part: String) throws -> (start: Int64, end: Int64) {
        let from = origin + Int64((start * 1e9).rounded())
        let to = duration.map { from + Int64(($0 * 1e9).rounded()) } ?? end
        guard start >= 0, from < end, to > from else {
            throw TrafficGenError.invalidConfiguration(
                "\(part) must start inside the scenario (at \(start) s) and last more than 0 s"
            )
        }
        return (from, min(to, end))
    }

    /// Checks that an address given for `part` belongs to the scenario's family.
    func check(_ address: NetAddress, _ part: String) throws {
        guard address.family == family else {
            throw TrafficGenError.invalidConfiguration("\(part) address \(address) is not \(family.rawValue)")
        }
    }

    func check(_ prefix: NetPrefix, _ part: String) throws {
        guard prefix.family == family else {
            throw TrafficGenError.invalidConfiguration("\(part) prefix \(prefix) is not \(family.rawValue)")
        }
    }
}

/// Capture-time nanoseconds as the fractional seconds used in ground truth and events.
func seconds(_ nanoseconds: Int64) -> Double { Double(nanoseconds) / 1e9 }

/// An ephemeral port of the Linux range 32768–60999.
func ephemeralPort(_ rng: inout SeededRandom) -> UInt16 { UInt16(32768 + rng.below(28232)) }

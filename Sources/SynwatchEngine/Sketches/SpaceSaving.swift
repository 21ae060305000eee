/// One counter of a top-sources sketch.

struct TopEntry: Sendable {
    var address: IPAddress
    var count: Int32
    /// The count inherited when the address took the counter over: `count - error` is certain.
    var error: Int32

    static let empty = TopEntry(address: .zero, count: 0, error: 0)
}

/// Space-Saving heavy hitters over counters that live in a table's flat storage.
///
/// A sketch of `k` counters finds every source holding more than 1/k of the count; a newcomer
/// takes over the smallest counter and inherits its count as its error. Reports give the certain
/// part, `count - error`, so the one-SYN sources of a spoofed flood do not pose as heavy hitters.
/// Counts go down again when a source's handshake completes, so they track half-open attempts.

enum SpaceSaving {
    /// Counts `weight` half-open attempts of `address`.
    /// - Complexity: O(k).
    static func add(_ address: IPAddress, weight: Int32 = 1, to entries: UnsafeMutablePointer<TopEntry>, k: Int) {
        var smallest = 0
        var smallestCount = Int32.max
        for index in 0..<k {
            let entry = entries[index]
            if entry.address == address, entry.count > 0 {
                entries[index].count = entry.count &+ weight
                return
            }
            if entry.count < smallestCount {
                smallestCount = entry.count
                smallest = index
            }
        }
        entries[smallest] = TopEntry(address: address, count: smallestCount &+ weight, error: smallestCount)
    }

    /// Takes back `weight` attempts of `address` that completed or were reset, if it is counted.
    /// - Complexity: O(k).
    static func remove(_ address: IPAddress, weight: Int32 = 1, from entries: UnsafeMutablePointer<TopEntry>, k: Int) {
        for index in 0..<k where entries[index].address == address && entries[index].count > 0 {
            entries[index].count = max(0, entries[index].count - weight)
            entries[index].error = min(entries[index].error, entries[index].count)
            return
        }
    }

    /// The largest certain counts of the union of several sketches, largest first. A source with a
    /// single half-open attempt is no heavy hitter: none below two.
    static func top(_ count: Int, of sketches: [UnsafeMutablePointer<TopEntry>], k: Int) -> [SourceCount] {
        var totals = [IPAddress: Int]()
        for sketch in sketches {
            for index in 0..<k where sketch[index].count > sketch[index].error {
                totals[sketch[index].address, default: 0] += Int(sketch[index].count - sketch[index].error)
            }
        }
        return totals.filter { $0.value >= 2 }.map { SourceCount(address: $0.key, halfOpen: $0.value) }
            .sorted { $0.halfOpen != $1.halfOpen ? $0.halfOpen > $1.halfOpen : $0.address < $1.address }
            .prefix(count)
            .map { $0 }
    }
}

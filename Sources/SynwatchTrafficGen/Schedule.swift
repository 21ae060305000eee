/// The segments generators have planned but not yet written, ordered by capture time.
///
/// A binary min-heap on (time, insertion order): ties keep the order in which they were planned, so the
/// output does not depend on heap internals and a seed always gives the same file.
struct Schedule {
    private var heap: [(segment: Segment, order: UInt64)] = []
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    /// The capture time of the earliest planned segment.
    var earliestTime: Int64? { heap.first?.segment.time }

    /// Plans `segment` for writing at its `time`.
    ///
    /// - Complexity: O(log n).
    mutating func add(_ segment: Segment) {
        heap.append((segment, nextOrder))
        nextOrder += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest segment.
    ///
    /// - Complexity: O(log n).
    mutating func removeEarliest() -> Segment? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let earliest = heap.removeLast().segment
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            var smallest = left
            if left + 1 < heap.count && precedes(left + 1, left) { smallest = left + 1 }
            guard precedes(smallest, parent) else { break }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
        return earliest
    }

    private func precedes(_ first: Int, _ second: Int) -> Bool {
        let (a, b) = (heap[first], heap[second])
        return a.segment.time != b.segment.time ? a.segment.time < b.segment.time : a.order < b.order
    }
}

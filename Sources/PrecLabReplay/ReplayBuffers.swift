/// A heap buffer owned by the replay state. Kept as a raw pointer so the step kernels
/// run without bounds or exclusivity checks and can be shared by worker threads that
/// touch disjoint ranges.
struct OwnedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(repeating value: Element, count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: value, count: count)
    }

    init(copying source: UnsafeBufferPointer<Element>) {
        count = source.count
        pointer = .allocate(capacity: max(count, 1))
        if let base = source.baseAddress { pointer.initialize(from: base, count: count) }
    }

    subscript(index: Int) -> Element {
        @inline(__always) get { pointer[index] }
        @inline(__always) nonmutating set { pointer[index] = newValue }
    }

    func release() {
        pointer.deinitialize(count: count)
        pointer.deallocate()
    }
}

/// A contiguous piece of one tensor: the unit of parallel work. Units never cross a
/// tensor boundary and their bounds depend only on the tensor shapes, so per-unit
/// results combined in unit order do not depend on the thread count.
struct WorkUnit: Sendable {
    /// Index of the tensor in header order.
    let tensor: Int
    /// Range in the flat (all tensors concatenated) element space.
    let range: Range<Int>
    /// Flat index of the tensor's first element.
    let tensorStart: Int

    /// Elements per unit: large enough to amortise dispatch, small enough that the
    /// state and update slices of a unit stay in L2 while each policy loop runs.
    static let size = 16_384

    static func units(tensorCounts: [Int]) -> [WorkUnit] {
        var units: [WorkUnit] = []
        var start = 0
        for (tensor, count) in tensorCounts.enumerated() {
            var offset = 0
            while offset < count {
                let end = min(count, offset + size)
                units.append(WorkUnit(tensor: tensor, range: (start + offset)..<(start + end), tensorStart: start))
                offset = end
            }
            start += count
        }
        return units
    }
}

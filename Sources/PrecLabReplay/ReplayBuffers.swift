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

/// A contiguous piece of one tensor: the unit of parallel work, and the tile of the
/// tile-major traversal. Units never cross a tensor boundary, start at multiples of the
/// tile size within their tensor, and their bounds depend only on the tensor shapes and
/// the tile size, so per-unit results combined in unit order do not depend on the
/// thread count.
struct WorkUnit: Sendable {
    /// Index of the tensor in header order.
    let tensor: Int
    /// Range in the flat (all tensors concatenated) element space.
    let range: Range<Int>
    /// Flat index of the tensor's first element.
    let tensorStart: Int
    /// Index of the unit's first word in the per-element bit sets (each tensor's bits
    /// start on a word boundary, and a unit of a multiple of 64 elements owns its words).
    let firstWord: Int

    /// The units of `size` elements (a multiple of 64) covering every tensor.
    static func units(tensorCounts: [Int], size: Int) -> [WorkUnit] {
        precondition(size > 0 && size % 64 == 0, "tile size must be a positive multiple of 64")
        var units: [WorkUnit] = []
        var start = 0, word = 0
        for (tensor, count) in tensorCounts.enumerated() {
            var offset = 0
            while offset < count {
                let end = min(count, offset + size)
                units.append(WorkUnit(tensor: tensor, range: (start + offset)..<(start + end), tensorStart: start,
                                      firstWord: word + offset / 64))
                offset = end
            }
            start += count
            word += (count + 63) / 64
        }
        return units
    }

    /// Words of a bit set with one bit per element, each tensor starting on a word.
    static func wordCount(tensorCounts: [Int]) -> Int {
        tensorCounts.reduce(0) { $0 + ($1 + 63) / 64 }
    }
}

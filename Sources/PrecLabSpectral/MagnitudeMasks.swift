/// Top-α and bottom-α selections by magnitude, with exact sizes and deterministic ties.
///
/// A selection holds exactly round(α·n) positions, where α·n is computed in float64 and
/// rounded half away from zero (Swift's `.toNearestOrAwayFromZero`: 2.5 -> 3). Among
/// equal magnitudes the lower index (row-major for matrices) is taken first, so the
/// mask is a pure function of the values.
public enum MagnitudeMasks {
    /// round(α·n), half away from zero, clamped to 0...n.
    public static func selectionSize(fraction alpha: Double, of count: Int) -> Int {
        precondition(alpha >= 0 && alpha <= 1, "fraction must lie in [0, 1]")
        let size = Int((alpha * Double(count)).rounded(.toNearestOrAwayFromZero))
        return min(count, max(0, size))
    }

    /// The round(α·n) positions of largest `values`; ties go to the lower index.
    /// `values` must not contain NaN.
    public static func largest(_ values: [Double], fraction alpha: Double) -> BitMask {
        select(values, size: selectionSize(fraction: alpha, of: values.count), largest: true)
    }

    /// The round(α·n) positions of smallest `values`; ties go to the lower index.
    public static func smallest(_ values: [Double], fraction alpha: Double) -> BitMask {
        select(values, size: selectionSize(fraction: alpha, of: values.count), largest: false)
    }

    /// Exactly `size` positions: every value strictly beyond the threshold (the
    /// size-th value in the chosen order), then threshold ties by ascending index.
    public static func select(_ values: [Double], size: Int, largest: Bool) -> BitMask {
        let count = values.count
        precondition(size >= 0 && size <= count, "selection size out of range")
        var mask = BitMask(count: count)
        if size == 0 { return mask }
        var scratch = values
        // Ascending rank of the threshold value.
        let rank = largest ? count - size : size - 1
        let threshold = scratch.withUnsafeMutableBufferPointer { quickselect($0, rank: rank) }
        var taken = 0
        for index in 0..<count {
            let value = values[index]
            if largest ? value > threshold : value < threshold {
                mask.insert(index)
                taken += 1
            }
        }
        for index in 0..<count where taken < size && values[index] == threshold {
            mask.insert(index)
            taken += 1
        }
        return mask
    }

    /// The value of ascending rank `rank` (0-based), reordering `buffer`. Three-way
    /// partitioning keeps the many ties of low-precision weights cheap.
    static func quickselect(_ buffer: UnsafeMutableBufferPointer<Double>, rank: Int) -> Double {
        var low = 0
        var high = buffer.count - 1
        while true {
            if low >= high { return buffer[low] }
            let middle = low + (high - low) / 2
            let pivot = medianOfThree(buffer[low], buffer[middle], buffer[high])
            // Partition low...high into < pivot, == pivot, > pivot.
            var lessEnd = low, scan = low, greaterStart = high
            while scan <= greaterStart {
                let value = buffer[scan]
                if value < pivot {
                    buffer.swapAt(lessEnd, scan)
                    lessEnd += 1
                    scan += 1
                } else if value > pivot {
                    buffer.swapAt(scan, greaterStart)
                    greaterStart -= 1
                } else {
                    scan += 1
                }
            }
            if rank < lessEnd {
                high = lessEnd - 1
            } else if rank > greaterStart {
                low = greaterStart + 1
            } else {
                return pivot
            }
        }
    }

    private static func medianOfThree(_ a: Double, _ b: Double, _ c: Double) -> Double {
        max(min(a, b), min(max(a, b), c))
    }
}

extension Matrix {
    /// |element| in row-major order (the index order of masks).
    public var rowMajorMagnitudes: [Double] {
        var result = [Double](repeating: 0, count: elementCount)
        for i in 0..<rows {
            for j in 0..<columns { result[i * columns + j] = abs(storage[i + j * rows]) }
        }
        return result
    }
}

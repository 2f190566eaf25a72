/// Statistics of update masks: overlaps, cross-run Jaccard with its independent
/// Bernoulli baseline, row and column update ratios, and consensus over runs.
public enum MaskStatistics {
    /// |selection ∩ mask| / |mask|: the share of updated positions that fall in
    /// `selection`. Nil when the mask is empty. For a selection of density α that is
    /// independent of the mask, the expected value is α (the random baseline).
    public static func overlap(_ selection: BitMask, with mask: BitMask) -> Double? {
        let total = mask.population
        guard total > 0 else { return nil }
        return Double(selection.intersectionCount(mask)) / Double(total)
    }

    /// |A ∩ B| / |A ∪ B|; nil when both masks are empty.
    public static func jaccard(_ a: BitMask, _ b: BitMask) -> Double? {
        let union = a.unionCount(b)
        guard union > 0 else { return nil }
        return Double(a.intersectionCount(b)) / Double(union)
    }

    /// The expected Jaccard of two independent Bernoulli masks of densities p and q:
    /// pq / (p + q - pq). Nil when p = q = 0.
    public static func bernoulliJaccard(_ p: Double, _ q: Double) -> Double? {
        let denominator = p + q - p * q
        guard denominator > 0 else { return nil }
        return p * q / denominator
    }

    /// ρ_i = mean_j M_ij for a rows×columns mask (row-major positions).
    public static func rowRatios(_ mask: BitMask, rows: Int, columns: Int) -> [Double] {
        precondition(mask.count == rows * columns, "mask does not match the shape")
        guard columns > 0 else { return Array(repeating: 0, count: rows) }
        var result = [Double](repeating: 0, count: rows)
        for i in 0..<rows {
            result[i] = Double(countSet(mask, from: i * columns, to: (i + 1) * columns)) / Double(columns)
        }
        return result
    }

    /// κ_j = mean_i M_ij for a rows×columns mask.
    public static func columnRatios(_ mask: BitMask, rows: Int, columns: Int) -> [Double] {
        precondition(mask.count == rows * columns, "mask does not match the shape")
        var counts = [Int](repeating: 0, count: columns)
        guard rows > 0, columns > 0 else { return Array(repeating: 0, count: columns) }
        counts.withUnsafeMutableBufferPointer { target in
            mask.forEachPosition { target[$0 % columns] += 1 }
        }
        return counts.map { Double($0) / Double(rows) }
    }

    /// Set bits in positions start..<end.
    static func countSet(_ mask: BitMask, from start: Int, to end: Int) -> Int {
        if start >= end { return 0 }
        var total = 0
        var position = start
        while position < end {
            let wordIndex = position >> 6
            let offset = position & 63
            let available = min(64 - offset, end - position)
            var word = mask.words[wordIndex] >> UInt64(offset)
            if available < 64 { word &= (1 << UInt64(available)) - 1 }
            total += word.nonzeroBitCount
            position += available
        }
        return total
    }
}

/// Min, max, mean, population standard deviation and coefficient of variation of a
/// list of ratios; the CV of row ratios high against that of column ratios is the
/// stripe pattern [MK] describes.
public struct RatioSummary: Sendable, Equatable, Codable {
    public let count: Int
    public let minimum: Double
    public let maximum: Double
    public let mean: Double
    public let standardDeviation: Double

    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else {
            minimum = 0; maximum = 0; mean = 0; standardDeviation = 0
            return
        }
        minimum = values.min()!
        maximum = values.max()!
        let average = values.reduce(0, +) / Double(values.count)
        mean = average
        let variance = values.reduce(0) { $0 + ($1 - average) * ($1 - average) } / Double(values.count)
        standardDeviation = variance.squareRoot()
    }

    /// standard deviation / mean; nil when the mean is 0.
    public var coefficientOfVariation: Double? {
        mean == 0 ? nil : standardDeviation / mean
    }
}

/// Consensus of R runs' masks over one tensor: C_ij = mean_r M_ij.
public struct Consensus: Sendable, Codable {
    public let rows: Int
    public let columns: Int
    public let runs: Int
    /// How many runs updated each position, row-major.
    public let counts: [UInt16]

    public init(masks: [BitMask], rows: Int, columns: Int) {
        precondition(!masks.isEmpty, "consensus needs at least one run")
        precondition(masks.count <= Int(UInt16.max), "too many runs")
        precondition(masks.allSatisfy { $0.count == rows * columns }, "mask does not match the shape")
        self.rows = rows
        self.columns = columns
        runs = masks.count
        var counts = [UInt16](repeating: 0, count: rows * columns)
        counts.withUnsafeMutableBufferPointer { target in
            for mask in masks { mask.forEachPosition { target[$0] &+= 1 } }
        }
        self.counts = counts
    }

    /// C_ij in row-major order.
    public var ratios: [Double] { counts.map { Double($0) / Double(runs) } }

    /// histogram[c] = number of positions updated by exactly c runs, c = 0...R.
    public var histogram: [Int] {
        var result = [Int](repeating: 0, count: runs + 1)
        for count in counts { result[Int(count)] += 1 }
        return result
    }

    /// Fraction of positions every run updated.
    public var unanimousFraction: Double {
        counts.isEmpty ? 0 : Double(histogram[runs]) / Double(counts.count)
    }

    /// Mean consensus per row (= mean over runs of each run's row ratio).
    public var rowMeans: [Double] {
        (0..<rows).map { i in
            guard columns > 0 else { return 0 }
            var total = 0
            for j in 0..<columns { total += Int(counts[i * columns + j]) }
            return Double(total) / Double(columns * runs)
        }
    }

    /// Mean consensus per column.
    public var columnMeans: [Double] {
        var totals = [Int](repeating: 0, count: columns)
        for i in 0..<rows {
            for j in 0..<columns { totals[j] += Int(counts[i * columns + j]) }
        }
        return totals.map { rows == 0 ? 0 : Double($0) / Double(rows * runs) }
    }
}

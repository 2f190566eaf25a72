import PrecLabSupport

/// Cross-run consistency of one tensor's update masks (R >= 2 runs from one base):
/// pairwise Jaccard against the independent-Bernoulli baseline and against the
/// magnitude-stratified baseline (same per-binade densities, otherwise independent),
/// consensus and the row/column structure of the updates.
public struct TensorConsistency: Sendable, Codable {
    public let rows: Int
    public let columns: Int
    /// Density of each run's mask.
    public let densities: [Double]
    /// R×R Jaccard matrix (diagonal 1, nil where both masks are empty).
    public let jaccard: [[Double?]]
    /// R×R baseline pq / (p + q - pq).
    public let baseline: [[Double?]]
    /// R×R magnitude-stratified baseline Σ_s n_s p_s q_s / Σ_s n_s (p_s + q_s − p_s q_s)
    /// with the runs' densities p_s, q_s in each binade stratum s of the stored base
    /// (`MaskStatistics.stratifiedJaccard`); nil where both masks are empty.
    public let jaccardMagnitude: [[Double?]]
    public let consensus: Consensus
    /// Summaries of the consensus row means and column means.
    public let rowRatios: RatioSummary
    public let columnRatios: RatioSummary

    /// `masks` are row-major rows×columns masks, one per run (a 1-D tensor is 1×n);
    /// `strata` the binade strata of the stored base (row-major, same size).
    public init(masks: [BitMask], rows: Int, columns: Int, strata: MagnitudeStrata) {
        precondition(strata.count == rows * columns, "strata do not match the shape")
        precondition(masks.count >= 1, "consistency needs at least one run")
        self.rows = rows
        self.columns = columns
        densities = masks.map(\.density)
        let r = masks.count
        var jaccard = [[Double?]](repeating: [Double?](repeating: nil, count: r), count: r)
        var baseline = jaccard
        var magnitude = jaccard
        let perStratum = masks.map { strata.counts(in: $0) }
        for i in 0..<r {
            for j in i..<r {
                let value = i == j ? (masks[i].population > 0 ? 1.0 : nil) : MaskStatistics.jaccard(masks[i], masks[j])
                jaccard[i][j] = value
                jaccard[j][i] = value
                let expected = MaskStatistics.bernoulliJaccard(densities[i], densities[j])
                baseline[i][j] = expected
                baseline[j][i] = expected
                let stratified = StratifiedBaseline.jaccard(sizes: strata.sizes, first: perStratum[i], second: perStratum[j])
                magnitude[i][j] = stratified
                magnitude[j][i] = stratified
            }
        }
        self.jaccard = jaccard
        self.baseline = baseline
        jaccardMagnitude = magnitude
        consensus = Consensus(masks: masks, rows: rows, columns: columns)
        rowRatios = RatioSummary(consensus.rowMeans)
        columnRatios = RatioSummary(consensus.columnMeans)
    }

    /// Mean of the defined off-diagonal Jaccard values; nil with fewer than two runs.
    public var meanJaccard: Double? { offDiagonalMean(jaccard) }
    /// Mean of the off-diagonal baselines.
    public var meanBaseline: Double? { offDiagonalMean(baseline) }
    /// Mean of the off-diagonal magnitude-stratified baselines.
    public var meanJaccardMagnitude: Double? { offDiagonalMean(jaccardMagnitude) }

    private func offDiagonalMean(_ matrix: [[Double?]]) -> Double? {
        var total = 0.0
        var count = 0
        for i in matrix.indices {
            for j in matrix.indices where j != i {
                if let value = matrix[i][j] { total += value; count += 1 }
            }
        }
        return count == 0 ? nil : total / Double(count)
    }
}

extension Consensus {
    /// The consensus averaged over blocks so that the grid has at most
    /// `maxRows`×`maxColumns` cells (for heat maps of large tensors). Block edges are
    /// floor(i·rows / gridRows), so every entry lands in exactly one cell.
    public func downsampled(maxRows: Int, maxColumns: Int) -> [[Double]] {
        let gridRows = max(1, min(rows, maxRows))
        let gridColumns = max(1, min(columns, maxColumns))
        guard rows > 0, columns > 0 else { return [] }
        var sums = [[Double]](repeating: [Double](repeating: 0, count: gridColumns), count: gridRows)
        var cells = [[Int]](repeating: [Int](repeating: 0, count: gridColumns), count: gridRows)
        for i in 0..<rows {
            let gi = i * gridRows / rows
            for j in 0..<columns {
                let gj = j * gridColumns / columns
                sums[gi][gj] += Double(counts[i * columns + j])
                cells[gi][gj] += 1
            }
        }
        for gi in 0..<gridRows {
            for gj in 0..<gridColumns {
                sums[gi][gj] = cells[gi][gj] == 0 ? 0 : sums[gi][gj] / Double(cells[gi][gj] * runs)
            }
        }
        return sums
    }
}

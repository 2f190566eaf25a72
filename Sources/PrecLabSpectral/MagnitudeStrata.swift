import PrecLabSupport

/// The binade stratum (`MagnitudeStratum`) of every element of a tensor's stored base,
/// in row-major order, with the stratum sizes n_s: the input of the magnitude-stratified
/// baselines of overlaps and Jaccard.
public struct MagnitudeStrata: Sendable, Equatable, Codable {
    /// Stratum of each element, row-major.
    public let labels: [UInt16]
    /// n_s: elements per stratum, `MagnitudeStratum.count` entries.
    public let sizes: [Int]

    public var count: Int { labels.count }

    /// Strata of explicit labels (each below `MagnitudeStratum.count`).
    public init(labels: [UInt16]) {
        var sizes = [Int](repeating: 0, count: MagnitudeStratum.count)
        for label in labels { sizes[Int(label)] += 1 }
        self.labels = labels
        self.sizes = sizes
    }

    /// Strata of stored values (row-major, decoded exactly from codes of a format whose
    /// smallest normal is `minimumNormal`).
    public init(storedValues: [Double], minimumNormal: Double) {
        self.init(labels: storedValues.map { UInt16(MagnitudeStratum.of($0, minimumNormal: minimumNormal)) })
    }

    /// Strata of a stored matrix's elements (row-major positions, as masks).
    public init(storedMatrix matrix: Matrix, minimumNormal: Double) {
        var labels = [UInt16](repeating: 0, count: matrix.elementCount)
        for i in 0..<matrix.rows {
            for j in 0..<matrix.columns {
                labels[i * matrix.columns + j] = UInt16(MagnitudeStratum.of(matrix[i, j], minimumNormal: minimumNormal))
            }
        }
        self.init(labels: labels)
    }

    /// Set positions of `mask` per stratum.
    public func counts(in mask: BitMask) -> [Int] {
        precondition(mask.count == labels.count, "mask does not match the strata")
        var counts = [Int](repeating: 0, count: MagnitudeStratum.count)
        labels.withUnsafeBufferPointer { labels in
            counts.withUnsafeMutableBufferPointer { target in
                mask.forEachPosition { target[Int(labels[$0])] += 1 }
            }
        }
        return counts
    }
}

extension MaskStatistics {
    /// The magnitude-stratified expectation of `overlap(selection, with: mask)`:
    /// Σ_s (c_s / n_s) x_s / Σ_s c_s (see `StratifiedBaseline.overlap`). Nil when the
    /// mask is empty.
    public static func stratifiedOverlap(_ selection: BitMask, with mask: BitMask, strata: MagnitudeStrata) -> Double? {
        StratifiedBaseline.overlap(sizes: strata.sizes, changed: strata.counts(in: mask),
                                   selected: strata.counts(in: selection))
    }

    /// The magnitude-stratified expectation of `jaccard(a, b)` for masks drawn
    /// independently with the same per-stratum densities (see
    /// `StratifiedBaseline.jaccard`). Nil when both masks are empty.
    public static func stratifiedJaccard(_ a: BitMask, _ b: BitMask, strata: MagnitudeStrata) -> Double? {
        StratifiedBaseline.jaccard(sizes: strata.sizes, first: strata.counts(in: a), second: strata.counts(in: b))
    }
}

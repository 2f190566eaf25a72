/// The binade strata behind the magnitude-stratified baselines (docs/metrics.md,
/// "Reading overlaps: precision versus structure").
///
/// Whether a stored low-precision weight can change depends on its half-ULP, which is
/// fixed by the binade (exponent field) of the stored value. A baseline that keeps the
/// per-binade change rate but forgets everything else is the expectation of a metric
/// under "precision alone": within a binade every element is equally likely to change.
public enum MagnitudeStratum {
    /// Stratum of ±0.
    public static let zero = 0
    /// Stratum of every subnormal value (0 < |v| < the format's smallest normal).
    public static let subnormal = 1
    /// Stratum of ±Inf and NaN.
    public static let nonFinite = 2
    /// Normal values: `normalOffset + floor(log2 |v|) + 1074`, one stratum per binade.
    static let normalOffset = 3
    /// Number of possible strata (every float64 binade has one).
    public static let count = normalOffset + 1074 + 1024

    /// The stratum of a stored value `value` (decoded exactly from its code) in a format
    /// whose smallest positive normal is `minimumNormal`. For a normal value the binade
    /// floor(log2 |v|) is the exponent field minus the bias, so the stratum is the
    /// exponent field; the sign is ignored.
    @inline(__always)
    public static func of(_ value: Double, minimumNormal: Double) -> Int {
        let magnitude = abs(value)
        if magnitude == 0 { return zero }
        guard magnitude.isFinite else { return nonFinite }
        if magnitude < minimumNormal { return subnormal }
        return normalOffset + Int(magnitude.exponent) + 1074
    }
}

/// Expectations of overlap and Jaccard when updates depend on the weight's binade only.
/// Inputs are per-stratum counts (index = stratum), all of the same length.
public enum StratifiedBaseline {
    /// E|X ∩ M| / |M| when M keeps its per-stratum counts but is otherwise independent
    /// of X: Σ_s (c_s / n_s) x_s / Σ_s c_s, with n_s elements, c_s changed and x_s in the
    /// selection X in stratum s. Nil when nothing changed.
    public static func overlap(sizes: [Int], changed: [Int], selected: [Int]) -> Double? {
        precondition(sizes.count == changed.count && sizes.count == selected.count, "strata counts differ in length")
        var expected = 0.0
        var total = 0
        for s in sizes.indices where changed[s] > 0 {
            expected += Double(changed[s]) / Double(sizes[s]) * Double(selected[s])
            total += changed[s]
        }
        return total == 0 ? nil : expected / Double(total)
    }

    /// The Jaccard of two masks drawn independently with per-stratum densities
    /// p_s = a_s / n_s and q_s = b_s / n_s: Σ_s n_s p_s q_s / Σ_s n_s (p_s + q_s − p_s q_s)
    /// (the ratio of the expected intersection to the expected union). Nil when both
    /// masks are empty.
    public static func jaccard(sizes: [Int], first: [Int], second: [Int]) -> Double? {
        precondition(sizes.count == first.count && sizes.count == second.count, "strata counts differ in length")
        var intersection = 0.0, union = 0.0
        for s in sizes.indices where sizes[s] > 0 && (first[s] > 0 || second[s] > 0) {
            let n = Double(sizes[s])
            let p = Double(first[s]) / n, q = Double(second[s]) / n
            intersection += n * p * q
            union += n * (p + q - p * q)
        }
        return union > 0 ? intersection / union : nil
    }
}

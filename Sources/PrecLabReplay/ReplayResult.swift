/// Visible-change counts of a policy or of the null model, and the ratios derived
/// from them.
public protocol VisibleCounts {
    var visibleChanged: Int { get }
    /// Visible entries inside the bottom-α |W0| mask, one per configured α.
    var visibleInLowMagnitude: [Int] { get }
}

extension VisibleCounts {
    public func sparsity(params: Int) -> Double {
        params == 0 ? 1 : 1 - Double(visibleChanged) / Double(params)
    }

    /// |visible ∩ bottom-α| / |visible| for each α; NaN when nothing is visible.
    public var lowMagnitudeOverlap: [Double] {
        visibleInLowMagnitude.map { visibleChanged == 0 ? .nan : Double($0) / Double(visibleChanged) }
    }
}

/// What one policy did to one tensor (or to all of them, in the total).
public struct PolicyMetrics: VisibleCounts, Sendable, Equatable, Codable {
    /// Entries whose stored bits differ from the stored base.
    public var visibleChanged: Int
    /// Entries truly changed (fp32 truth differs from the base) but not visible.
    public var hidden: Int
    /// The hidden entries split by what hid them (they sum to `hidden`); I is the
    /// rounding interval of the stored base (the reals whose nearest-even code is it):
    /// the truth never left I (a genuinely small path) ...
    public var hiddenNeverLeft: Int = 0
    /// ... left I after some step but ended inside it (a cancelled walk) ...
    public var hiddenReturned: Int = 0
    /// ... ended outside I, yet storage did not change: the policy lost it. Always 0
    /// for master and fp32.
    public var hiddenSwamped: Int = 0
    /// Visible entries whose stored change has the opposite sign to the truth's net
    /// change (stochastic-rounding noise, or a policy gone astray).
    public var spurious: Int = 0
    /// Σ (ΔW_policy - ΔW_true)², for the relative error.
    public var squaredErrorSum: Double
    /// Σ ΔW_true², the denominator of the relative error.
    public var squaredTruthSum: Double
    /// Final stored weights that are NaN or infinite.
    public var nonFiniteWeights: Int
    /// Visible entries per visibility-histogram bin (see `VisibilityHistogram`).
    public var visibleByBin: [Int]
    /// Visible entries inside the bottom-α |W0| mask, one per configured α.
    public var visibleInLowMagnitude: [Int]
    /// Visible entries per |W0| magnitude bin (see `MagnitudeBins`).
    public var visibleByMagnitude: [Int]
    /// Per configured α: the expected number of visible entries inside the bottom-α
    /// |W0| mask if visibility depended only on the binade of the stored base,
    /// Σ_s (c_s / n_s) x_s (c_s visible, n_s elements, x_s in the mask, in binade s).
    public var expectedInLowMagnitude: [Double]

    /// The magnitude-stratified baseline of `lowMagnitudeOverlap`, per α: expected /
    /// visible (NaN when nothing is visible). Totals pool the expected counts, as
    /// the observed overlap pools the visible ones.
    public var lowMagnitudeOverlapMagnitude: [Double] {
        expectedInLowMagnitude.map { visibleChanged == 0 ? .nan : $0 / Double(visibleChanged) }
    }

    /// ||ΔW_policy - ΔW_true||_F / ||ΔW_true||_F; 0 when nothing truly changed and the
    /// policy changed nothing either, +inf when only the policy moved.
    public var relativeError: Double {
        if squaredTruthSum > 0 { return (squaredErrorSum / squaredTruthSum).squareRoot() }
        return squaredErrorSum == 0 ? 0 : .infinity
    }



    static func zero(bins: Int, alphas: Int) -> PolicyMetrics {
        PolicyMetrics(visibleChanged: 0, hidden: 0, squaredErrorSum: 0, squaredTruthSum: 0,
                      nonFiniteWeights: 0, visibleByBin: Array(repeating: 0, count: bins),
                      visibleInLowMagnitude: Array(repeating: 0, count: alphas),
                      visibleByMagnitude: Array(repeating: 0, count: MagnitudeBins.binCount),
                      expectedInLowMagnitude: Array(repeating: 0, count: alphas))
    }

    mutating func add(_ other: PolicyMetrics) {
        visibleChanged += other.visibleChanged
        hidden += other.hidden
        hiddenNeverLeft += other.hiddenNeverLeft
        hiddenReturned += other.hiddenReturned
        hiddenSwamped += other.hiddenSwamped
        spurious += other.spurious
        squaredErrorSum += other.squaredErrorSum
        squaredTruthSum += other.squaredTruthSum
        nonFiniteWeights += other.nonFiniteWeights
        for index in visibleByBin.indices { visibleByBin[index] += other.visibleByBin[index] }
        for index in visibleInLowMagnitude.indices {
            visibleInLowMagnitude[index] += other.visibleInLowMagnitude[index]
        }
        for index in visibleByMagnitude.indices { visibleByMagnitude[index] += other.visibleByMagnitude[index] }
        for index in expectedInLowMagnitude.indices { expectedInLowMagnitude[index] += other.expectedInLowMagnitude[index] }
    }
}

/// The null model's master-policy counts (kept for the `null_permute` keys; every
/// policy's null metrics are in `TensorReplayResult.nullPolicies`).
public struct NullModelMetrics: VisibleCounts, Sendable, Equatable, Codable {
    public var visibleChanged: Int
    public var visibleInLowMagnitude: [Int]
    /// Visible entries per |W0| magnitude bin (`MagnitudeBins`).
    public var visibleByMagnitude: [Int]


}

/// Octave bins of a non-negative quantity: bin 0 holds zeros, bin 1 values below
/// 2^lowestExponent, then one bin per octave [2^e, 2^(e+1)), and the last bin
/// 2^(highestExponent+1) and above (infinities and NaN included).
public struct OctaveBins: Sendable {
    public let lowestExponent: Int
    public let highestExponent: Int

    public init(lowestExponent: Int, highestExponent: Int) {
        self.lowestExponent = lowestExponent
        self.highestExponent = highestExponent
    }

    public var binCount: Int { highestExponent - lowestExponent + 4 }

    /// Human-readable bin labels, in bin order.
    public var labels: [String] {
        var labels = ["0", "<2^\(lowestExponent)"]
        for exponent in lowestExponent...highestExponent { labels.append("2^\(exponent)") }
        labels.append(">=2^\(highestExponent + 1)")
        return labels
    }

    /// The octave's lower end as a power of two, for bins 2 ..< binCount - 1.
    public func exponent(ofBin bin: Int) -> Int { bin - 2 + lowestExponent }

    /// The bin of a magnitude (non-negative, or NaN which maps to the top bin).
    @inline(__always) public func bin(ofMagnitude magnitude: Double) -> Int {
        if magnitude == 0 { return 0 }
        guard magnitude.isFinite else { return binCount - 1 }
        let exponent = Int(magnitude.exponent)  // floor(log2), exact
        if exponent < lowestExponent { return 1 }
        if exponent > highestExponent { return binCount - 1 }
        return exponent - lowestExponent + 2
    }
}

/// Bins of |ΔW_true| / half-ULP(stored base), octaves 2^-16 ... 2^15. Entries whose
/// stored base is NaN or infinite are left out (they have no ULP).
public enum VisibilityHistogram {
    public static let octaves = OctaveBins(lowestExponent: -16, highestExponent: 15)
    public static var lowestExponent: Int { octaves.lowestExponent }
    public static var binCount: Int { octaves.binCount }
    public static var labels: [String] { octaves.labels }

    @inline(__always) static func bin(ofRatio ratio: Double) -> Int { octaves.bin(ofMagnitude: ratio) }
}

/// Octaves of |W0|, 2^-24 ... 2^3. Visibility depends on |W0| because the ULP does.
public enum MagnitudeBins {
    public static let octaves = OctaveBins(lowestExponent: -24, highestExponent: 3)
    public static var binCount: Int { octaves.binCount }
    public static var labels: [String] { octaves.labels }
    public static func exponent(ofBin bin: Int) -> Int { octaves.exponent(ofBin: bin) }

    @inline(__always) public static func bin(of value: Float) -> Int {
        octaves.bin(ofMagnitude: Double(abs(value)))
    }
}

/// Results for one tensor.
public struct TensorReplayResult: Sendable, Codable {
    public var tensor: ReplayTensor
    public var params: Int { tensor.count }
    /// Entries whose fp32 truth differs (bitwise) from the base.
    public var trueChanged: Int
    /// NaN and infinite values met in this tensor's updates.
    public var nanUpdates: Int
    public var infiniteUpdates: Int
    /// Entries per visibility-histogram bin.
    public var histogram: [Int]
    /// Entries per |W0| magnitude bin (`MagnitudeBins`).
    public var magnitudeHistogram: [Int]
    public var policies: [ReplayPolicy: PolicyMetrics]
    public var nullModel: NullModelMetrics?
    /// Every policy's metrics on the null model's replay (`--null`), nil without one.
    public var nullPolicies: [ReplayPolicy: PolicyMetrics]? = nil

    public var trueSparsity: Double {
        params == 0 ? 1 : 1 - Double(trueChanged) / Double(params)
    }
}

/// What happened at each step, over all tensors: how many stored values each policy
/// changed in that step, and (pure policy) how each update compared with half an ULP of
/// the stored weight it was added to.
public struct StepViews: Sendable, Codable {
    /// The applied step numbers, in order.
    public var steps: [UInt64]
    /// Per policy and step: entries whose stored value differs from the previous step's
    /// (fp32: the truth's bits; master: its nearest-even export).
    public var changedInStep: [ReplayPolicy: [Int]]
    /// Element-steps per bin of |u_t| / half-ULP(pure's stored w_t) (`VisibilityHistogram`
    /// bins), and of those the element-steps where pure's stored value changed; nil
    /// when the pure policy did not run.
    public var pureRatioHistogram: [Int]?
    public var pureRatioChanged: [Int]?
    /// Element-steps left out because the stored weight was NaN or infinite.
    public var pureRatioSkipped: Int
}

/// Counts at one step of the per-step curve.
public struct CurvePoint: Sendable, Codable {
    public var step: UInt64
    /// Per tensor, entries whose fp32 truth differs from the base.
    public var trueChanged: [Int]
    /// Per policy and tensor, entries whose stored bits differ from the stored base.
    public var visibleChanged: [ReplayPolicy: [Int]]

    public var totalTrueChanged: Int { trueChanged.reduce(0, +) }
    public func totalVisible(_ policy: ReplayPolicy) -> Int {
        visibleChanged[policy]?.reduce(0, +) ?? 0
    }
}

/// Everything a replay measured.
public struct ReplayResult: Sendable, Codable {
    public var configuration: ReplayConfiguration
    public var steps: Int
    public var firstStep: UInt64?
    public var lastStep: UInt64?
    public var tensors: [TensorReplayResult]
    public var curve: [CurvePoint]
    /// Warnings every output format must carry (gaps, truncation, non-finite values).
    public var warnings: [String]
    /// Whether a FINL record was present and matched the fp32 replay bit for bit.
    public var finalVerified: Bool
    /// How the FINL record compares with the fp32 replay; nil without a FINL record
    /// (or when it was not checked, as with `--scale`).
    public var finalMismatches: FinalMismatches? = nil
    /// The step-level views, when the configuration asked for them.
    public var stepViews: StepViews? = nil

    public var params: Int { tensors.reduce(0) { $0 + $1.params } }
    public var trueChanged: Int { tensors.reduce(0) { $0 + $1.trueChanged } }
    public var nanUpdates: Int { tensors.reduce(0) { $0 + $1.nanUpdates } }
    public var infiniteUpdates: Int { tensors.reduce(0) { $0 + $1.infiniteUpdates } }

    /// Totals over all tensors: counts add, so ratios are weighted by parameter count,
    /// and the relative error is the Frobenius norm over every tensor together.
    public func total(_ policy: ReplayPolicy) -> PolicyMetrics {
        var sum = PolicyMetrics.zero(bins: VisibilityHistogram.binCount,
                                     alphas: configuration.lowMagnitudeAlphas.count)
        for tensor in tensors { if let metrics = tensor.policies[policy] { sum.add(metrics) } }
        return sum
    }

    public var totalMagnitudeHistogram: [Int] {
        var sum = Array(repeating: 0, count: MagnitudeBins.binCount)
        for tensor in tensors {
            for index in sum.indices { sum[index] += tensor.magnitudeHistogram[index] }
        }
        return sum
    }

    public var totalHistogram: [Int] {
        var sum = Array(repeating: 0, count: VisibilityHistogram.binCount)
        for tensor in tensors { for index in sum.indices { sum[index] += tensor.histogram[index] } }
        return sum
    }

    /// A policy's metrics on the null model's replay, summed over tensors.
    public func totalNull(_ policy: ReplayPolicy) -> PolicyMetrics? {
        guard configuration.nullModel != nil else { return nil }
        var sum = PolicyMetrics.zero(bins: VisibilityHistogram.binCount,
                                     alphas: configuration.lowMagnitudeAlphas.count)
        for tensor in tensors { if let metrics = tensor.nullPolicies?[policy] { sum.add(metrics) } }
        return sum
    }

    public var totalNullModel: NullModelMetrics? {
        guard configuration.nullPermute else { return nil }
        var sum = NullModelMetrics(visibleChanged: 0,
                                   visibleInLowMagnitude: Array(repeating: 0, count: configuration.lowMagnitudeAlphas.count),
                                   visibleByMagnitude: Array(repeating: 0, count: MagnitudeBins.binCount))
        for tensor in tensors {
            guard let null = tensor.nullModel else { continue }
            sum.visibleChanged += null.visibleChanged
            for index in sum.visibleByMagnitude.indices { sum.visibleByMagnitude[index] += null.visibleByMagnitude[index] }
            for index in sum.visibleInLowMagnitude.indices {
                sum.visibleInLowMagnitude[index] += null.visibleInLowMagnitude[index]
            }
        }
        return sum
    }
}

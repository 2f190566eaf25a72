import PrecLabFormats
import PrecLabSupport

/// Turns the final replay state into per-tensor metrics: visible and hidden counts,
/// relative errors, the visibility histogram, and overlaps with the low-magnitude masks
/// of W0 beside their magnitude-stratified expectations. (The null model is a second
/// replay, see `NullPermutation`.) Tensors are analysed in parallel; each tensor's sums
/// run in index order, so results do not depend on the thread count.
///
/// A change between +0 and -0 is no change unless `signedZeroChanges` (Def. 2.1).
struct FinalAnalysis<Codec: StorageCodec> {
    let core: TypedReplayCore<Codec>

    func run() -> [TensorReplayResult] {
        let starts = core.tensorStarts
        let core = self.core
        return ParallelChunks.map(count: core.tensors.count, chunkSize: 1,
                                  threads: core.configuration.threads) { indices in
            FinalAnalysis(core: core).analyse(tensor: indices.lowerBound, start: starts[indices.lowerBound])
        }
    }

    private func analyse(tensor tensorIndex: Int, start: Int) -> TensorReplayResult {
        let tensor = core.tensors[tensorIndex]
        let configuration = core.configuration
        let codec = core.codec
        let format = configuration.format
        let bins = VisibilityHistogram.binCount
        let alphas = configuration.lowMagnitudeAlphas

        // The histograms. The bins are recomputed where visible entries need them rather
        // than kept per element (the analysis holds no per-element memory).
        let count = tensor.count
        var histogram = Array(repeating: 0, count: bins)
        var magnitudeHistogram = Array(repeating: 0, count: MagnitudeBins.binCount)
        var trueChanged = 0
        let halfULP = HalfULPTable(format: format, codeBits: Codec.Code.bitWidth)
        let signedZeros = configuration.signedZeroChanges
        // Binade stratum of each stored base value, for the magnitude baselines;
        // recomputed where needed rather than kept per element.
        var stratumSizes = [Int](repeating: 0, count: MagnitudeStratum.count)
        let minimumNormal = format.minNormal
        let stratumOf = { (index: Int) -> Int in
            MagnitudeStratum.of(Double(codec.decode(core.storedBase[index])), minimumNormal: minimumNormal)
        }
        for local in 0..<count {
            let index = start + local
            let w0 = core.base[index]
            let truth = core.truth[index]
            stratumSizes[stratumOf(index)] += 1
            if FinalAnalysis.valuesDiffer(w0, truth, signedZeros: signedZeros) { trueChanged += 1 }
            magnitudeHistogram[MagnitudeBins.bin(of: w0)] += 1
            if let bin = ratioBin(index, halfULP) { histogram[bin] += 1 }
        }

        // One pass per policy with its counters in locals (policy-major keeps the
        // inner loop free of dictionary traffic).
        var metrics: [ReplayPolicy: PolicyMetrics] = [:]
        var visibleByStratum: [ReplayPolicy: [Int]] = [:]
        for policy in configuration.policies {
            var perStratum = [Int](repeating: 0, count: MagnitudeStratum.count)
            var entry = PolicyMetrics.zero(bins: bins, alphas: alphas.count)
            var visibleCount = 0, hidden = 0, nonFinite = 0
            var split = HiddenSplit()
            var squaredError = 0.0, squaredTruth = 0.0
            for local in 0..<count {
                let index = start + local
                let w0 = core.base[index]
                let truth = core.truth[index]
                let changed = FinalAnalysis.valuesDiffer(w0, truth, signedZeros: signedZeros)
                let trueDelta = Double(truth) - Double(w0)
                let visible: Bool
                let policyDelta: Double
                let finalFinite: Bool
                if policy == .fp32 {
                    visible = changed
                    policyDelta = trueDelta
                    finalFinite = truth.isFinite
                } else {
                    let stored = core.storedBase[index]
                    let code = core.finalCode(policy, index)
                    visible = code != stored
                        && (signedZeros || !(codec.decode(code) == 0 && codec.decode(stored) == 0))
                    let value = Double(codec.decode(code))
                    policyDelta = value - Double(codec.decode(stored))
                    finalFinite = value.isFinite
                }
                if visible {
                    visibleCount += 1
                    perStratum[stratumOf(index)] += 1
                    entry.visibleByMagnitude[MagnitudeBins.bin(of: w0)] += 1
                    if let bin = ratioBin(index, halfULP) { entry.visibleByBin[bin] += 1 }
                    if (policyDelta > 0 && trueDelta < 0) || (policyDelta < 0 && trueDelta > 0) { split.spurious += 1 }
                } else if changed {
                    hidden += 1
                    split.addHidden(core: core, index: index, tensor: tensorIndex, signedZeros: signedZeros)
                }
                if !finalFinite { nonFinite += 1 }
                if trueDelta.isFinite, policyDelta.isFinite {
                    let error = policyDelta - trueDelta
                    squaredError += error * error
                    squaredTruth += trueDelta * trueDelta
                }
            }
            entry.visibleChanged = visibleCount
            entry.hidden = hidden
            entry.hiddenNeverLeft = split.neverLeft
            entry.hiddenReturned = split.returned
            entry.hiddenSwamped = split.swamped
            entry.spurious = split.spurious
            entry.nonFiniteWeights = nonFinite
            entry.squaredErrorSum = squaredError
            entry.squaredTruthSum = squaredTruth
            metrics[policy] = entry
            visibleByStratum[policy] = perStratum
        }

        // Overlap with the bottom-α |W0| masks: count visible entries inside each cut.
        let cuts = alphas.map { LowMagnitudeMask.size(alpha: $0, count: tensor.count) }
        let order = LowMagnitudeCuts(count: count, cuts: cuts) { core.base[start + $0] }
        for policy in configuration.policies {
            let isVisible: (Int) -> Bool = policy == .fp32
                ? { FinalAnalysis.valuesDiffer(core.base[$0], core.truth[$0], signedZeros: signedZeros) }
                : { index in
                    let code = core.finalCode(policy, index), stored = core.storedBase[index]
                    return code != stored
                        && (signedZeros || !(codec.decode(code) == 0 && codec.decode(stored) == 0))
                }
            metrics[policy]!.visibleInLowMagnitude = countsAtCuts(order: order, cuts: cuts, start: start, isVisible)
        }

        // Magnitude baselines of those overlaps: the mask's share of each binade,
        // weighted by the policy's visible rate in that binade.
        let maskByStratum = order.countsByLabel(MagnitudeStratum.count) { stratumOf(start + $0) }
        for policy in configuration.policies {
            let visible = visibleByStratum[policy]!
            metrics[policy]!.expectedInLowMagnitude = maskByStratum.map { inMask in
                var expected = 0.0
                for s in 0..<MagnitudeStratum.count where visible[s] > 0 {
                    expected += Double(visible[s]) / Double(stratumSizes[s]) * Double(inMask[s])
                }
                return expected
            }
        }

        var nanUpdates = 0, infiniteUpdates = 0
        for (unitIndex, unit) in core.units.enumerated() where unit.tensor == tensorIndex {
            nanUpdates += core.nonFiniteUpdates[unitIndex][0]
            infiniteUpdates += core.nonFiniteUpdates[unitIndex][1]
        }
        return TensorReplayResult(tensor: tensor, trueChanged: trueChanged, nanUpdates: nanUpdates,
                                  infiniteUpdates: infiniteUpdates, histogram: histogram,
                                  magnitudeHistogram: magnitudeHistogram,
                                  policies: metrics, nullModel: nil)
    }

    /// The visibility-histogram bin of an element's true change, nil when its stored
    /// base has no half-ULP (non-finite).
    @inline(__always) private func ratioBin(_ index: Int, _ halfULP: HalfULPTable) -> Int? {
        let half = halfULP[UInt32(truncatingIfNeeded: core.storedBase[index])]
        guard half.isFinite else { return nil }
        let trueDelta = Double(core.truth[index]) - Double(core.base[index])
        return VisibilityHistogram.bin(ofRatio: trueDelta.isNaN ? .nan : abs(trueDelta) / half)
    }

    /// Visible entries inside each bottom-α cut; `isVisible` takes `start` + local index.
    private func countsAtCuts(order: LowMagnitudeCuts, cuts: [Int], start: Int, _ isVisible: (Int) -> Bool) -> [Int] {
        order.counts { isVisible(start + $0) }
    }

    /// Whether two fp32 values differ as updates count it: bitwise, except that +0 and
    /// -0 are the same value unless `signedZeros`.
    @inline(__always) static func valuesDiffer(_ a: Float, _ b: Float, signedZeros: Bool) -> Bool {
        a.bitPattern != b.bitPattern && (signedZeros || !(a == 0 && b == 0))
    }
}

/// What hid a hidden entry, judged on the fp32 truth against I, the rounding interval
/// of the stored base: the truth is inside I exactly when its nearest-even code is the
/// stored base (the master export's test), and the engine kept one bit per element
/// recording whether that failed after any step. Unless `signedZeros`, a truth whose
/// code is the stored base's zero of the other sign ends inside I (the per-step bit
/// still compares codes bit by bit).
struct HiddenSplit {
    var neverLeft = 0, returned = 0, swamped = 0, spurious = 0

    mutating func addHidden<Codec: StorageCodec>(core: TypedReplayCore<Codec>, index: Int, tensor: Int,
                                                 signedZeros: Bool) {
        let code = core.codec.nearest(core.truth[index]), stored = core.storedBase[index]
        if code != stored && (signedZeros || !(core.codec.decode(code) == 0 && core.codec.decode(stored) == 0)) {
            swamped += 1
        } else if core.leftIntervalBit(index, tensor: tensor) {
            returned += 1
        } else {
            neverLeft += 1
        }
    }
}

/// Half-ULPs of stored codes: a lookup table for codes of 16 bits or fewer (built
/// once per analysis), the format's own query otherwise. Non-finite codes give NaN.
struct HalfULPTable {
    let format: FloatFormat
    let table: [Double]?

    init(format: FloatFormat, codeBits: Int) {
        self.format = format
        if codeBits <= 16 {
            table = (0..<(1 << codeBits)).map { HalfULPTable.query(format, UInt32($0)) }
        } else {
            table = nil
        }
    }

    subscript(code: UInt32) -> Double {
        if let table { return table[Int(code)] }
        return HalfULPTable.query(format, code)
    }

    private static func query(_ format: FloatFormat, _ code: UInt32) -> Double {
        guard format.decode(code).isFinite else { return .nan }
        return format.halfULP(ofBits: code)
    }
}

/// The bottom-α |W0| mask: exactly round(α·n) entries (half away from zero), ties
/// broken by lower row-major index, so every result is reproducible.
public enum LowMagnitudeMask {
    public static func size(alpha: Double, count: Int) -> Int {
        min(count, max(0, Int((alpha * Double(count)).rounded(.toNearestOrAwayFromZero))))
    }

    /// Indices ordered by |value| ascending, ties by index; NaN sorts after +Inf.
    ///
    /// |x| as its bit pattern orders every non-negative float, Inf and NaN included, so
    /// a stable least-significant-digit radix sort on those 31 bits (four byte passes)
    /// gives exactly the (magnitude, index) order, in linear time.
    public static func order(count: Int, value: (Int) -> Float) -> [Int] {
        var keys = [UInt32](repeating: 0, count: count)
        for index in 0..<count { keys[index] = value(index).bitPattern & 0x7FFF_FFFF }
        var order = Array(0..<count)
        var scratch = [Int](repeating: 0, count: count)
        for pass in 0..<4 {
            let shift = UInt32(8 * pass)
            var buckets = [Int](repeating: 0, count: 257)
            for index in 0..<count { buckets[Int((keys[index] >> shift) & 0xFF) + 1] += 1 }
            if buckets[1] == count { continue }  // every key has the same byte here
            for bucket in 1...256 { buckets[bucket] += buckets[bucket - 1] }
            for position in 0..<count {
                let element = order[position]
                let bucket = Int((keys[element] >> shift) & 0xFF)
                scratch[buckets[bucket]] = element
                buckets[bucket] += 1
            }
            swap(&order, &scratch)
        }
        return order
    }
}

/// A small seeded generator (SplitMix64) for the null model's permutations.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound, without modulo bias (Lemire's method with rejection).
    mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }
}

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
        let range = start..<(start + tensor.count)
        let configuration = core.configuration
        let codec = core.codec
        let format = configuration.format
        let bins = VisibilityHistogram.binCount
        let alphas = configuration.lowMagnitudeAlphas

        // Shared per-element facts, computed once: the histogram bins.
        let count = tensor.count
        var ratioBin = [UInt8](repeating: UInt8.max, count: count)  // UInt8.max: no ULP (non-finite base)
        var magnitudeBin = [UInt8](repeating: 0, count: count)
        var histogram = Array(repeating: 0, count: bins)
        var magnitudeHistogram = Array(repeating: 0, count: MagnitudeBins.binCount)
        var trueChanged = 0
        let halfULP = HalfULPTable(format: format, codeBits: Codec.Code.bitWidth)
        let signedZeros = configuration.signedZeroChanges
        // Binade stratum of each stored base value, for the magnitude baselines.
        var stratum = [UInt16](repeating: 0, count: count)
        var stratumSizes = [Int](repeating: 0, count: MagnitudeStratum.count)
        let minimumNormal = format.minNormal
        for local in 0..<count {
            let index = start + local
            let w0 = core.base[index]
            let truth = core.truth[index]
            let label = MagnitudeStratum.of(Double(codec.decode(core.storedBase[index])), minimumNormal: minimumNormal)
            stratum[local] = UInt16(label)
            stratumSizes[label] += 1
            if FinalAnalysis.valuesDiffer(w0, truth, signedZeros: signedZeros) { trueChanged += 1 }
            let magnitude = MagnitudeBins.bin(of: w0)
            magnitudeBin[local] = UInt8(magnitude)
            magnitudeHistogram[magnitude] += 1
            let half = halfULP[UInt32(truncatingIfNeeded: core.storedBase[index])]
            if half.isFinite {
                let trueDelta = Double(truth) - Double(w0)
                let bin = VisibilityHistogram.bin(ofRatio: trueDelta.isNaN ? .nan : abs(trueDelta) / half)
                ratioBin[local] = UInt8(bin)
                histogram[bin] += 1
            }
        }

        // One pass per policy with its counters in locals (policy-major keeps the
        // inner loop free of dictionary traffic).
        var metrics: [ReplayPolicy: PolicyMetrics] = [:]
        var visibleByStratum: [ReplayPolicy: [Int]] = [:]
        for policy in configuration.policies {
            var perStratum = [Int](repeating: 0, count: MagnitudeStratum.count)
            var entry = PolicyMetrics.zero(bins: bins, alphas: alphas.count)
            var visibleCount = 0, hidden = 0, nonFinite = 0
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
                    perStratum[Int(stratum[local])] += 1
                    entry.visibleByMagnitude[Int(magnitudeBin[local])] += 1
                    let bin = ratioBin[local]
                    if bin != UInt8.max { entry.visibleByBin[Int(bin)] += 1 }
                } else if changed {
                    hidden += 1
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
            entry.nonFiniteWeights = nonFinite
            entry.squaredErrorSum = squaredError
            entry.squaredTruthSum = squaredTruth
            metrics[policy] = entry
            visibleByStratum[policy] = perStratum
        }

        // Overlap with the bottom-α |W0| masks: walk W0's entries from the smallest
        // magnitude up and count visible entries at each cut.
        let order = magnitudeOrder(range)
        let cuts = alphas.map { LowMagnitudeMask.size(alpha: $0, count: tensor.count) }
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
        let maskByStratum = stratumCountsAtCuts(order: order, cuts: cuts, stratum: stratum)
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

    /// Local indices of the tensor ordered by |W0| ascending, ties by lower index
    /// (NaN magnitudes sort last).
    private func magnitudeOrder(_ range: Range<Int>) -> [Int] {
        LowMagnitudeMask.order(count: range.count) { core.base[range.lowerBound + $0] }
    }

    private func countsAtCuts(order: [Int], cuts: [Int], start: Int, _ isVisible: (Int) -> Bool) -> [Int] {
        var results = Array(repeating: 0, count: cuts.count)
        let sortedCuts = cuts.enumerated().sorted { $0.element < $1.element }
        var position = 0
        var visibleSoFar = 0
        for (slot, cut) in sortedCuts {
            while position < cut {
                if isVisible(start + order[position]) { visibleSoFar += 1 }
                position += 1
            }
            results[slot] = visibleSoFar
        }
        return results
    }

    /// Per cut: elements of the bottom-cut mask in each stratum.
    private func stratumCountsAtCuts(order: [Int], cuts: [Int], stratum: [UInt16]) -> [[Int]] {
        var results = [[Int]](repeating: [], count: cuts.count)
        var counts = [Int](repeating: 0, count: MagnitudeStratum.count)
        var position = 0
        for (slot, cut) in cuts.enumerated().sorted(by: { $0.element < $1.element }) {
            while position < cut {
                counts[Int(stratum[order[position]])] += 1
                position += 1
            }
            results[slot] = counts
        }
        return results
    }

    /// Whether two fp32 values differ as updates count it: bitwise, except that +0 and
    /// -0 are the same value unless `signedZeros`.
    @inline(__always) static func valuesDiffer(_ a: Float, _ b: Float, signedZeros: Bool) -> Bool {
        a.bitPattern != b.bitPattern && (signedZeros || !(a == 0 && b == 0))
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

import PrecLabFormats
import PrecLabSupport

/// Turns the final replay state into per-tensor metrics: visible and hidden counts,
/// relative errors, the visibility histogram, overlaps with the low-magnitude masks of
/// W0 and the permutation null model. Tensors are analysed in parallel; each tensor's
/// sums run in index order, so results do not depend on the thread count.
struct FinalAnalysis<Codec: StorageCodec> {
    let core: TypedReplayCore<Codec>

    func run() -> [TensorReplayResult] {
        let starts = tensorStarts()
        let core = self.core
        return ParallelChunks.map(count: core.tensors.count, chunkSize: 1,
                                  threads: core.configuration.threads) { indices in
            FinalAnalysis(core: core).analyse(tensor: indices.lowerBound, start: starts[indices.lowerBound])
        }
    }

    private func tensorStarts() -> [Int] {
        var starts: [Int] = []
        var start = 0
        for tensor in core.tensors {
            starts.append(start)
            start += tensor.count
        }
        return starts
    }

    private func analyse(tensor tensorIndex: Int, start: Int) -> TensorReplayResult {
        let tensor = core.tensors[tensorIndex]
        let range = start..<(start + tensor.count)
        let configuration = core.configuration
        let codec = core.codec
        let format = configuration.format
        let bins = VisibilityHistogram.binCount
        let alphas = configuration.lowMagnitudeAlphas

        var histogram = Array(repeating: 0, count: bins)
        var magnitudeHistogram = Array(repeating: 0, count: MagnitudeBins.binCount)
        var trueChanged = 0
        var metrics: [ReplayPolicy: PolicyMetrics] = [:]
        for policy in configuration.policies {
            metrics[policy] = PolicyMetrics.zero(bins: bins, alphas: alphas.count)
        }

        for index in range {
            let w0 = core.base[index]
            let truth = core.truth[index]
            let stored = core.storedBase[index]
            let changed = truth.bitPattern != w0.bitPattern
            if changed { trueChanged += 1 }
            let trueDelta = Double(truth) - Double(w0)
            let storedValue = Double(codec.decode(stored))
            let bin: Int?
            if storedValue.isFinite, trueDelta.isFinite || trueDelta.isNaN {
                let half = format.halfULP(ofBits: UInt32(truncatingIfNeeded: stored))
                bin = VisibilityHistogram.bin(ofRatio: trueDelta.isNaN ? .nan : abs(trueDelta) / half)
            } else {
                bin = nil
            }
            if let bin { histogram[bin] += 1 }
            let magnitudeBin = MagnitudeBins.bin(of: w0)
            magnitudeHistogram[magnitudeBin] += 1

            for policy in configuration.policies {
                let visible: Bool
                let policyDelta: Double
                let finalFinite: Bool
                if policy == .fp32 {
                    visible = changed
                    policyDelta = trueDelta
                    finalFinite = truth.isFinite
                } else {
                    let code = core.finalCode(policy, index)
                    visible = code != stored
                    let value = Double(codec.decode(code))
                    policyDelta = value - storedValue
                    finalFinite = value.isFinite
                }
                var entry = metrics[policy]!
                if visible {
                    entry.visibleChanged += 1
                    entry.visibleByMagnitude[magnitudeBin] += 1
                    if let bin { entry.visibleByBin[bin] += 1 }
                } else if changed {
                    entry.hidden += 1
                }
                if !finalFinite { entry.nonFiniteWeights += 1 }
                if trueDelta.isFinite, policyDelta.isFinite {
                    let error = policyDelta - trueDelta
                    entry.squaredErrorSum += error * error
                    entry.squaredTruthSum += trueDelta * trueDelta
                }
                metrics[policy] = entry
            }
        }

        // Overlap with the bottom-α |W0| masks: walk W0's entries from the smallest
        // magnitude up and count visible entries at each cut.
        let order = magnitudeOrder(range)
        let cuts = alphas.map { LowMagnitudeMask.size(alpha: $0, count: tensor.count) }
        for policy in configuration.policies {
            let isVisible: (Int) -> Bool = policy == .fp32
                ? { core.truth[$0].bitPattern != core.base[$0].bitPattern }
                : { core.finalCode(policy, $0) != core.storedBase[$0] }
            metrics[policy]!.visibleInLowMagnitude = countsAtCuts(order: order, cuts: cuts, start: start, isVisible)
        }

        var nullModel: NullModelMetrics? = nil
        if configuration.nullPermute {
            nullModel = permutedNull(tensorIndex: tensorIndex, range: range, order: order, cuts: cuts)
        }

        var nanUpdates = 0, infiniteUpdates = 0
        for (unitIndex, unit) in core.units.enumerated() where unit.tensor == tensorIndex {
            nanUpdates += core.nonFiniteUpdates[unitIndex][0]
            infiniteUpdates += core.nonFiniteUpdates[unitIndex][1]
        }
        return TensorReplayResult(tensor: tensor, trueChanged: trueChanged, nanUpdates: nanUpdates,
                                  infiniteUpdates: infiniteUpdates, histogram: histogram,
                                  magnitudeHistogram: magnitudeHistogram,
                                  policies: metrics, nullModel: nullModel)
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

    /// The master policy's visibility when the cumulative fp32 update ΔW = W_T - W0
    /// is permuted among the tensor's entries (seeded Fisher-Yates): same magnitudes,
    /// no alignment with the weights.
    private func permutedNull(tensorIndex: Int, range: Range<Int>, order: [Int], cuts: [Int]) -> NullModelMetrics {
        let count = range.count
        let start = range.lowerBound
        var delta = [Float](repeating: 0, count: count)
        for local in 0..<count { delta[local] = core.truth[start + local] - core.base[start + local] }
        var generator = SplitMix64(seed: core.configuration.seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(tensorIndex + 1)))
        if count > 1 {
            for position in stride(from: count - 1, to: 0, by: -1) {
                let other = Int(generator.next(below: UInt64(position + 1)))
                delta.swapAt(position, other)
            }
        }
        var visible = [Bool](repeating: false, count: count)
        var visibleCount = 0
        for local in 0..<count {
            let moved = core.base[start + local] + delta[local]
            if core.codec.nearest(moved) != core.storedBase[start + local] {
                visible[local] = true
                visibleCount += 1
            }
        }
        let inLow = countsAtCuts(order: order, cuts: cuts, start: 0) { visible[$0] }
        return NullModelMetrics(visibleChanged: visibleCount, visibleInLowMagnitude: inLow)
    }
}

/// The bottom-α |W0| mask: exactly round(α·n) entries (half away from zero), ties
/// broken by lower row-major index, so every result is reproducible.
public enum LowMagnitudeMask {
    public static func size(alpha: Double, count: Int) -> Int {
        min(count, max(0, Int((alpha * Double(count)).rounded(.toNearestOrAwayFromZero))))
    }

    /// Indices ordered by |value| ascending, ties by index; NaN sorts after +Inf.
    public static func order(count: Int, value: (Int) -> Float) -> [Int] {
        // |x| as its bit pattern orders every non-negative float, Inf and NaN included;
        // packing (magnitude, index) into one word makes the sort key unique.
        if count <= Int(UInt32.max) {
            var keys = [UInt64](repeating: 0, count: count)
            for index in 0..<count {
                let magnitude = UInt64(value(index).bitPattern & 0x7FFF_FFFF)
                keys[index] = magnitude << 32 | UInt64(index)
            }
            keys.sort()
            return keys.map { Int($0 & 0xFFFF_FFFF) }
        }
        return (0..<count).sorted {
            let a = value($0).bitPattern & 0x7FFF_FFFF, b = value($1).bitPattern & 0x7FFF_FFFF
            return a != b ? a < b : $0 < $1
        }
    }
}

/// A small seeded generator (SplitMix64) for the null model's permutation.
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

import PrecLabFormats
import PrecLabSupport

/// Turns the final replay state into per-tensor metrics: visible and hidden counts,
/// relative errors, the visibility histogram, overlaps with the low-magnitude masks of
/// W0 and the permutation null model. Tensors are analysed in parallel; each tensor's
/// sums run in index order, so results do not depend on the thread count.
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

        // The histograms. The bins are recomputed where visible entries need them rather
        // than kept per element (the analysis holds no per-element memory).
        let count = tensor.count
        var histogram = Array(repeating: 0, count: bins)
        var magnitudeHistogram = Array(repeating: 0, count: MagnitudeBins.binCount)
        var trueChanged = 0
        let halfULP = HalfULPTable(format: format, codeBits: Codec.Code.bitWidth)
        for local in 0..<count {
            let index = start + local
            let w0 = core.base[index]
            let truth = core.truth[index]
            if truth.bitPattern != w0.bitPattern { trueChanged += 1 }
            magnitudeHistogram[MagnitudeBins.bin(of: w0)] += 1
            if let bin = ratioBin(index, halfULP) { histogram[bin] += 1 }
        }

        // One pass per policy with its counters in locals (policy-major keeps the
        // inner loop free of dictionary traffic).
        var metrics: [ReplayPolicy: PolicyMetrics] = [:]
        for policy in configuration.policies {
            var entry = PolicyMetrics.zero(bins: bins, alphas: alphas.count)
            var visibleCount = 0, hidden = 0, nonFinite = 0
            var split = HiddenSplit()
            var squaredError = 0.0, squaredTruth = 0.0
            for local in 0..<count {
                let index = start + local
                let w0 = core.base[index]
                let truth = core.truth[index]
                let changed = truth.bitPattern != w0.bitPattern
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
                    let value = Double(codec.decode(code))
                    policyDelta = value - Double(codec.decode(stored))
                    finalFinite = value.isFinite
                }
                if visible {
                    visibleCount += 1
                    entry.visibleByMagnitude[MagnitudeBins.bin(of: w0)] += 1
                    if let bin = ratioBin(index, halfULP) { entry.visibleByBin[bin] += 1 }
                    if (policyDelta > 0 && trueDelta < 0) || (policyDelta < 0 && trueDelta > 0) { split.spurious += 1 }
                } else if changed {
                    hidden += 1
                    split.addHidden(core: core, index: index, tensor: tensorIndex)
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
        }

        // Overlap with the bottom-α |W0| masks: count visible entries inside each cut.
        let cuts = alphas.map { LowMagnitudeMask.size(alpha: $0, count: tensor.count) }
        let order = LowMagnitudeCuts(count: count, cuts: cuts) { core.base[start + $0] }
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

    /// The master policy's visibility when the cumulative fp32 update ΔW = W_T - W0
    /// is permuted among the tensor's entries (seeded Fisher-Yates): same magnitudes,
    /// no alignment with the weights.
    private func permutedNull(tensorIndex: Int, range: Range<Int>, order: LowMagnitudeCuts, cuts: [Int]) -> NullModelMetrics {
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
        var byMagnitude = Array(repeating: 0, count: MagnitudeBins.binCount)
        for local in 0..<count {
            let w0 = core.base[start + local]
            if core.codec.nearest(w0 + delta[local]) != core.storedBase[start + local] {
                visible[local] = true
                visibleCount += 1
                byMagnitude[MagnitudeBins.bin(of: w0)] += 1
            }
        }
        let inLow = countsAtCuts(order: order, cuts: cuts, start: 0) { visible[$0] }
        return NullModelMetrics(visibleChanged: visibleCount, visibleInLowMagnitude: inLow,
                                visibleByMagnitude: byMagnitude)
    }
}

/// What hid a hidden entry, judged on the fp32 truth against I, the rounding interval
/// of the stored base: the truth is inside I exactly when its nearest-even code is the
/// stored base (the master export's test), and the engine kept one bit per element
/// recording whether that failed after any step.
struct HiddenSplit {
    var neverLeft = 0, returned = 0, swamped = 0, spurious = 0

    mutating func addHidden<Codec: StorageCodec>(core: TypedReplayCore<Codec>, index: Int, tensor: Int) {
        if core.codec.nearest(core.truth[index]) != core.storedBase[index] {
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

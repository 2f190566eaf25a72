import PrecLabFormats
import PrecLabSupport

/// Turns the final replay state into per-tensor metrics: visible and hidden counts,
/// relative errors, the visibility histogram, and overlaps with the low-magnitude masks
/// of W0 beside their magnitude-stratified expectations. (The null model is a second
/// replay, see `NullPermutation`.)
///
/// Two parallel phases. First, per tensor (largest first): the mask thresholds
/// (`LowMagnitudeCuts`) and the Double sums of the relative error, in index order.
/// Then every integer count, in one pass per fixed chunk of a tensor (boundaries
/// fixed relative to the tensor start) for all policies at once, added into the
/// tensor's totals. Integer sums do not depend on their order and the Double sums run
/// in index order, so results do not depend on the thread count.
///
/// A change between +0 and -0 is no change unless `signedZeroChanges` (Def. 2.1).
struct FinalAnalysis<Codec: StorageCodec> {
    let core: TypedReplayCore<Codec>

    /// Entries per counting job: enough to amortise a job's counters, small enough to
    /// balance the threads.
    static var chunkSize: Int { 16_384 }

    func run() -> [TensorReplayResult] {
        let core = self.core
        let configuration = core.configuration
        let threads = configuration.threads
        let counts = core.tensors.map(\.count)
        let chunkSize = core.finalChunkSize

        // Phase 1: thresholds and Double sums per tensor, the largest tensors first.
        let bySize = counts.indices.sorted { (counts[$0], $1) > (counts[$1], $0) }
        let perTensor = ParallelChunks.map(count: bySize.count, chunkSize: 1, threads: threads) { indices in
            let tensor = bySize[indices.lowerBound]
            let start = core.tensorStarts[tensor], base = core.base
            let sizes = configuration.lowMagnitudeAlphas.map {
                LowMagnitudeMask.size(alpha: $0, count: counts[tensor])
            }
            let cuts = LowMagnitudeCuts(count: counts[tensor], cuts: sizes, chunkSize: chunkSize) {
                base[start + $0]
            }
            return (cuts, FinalAnalysis(core: core).squaredSums(tensor: tensor))
        }
        var cuts = [LowMagnitudeCuts?](repeating: nil, count: counts.count)
        var sums = [[(error: Double, truth: Double)]](repeating: [], count: counts.count)
        for (position, tensor) in bySize.enumerated() { (cuts[tensor], sums[tensor]) = perTensor[position] }

        // Phase 2: the integer counts, chunk by chunk.
        let classes = StoredCodeClasses(codec: core.codec, format: configuration.format)
        let layout = FinalCountLayout(strata: classes.stratumCount,
                                      levels: configuration.lowMagnitudeAlphas.count,
                                      policies: configuration.policies.count)
        let jobs = counts.indices.flatMap { tensor in
            ParallelChunks.ranges(count: counts[tensor], chunkSize: chunkSize).enumerated().map {
                (tensor: tensor, chunk: $0.offset, range: $0.element)
            }
        }
        let totals = TensorCountTotals(tensors: counts.count, size: layout.size)
        let allCuts = cuts.map { $0! }
        let kernel = core.countingKernel ? FinalCountKernel(core: core, classes: classes, layout: layout) : nil
        ParallelChunks.forEach(count: jobs.count, chunkSize: 1, threads: threads) { indices in
            let job = jobs[indices.lowerBound]
            var chunkCounts = [Int](repeating: 0, count: layout.size)
            chunkCounts.withUnsafeMutableBufferPointer { buffer in
                if let kernel {
                    kernel.count(core: core, tensor: job.tensor, chunk: job.chunk, range: job.range,
                                 cuts: allCuts[job.tensor], classes: classes, into: buffer.baseAddress!)
                } else {
                    FinalAnalysis(core: core).countChunk(tensor: job.tensor, chunk: job.chunk, range: job.range,
                                                         cuts: allCuts[job.tensor], classes: classes, layout: layout,
                                                         into: buffer.baseAddress!)
                }
            }
            totals.add(chunkCounts, tensor: job.tensor)
        }
        return counts.indices.map {
            result(tensor: $0, counts: totals[$0], cuts: allCuts[$0], sums: sums[$0], layout: layout)
        }
    }

    /// A tensor's metrics from its counts.
    private func result(tensor tensorIndex: Int, counts: [Int], cuts: LowMagnitudeCuts,
                        sums: [(error: Double, truth: Double)], layout: FinalCountLayout) -> TensorReplayResult {
        let configuration = core.configuration
        let bins = VisibilityHistogram.binCount
        let strata = layout.strata
        func slice(_ offset: Int, _ length: Int) -> [Int] { Array(counts[offset..<(offset + length)]) }
        var stratumSizes = [Int](repeating: 0, count: strata)
        for level in 0...layout.levels {
            for stratum in 0..<strata { stratumSizes[stratum] += counts[layout.maskByLevel + level * strata + stratum] }
        }
        // Per cut, the mask's entries in each stratum (the masks are nested).
        let maskByStratum = cuts.cumulative([Int](repeating: 0, count: strata), { zip($0, $1).map(+) }) {
            slice(layout.maskByLevel + $0 * strata, strata)
        }
        var metrics: [ReplayPolicy: PolicyMetrics] = [:]
        for (index, policy) in configuration.policies.enumerated() {
            let offset = layout.policy(index)
            var entry = PolicyMetrics.zero(bins: bins, alphas: configuration.lowMagnitudeAlphas.count)
            entry.visibleChanged = counts[offset + FinalCountLayout.visible]
            entry.hidden = counts[offset + FinalCountLayout.hidden]
            entry.hiddenNeverLeft = counts[offset + FinalCountLayout.hiddenNeverLeft]
            entry.hiddenReturned = counts[offset + FinalCountLayout.hiddenReturned]
            entry.hiddenSwamped = counts[offset + FinalCountLayout.hiddenSwamped]
            entry.spurious = counts[offset + FinalCountLayout.spurious]
            entry.nonFiniteWeights = counts[offset + FinalCountLayout.nonFinite]
            entry.squaredErrorSum = sums[index].error
            entry.squaredTruthSum = sums[index].truth
            entry.visibleByBin = slice(offset + layout.visibleByBin, bins)
            entry.visibleByMagnitude = slice(offset + layout.visibleByMagnitude, MagnitudeBins.binCount)
            entry.visibleInLowMagnitude = cuts.cumulative(0, +) { counts[offset + layout.visibleByLevel + $0] }
            // Magnitude baselines of those overlaps: the mask's share of each binade,
            // weighted by the policy's visible rate in that binade (strata ascending).
            let visible = slice(offset + FinalCountLayout.visibleByStratum, strata)
            entry.expectedInLowMagnitude = maskByStratum.map { inMask in
                var expected = 0.0
                for s in 0..<strata where visible[s] > 0 {
                    expected += Double(visible[s]) / Double(stratumSizes[s]) * Double(inMask[s])
                }
                return expected
            }
            metrics[policy] = entry
        }

        var nanUpdates = 0, infiniteUpdates = 0
        for (unitIndex, unit) in core.units.enumerated() where unit.tensor == tensorIndex {
            nanUpdates += core.nonFiniteUpdates[unitIndex][0]
            infiniteUpdates += core.nonFiniteUpdates[unitIndex][1]
        }
        return TensorReplayResult(tensor: core.tensors[tensorIndex], trueChanged: counts[layout.trueChanged],
                                  nanUpdates: nanUpdates, infiniteUpdates: infiniteUpdates,
                                  histogram: slice(layout.histogram, bins),
                                  magnitudeHistogram: slice(layout.magnitudeHistogram, MagnitudeBins.binCount),
                                  policies: metrics, nullModel: nil)
    }

    /// Whether two fp32 values differ as updates count it: bitwise, except that +0 and
    /// -0 are the same value unless `signedZeros`.
    @inline(__always) static func valuesDiffer(_ a: Float, _ b: Float, signedZeros: Bool) -> Bool {
        a.bitPattern != b.bitPattern && (signedZeros || !(a == 0 && b == 0))
    }
}

/// Every tensor's integer counts, added into by the counting jobs as they finish (in
/// any order: integer sums do not depend on it).
private final class TensorCountTotals: @unchecked Sendable {
    private var totals: [[Int]]
    private let lock = Lock()

    init(tensors: Int, size: Int) {
        totals = Array(repeating: Array(repeating: 0, count: size), count: tensors)
    }

    func add(_ counts: [Int], tensor: Int) {
        lock.withLock {
            totals[tensor].withUnsafeMutableBufferPointer { total in
                for index in counts.indices { total[index] &+= counts[index] }
            }
        }
    }

    subscript(tensor: Int) -> [Int] { lock.withLock { totals[tensor] } }
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

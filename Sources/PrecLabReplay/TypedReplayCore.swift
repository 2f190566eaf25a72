import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// Slots of the per-unit counter vector filled by a step pass.
enum CountSlot {
    static let trueChanged = 0
    static let nan = 5
    static let infinite = 6
    /// The slot of a stored policy's visible count (fp32's is `trueChanged`).
    static func visible(_ policy: ReplayPolicy) -> Int {
        switch policy {
        case .fp32: return trueChanged
        case .master: return 1
        case .pure: return 2
        case .stochastic: return 3
        case .kahan: return 4
        }
    }
}

/// One recorded step handed to the core.
struct StepInput: @unchecked Sendable {
    let step: UInt64
    /// The step's update, all tensors concatenated (a view of the mapped stream).
    let delta: UnsafePointer<Float>
    /// Whether the per-step curve takes a point after this step.
    let curvePoint: Bool
}

/// Per-step counts gathered from every tile of a batch of steps. Counts are integers,
/// so the order in which tiles add theirs does not change the sums.
final class StepTallies: @unchecked Sendable {
    private let lock = Lock()
    /// [curve point of the batch][tensor]: slots of `CountSlot`.
    var curve: [[SIMD8<Int>]]
    /// [step of the batch]: entries whose stored value changed in that step (`CountSlot`).
    var changedInStep: [SIMD8<Int>]
    /// Element-steps per ratio bin of the pure policy, and those whose code changed.
    var ratioBins: [Int]
    var ratioBinsChanged: [Int]

    init(curvePoints: Int, tensors: Int, steps: Int, bins: Int) {
        curve = Array(repeating: Array(repeating: SIMD8(), count: tensors), count: curvePoints)
        changedInStep = Array(repeating: SIMD8(), count: steps)
        ratioBins = Array(repeating: 0, count: bins)
        ratioBinsChanged = Array(repeating: 0, count: bins)
    }

    func add(tensor: Int, curve points: [SIMD8<Int>], changed: [SIMD8<Int>], bins: [Int], binsChanged: [Int]) {
        lock.withLock {
            for (index, counts) in points.enumerated() { curve[index][tensor] &+= counts }
            for (index, counts) in changed.enumerated() { changedInStep[index] &+= counts }
            for index in bins.indices {
                ratioBins[index] += bins[index]
                ratioBinsChanged[index] += binsChanged[index]
            }
        }
    }
}

/// Tracks which tiles are done and hands out the flat range below the lowest unfinished
/// tile, in pieces of at least `batch` elements (one madvise per step record each).
final class ReleaseWatermark: @unchecked Sendable {
    private let lock = Lock()
    private let units: [WorkUnit]
    private let release: @Sendable (Range<Int>) -> Void
    private var done: [Bool]
    private var next = 0
    private var released = 0
    static let batch = 1 << 20

    init(units: [WorkUnit], release: @escaping @Sendable (Range<Int>) -> Void) {
        self.units = units
        self.release = release
        done = Array(repeating: false, count: units.count)
    }

    func finished(_ unit: Int) {
        lock.withLock {
            done[unit] = true
            while next < units.count && done[next] { next += 1 }
            let end = next == units.count ? (units.last?.range.upperBound ?? 0) : units[next].range.lowerBound
            if end - released >= ReleaseWatermark.batch || (next == units.count && end > released) {
                release(released..<end)
                released = end
            }
        }
    }
}

/// The replay state and step kernels for one storage codec.
///
/// Steps are applied tile-major: each tile (a slice of one tensor small enough for
/// every policy's state to stay in L2) runs through every step of a batch before the
/// next tile starts, so only the updates stream from memory. Every element's
/// arithmetic is the same whatever the batch, tile size or thread count, and counts
/// are integer sums, so results never depend on them.
final class TypedReplayCore<Codec: StorageCodec>: @unchecked Sendable {
    typealias Code = Codec.Code

    let codec: Codec
    let configuration: ReplayConfiguration
    let tensors: [ReplayTensor]
    let units: [WorkUnit]
    /// Flat index of each tensor's first element.
    let tensorStarts: [Int]

    /// W0, the fp32 base.
    let base: OwnedBuffer<Float>
    /// W0 rounded to storage (nearest-even): what every stored policy starts from.
    let storedBase: OwnedBuffer<Code>
    /// The fp32 truth (also the master weights).
    let truth: OwnedBuffer<Float>
    let pure: OwnedBuffer<Code>?
    let stochastic: OwnedBuffer<Code>?
    let kahanWeights: OwnedBuffer<Code>?
    let kahanCompensation: OwnedBuffer<Code>?
    /// One bit per element: the truth has been outside the rounding interval of the
    /// stored base (its nearest-even code differed from the stored base) after some step.
    /// Words per `WorkUnit.firstWord`; nil when only fp32 runs.
    let leftInterval: OwnedBuffer<UInt64>?
    /// NaN and Inf updates met so far, per work unit.
    let nonFiniteUpdates: OwnedBuffer<SIMD2<Int>>
    /// First word of each tensor's interval bits.
    let wordStarts: [Int]
    /// Half-ULP exponents of the stored codes for the step-level ratio histogram.
    let ratioBinner: RatioBinner?
    /// Whether bf16 tiles take the fused one-pass kernel (`runFusedUnit`); the tests
    /// turn it off to compare it with the per-policy loops.
    var fusedKernels = true
    /// Final counts with the C kernel where it applies (bf16); false: the Swift loop
    /// (the tests' oracle for the kernel).
    var countingKernel = true
    /// Entries per final-analysis counting job (a multiple of 64; tests use small ones to
    /// cross chunk boundaries).
    var finalChunkSize = FinalAnalysis<Codec>.chunkSize
    /// Steps per block of the fused kernel (the tests vary it; results do not depend on it).
    var fusedBlockSteps = FusedBFloat16Kernel.defaultBlockSteps
    /// Per work unit, how many batches took the fused path (for the tests).
    let fusedUnitRuns: OwnedBuffer<Int>

    /// Per applied step, entries whose stored value that step changed (`CountSlot`),
    /// when `stepViews` is on.
    private(set) var changedInStep: [SIMD8<Int>] = []
    /// Element-steps per |u_t| / half-ULP(pure w_t) bin, and those where pure changed.
    private(set) var ratioBins: [Int]
    private(set) var ratioBinsChanged: [Int]

    init(codec: Codec, tensors: [ReplayTensor], base source: UnsafeBufferPointer<Float>,
         configuration: ReplayConfiguration) {
        self.codec = codec
        self.configuration = configuration
        self.tensors = tensors
        units = WorkUnit.units(tensorCounts: tensors.map(\.count), size: configuration.tileSize)
        var starts: [Int] = []
        var start = 0
        for tensor in tensors {
            starts.append(start)
            start += tensor.count
        }
        tensorStarts = starts
        var words: [Int] = []
        var word = 0
        for tensor in tensors {
            words.append(word)
            word += (tensor.count + 63) / 64
        }
        wordStarts = words
        base = OwnedBuffer(copying: source)
        truth = OwnedBuffer(copying: source)
        let count = source.count
        storedBase = OwnedBuffer(repeating: 0, count: count)
        let storedBase = self.storedBase, base = self.base
        ParallelChunks.forEach(count: count, chunkSize: 16_384, threads: configuration.threads) { range in
            for index in range { storedBase[index] = codec.nearest(base[index]) }
        }
        func copyOfStoredBase(_ policy: ReplayPolicy) -> OwnedBuffer<Code>? {
            guard configuration.runs(policy) else { return nil }
            return OwnedBuffer(copying: UnsafeBufferPointer(start: storedBase.pointer, count: count))
        }
        pure = copyOfStoredBase(.pure)
        stochastic = copyOfStoredBase(.stochastic)
        kahanWeights = copyOfStoredBase(.kahan)
        kahanCompensation = configuration.runs(.kahan) ? OwnedBuffer(repeating: codec.nearest(0), count: count) : nil
        leftInterval = configuration.tracksInterval
            ? OwnedBuffer(repeating: 0, count: WorkUnit.wordCount(tensorCounts: tensors.map(\.count))) : nil
        nonFiniteUpdates = OwnedBuffer(repeating: SIMD2(), count: units.count)
        fusedUnitRuns = OwnedBuffer(repeating: 0, count: units.count)
        ratioBinner = configuration.stepViews && configuration.runs(.pure)
            ? RatioBinner(format: configuration.format, codeBits: Code.bitWidth) : nil
        // One more bin than the histogram: `RatioBinner.skippedBin`.
        ratioBins = Array(repeating: 0, count: VisibilityHistogram.binCount + 1)
        ratioBinsChanged = Array(repeating: 0, count: VisibilityHistogram.binCount + 1)
    }

    deinit {
        for buffer in [pure, stochastic, kahanWeights, kahanCompensation] { buffer?.release() }
        base.release()
        truth.release()
        storedBase.release()
        leftInterval?.release()
        nonFiniteUpdates.release()
        fusedUnitRuns.release()
    }

    // MARK: Steps

    /// Applies a batch of steps tile-major and returns the curve counts of the steps
    /// marked as curve points, in step order.
    /// - Parameters:
    ///   - progress: called once per finished tile with (tiles done, tiles).
    ///   - release: called with flat element ranges that every step of the batch is done
    ///     with (in increasing order), so the caller can drop the mapped update pages.
    /// `pieceCRCs`: when given, `steps.count` x `units.count` slots (step-major) that
    /// receive each unit's CRC-32 of its slice of each step's update bytes, taken right
    /// after the unit ran, while the slices are still in cache.
    func run(steps: [StepInput], progress: (@Sendable (Int, Int) -> Void)? = nil,
             release: (@Sendable (Range<Int>) -> Void)? = nil, pieceCRCs: OwnedBuffer<UInt32>? = nil) -> [CurveCounts] {
        guard !steps.isEmpty else { return [] }
        let curveSteps = steps.filter(\.curvePoint).count
        let tallies = StepTallies(curvePoints: curveSteps, tensors: tensors.count,
                                  steps: configuration.stepViews ? steps.count : 0,
                                  bins: VisibilityHistogram.binCount + 1)
        let finished = AtomicCounter()
        let unitCount = units.count
        let watermark = release.map { ReleaseWatermark(units: units, release: $0) }
        ParallelChunks.forEach(count: unitCount, chunkSize: 1, threads: configuration.threads) { indices in
            for unitIndex in indices {
                self.runUnit(unitIndex, steps: steps, curveSteps: curveSteps, tallies: tallies)
                if let pieceCRCs {
                    let range = self.units[unitIndex].range
                    for (stepIndex, input) in steps.enumerated() {
                        let slice = UnsafeRawBufferPointer(start: input.delta + range.lowerBound, count: 4 * range.count)
                        pieceCRCs[stepIndex * unitCount + unitIndex] = CRC32.update(0, slice)
                    }
                }
                watermark?.finished(unitIndex)
                if let progress { progress(finished.fetchAdd() + 1, unitCount) }
            }
        }
        if configuration.stepViews {
            changedInStep += tallies.changedInStep
            for index in ratioBins.indices {
                ratioBins[index] += tallies.ratioBins[index]
                ratioBinsChanged[index] += tallies.ratioBinsChanged[index]
            }
        }
        return tallies.curve.map { perTensor in
            var visible: [ReplayPolicy: [Int]] = [:]
            for policy in configuration.policies { visible[policy] = perTensor.map { $0[CountSlot.visible(policy)] } }
            return CurveCounts(trueChanged: perTensor.map { $0[CountSlot.trueChanged] }, visible: visible)
        }
    }

    /// One tile through every step of the batch: the truth, the interval bits, then
    /// each stored policy, each loop over the same L2-resident slices. Buffers are read
    /// into local pointers first so the loops can be vectorised.
    private func runUnit(_ unitIndex: Int, steps: [StepInput], curveSteps: Int, tallies: StepTallies) {
        let unit = units[unitIndex]
        if fusedKernels, let bfloat16 = self as? TypedReplayCore<BFloat16Codec>,
           bfloat16.runFusedUnit(unitIndex, steps: steps, curveSteps: curveSteps, tallies: tallies) {
            return
        }
        let lower = unit.range.lowerBound, length = unit.range.count
        let codec = self.codec
        let zeroCodes = (codec.nearest(0), codec.nearest(-0.0))
        let configuration = self.configuration
        let views = configuration.stepViews
        let truth = self.truth.pointer + lower
        let base = self.base.pointer + lower
        let storedBase = self.storedBase.pointer + lower
        let pure = self.pure?.pointer.advanced(by: lower)
        let stochastic = self.stochastic?.pointer.advanced(by: lower)
        let kahanWeights = kahanWeights?.pointer.advanced(by: lower)
        let kahanCompensation = kahanCompensation?.pointer.advanced(by: lower)
        let left = leftInterval?.pointer.advanced(by: unit.firstWord)
        let master = configuration.runs(.master)
        let needsExport = (views && master) || (master && curveSteps > 0)

        let scratch = TileScratch<Code>(length: length, scaled: configuration.scale != 1, export: needsExport,
                                        views: views)
        defer { scratch.release() }
        var exportIsCurrent = false
        var curve = Array(repeating: SIMD8<Int>(), count: curveSteps)
        var changed = Array(repeating: SIMD8<Int>(), count: views ? steps.count : 0)
        var bins = Array(repeating: 0, count: views ? VisibilityHistogram.binCount + 1 : 0)
        var binsChanged = bins
        var nonFinite = SIMD2<Int>()
        var curveIndex = 0
        let firstIndex = lower - unit.tensorStart

        for (stepIndex, input) in steps.enumerated() {
            var update = UnsafePointer(input.delta + lower)
            if let scaled = scratch.scaled {
                StepKernels.scale(update, by: configuration.scale, into: scaled, length)
                update = UnsafePointer(scaled)
            }
            var counts = SIMD8<Int>()

            // The truth (fp32 and master), its export and the interval bits.
            if views {
                scratch.previousTruth!.update(from: truth, count: length)
                if master && !exportIsCurrent {
                    StepKernels.export(codec, truth, into: scratch.export!, length)
                }
                if master { swap(&scratch.export, &scratch.previousExport) }
            }
            nonFinite &+= StepKernels.addTruth(truth, update, length)
            if views { counts[CountSlot.trueChanged] = StepKernels.countChangedBits(truth, scratch.previousTruth!, length) }
            // The export codes are written only when a count needs them this step.
            let wantsCodes = master && (views || input.curvePoint)
            if let left {
                StepKernels.markLeftInterval(codec, truth, storedBase, length, into: left,
                                             export: wantsCodes ? scratch.export! : nil, flags: scratch.flags,
                                             zeros: zeroCodes, signedZeros: configuration.signedZeroChanges)
            } else if wantsCodes {
                StepKernels.export(codec, truth, into: scratch.export!, length)
            }
            exportIsCurrent = wantsCodes
            if wantsCodes && views {
                counts[CountSlot.visible(.master)] =
                    StepKernels.countDiffering(scratch.export!, scratch.previousExport!, length)
            }

            let key = StochasticKey(seed: configuration.seed, stream: UInt64(tensors[unit.tensor].streamIndex ?? unit.tensor),
                                    step: input.step)
            if let pure {
                if views {
                    ratioBinner!.bins(update, pure, length, into: scratch.bins!)
                    scratch.previousCodes!.update(from: pure, count: length)
                }
                if codec.pureIsStochastic {
                    StepKernels.addStochastic(codec, pure, update, length, key: key, firstIndex: firstIndex, pure: true)
                } else {
                    StepKernels.addRounded(codec, pure, update, length)
                }
                if views {
                    counts[CountSlot.visible(.pure)] = StepKernels.countDiffering(pure, scratch.previousCodes!, length)
                    StepKernels.tally(scratch.bins!, pure, scratch.previousCodes!, length,
                                      into: &bins, changed: &binsChanged)
                }
            }
            if let stochastic {
                if views { scratch.previousCodes!.update(from: stochastic, count: length) }
                StepKernels.addStochastic(codec, stochastic, update, length, key: key, firstIndex: firstIndex,
                                          pure: false)
                if views {
                    counts[CountSlot.visible(.stochastic)] =
                        StepKernels.countDiffering(stochastic, scratch.previousCodes!, length)
                }
            }
            if let kahanWeights, let kahanCompensation {
                if views { scratch.previousCodes!.update(from: kahanWeights, count: length) }
                StepKernels.addKahan(codec, kahanWeights, kahanCompensation, update, length)
                if views {
                    counts[CountSlot.visible(.kahan)] =
                        StepKernels.countDiffering(kahanWeights, scratch.previousCodes!, length)
                }
            }
            if views { changed[stepIndex] = counts }

            if input.curvePoint {
                var point = SIMD8<Int>()
                point[CountSlot.trueChanged] = StepKernels.countChangedBits(truth, base, length)
                if master { point[CountSlot.visible(.master)] = StepKernels.countDiffering(scratch.export!, storedBase, length) }
                if let pure { point[CountSlot.visible(.pure)] = StepKernels.countDiffering(pure, storedBase, length) }
                if let stochastic {
                    point[CountSlot.visible(.stochastic)] = StepKernels.countDiffering(stochastic, storedBase, length)
                }
                if let kahanWeights {
                    point[CountSlot.visible(.kahan)] = StepKernels.countDiffering(kahanWeights, storedBase, length)
                }
                curve[curveIndex] = point
                curveIndex += 1
            }
        }
        nonFiniteUpdates[unitIndex] &+= nonFinite
        tallies.add(tensor: unit.tensor, curve: curve, changed: changed, bins: bins, binsChanged: binsChanged)
    }

    // MARK: Final

    /// Every element where the fp32 replay differs from FINL (bit inequality): the count,
    /// the largest distance in ULPs and the first one in flat order.
    func truthMismatches(_ final: UnsafeBufferPointer<Float>) -> (count: Int, maxULP: UInt64, first: TruthMismatch?) {
        let final = UnsafeSendable(final)
        let perUnit = ParallelChunks.map(count: units.count, chunkSize: 1, threads: configuration.threads) {
            indices -> (Int, UInt64, Int?) in
            let unit = self.units[indices.lowerBound]
            var count = 0, maxULP: UInt64 = 0, first: Int? = nil
            let recorded = final.value
            for index in unit.range where self.truth[index].bitPattern != recorded[index].bitPattern {
                count += 1
                maxULP = max(maxULP, ulpDistance(self.truth[index], recorded[index]))
                if first == nil { first = index }
            }
            return (count, maxULP, first)
        }
        var count = 0, maxULP: UInt64 = 0, first: TruthMismatch? = nil
        for (unitIndex, entry) in perUnit.enumerated() {
            count += entry.0
            maxULP = max(maxULP, entry.1)
            if first == nil, let index = entry.2 {
                let unit = units[unitIndex]
                first = TruthMismatch(tensor: unit.tensor, index: index - unit.tensorStart,
                                      replayed: truth[index], recorded: final.value[index])
            }
        }
        return (count, maxULP, first)
    }

    /// Whether the truth left the stored base's rounding interval after some step.
    @inline(__always) func leftIntervalBit(_ index: Int, tensor: Int) -> Bool {
        guard let leftInterval else { return false }
        let local = index - tensorStarts[tensor]
        let word = wordStarts[tensor] + local / 64
        return (leftInterval[word] >> UInt64(local % 64)) & 1 == 1
    }


    // MARK: Final

    /// The final code of a stored policy at an element.
    @inline(__always) func finalCode(_ policy: ReplayPolicy, _ index: Int) -> Code {
        switch policy {
        case .fp32, .master: return codec.nearest(truth[index])
        case .pure: return pure![index]
        case .stochastic: return stochastic![index]
        case .kahan: return kahanWeights![index]
        }
    }

    /// The step-level views gathered so far, nil unless `stepViews` is on.
    func stepViews(steps: [UInt64]) -> StepViews? {
        guard configuration.stepViews else { return nil }
        var changed: [ReplayPolicy: [Int]] = [:]
        for policy in configuration.policies {
            changed[policy] = changedInStep.map { $0[CountSlot.visible(policy)] }
        }
        let bins = VisibilityHistogram.binCount
        return StepViews(steps: steps, changedInStep: changed,
                         pureRatioHistogram: configuration.runs(.pure) ? Array(ratioBins[0..<bins]) : nil,
                         pureRatioChanged: configuration.runs(.pure) ? Array(ratioBinsChanged[0..<bins]) : nil,
                         pureRatioSkipped: configuration.runs(.pure) ? ratioBins[bins] : 0)
    }

    func finish() -> [TensorReplayResult] {
        FinalAnalysis(core: self).run()
    }

    /// W0 and W_T of one tensor as a policy stores them (fp32: the base and the truth;
    /// stored policies: the decoded stored base and final codes), with the mask of
    /// entries whose stored bits changed.
    func weightsBeforeAndAfter(_ policy: ReplayPolicy, tensor: Int) -> ReplayWeights {
        let start = tensorStarts[tensor]
        let count = tensors[tensor].count
        var before = [Double](repeating: 0, count: count)
        var after = [Double](repeating: 0, count: count)
        var changed = [Bool](repeating: false, count: count)
        for local in 0..<count {
            let index = start + local
            if policy == .fp32 {
                before[local] = Double(base[index])
                after[local] = Double(truth[index])
                changed[local] = base[index].bitPattern != truth[index].bitPattern
            } else {
                let stored = storedBase[index], final = finalCode(policy, index)
                before[local] = Double(codec.decode(stored))
                after[local] = Double(codec.decode(final))
                changed[local] = stored != final
            }
        }
        return ReplayWeights(before: before, after: after, changed: changed)
    }
}

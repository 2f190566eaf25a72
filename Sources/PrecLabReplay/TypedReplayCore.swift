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

/// The replay state and step kernels for one storage codec.
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
    /// Counters of the current step, one vector per work unit.
    let stepCounts: OwnedBuffer<SIMD8<Int>>
    /// NaN and Inf updates met so far, per work unit.
    let nonFiniteUpdates: OwnedBuffer<SIMD2<Int>>

    init(codec: Codec, tensors: [ReplayTensor], base source: UnsafeBufferPointer<Float>,
         configuration: ReplayConfiguration) {
        self.codec = codec
        self.configuration = configuration
        self.tensors = tensors
        units = WorkUnit.units(tensorCounts: tensors.map(\.count))
        var starts: [Int] = []
        var start = 0
        for tensor in tensors {
            starts.append(start)
            start += tensor.count
        }
        tensorStarts = starts
        base = OwnedBuffer(copying: source)
        truth = OwnedBuffer(copying: source)
        let count = source.count
        storedBase = OwnedBuffer(repeating: 0, count: count)
        let storedBase = self.storedBase, base = self.base
        ParallelChunks.forEach(count: count, chunkSize: WorkUnit.size, threads: configuration.threads) { range in
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
        stepCounts = OwnedBuffer(repeating: SIMD8(), count: units.count)
        nonFiniteUpdates = OwnedBuffer(repeating: SIMD2(), count: units.count)
    }

    deinit {
        for buffer in [pure, stochastic, kahanWeights, kahanCompensation] { buffer?.release() }
        base.release()
        truth.release()
        storedBase.release()
        stepCounts.release()
        nonFiniteUpdates.release()
    }

    // MARK: Steps

    func apply(step: UInt64, delta: UnsafeBufferPointer<Float>, count: Bool) -> CurveCounts? {
        let deltaPointer = UnsafeSendable(delta.baseAddress!)
        ParallelChunks.forEach(count: units.count, chunkSize: 1, threads: configuration.threads) { indices in
            for unitIndex in indices {
                self.applyUnit(unitIndex, step: step, delta: deltaPointer.value, count: count)
            }
        }
        guard count else { return nil }
        var trueChanged = Array(repeating: 0, count: tensors.count)
        var visible: [ReplayPolicy: [Int]] = [:]
        for policy in configuration.policies { visible[policy] = Array(repeating: 0, count: tensors.count) }
        for (unitIndex, unit) in units.enumerated() {
            let counts = stepCounts[unitIndex]
            trueChanged[unit.tensor] += counts[CountSlot.trueChanged]
            for policy in configuration.policies {
                visible[policy]![unit.tensor] += counts[CountSlot.visible(policy)]
            }
        }
        return CurveCounts(trueChanged: trueChanged, visible: visible)
    }

    /// One fused pass over a work unit: the truth, then each stored policy, each loop
    /// over the same L2-resident slice. Counting loops run only on curve steps.
    /// Buffers are read into local pointers first so the loops can be vectorised.
    private func applyUnit(_ unitIndex: Int, step: UInt64, delta: UnsafePointer<Float>, count: Bool) {
        let unit = units[unitIndex]
        let lower = unit.range.lowerBound, length = unit.range.count
        let codec = self.codec
        let update = delta + lower
        let truth = self.truth.pointer + lower
        let base = self.base.pointer + lower
        let storedBase = self.storedBase.pointer + lower
        var counts = SIMD8<Int>()

        nonFiniteUpdates[unitIndex] &+= StepKernels.addTruth(truth, update, length)
        if count {
            counts[CountSlot.trueChanged] = StepKernels.countChangedBits(truth, base, length)
            if configuration.runs(.master) {
                counts[CountSlot.visible(.master)] = StepKernels.countVisibleExport(codec, truth, storedBase, length)
            }
        }

        let key = StochasticKey(seed: configuration.seed, stream: UInt64(tensors[unit.tensor].streamIndex ?? unit.tensor),
                                step: step)
        let firstIndex = lower - unit.tensorStart
        if let pure = self.pure?.pointer.advanced(by: lower) {
            if codec.pureIsStochastic {
                StepKernels.addStochastic(codec, pure, update, length, key: key, firstIndex: firstIndex, pure: true)
            } else {
                StepKernels.addRounded(codec, pure, update, length)
            }
            if count { counts[CountSlot.visible(.pure)] = StepKernels.countDiffering(pure, storedBase, length) }
        }
        if let stochastic = self.stochastic?.pointer.advanced(by: lower) {
            StepKernels.addStochastic(codec, stochastic, update, length, key: key, firstIndex: firstIndex, pure: false)
            if count {
                counts[CountSlot.visible(.stochastic)] = StepKernels.countDiffering(stochastic, storedBase, length)
            }
        }
        if let weights = kahanWeights?.pointer.advanced(by: lower),
           let compensation = kahanCompensation?.pointer.advanced(by: lower) {
            StepKernels.addKahan(codec, weights, compensation, update, length)
            if count { counts[CountSlot.visible(.kahan)] = StepKernels.countDiffering(weights, storedBase, length) }
        }
        stepCounts[unitIndex] = counts
    }

    // MARK: Final

    func firstTruthMismatch(_ final: UnsafeBufferPointer<Float>) -> TruthMismatch? {
        for unit in units {
            for index in unit.range where truth[index].bitPattern != final[index].bitPattern {
                return TruthMismatch(tensor: unit.tensor, index: index - unit.tensorStart,
                                     replayed: truth[index], recorded: final[index])
            }
        }
        return nil
    }

    /// The final code of a stored policy at an element.
    @inline(__always) func finalCode(_ policy: ReplayPolicy, _ index: Int) -> Code {
        switch policy {
        case .fp32, .master: return codec.nearest(truth[index])
        case .pure: return pure![index]
        case .stochastic: return stochastic![index]
        case .kahan: return kahanWeights![index]
        }
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

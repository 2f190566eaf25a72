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
final class TypedReplayCore<Codec: StorageCodec>: ReplayCore, @unchecked Sendable {
    typealias Code = Codec.Code

    let codec: Codec
    let configuration: ReplayConfiguration
    let tensors: [ReplayTensor]
    let units: [WorkUnit]

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
    private func applyUnit(_ unitIndex: Int, step: UInt64, delta: UnsafePointer<Float>, count: Bool) {
        let unit = units[unitIndex]
        let range = unit.range
        let codec = self.codec
        var counts = SIMD8<Int>()

        // fp32 truth (= master weights), and non-finite updates.
        var nanCount = 0, infiniteCount = 0
        for index in range {
            let update = delta[index]
            truth[index] = truth[index] + update
            let magnitude = update.bitPattern & 0x7FFF_FFFF
            nanCount &+= magnitude > 0x7F80_0000 ? 1 : 0
            infiniteCount &+= magnitude == 0x7F80_0000 ? 1 : 0
        }
        nonFiniteUpdates[unitIndex] &+= SIMD2(nanCount, infiniteCount)

        if count {
            var changed = 0
            for index in range { changed &+= truth[index].bitPattern != base[index].bitPattern ? 1 : 0 }
            counts[CountSlot.trueChanged] = changed
            if configuration.runs(.master) {
                var visible = 0
                for index in range { visible &+= codec.nearest(truth[index]) != storedBase[index] ? 1 : 0 }
                counts[CountSlot.visible(.master)] = visible
            }
        }

        let key = StochasticKey(seed: configuration.seed, stream: UInt64(unit.tensor), step: step)
        if let pure {
            if codec.pureIsStochastic {
                for index in range {
                    let random = key.randomBits(index: index - unit.tensorStart)
                    pure[index] = codec.pureRound(codec.decode(pure[index]) + delta[index], random: random)
                }
            } else {
                for index in range {
                    pure[index] = codec.pureRound(codec.decode(pure[index]) + delta[index], random: 0)
                }
            }
            if count { counts[CountSlot.visible(.pure)] = countDiffering(pure, range) }
        }
        if let stochastic {
            for index in range {
                let random = key.randomBits(index: index - unit.tensorStart)
                stochastic[index] = codec.stochastic(codec.decode(stochastic[index]) + delta[index], random: random)
            }
            if count { counts[CountSlot.visible(.stochastic)] = countDiffering(stochastic, range) }
        }
        if let weights = kahanWeights, let compensation = kahanCompensation {
            // Kahan-compensated storage (precision.md): c += u; old = w; w += c;
            // c += (old - w); every operation formed in fp32 and rounded to storage.
            for index in range {
                let c = codec.nearest(codec.decode(compensation[index]) + delta[index])
                let old = weights[index]
                let updated = codec.nearest(codec.decode(old) + codec.decode(c))
                let lost = codec.nearest(codec.decode(old) - codec.decode(updated))
                compensation[index] = codec.nearest(codec.decode(c) + codec.decode(lost))
                weights[index] = updated
            }
            if count { counts[CountSlot.visible(.kahan)] = countDiffering(weights, range) }
        }
        stepCounts[unitIndex] = counts
    }

    @inline(__always) private func countDiffering(_ codes: OwnedBuffer<Code>, _ range: Range<Int>) -> Int {
        var differing = 0
        for index in range { differing &+= codes[index] != storedBase[index] ? 1 : 0 }
        return differing
    }

    // MARK: Final

    func firstTruthMismatch(_ final: UnsafeBufferPointer<Float>) -> TruthMismatch? {
        for (unitIndex, unit) in units.enumerated() {
            _ = unitIndex
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
}

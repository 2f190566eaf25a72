import CPrecLabKernels
import PrecLabFormats

/// The bf16 replay's fast path: every policy of a step in one pass per element
/// (`FusedBFloat16Kernel`), on tile state expanded to 32-bit lanes. Used for plain bf16
/// storage without signed-zero changes; everything else takes the
/// per-policy loops of `runUnit`, which the tests use as the reference for this path.
extension TypedReplayCore where Codec == BFloat16Codec {
    /// Batches shorter than this take the per-policy loops.
    static var fusedMinimumSteps: Int { 4 }

    /// Whether the configuration lets tiles take the fused path.
    var fusedPureMode: FusedPureMode? {
        guard !configuration.signedZeroChanges, configuration.tracksInterval else {
            return nil
        }
        guard pure != nil else { return .off }
        return codec.pureIsNearest ? .nearest : codec.pureIsStochastic ? .stochastic : nil
    }

    /// Runs one tile through the steps on the fused path. Returns false, having changed
    /// nothing, when the tile cannot take it (then `runUnit`'s loops run it).
    func runFusedUnit(_ unitIndex: Int, steps: [StepInput], curveSteps: Int, tallies: StepTallies) -> Bool {
        let unit = units[unitIndex]
        let lower = unit.range.lowerBound, length = unit.range.count
        let firstIndex = lower - unit.tensorStart
        // Loading a tile costs a few steps' work, so single steps take the plain loops.
        // The stochastic bits' block keys must be the same across the tile.
        guard steps.count >= TypedReplayCore.fusedMinimumSteps, let pureMode = fusedPureMode,
              firstIndex >> 32 == (firstIndex + length - 1) >> 32 else { return false }
        let configuration = self.configuration
        let views = configuration.stepViews
        // The ratio histogram reads RatioBinner's table of half-ULP exponents (bf16: 2^16
        // codes), into bins the kernel has room for.
        guard !views || pure == nil
                || (ratioExponents != nil && RatioBinner.skippedBin < PRECLAB_FUSED_RATIO_BIN_CAPACITY)
        else { return false }
        let halfULPExponents = ratioExponents.map { UnsafePointer($0.pointer) }
        let tile = FusedTile(length: length, pure: pureMode, stochastic: stochastic != nil,
                             kahan: kahanWeights != nil, scaled: configuration.scale != 1,
                             ratioBins: views && pure != nil)
        defer { tile.release() }
        guard tile.loadBase(base.pointer + lower, stored: storedBase.pointer + lower) else { return false }
        let stateBuffers: [(OwnedBuffer<UInt16>?, UnsafeMutablePointer<UInt32>?)] = [
            (pure, tile.pure), (stochastic, tile.stochastic),
            (kahanWeights, tile.kahanWeights), (kahanCompensation, tile.kahanCompensation),
        ]
        for case let (buffer?, lanes?) in stateBuffers { tile.expand(buffer.pointer + lower, into: lanes) }

        let truth = self.truth.pointer + lower
        let stream = UInt64(tensors[unit.tensor].streamIndex ?? unit.tensor)
        let needsRandom = stochastic != nil || pureMode == .stochastic
        var curve = Array(repeating: SIMD8<Int>(), count: curveSteps)
        var curveIndex = 0
        var changed = Array(repeating: SIMD8<Int>(), count: views ? steps.count : 0)
        var bins = Array(repeating: 0, count: views ? VisibilityHistogram.binCount + 1 : 0)
        var binsChanged = bins
        var nonFinite = SIMD2<Int>()
        for (stepIndex, input) in steps.enumerated() {
            var update = UnsafePointer(input.delta + lower)
            let nextUpdate = stepIndex + 1 < steps.count ? UnsafePointer(steps[stepIndex + 1].delta + lower) : nil
            if let scaled = tile.scaled {
                StepKernels.scale(update, by: configuration.scale, into: scaled, length)
                update = UnsafePointer(scaled)
            }
            let keys = needsRandom
                ? StochasticKey(seed: configuration.seed, stream: stream, step: input.step).blockKeys(forIndex: firstIndex)
                : (k1: 0, k2: 0)
            let outcome = FusedBFloat16Kernel.apply(truth: truth, update: update, nextUpdate: nextUpdate, tile: tile,
                                                    randomFirst: UInt32(truncatingIfNeeded: firstIndex),
                                                    k1: keys.k1, k2: keys.k2, counting: input.curvePoint || views,
                                                    ratioHistogram: views ? halfULPExponents : nil)
            if outcome.nonFiniteUpdates { nonFinite &+= FusedBFloat16Kernel.countNonFinite(update, length) }
            if views { changed[stepIndex] = outcome.stepChanges }
            if input.curvePoint {
                curve[curveIndex] = outcome.counts
                curveIndex += 1
            }
        }
        if let all = tile.ratioAll, let changedInBin = tile.ratioChanged {
            for bin in bins.indices {
                bins[bin] += Int(all[bin])
                binsChanged[bin] += Int(changedInBin[bin])
            }
        }
        for case let (buffer?, lanes?) in stateBuffers { tile.contract(lanes, into: buffer.pointer + lower) }
        if let words = leftInterval?.pointer.advanced(by: unit.firstWord) { tile.orLeftBits(into: words) }
        nonFiniteUpdates[unitIndex] &+= nonFinite
        tallies.add(tensor: unit.tensor, curve: curve, changed: changed, bins: bins, binsChanged: binsChanged)
        fusedUnitRuns[unitIndex] &+= 1
        return true
    }
}

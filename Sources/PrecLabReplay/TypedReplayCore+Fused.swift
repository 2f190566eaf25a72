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
        // The ratio histogram's bins must fit the kernel's (which computes RatioBinner's
        // half-ULP exponents of bf16 codes itself).
        guard !views || pure == nil || RatioBinner.skippedBin < PRECLAB_FUSED_RATIO_BIN_CAPACITY else { return false }
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
        var changed = Array(repeating: SIMD8<Int>(), count: views ? steps.count : 0)
        var bins = Array(repeating: 0, count: views ? VisibilityHistogram.binCount + 1 : 0)
        var binsChanged = bins
        var nonFinite = SIMD2<Int>()
        let blockSteps = max(1, min(fusedBlockSteps, FusedBFloat16Kernel.maximumBlockSteps))
        func slice(_ stepIndex: Int) -> UnsafePointer<Float> { UnsafePointer(steps[stepIndex].delta + lower) }

        /// Every step, block by block; `checked`: see `FusedBFloat16Kernel.apply`.
        func runSteps(checked: Bool) {
            var curveIndex = 0
            for blockStart in stride(from: 0, to: steps.count, by: blockSteps) {
                let block = blockStart..<min(steps.count, blockStart + blockSteps)
                var counting: UInt32 = 0
                for (position, stepIndex) in block.enumerated() {
                    let input = steps[stepIndex]
                    var update = slice(stepIndex)
                    if let scaled = tile.scaled {
                        let target = scaled + position * length
                        StepKernels.scale(update, by: configuration.scale, into: target, length)
                        update = UnsafePointer(target)
                    }
                    tile.updates[position] = update
                    let next = stepIndex + blockSteps
                    tile.prefetches[position] = next < steps.count ? slice(next) : nil
                    if needsRandom {
                        let keys = StochasticKey(seed: configuration.seed, stream: stream, step: input.step)
                            .blockKeys(forIndex: firstIndex)
                        tile.k1[position] = keys.k1
                        tile.k2[position] = keys.k2
                    }
                    if input.curvePoint || views { counting |= 1 << UInt32(position) }
                }
                let special = FusedBFloat16Kernel.apply(truth: truth, steps: block.count, tile: tile,
                                                        randomFirst: UInt32(truncatingIfNeeded: firstIndex),
                                                        counting: counting, stepChanges: views, checked: checked,
                                                        ratioHistogram: views && pure != nil)
                for (position, stepIndex) in block.enumerated() {
                    if special & (1 << UInt32(position)) != 0 {
                        nonFinite &+= FusedBFloat16Kernel.countNonFinite(tile.updates[position]!, length)
                    }
                    guard counting & (1 << UInt32(position)) != 0 else { continue }
                    let outcome = FusedBFloat16Kernel.stepCounts(tile, position)
                    if views { changed[stepIndex] = outcome.stepChanges }
                    if steps[stepIndex].curvePoint {
                        curve[curveIndex] = outcome.counts
                        curveIndex += 1
                    }
                }
            }
        }
        // Unchecked first: no update is tested for NaN or Inf. Those are the only updates
        // the unchecked roundings can get wrong, and a NaN or Inf update leaves the truth
        // not finite for good (NaN + x is NaN, Inf + x is Inf or NaN), so a tile whose
        // truth is finite after the batch had none. Otherwise the batch runs again from
        // its start, checked (which also counts those updates).
        if FusedBFloat16Kernel.allFinite(truth, length) {
            tile.savedTruth.update(from: truth, count: length)
            runSteps(checked: false)
            if !FusedBFloat16Kernel.allFinite(truth, length) {
                truth.update(from: tile.savedTruth, count: length)
                for case let (buffer?, lanes?) in stateBuffers { tile.expand(buffer.pointer + lower, into: lanes) }
                tile.resetBatchState()
                nonFinite = SIMD2()
                runSteps(checked: true)
            }
        } else {
            runSteps(checked: true)
        }
        if let all = tile.ratioAll, let changedInBin = tile.ratioChanged {
            for bin in bins.indices {
                bins[bin] += Int(all[bin])
                binsChanged[bin] += Int(changedInBin[bin])
            }
        }
        for case let (buffer?, lanes?) in stateBuffers { tile.contract(lanes, into: buffer.pointer + lower) }
        if let words = leftInterval?.pointer.advanced(by: unit.firstWord) { tile.orLeftBits(truth: truth, into: words) }
        nonFiniteUpdates[unitIndex] &+= nonFinite
        tallies.add(tensor: unit.tensor, curve: curve, changed: changed, bins: bins, binsChanged: binsChanged)
        fusedUnitRuns[unitIndex] &+= 1
        return true
    }
}

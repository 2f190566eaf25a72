import CPrecLabKernels
import PrecLabFormats

/// The state of one tile while it runs through a batch of steps, expanded to 32-bit
/// lanes (a bf16 code held as the fp32 pattern it decodes to, code << 16) and padded to
/// a multiple of eight. Loaded from the engine's code buffers before the first step and
/// written back after the last, so the conversions cost nothing next to the steps
/// between them.
final class FusedTile {
    let length: Int
    /// Elements in whole vectors of eight.
    let vectorLength: Int
    /// Lanes of each state buffer: `length` rounded up to whole vectors (at least one).
    let padded: Int
    let pureMode: FusedPureMode
    /// W0 and the stored base, expanded (for the curve counts).
    let base: UnsafeMutablePointer<Float>
    let storedBase: UnsafeMutablePointer<UInt32>
    /// I, the rounding interval of the stored base, as fp32 bounds: the truth's nearest
    /// code is the stored base iff lower <= truth <= upper (`roundingInterval`).
    let lower: UnsafeMutablePointer<Float>
    let upper: UnsafeMutablePointer<Float>
    /// The truth's least and greatest value after the batch's steps so far (+Inf and
    /// -Inf before the first; NaNs skipped), for "left I" (`orLeftBits`).
    let minimum: UnsafeMutablePointer<Float>
    let maximum: UnsafeMutablePointer<Float>
    let pure: UnsafeMutablePointer<UInt32>?
    let stochastic: UnsafeMutablePointer<UInt32>?
    let kahanWeights: UnsafeMutablePointer<UInt32>?
    let kahanCompensation: UnsafeMutablePointer<UInt32>?
    /// The scaled updates of a block (`--scale`), `length` per step.
    let scaled: UnsafeMutablePointer<Float>?
    /// Eight lanes for the last partial vector of the truth, and of each step's update.
    let tailTruth: UnsafeMutablePointer<Float>
    let tailUpdate: UnsafeMutablePointer<Float>
    /// A block's inputs, one entry per step (`FusedBFloat16Kernel.maximumBlockSteps` at most):
    /// the update slices (set by the caller), the slices to prefetch, the stochastic
    /// block keys, and the counts the kernel adds to.
    let updates: UnsafeMutablePointer<UnsafePointer<Float>?>
    let prefetches: UnsafeMutablePointer<UnsafePointer<Float>?>
    let k1: UnsafeMutablePointer<UInt32>
    let k2: UnsafeMutablePointer<UInt32>
    let counts: UnsafeMutablePointer<preclab_fused_counts>
    /// The truth at the start of the batch (an unchecked run that met a NaN or Inf runs
    /// again from it).
    let savedTruth: UnsafeMutablePointer<Float>
    /// The tail's update pointers (into `tailUpdate`).
    private let tailUpdates: UnsafeMutablePointer<UnsafePointer<Float>?>
    var tailUpdatesPointer: UnsafePointer<UnsafePointer<Float>?> { UnsafePointer(tailUpdates) }
    /// The pure policy's update-ratio histogram over the batch (step views): element-steps
    /// per bin, and those whose code changed (`RatioBinner.skippedBin` + 1 bins).
    let ratioAll: UnsafeMutablePointer<UInt64>?
    let ratioChanged: UnsafeMutablePointer<UInt64>?

    init(length: Int, pure: FusedPureMode, stochastic: Bool, kahan: Bool, scaled: Bool, ratioBins: Bool) {
        self.length = length
        vectorLength = length / 8 * 8
        pureMode = pure
        let padded = max(8, (length + 7) / 8 * 8)
        self.padded = padded
        // The first `length` lanes are written before the first step (`loadBase`,
        // `expand`, `resetBatchState`); the padding past them stays zero, which the
        // last vector's padded lanes keep.
        func lanes<Lane>(_: Lane.Type, _ wanted: Bool = true) -> UnsafeMutablePointer<Lane>? {
            guard wanted else { return nil }
            let raw = UnsafeMutableRawPointer.allocate(byteCount: 4 * padded, alignment: 64)
            (raw + 4 * length).initializeMemory(as: UInt8.self, repeating: 0, count: 4 * (padded - length))
            return raw.assumingMemoryBound(to: Lane.self)
        }
        base = lanes(Float.self)!
        storedBase = lanes(UInt32.self)!
        lower = lanes(Float.self)!
        upper = lanes(Float.self)!
        minimum = lanes(Float.self)!
        maximum = lanes(Float.self)!
        self.pure = lanes(UInt32.self, pure != .off)
        self.stochastic = lanes(UInt32.self, stochastic)
        kahanWeights = lanes(UInt32.self, kahan)
        kahanCompensation = lanes(UInt32.self, kahan)
        let steps = FusedBFloat16Kernel.maximumBlockSteps
        self.scaled = scaled ? .allocate(capacity: max(length, 1) * steps) : nil
        tailTruth = .allocate(capacity: 8)
        savedTruth = .allocate(capacity: max(length, 1))
        tailUpdate = .allocate(capacity: 8 * steps)
        updates = .allocate(capacity: steps)
        updates.initialize(repeating: nil, count: steps)
        prefetches = .allocate(capacity: steps)
        prefetches.initialize(repeating: nil, count: steps)
        k1 = .allocate(capacity: steps)
        k1.initialize(repeating: 0, count: steps)
        k2 = .allocate(capacity: steps)
        k2.initialize(repeating: 0, count: steps)
        counts = .allocate(capacity: steps)
        counts.initialize(repeating: preclab_fused_counts(), count: steps)
        tailUpdates = .allocate(capacity: steps)
        for step in 0..<steps { tailUpdates[step] = UnsafePointer(tailUpdate + 8 * step) }
        let bins = RatioBinner.skippedBin + 1
        ratioAll = ratioBins ? .allocate(capacity: bins) : nil
        ratioChanged = ratioBins ? .allocate(capacity: bins) : nil
        resetBatchState()
    }

    func release() {
        for pointer in [storedBase, pure, stochastic, kahanWeights, kahanCompensation] {
            pointer?.deallocate()
        }
        base.deallocate()
        minimum.deallocate()
        maximum.deallocate()
        lower.deallocate()
        upper.deallocate()
        scaled?.deallocate()
        tailTruth.deallocate()
        tailUpdate.deallocate()
        savedTruth.deallocate()
        updates.deallocate()
        prefetches.deallocate()
        k1.deallocate()
        k2.deallocate()
        counts.deallocate()
        tailUpdates.deallocate()
        ratioAll?.deallocate()
        ratioChanged?.deallocate()
    }

    /// Copies W0, expands the stored base and sets I's bounds. Returns false (the tile
    /// cannot take the fused path) when a stored base is a NaN, whose interval is not one
    /// range.
    func loadBase(_ weights: UnsafePointer<Float>, stored codes: UnsafePointer<UInt16>) -> Bool {
        var nanCodes: UInt16 = 0
        for index in 0..<length { nanCodes |= (0x7F80 &- (codes[index] & 0x7FFF)) & 0x8000 }
        guard nanCodes == 0 else { return false }
        base.update(from: weights, count: length)
        let lowerBits = UnsafeMutableRawPointer(lower).assumingMemoryBound(to: UInt32.self)
        let upperBits = UnsafeMutableRawPointer(upper).assumingMemoryBound(to: UInt32.self)
        for index in 0..<length {
            let code = codes[index]
            let bounds = FusedTile.roundingIntervalBits(code)
            storedBase[index] = UInt32(code) << 16
            lowerBits[index] = bounds.lower
            upperBits[index] = bounds.upper
        }
        return true
    }

    /// The fp32 values whose nearest-even bf16 code is `code`, as [lower, upper], with
    /// +0 and -0 one value (a zero's interval holds both signs' tiny values); nil for a
    /// NaN code.
    static func roundingInterval(_ code: UInt16) -> (lower: Float, upper: Float)? {
        guard code & 0x7FFF <= 0x7F80 else { return nil }
        let bounds = roundingIntervalBits(code)
        return (Float(bitPattern: bounds.lower), Float(bitPattern: bounds.upper))
    }

    /// `roundingInterval` as bit patterns for a code that is not a NaN, branch-free (the
    /// tile setup loop vectorises).
    ///
    /// Nearest-even is (bits + 0x7FFF + lsb) >> 16 on the fp32 bits, monotone within a
    /// sign, so the preimage of code b (B = b << 16) is the bit range B - 0x8000 ...
    /// B + 0x8000 for even b (ties round to it) and B - 0x7FFF ... B + 0x7FFF for odd
    /// b; above +-Inf's pattern lie NaNs, which round to NaN codes.
    @inline(__always) static func roundingIntervalBits(_ code: UInt16) -> (lower: UInt32, upper: UInt32) {
        let magnitude = UInt32(code & 0x7FFF)
        let sign = UInt32(code & 0x8000) << 16
        let reach: UInt32 = 0x8000 &- UInt32(code & 1)
        let centre = magnitude << 16
        let low = centre &- reach
        let high = min(centre &+ reach, 0x7F80_0000)
        // A zero's interval holds the tiny values of both signs: [-0x8000, +0x8000] as bits.
        let isZero = magnitude == 0
        let lower = isZero ? 0x8000_8000 : (sign == 0 ? low : high | sign)
        let upper = isZero ? 0x0000_8000 : (sign == 0 ? high : low | sign)
        return (lower, upper)
    }

    /// Expanded codes from a code buffer (`length` codes).
    func expand(_ codes: UnsafePointer<UInt16>, into lanes: UnsafeMutablePointer<UInt32>) {
        for index in 0..<length { lanes[index] = UInt32(codes[index]) << 16 }
    }

    /// Sets what the batch's steps accumulate in the tile (the truth's extremes and the
    /// ratio histogram) to its start: before the first step, and for a run again from
    /// the batch's start.
    func resetBatchState() {
        minimum.update(repeating: .infinity, count: padded)
        maximum.update(repeating: -.infinity, count: padded)
        let bins = RatioBinner.skippedBin + 1
        ratioAll?.update(repeating: 0, count: bins)
        ratioChanged?.update(repeating: 0, count: bins)
    }

    /// Codes back from expanded lanes.
    func contract(_ lanes: UnsafePointer<UInt32>, into codes: UnsafeMutablePointer<UInt16>) {
        for index in 0..<length { codes[index] = UInt16(truncatingIfNeeded: lanes[index] >> 16) }
    }

    /// ORs "left I" into a bit set (bit i % 64 of word i / 64). The truth was outside I
    /// after some step of the batch iff its least value fell below I's lower bound, its
    /// greatest rose above the upper one, or it was a NaN: then it is a NaN now (NaN plus
    /// anything stays NaN), which the extremes skip.
    func orLeftBits(truth: UnsafePointer<Float>, into words: UnsafeMutablePointer<UInt64>) {
        preclab_fused_left_bits(minimum, maximum, lower, upper, truth, length, words)
    }
}

/// How the pure policy rounds in the fused kernel (the C kernel's `pure_mode`).
enum FusedPureMode: Int32 {
    case off = 0, nearest = 1, stochastic = 2
}

/// One step's counts from a fused block.
struct FusedStepCounts {
    /// The curve counts in `CountSlot` order.
    var counts: SIMD8<Int>
    /// The entries each policy changed in this step (the step views), likewise.
    var stepChanges: SIMD8<Int>
}

/// A block of steps of every policy over one tile, in a single pass per element: the
/// truth, its extremes (for "left I"), pure, stochastic and Kahan storage, over
/// sub-tiles whose state stays in L1 through the block, each update read once
/// (`preclab_fused_bf16_steps`, in C: see its header). bf16 only; the arithmetic is the
/// scalar `BFloat16Codec`'s, lane for lane, so the results are bit-identical to the
/// per-policy loops of `StepKernels`.
///
/// The roundings skip their NaN rule unless a checked run meets a NaN or Inf update.
/// That is exact: the rule differs from rounding the bits as a number only for a NaN
/// whose low 16 bits carry (>= 0x8000), and every other operand is an expanded code (low
/// 16 bits zero), so without such an update every NaN a sum can give is an operand's NaN
/// or the hardware's default NaN (0xFFC00000 on x86, 0x7FC00000 on ARM), with low bits
/// zero. (The tests run payload NaNs, and Inf - Inf inside Kahan's chain.)
enum FusedBFloat16Kernel {
    /// The most steps one block runs (the C kernel's limit).
    static let maximumBlockSteps = Int(PRECLAB_FUSED_MAX_STEPS)

    /// Steps per block by default: a longer block divides the traffic of the tile state
    /// to the caches further but streams more update slices at once (docs/replay.md).
    static let defaultBlockSteps = 4

    /// Applies a block of `steps` steps to `tile` and the truth. The caller has set
    /// `tile.updates[0 ..< steps]`, `tile.prefetches` (the next block's slices, or nil) and,
    /// when a policy rounds stochastically, `tile.k1` and `tile.k2`.
    /// - Parameters:
    ///   - randomFirst: the stochastic bits of the tile's first element in step s are
    ///     `StochasticKey.hash(randomFirst ^ k1[s]) ^ k2[s]`, and so on up the tile.
    ///   - counting: bit s set: step s also counts, against the base, the entries the
    ///     per-step curve counts (bit inequality, as `runUnit` counts them); read them
    ///     with `stepCounts(tile, s)`.
    ///   - stepChanges: counting steps also count the entries each policy changed in
    ///     the step (the step views).
    ///   - checked: test every vector of updates for NaN and Inf, and report them (the
    ///     return value). Unchecked is exact unless some update is a NaN.
    ///   - ratioHistogram: also add the counting steps' pure update-ratio bins
    ///     (`RatioBinner`'s rule and half-ULPs, computed in the kernel) to the tile's
    ///     `ratioAll` and `ratioChanged`.
    /// - Returns: when checked, bit s set when some update of step s was NaN or Inf.
    static func apply(truth: UnsafeMutablePointer<Float>, steps: Int, tile: FusedTile, randomFirst: UInt32,
                      counting: UInt32, stepChanges: Bool, checked: Bool, ratioHistogram: Bool = false) -> UInt32 {
        precondition(steps >= 1 && steps <= maximumBlockSteps)
        let octaves = VisibilityHistogram.octaves
        for step in 0..<steps where counting & (1 << step) != 0 { tile.counts[step] = preclab_fused_counts() }
        func state(at offset: Int, truth: UnsafeMutablePointer<Float>,
                   updates: UnsafePointer<UnsafePointer<Float>?>, prefetches: UnsafePointer<UnsafePointer<Float>?>?,
                   length: Int, valid: Int) -> preclab_fused_tile {
            preclab_fused_tile(
                truth: truth, update: updates, prefetch: prefetches, base: tile.base + offset,
                stored_base: tile.storedBase + offset, minimum: tile.minimum + offset,
                maximum: tile.maximum + offset, pure: tile.pure.map { $0 + offset },
                stochastic: tile.stochastic.map { $0 + offset },
                kahan_weights: tile.kahanWeights.map { $0 + offset },
                kahan_compensation: tile.kahanCompensation.map { $0 + offset }, length: length, valid: valid,
                steps: Int32(steps), counting: counting, step_changes: stepChanges ? 1 : 0,
                checked: checked ? 1 : 0,
                random_first: randomFirst &+ UInt32(truncatingIfNeeded: offset), k1: tile.k1, k2: tile.k2,
                pure_mode: tile.pureMode.rawValue,
                ratio_all: ratioHistogram ? tile.ratioAll : nil,
                ratio_changed: ratioHistogram ? tile.ratioChanged : nil,
                ratio_lowest: Int32(octaves.lowestExponent), ratio_highest: Int32(octaves.highestExponent),
                ratio_bins: Int32(octaves.binCount))
        }
        var special: UInt32 = 0
        // The kernel adds its counts to `tile.counts`: the whole vectors, then the tail.
        func run(_ state: preclab_fused_tile) {
            var state = state
            special |= preclab_fused_bf16_steps(&state, counting == 0 ? nil : tile.counts)
        }
        if tile.vectorLength > 0 {
            run(state(at: 0, truth: truth, updates: tile.updates, prefetches: tile.prefetches,
                      length: tile.vectorLength, valid: tile.vectorLength))
        }
        let offset = tile.vectorLength, rest = tile.length - offset
        if rest > 0 {
            // The last partial vector runs on eight padded lanes (zeros past the end, which
            // stay zeros and count nothing).
            tile.tailTruth.update(repeating: 0, count: 8)
            tile.tailTruth.update(from: truth + offset, count: rest)
            tile.tailUpdate.update(repeating: 0, count: 8 * steps)
            for step in 0..<steps { (tile.tailUpdate + 8 * step).update(from: tile.updates[step]! + offset, count: rest) }
            run(state(at: offset, truth: tile.tailTruth, updates: tile.tailUpdatesPointer, prefetches: nil,
                      length: 8, valid: rest))
            (truth + offset).update(from: tile.tailTruth, count: rest)
        }
        return special
    }

    /// Step `step`'s counts after a block that counted it.
    static func stepCounts(_ tile: FusedTile, _ step: Int) -> FusedStepCounts {
        let counts = tile.counts[step]
        func slots(_ values: (UInt64, UInt64, UInt64, UInt64, UInt64)) -> SIMD8<Int> {
            var slots = SIMD8<Int>()
            slots[CountSlot.trueChanged] = Int(values.0)
            slots[CountSlot.visible(.master)] = Int(values.1)
            slots[CountSlot.visible(.pure)] = Int(values.2)
            slots[CountSlot.visible(.stochastic)] = Int(values.3)
            slots[CountSlot.visible(.kahan)] = Int(values.4)
            return slots
        }
        return FusedStepCounts(
            counts: slots((counts.true_changed, counts.master, counts.pure, counts.stochastic, counts.kahan)),
            stepChanges: slots((counts.step_true_changed, counts.step_master, counts.step_pure,
                                counts.step_stochastic, counts.step_kahan)))
    }

    /// Whether none of `length` values is a NaN or an infinity.
    static func allFinite(_ values: UnsafePointer<Float>, _ length: Int) -> Bool {
        let bits = UnsafeRawPointer(values).assumingMemoryBound(to: UInt32.self)
        var special: UInt32 = 0
        // An exponent of all ones carries into bit 31 when one more is added to it.
        for index in 0..<length { special |= (bits[index] & 0x7F80_0000) &+ 0x0080_0000 }
        return special & 0x8000_0000 == 0
    }

    /// NaN and Inf counts among `length` updates.
    static func countNonFinite(_ update: UnsafePointer<Float>, _ length: Int) -> SIMD2<Int> {
        var nan = 0, infinite = 0
        for index in 0..<length {
            if update[index].isNaN { nan += 1 } else if update[index].isInfinite { infinite += 1 }
        }
        return SIMD2(nan, infinite)
    }
}

import CPrecLabPrefetch
import PrecLabFormats

/// bf16 storage arithmetic on eight lanes at once, on *expanded* codes: a bf16 code
/// held as the fp32 bit pattern it decodes to (code << 16), so that decoding is free
/// and every operation of a step stays in 32-bit lanes. Each function gives exactly the
/// bits of the scalar `BFloat16Codec` rule (the tests compare them on every class of
/// input).
enum BFloat16Lanes {
    typealias Bits = SIMD8<UInt32>

    @inline(__always) static func float(_ bits: Bits) -> SIMD8<Float> { unsafeBitCast(bits, to: SIMD8<Float>.self) }
    @inline(__always) static func bits(_ value: SIMD8<Float>) -> Bits { unsafeBitCast(value, to: Bits.self) }

    /// 1 in the lanes where `x` is non-zero, else 0.
    @inline(__always) static func isNonZero(_ x: Bits) -> Bits { (x | (Bits(repeating: 0) &- x)) &>> 31 }

    /// A lane mask as all-ones / all-zeros lanes.
    @inline(__always) static func lanes(_ mask: SIMDMask<SIMD8<Int32>>) -> Bits { unsafeBitCast(mask, to: Bits.self) }

    /// All ones in the lanes holding a NaN: (Inf's magnitude - |x|) is negative exactly
    /// for NaNs, and an arithmetic shift spreads its sign. (An unordered compare is one
    /// instruction, but selecting through its mask compiled to per-lane scalar code.)
    @inline(__always) static func nanMask(_ bits: Bits) -> Bits {
        let difference = Bits(repeating: 0x7F80_0000) &- (bits & 0x7FFF_FFFF)
        return unsafeBitCast(unsafeBitCast(difference, to: SIMD8<Int32>.self) &>> 31, to: Bits.self)
    }

    /// Nearest-even into bf16, expanded; a NaN keeps its sign and top payload and is quieted.
    @inline(__always) static func nearest(_ value: SIMD8<Float>) -> Bits {
        let b = bits(value)
        let rounded = b &+ 0x7FFF &+ ((b &>> 16) & 1)
        let nan = nanMask(b)
        return ((rounded & ~nan) | ((b | 0x0040_0000) & nan)) & 0xFFFF_0000
    }

    /// `nearest` for lanes that hold no NaN. `high` is 0xFFFF0000 in every lane, passed
    /// in at run time: with the constant, LLVM lowered the mask to a blend and then
    /// computed some lanes with scalar code (40% of a step's time, measured with perf).
    @inline(__always) static func nearestOfNonNaN(_ value: SIMD8<Float>, high: Bits) -> Bits {
        let b = bits(value)
        return (b &+ 0x7FFF &+ ((b &>> 16) & 1)) & high
    }

    /// `stochastic` for lanes that hold no NaN (`high` as in `nearestOfNonNaN`).
    @inline(__always) static func stochasticOfNonNaN(_ value: SIMD8<Float>, random: Bits, high: Bits) -> Bits {
        let b = bits(value)
        let up = ((random &>> 16) &- (b & 0xFFFF)) &>> 31
        return (b & high) &+ (up &<< 16)
    }

    /// Lane-wise unsigned maximum.
    @inline(__always) static func maximum(_ a: Bits, _ b: Bits) -> Bits {
        a.replacing(with: b, where: a .< b)
    }

    /// Whether some lane is >= `bound` (unsigned).
    @inline(__always) static func anyAtLeast(_ x: Bits, _ bound: UInt32) -> Bool {
        let flags = unsafeBitCast(lanes(x .>= Bits(repeating: bound)), to: SIMD4<UInt64>.self)
        return (flags[0] | flags[1] | flags[2] | flags[3]) != 0
    }

    /// Stochastic rounding into bf16, expanded: the magnitude goes up iff the top 16
    /// random bits are below the 16 discarded bits (`BFloat16Codec.stochastic`).
    @inline(__always) static func stochastic(_ value: SIMD8<Float>, random: Bits) -> Bits {
        let b = bits(value)
        let up = ((random &>> 16) &- (b & 0xFFFF)) &>> 31
        let rounded = (b & 0xFFFF_0000) &+ (up &<< 16)
        let nan = nanMask(b)
        return (rounded & ~nan) | ((b | 0x0040_0000) & 0xFFFF_0000 & nan)
    }

    /// `StochasticKey.randomBits` of eight consecutive indices of one 2^32 block, whose
    /// low 32 bits are `first` + lane.
    @inline(__always) static func random(first: UInt32, k1: UInt32, k2: UInt32) -> Bits {
        var x = (Bits(repeating: first) &+ Bits(0, 1, 2, 3, 4, 5, 6, 7)) ^ k1
        x ^= x &>> 16
        x = x &* 0x7FEB_352D
        x ^= x &>> 15
        x = x &* 0x846C_A68B
        x ^= x &>> 16
        return x ^ k2
    }

    @inline(__always) static func load(_ pointer: UnsafePointer<UInt32>) -> Bits {
        UnsafeRawPointer(pointer).loadUnaligned(as: Bits.self)
    }

    @inline(__always) static func load(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ value: Bits, _ pointer: UnsafeMutablePointer<UInt32>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Bits.self)
    }

    @inline(__always) static func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
    }
}

/// The state of one tile while it runs through a batch of steps, expanded to 32-bit
/// lanes (`BFloat16Lanes`) and padded to a multiple of eight. Loaded from the engine's
/// code buffers before the first step and written back after the last, so the
/// conversions cost nothing next to the steps between them.
final class FusedTile {
    let length: Int
    /// Elements in whole vectors of eight.
    let vectorLength: Int
    let pureMode: FusedPureMode
    /// W0 and the stored base, expanded (for the curve counts).
    let base: UnsafeMutablePointer<Float>
    let storedBase: UnsafeMutablePointer<UInt32>
    /// I, the rounding interval of the stored base, as fp32 bounds: the truth's nearest
    /// code is the stored base iff lower <= truth <= upper (`roundingInterval`).
    let lower: UnsafeMutablePointer<Float>
    let upper: UnsafeMutablePointer<Float>
    /// All ones while the truth has stayed inside I at every step, else 0.
    let stayed: UnsafeMutablePointer<UInt32>
    let pure: UnsafeMutablePointer<UInt32>?
    let stochastic: UnsafeMutablePointer<UInt32>?
    let kahanWeights: UnsafeMutablePointer<UInt32>?
    let kahanCompensation: UnsafeMutablePointer<UInt32>?
    /// The scaled update (`--scale`).
    let scaled: UnsafeMutablePointer<Float>?
    /// Eight lanes for the last partial vector of the truth and the update.
    let tailTruth: UnsafeMutablePointer<Float>
    let tailUpdate: UnsafeMutablePointer<Float>
    /// 0xFFFF0000, kept in a variable so the kernel sees it only at run time.
    var highHalfMask: UInt32

    init(length: Int, pure: FusedPureMode, stochastic: Bool, kahan: Bool, scaled: Bool) {
        self.length = length
        vectorLength = length / 8 * 8
        pureMode = pure
        let padded = max(8, (length + 7) / 8 * 8)
        func lanes<Lane>(_: Lane.Type, _ wanted: Bool = true) -> UnsafeMutablePointer<Lane>? {
            guard wanted else { return nil }
            let raw = UnsafeMutableRawPointer.allocate(byteCount: 4 * padded, alignment: 64)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: 4 * padded)
            return raw.assumingMemoryBound(to: Lane.self)
        }
        base = lanes(Float.self)!
        storedBase = lanes(UInt32.self)!
        lower = lanes(Float.self)!
        upper = lanes(Float.self)!
        stayed = lanes(UInt32.self)!
        stayed.update(repeating: ~0, count: padded)
        self.pure = lanes(UInt32.self, pure != .off)
        self.stochastic = lanes(UInt32.self, stochastic)
        kahanWeights = lanes(UInt32.self, kahan)
        kahanCompensation = lanes(UInt32.self, kahan)
        self.scaled = scaled ? .allocate(capacity: max(length, 1)) : nil
        tailTruth = .allocate(capacity: 8)
        tailUpdate = .allocate(capacity: 8)
        highHalfMask = 0xFFFF_0000
    }

    func release() {
        for pointer in [storedBase, stayed, pure, stochastic, kahanWeights, kahanCompensation] {
            pointer?.deallocate()
        }
        base.deallocate()
        lower.deallocate()
        upper.deallocate()
        scaled?.deallocate()
        tailTruth.deallocate()
        tailUpdate.deallocate()
    }

    /// Copies W0, expands the stored base and sets I's bounds. Returns false (the tile
    /// cannot take the fused path) when a stored base is a NaN, whose interval is not one
    /// range.
    func loadBase(_ weights: UnsafePointer<Float>, stored codes: UnsafePointer<UInt16>) -> Bool {
        base.update(from: weights, count: length)
        for index in 0..<length {
            let code = codes[index]
            guard let interval = FusedTile.roundingInterval(code) else { return false }
            storedBase[index] = UInt32(code) << 16
            lower[index] = interval.lower
            upper[index] = interval.upper
        }
        return true
    }

    /// The fp32 values whose nearest-even bf16 code is `code`, as [lower, upper], with
    /// +0 and -0 one value (a zero's interval holds both signs' tiny values); nil for a
    /// NaN code.
    ///
    /// Nearest-even is (bits + 0x7FFF + lsb) >> 16 on the fp32 bits, monotone within a
    /// sign, so the preimage of code b (B = b << 16) is the bit range B - 0x8000 ...
    /// B + 0x8000 for even b (ties round to it) and B - 0x7FFF ... B + 0x7FFF for odd
    /// b; above +-Inf's pattern lie NaNs, which round to NaN codes.
    static func roundingInterval(_ code: UInt16) -> (lower: Float, upper: Float)? {
        let magnitude = code & 0x7FFF
        if magnitude > 0x7F80 { return nil }
        if magnitude == 0 {
            let tiny = Float(bitPattern: 0x8000)
            return (-tiny, tiny)
        }
        let reach: UInt32 = code & 1 == 0 ? 0x8000 : 0x7FFF
        let centre = UInt32(magnitude) << 16
        let low = Float(bitPattern: centre - reach)
        let high = Float(bitPattern: min(centre + reach, 0x7F80_0000))
        return code & 0x8000 == 0 ? (low, high) : (-high, -low)
    }

    /// Expanded codes from a code buffer (`length` codes).
    func expand(_ codes: UnsafePointer<UInt16>, into lanes: UnsafeMutablePointer<UInt32>) {
        for index in 0..<length { lanes[index] = UInt32(codes[index]) << 16 }
    }

    /// Codes back from expanded lanes.
    func contract(_ lanes: UnsafePointer<UInt32>, into codes: UnsafeMutablePointer<UInt16>) {
        for index in 0..<length { codes[index] = UInt16(truncatingIfNeeded: lanes[index] >> 16) }
    }

    /// ORs "left I" (not `stayed`) into a bit set (bit i % 64 of word i / 64).
    func orLeftBits(into words: UnsafeMutablePointer<UInt64>) {
        var start = 0, word = 0
        while start < length {
            var bits: UInt64 = 0
            for offset in 0..<min(64, length - start) {
                bits |= UInt64(~stayed[start + offset] & 1) << UInt64(offset)
            }
            words[word] |= bits
            word += 1
            start += 64
        }
    }
}

/// How the pure policy rounds in the fused kernel.
enum FusedPureMode {
    case off, nearest, stochastic
}

/// The policies one copy of the fused loop runs, as types, so that each combination is
/// its own specialisation with the other policies' work compiled out.
protocol FusedPolicies {
    static var pure: FusedPureMode { get }
    static var stochastic: Bool { get }
    static var kahan: Bool { get }
    /// Whether the step also counts the per-step curve's changed entries.
    static var counting: Bool { get }
}

enum FusedPolicySet<Pure: FusedPureChoice, Stochastic: FusedToggle, Kahan: FusedToggle, Counting: FusedToggle>:
    FusedPolicies {
    static var pure: FusedPureMode { Pure.mode }
    static var stochastic: Bool { Stochastic.isOn }
    static var kahan: Bool { Kahan.isOn }
    static var counting: Bool { Counting.isOn }
}

protocol FusedToggle { static var isOn: Bool { get } }
enum FusedOn: FusedToggle { static var isOn: Bool { true } }
enum FusedOff: FusedToggle { static var isOn: Bool { false } }
protocol FusedPureChoice { static var mode: FusedPureMode { get } }
enum FusedPureOff: FusedPureChoice { static var mode: FusedPureMode { .off } }
enum FusedPureNearest: FusedPureChoice { static var mode: FusedPureMode { .nearest } }
enum FusedPureStochastic: FusedPureChoice { static var mode: FusedPureMode { .stochastic } }

/// The tile's lanes as plain pointers (a value, so the loop keeps them in registers);
/// a policy that does not run points at nothing it uses.
struct FusedLanePointers {
    /// 0xFFFF0000, read from the tile at run time (`BFloat16Lanes.nearestOfNonNaN`).
    let highHalf: UInt32
    let base: UnsafePointer<Float>
    let storedBase: UnsafePointer<UInt32>
    let lower: UnsafePointer<Float>
    let upper: UnsafePointer<Float>
    let stayed: UnsafeMutablePointer<UInt32>
    let pure: UnsafeMutablePointer<UInt32>
    let stochastic: UnsafeMutablePointer<UInt32>
    let kahanWeights: UnsafeMutablePointer<UInt32>
    let kahanCompensation: UnsafeMutablePointer<UInt32>

    init(_ tile: FusedTile) {
        highHalf = tile.highHalfMask
        base = UnsafePointer(tile.base)
        storedBase = UnsafePointer(tile.storedBase)
        lower = UnsafePointer(tile.lower)
        upper = UnsafePointer(tile.upper)
        stayed = tile.stayed
        pure = tile.pure ?? tile.stayed
        stochastic = tile.stochastic ?? tile.stayed
        kahanWeights = tile.kahanWeights ?? tile.stayed
        kahanCompensation = tile.kahanCompensation ?? tile.stayed
    }

    func advanced(by offset: Int) -> FusedLanePointers {
        FusedLanePointers(highHalf: highHalf, base: base + offset, storedBase: storedBase + offset,
                          lower: lower + offset, upper: upper + offset, stayed: stayed + offset, pure: pure + offset,
                          stochastic: stochastic + offset, kahanWeights: kahanWeights + offset,
                          kahanCompensation: kahanCompensation + offset)
    }

    private init(highHalf: UInt32, base: UnsafePointer<Float>, storedBase: UnsafePointer<UInt32>,
                 lower: UnsafePointer<Float>, upper: UnsafePointer<Float>, stayed: UnsafeMutablePointer<UInt32>,
                 pure: UnsafeMutablePointer<UInt32>, stochastic: UnsafeMutablePointer<UInt32>,
                 kahanWeights: UnsafeMutablePointer<UInt32>, kahanCompensation: UnsafeMutablePointer<UInt32>) {
        self.highHalf = highHalf
        self.base = base
        self.storedBase = storedBase
        self.lower = lower
        self.upper = upper
        self.stayed = stayed
        self.pure = pure
        self.stochastic = stochastic
        self.kahanWeights = kahanWeights
        self.kahanCompensation = kahanCompensation
    }
}

/// What one fused step reports.
struct FusedStepOutcome {
    /// Some update was NaN or Inf (the caller counts them exactly).
    var nonFiniteUpdates: Bool
    /// The curve counts in `CountSlot` order when the step counted, else zeros.
    var counts: SIMD8<Int>
}

/// Per-lane curve counts of a tile-step (at most 2^24 / 8 per lane: no overflow).
struct FusedCounts {
    var trueChanged = BFloat16Lanes.Bits(), master = BFloat16Lanes.Bits(), pure = BFloat16Lanes.Bits()
    var stochastic = BFloat16Lanes.Bits(), kahan = BFloat16Lanes.Bits()

    var slots: SIMD8<Int> {
        var slots = SIMD8<Int>()
        slots[CountSlot.trueChanged] = Int(trueChanged.wrappedSum())
        slots[CountSlot.visible(.master)] = Int(master.wrappedSum())
        slots[CountSlot.visible(.pure)] = Int(pure.wrappedSum())
        slots[CountSlot.visible(.stochastic)] = Int(stochastic.wrappedSum())
        slots[CountSlot.visible(.kahan)] = Int(kahan.wrappedSum())
        return slots
    }
}

/// One step of every policy over one tile, in a single pass per element: the truth,
/// the "left I" test, pure, stochastic and Kahan storage, each element's update read
/// once and its state kept in registers in between (the per-policy loops of
/// `StepKernels` read every slice once per policy). bf16 only; the arithmetic is the
/// scalar `BFloat16Codec`'s, lane for lane, so the results are bit-identical.
enum FusedBFloat16Kernel {
    /// Applies one step to `tile` and the truth.
    /// - Parameters:
    ///   - nextUpdate: the next step's slice, prefetched while this one computes.
    ///   - randomFirst, k1, k2: the stochastic bits of the tile's first element are
    ///     `StochasticKey.hash(randomFirst ^ k1) ^ k2`, and so on up the tile.
    ///   - counting: also count, against the base, the entries the per-step curve
    ///     counts (bit inequality, as `runUnit` counts them).
    static func apply(truth: UnsafeMutablePointer<Float>, update: UnsafePointer<Float>,
                      nextUpdate: UnsafePointer<Float>?, tile: FusedTile,
                      randomFirst: UInt32, k1: UInt32, k2: UInt32, counting: Bool) -> FusedStepOutcome {
        func run<Pure: FusedPureChoice, Stochastic: FusedToggle, Kahan: FusedToggle>(
            _: Pure.Type, _: Stochastic.Type, _: Kahan.Type
        ) -> FusedStepOutcome {
            func step<Counting: FusedToggle>(_: Counting.Type) -> FusedStepOutcome {
                FusedBFloat16Kernel.step(FusedPolicySet<Pure, Stochastic, Kahan, Counting>.self, truth: truth,
                                         update: update, nextUpdate: nextUpdate ?? update, tile: tile,
                                         randomFirst: randomFirst, k1: k1, k2: k2)
            }
            return counting ? step(FusedOn.self) : step(FusedOff.self)
        }
        func withKahan<Pure: FusedPureChoice, Stochastic: FusedToggle>(_: Pure.Type, _: Stochastic.Type)
            -> FusedStepOutcome {
            tile.kahanWeights != nil ? run(Pure.self, Stochastic.self, FusedOn.self)
                : run(Pure.self, Stochastic.self, FusedOff.self)
        }
        func withStochastic<Pure: FusedPureChoice>(_: Pure.Type) -> FusedStepOutcome {
            tile.stochastic != nil ? withKahan(Pure.self, FusedOn.self) : withKahan(Pure.self, FusedOff.self)
        }
        switch tile.pureMode {
        case .off: return withStochastic(FusedPureOff.self)
        case .nearest: return withStochastic(FusedPureNearest.self)
        case .stochastic: return withStochastic(FusedPureStochastic.self)
        }
    }

    /// One step over the tile (see `apply`).
    private static func step<Policies: FusedPolicies>(
        _: Policies.Type, truth: UnsafeMutablePointer<Float>, update: UnsafePointer<Float>,
        nextUpdate: UnsafePointer<Float>, tile: FusedTile, randomFirst: UInt32, k1: UInt32, k2: UInt32
    ) -> FusedStepOutcome {
        let lanes = FusedLanePointers(tile)
        var special = BFloat16Lanes.Bits(repeating: 0)
        var counts = FusedCounts()
        var offset = 0
        let vectorLength = tile.vectorLength
        while offset < vectorLength {
            // The next step's slice of the tile streams in while this one computes.
            if offset & 15 == 0 { preclab_prefetch_l2(nextUpdate + offset) }
            special |= eight(Policies.self, truth: truth + offset, update: update + offset,
                             lanes: lanes.advanced(by: offset),
                             random: randomFirst &+ UInt32(truncatingIfNeeded: offset), k1: k1, k2: k2,
                             counts: &counts)
            offset &+= 8
        }
        let rest = tile.length - offset
        if rest > 0 {
            // The last partial vector runs on eight padded lanes (zeros past the end, which
            // stay zeros and count nothing).
            tile.tailTruth.update(repeating: 0, count: 8)
            tile.tailUpdate.update(repeating: 0, count: 8)
            tile.tailTruth.update(from: truth + offset, count: rest)
            tile.tailUpdate.update(from: update + offset, count: rest)
            special |= eight(Policies.self, truth: tile.tailTruth, update: tile.tailUpdate,
                             lanes: lanes.advanced(by: offset),
                             random: randomFirst &+ UInt32(truncatingIfNeeded: offset), k1: k1, k2: k2,
                             counts: &counts)
            (truth + offset).update(from: tile.tailTruth, count: rest)
        }
        return FusedStepOutcome(nonFiniteUpdates: (special & 0x8000_0000) != BFloat16Lanes.Bits(repeating: 0),
                                counts: counts.slots)
    }

    /// Eight elements through one step.
    ///
    /// The roundings skip their NaN handling (`nearestOfNonNaN`) unless an update lane is
    /// NaN or Inf. That is exact: the NaN rule differs from rounding the bits as a number
    /// only for a NaN whose low 16 bits carry (>= 0x8000), and every other operand is an
    /// expanded code (low 16 bits zero), so without such an update every NaN a sum can
    /// give is an operand's NaN or the hardware's default NaN (0xFFC00000 on x86,
    /// 0x7FC00000 on ARM), with low bits zero. (The tests run Inf - Inf through Kahan.)
    /// Returns (exponent field + 1 << 23) of the updates: its sign bit is set in the
    /// lanes whose update is NaN or Inf.
    @inline(__always)
    private static func eight<Policies: FusedPolicies>(
        _: Policies.Type, truth: UnsafeMutablePointer<Float>, update: UnsafePointer<Float>, lanes: FusedLanePointers,
        random first: UInt32, k1: UInt32, k2: UInt32, counts: inout FusedCounts
    ) -> BFloat16Lanes.Bits {
        typealias L = BFloat16Lanes
        let u = L.load(update)
        let updated = L.load(truth) + u
        L.store(updated, truth)

        // The truth is inside I (its nearest code is the stored base) exactly when it
        // lies in [lower, upper]; a NaN compares outside.
        let inside = L.lanes(updated .>= L.load(lanes.lower)) & L.lanes(updated .<= L.load(lanes.upper))
        L.store(L.load(lanes.stayed) & inside, lanes.stayed)

        let operands = StoredOperands(
            pure: Policies.pure != .off ? L.load(lanes.pure) : L.Bits(),
            stochastic: Policies.stochastic ? L.load(lanes.stochastic) : L.Bits(),
            kahanWeights: Policies.kahan ? L.load(lanes.kahanWeights) : L.Bits(),
            kahanCompensation: Policies.kahan ? L.load(lanes.kahanCompensation) : L.Bits())
        let random = Policies.pure == .stochastic || Policies.stochastic
            ? L.random(first: first, k1: k1, k2: k2) : L.Bits()
        // Exponent all ones (NaN or Inf) carries into the sign bit.
        let special = (L.bits(u) & 0x7F80_0000) &+ 0x0080_0000
        let stored = L.anyAtLeast(special, 0x8000_0000)
            ? storedPoliciesWithNaNRules(Policies.self, u: u, operands, random: random, lanes: lanes)
            : storedPolicies(Policies.self, u: u, operands, random: random, lanes: lanes, nonNaN: true)
        if Policies.counting {
            let storedBase = L.load(lanes.storedBase)
            counts.trueChanged &+= L.isNonZero(L.bits(updated) ^ L.bits(L.load(lanes.base)))
            counts.master &+= L.isNonZero(L.nearest(updated) ^ storedBase)
            if Policies.pure != .off { counts.pure &+= L.isNonZero(stored.pure ^ storedBase) }
            if Policies.stochastic { counts.stochastic &+= L.isNonZero(stored.stochastic ^ storedBase) }
            if Policies.kahan { counts.kahan &+= L.isNonZero(stored.kahanWeights ^ storedBase) }
        }
        return special
    }

    /// The stored policies' codes before a step, expanded.
    struct StoredOperands {
        let pure, stochastic, kahanWeights, kahanCompensation: BFloat16Lanes.Bits
    }

    /// `storedPolicies` with the full NaN rules, out of line: inlined, LLVM merged it with
    /// the fast path and vectorised the mix badly (some lanes in scalar code, measured).
    @inline(never)
    private static func storedPoliciesWithNaNRules<Policies: FusedPolicies>(
        _: Policies.Type, u: SIMD8<Float>, _ operands: StoredOperands, random: BFloat16Lanes.Bits,
        lanes: FusedLanePointers
    ) -> StoredOperands {
        storedPolicies(Policies.self, u: u, operands, random: random, lanes: lanes, nonNaN: false)
    }

    /// The stored policies' step on eight lanes; `nonNaN` when no sum can be a NaN whose
    /// low 16 bits are not zero (see `eight`).
    @inline(__always)
    private static func storedPolicies<Policies: FusedPolicies>(
        _: Policies.Type, u: SIMD8<Float>, _ operands: StoredOperands, random: BFloat16Lanes.Bits,
        lanes: FusedLanePointers, nonNaN: Bool
    ) -> StoredOperands {
        typealias L = BFloat16Lanes
        let high = L.Bits(repeating: lanes.highHalf)
        @inline(__always) func nearest(_ value: SIMD8<Float>) -> L.Bits {
            nonNaN ? L.nearestOfNonNaN(value, high: high) : L.nearest(value)
        }
        @inline(__always) func stochastic(_ value: SIMD8<Float>) -> L.Bits {
            nonNaN ? L.stochasticOfNonNaN(value, random: random, high: high) : L.stochastic(value, random: random)
        }
        var pure = L.Bits(), stochasticCodes = L.Bits(), weights = L.Bits(), compensation = L.Bits()
        if Policies.pure != .off {
            let sum = L.float(operands.pure) + u
            pure = Policies.pure == .nearest ? nearest(sum) : stochastic(sum)
            L.store(pure, lanes.pure)
        }
        if Policies.stochastic {
            stochasticCodes = stochastic(L.float(operands.stochastic) + u)
            L.store(stochasticCodes, lanes.stochastic)
        }
        if Policies.kahan {
            // c += u; old = w; w += c; c += (old - w), each rounded to bf16 (docs/replay.md).
            let c = nearest(L.float(operands.kahanCompensation) + u)
            let old = operands.kahanWeights
            weights = nearest(L.float(old) + L.float(c))
            let lost = nearest(L.float(old) - L.float(weights))
            compensation = nearest(L.float(c) + L.float(lost))
            L.store(weights, lanes.kahanWeights)
            L.store(compensation, lanes.kahanCompensation)
        }
        return StoredOperands(pure: pure, stochastic: stochasticCodes, kahanWeights: weights,
                              kahanCompensation: compensation)
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

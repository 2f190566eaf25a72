// Vectorised Float -> format encoding. The same integer algorithm as the scalar path,
// written branch-free over SIMD lanes of the fp32 bit pattern:
//
// * normal results: re-bias the exponent with one subtraction, then the kept part is
//   `r >> s` and the discarded part, as a 32-bit fraction of the gap, is `r << (32-s)`
//   (s = 23 - mantissaBits); a rounding carry ripples into the exponent by itself.
// * subnormal results (formats with fewer than 8 exponent bits): the significand is
//   shifted right by a per-lane amount, built from conditional shifts by 1, 2, 4, ...
//   (SSE2 has no per-lane variable shift), carrying the discarded bits along. This
//   block only runs for vectors that contain such a lane.
// * the mode decides a 0/1 increment from (kept, fraction, sticky, sign, random);
//   overflow, Inf, NaN, flush and sign are then patched in with lane selects.

/// The lane type of the kernels: eight 32-bit lanes (two SSE registers).
typealias Lanes = SIMD8<UInt32>
let laneCount = 8

/// A lane mask as all-ones / all-zeros lanes. Comparisons and selects are written as
/// plain integer arithmetic: the standard library's SIMD comparison operators and
/// `replacing(with:where:)` compile to per-lane loops on this target.
typealias LaneMask = Lanes

/// All ones where the lane's top bit is set (arithmetic shift right by 31).
@inline(__always)
func topBitMask(_ x: Lanes) -> LaneMask {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<Int32>.self) &>> 31, to: Lanes.self)
}

/// Unsigned a < b: the borrow out of a - b (Hacker's Delight 2-12).
@inline(__always)
func lessThan(_ a: Lanes, _ b: Lanes) -> LaneMask {
    topBitMask((~a & b) | (~(a ^ b) & (a &- b)))
}

@inline(__always) func lessThan(_ a: Lanes, _ b: UInt32) -> LaneMask { lessThan(a, Lanes(repeating: b)) }
@inline(__always) func greaterThan(_ a: Lanes, _ b: UInt32) -> LaneMask { lessThan(Lanes(repeating: b), a) }

/// Lanes that are not zero.
@inline(__always)
func nonZero(_ x: Lanes) -> LaneMask { topBitMask(x | (Lanes(repeating: 0) &- x)) }

/// Lanes equal to b.
@inline(__always)
func equal(_ a: Lanes, _ b: UInt32) -> LaneMask { ~nonZero(a ^ Lanes(repeating: b)) }

/// `mask ? whenSet : whenClear`, lane by lane.
@inline(__always)
func select(_ mask: LaneMask, _ whenSet: Lanes, _ whenClear: Lanes) -> Lanes {
    (whenSet & mask) | (whenClear & ~mask)
}

/// True when any lane of the mask is set.
@inline(__always)
func anyLane(_ mask: LaneMask) -> Bool {
    let words = unsafeBitCast(mask, to: (UInt64, UInt64, UInt64, UInt64).self)
    return (words.0 | words.1 | words.2 | words.3) != 0
}

/// Loop-invariant constants of one (format, options) encoding.
struct VectorPlan {
    let shift: UInt32            // 23 - mantissaBits
    let rebias: UInt32           // (127 - bias) << 23
    let minNormalFloatBits: UInt32
    let needsDenormal: Bool
    let minNormalExponent: Int32
    let maxMagnitude: UInt32
    let flushBelow: UInt32       // 1 << mantissaBits when flushing, else 0
    let signBit: UInt32          // 1 << signShift
    let negativeZeroAllowed: Bool
    let overflowPositive: UInt32, overflowNegative: UInt32
    let infinityPositive: UInt32, infinityNegative: UInt32
    let nanPositive: UInt32, nanNegative: UInt32
    let nanKeepsPayload: Bool
    let storageShift: UInt32
    /// Magnitude bit patterns in [fastLower, fastUpper] take the short path.
    let fastLower: UInt32
    let fastUpper: Lanes
    let signDrop: UInt32          // 31 - signShift

    init(_ format: FloatFormat, _ options: RoundingOptions) {
        // Below the smallest normal the result may be subnormal (flush, or a denormalising
        // shift); zero needs the slow path where -0 does not exist.
        let needsLowerBound = format.minNormalExponent > -126 || options.flushSubnormals || !format.hasNegativeZero
        fastLower = needsLowerBound ? UInt32(format.minNormalExponent + 127) << 23 : 0
        fastUpper = Lanes(repeating: Float(format.decode(format.maxFiniteMagnitude << UInt32(format.storageShift))).bitPattern)
        signDrop = UInt32(31 - format.signShift)
        shift = UInt32(23 - format.mantissaBits)
        rebias = UInt32(127 - format.bias) << 23
        minNormalFloatBits = UInt32(format.minNormalExponent + 127) << 23
        needsDenormal = format.minNormalExponent > -126
        minNormalExponent = Int32(format.minNormalExponent)
        maxMagnitude = format.maxFiniteMagnitude
        flushBelow = options.flushSubnormals ? UInt32(1) << format.mantissaBits : 0
        signBit = UInt32(1) << format.signShift
        negativeZeroAllowed = format.hasNegativeZero
        // Overflow codes come from the scalar path on a value far beyond the range, so
        // the two paths share one definition of the policy.
        let huge = Float(bitPattern: 0x7F7F_FFFF)
        let unshift = { (code: UInt32) in code >> UInt32(format.storageShift) }
        overflowPositive = unshift(format.encode(huge, options))
        overflowNegative = unshift(format.encode(-huge, options))
        infinityPositive = unshift(format.encode(Float.infinity, options))
        infinityNegative = unshift(format.encode(-Float.infinity, options))
        nanPositive = unshift(format.encode(Float(bitPattern: 0x7F80_0000 | (1 << 22)), options))
            & ~(format.nanEncoding == .ieee ? (UInt32(1) << format.mantissaBits) - 1 : 0)
            | (format.nanEncoding == .ieee ? UInt32(1) << (format.mantissaBits - 1) : 0)
        nanNegative = unshift(format.encode(Float(bitPattern: 0xFF80_0000 | (1 << 22)), options))
            & ~(format.nanEncoding == .ieee ? (UInt32(1) << format.mantissaBits) - 1 : 0)
            | (format.nanEncoding == .ieee ? UInt32(1) << (format.mantissaBits - 1) : 0)
        nanKeepsPayload = format.nanEncoding == .ieee
        storageShift = UInt32(format.storageShift)
    }
}

/// One rounding mode as a per-lane increment rule (specialised at compile time).
protocol LaneRounding {
    /// Returns the rounded magnitude code from the kept part `q`, the discarded part as a
    /// 32-bit fraction `fraction`, `beyond` (lanes that lost bits below the fraction),
    /// the sign mask and the random bits.
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask,
                      _ random: Lanes) -> Lanes
    /// The same rounding for the common case: `rebased` is the re-biased magnitude whose
    /// low `shift` bits are discarded and the result is a normal number (fewer than 32
    /// discarded bits, nothing lost beyond them).
    static func roundNormal(_ rebased: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes
}

/// 1 in lanes where `mask` is set.
@inline(__always) func ones(_ mask: LaneMask) -> Lanes { mask & 1 }

/// Lanes whose discarded part is non-zero.
@inline(__always) func inexactMask(_ fraction: Lanes, _ beyond: LaneMask) -> LaneMask {
    nonZero(fraction) | beyond
}

enum NearestEvenLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        // Add half - 1, plus 1 when the kept part is odd: the carry rounds up.
        let halfMinusOne = Lanes(repeating: (UInt32(1) << (shift - 1)) - 1)
        return (r &+ halfMinusOne &+ ((r &>> shift) & 1)) &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        // A fraction of exactly one half only happens when nothing was lost beyond it, so
        // this is the classic "add half - 1 + lsb": carry out of the fraction = round up.
        let bias = Lanes(repeating: 0x7FFF_FFFF) &+ (q & 1)
        return q &+ ones(lessThan(~bias, fraction))
    }
}

enum NearestAwayLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        (r &+ Lanes(repeating: UInt32(1) << (shift - 1))) &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        q &+ (fraction &>> 31)
    }
}

enum TowardZeroLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        r &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes { q }
}

enum UpLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        (r &+ (~negative & Lanes(repeating: (UInt32(1) << shift) - 1))) &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        q &+ ones(inexactMask(fraction, beyond) & ~negative)
    }
}

enum DownLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        (r &+ (negative & Lanes(repeating: (UInt32(1) << shift) - 1))) &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        q &+ ones(inexactMask(fraction, beyond) & negative)
    }
}

enum OddLanes: LaneRounding {
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        (r &>> shift) | (nonZero(r & Lanes(repeating: (UInt32(1) << shift) - 1)) & 1)
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        q | ones(inexactMask(fraction, beyond))
    }
}

enum StochasticLanes: LaneRounding {
    /// R < F with F = f * 2^(32-s) is (R >> (32-s)) < f, i.e. a carry out of
    /// f + (~R >> (32-s)): one add instead of a compare.
    @inline(__always)
    static func roundNormal(_ r: Lanes, shift: UInt32, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        (r &+ (~random &>> (32 - shift))) &>> shift
    }
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ beyond: LaneMask, _ negative: LaneMask, _ random: Lanes) -> Lanes {
        q &+ ones(lessThan(random, fraction))
    }
}

/// Encodes eight fp32 bit patterns. `random` is only read by stochastic rounding.
@inline(__always)
func encodeLanes<Rule: LaneRounding>(_ bits: Lanes, _ plan: VectorPlan, _ rule: Rule.Type,
                                     random: Lanes) -> Lanes {
    let magnitudeBits = bits & 0x7FFF_FFFF
    let negative = unsafeBitCast(unsafeBitCast(bits, to: SIMD8<Int32>.self) &>> 31, to: Lanes.self)
    let s = plan.shift
    let rebased = magnitudeBits &- plan.rebias
    // Common case: every lane is finite and rounds to a normal number no larger than the
    // largest finite value (both bounds are below 2^31, so a signed difference compares).
    var exceptional = topBitMask(plan.fastUpper &- magnitudeBits)
    if plan.fastLower != 0 { exceptional |= topBitMask(magnitudeBits &- plan.fastLower) }
    if !anyLane(exceptional) {
        let code = Rule.roundNormal(rebased, shift: s, negative, random)
        return (code | ((bits & 0x8000_0000) &>> plan.signDrop)) &<< plan.storageShift
    }
    var kept = rebased &>> s
    var fraction = rebased &<< (32 &- s)
    var beyond = LaneMask(repeating: 0)
    if plan.needsDenormal {
        let subnormal = lessThan(magnitudeBits, plan.minNormalFloatBits)
        if anyLane(subnormal) {
            // Per-lane right shift of the significand by s + d, d = Emin - E >= 1, as
            // conditional shifts by 1, 2, 4, 8, 16 and 32 of the 64-bit pair (high, low).
            let exponentField = magnitudeBits &>> 23
            let isZeroField = ~nonZero(exponentField)
            let significand = (magnitudeBits & 0x7F_FFFF) | (~isZeroField & 0x80_0000)
            let effectiveExponent = select(isZeroField, Lanes(repeating: 1), exponentField)
            // d = (Emin + 127) - field, clamped to 56 - s (everything is discarded by then).
            let limit = Lanes(repeating: UInt32(56) - s)
            var d = Lanes(repeating: UInt32(bitPattern: plan.minNormalExponent + 127)) &- effectiveExponent
            d = select(lessThan(limit, d), limit, d) & subnormal
            var high = significand &>> s
            var low = significand &<< (32 &- s)
            var lost = Lanes(repeating: 0)
            var step: UInt32 = 1
            while step < 32 {
                let take = nonZero(d & step)
                lost |= (low &<< (32 &- step)) & take
                low = select(take, (low &>> step) | (high &<< (32 &- step)), low)
                high = select(take, high &>> step, high)
                step <<= 1
            }
            let take32 = nonZero(d & 32)
            lost |= low & take32
            low = select(take32, high, low)
            high = high & ~take32
            kept = select(subnormal, high, kept)
            fraction = select(subnormal, low, fraction)
            beyond = subnormal & nonZero(lost)
        }
    }
    var code = Rule.round(kept, fraction, beyond, negative, random)
    code &= ~lessThan(code, plan.flushBelow)
    let keepSign = plan.negativeZeroAllowed ? negative : negative & nonZero(code)
    var result = code | (keepSign & plan.signBit)
    let overflow = greaterThan(code, plan.maxMagnitude)
    if anyLane(overflow) {
        let overflowCode = select(negative, Lanes(repeating: plan.overflowNegative), Lanes(repeating: plan.overflowPositive))
        result = select(overflow, overflowCode, result)
    }
    let special = greaterThan(magnitudeBits, 0x7F7F_FFFF)
    if anyLane(special) {
        let infinity = select(negative, Lanes(repeating: plan.infinityNegative), Lanes(repeating: plan.infinityPositive))
        var nan = select(negative, Lanes(repeating: plan.nanNegative), Lanes(repeating: plan.nanPositive))
        if plan.nanKeepsPayload { nan |= (magnitudeBits & 0x7F_FFFF) &>> s }
        result = select(equal(magnitudeBits, 0x7F80_0000), infinity, result)
        result = select(greaterThan(magnitudeBits, 0x7F80_0000), nan, result)
    }
    return result &<< plan.storageShift
}

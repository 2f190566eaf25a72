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

    init(_ format: FloatFormat, _ options: RoundingOptions) {
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
    /// 32-bit fraction `fraction`, `inexactBeyond` (bits lost below the fraction), the
    /// sign mask and the random bits.
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes
}

enum NearestEvenLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        // A fraction of exactly one half is only possible when nothing was lost beyond it.
        let half = Lanes(repeating: 0x8000_0000)
        let up = (fraction .> half) .| ((fraction .== half) .& ((q & 1) .!= 0))
        return q &+ Lanes(repeating: 0).replacing(with: 1, where: up)
    }
}

enum NearestAwayLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        q &+ Lanes(repeating: 0).replacing(with: 1, where: fraction .>= Lanes(repeating: 0x8000_0000))
    }
}

enum TowardZeroLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes { q }
}

enum UpLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        let inexact = (fraction .!= 0) .| inexactBeyond
        return q &+ Lanes(repeating: 0).replacing(with: 1, where: inexact .& .!negative)
    }
}

enum DownLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        let inexact = (fraction .!= 0) .| inexactBeyond
        return q &+ Lanes(repeating: 0).replacing(with: 1, where: inexact .& negative)
    }
}

enum OddLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        let inexact = (fraction .!= 0) .| inexactBeyond
        return q | Lanes(repeating: 0).replacing(with: 1, where: inexact)
    }
}

enum StochasticLanes: LaneRounding {
    @inline(__always)
    static func round(_ q: Lanes, _ fraction: Lanes, _ inexactBeyond: SIMDMask<SIMD8<Int32>>,
                      _ negative: SIMDMask<SIMD8<Int32>>, _ random: Lanes) -> Lanes {
        q &+ Lanes(repeating: 0).replacing(with: 1, where: random .< fraction)
    }
}

/// Encodes eight fp32 bit patterns. `random` is only read by stochastic rounding.
@inline(__always)
func encodeLanes<Rule: LaneRounding>(_ bits: Lanes, _ plan: VectorPlan, _ rule: Rule.Type,
                                     random: Lanes) -> Lanes {
    let magnitudeBits = bits & 0x7FFF_FFFF
    let negative = (bits &>> 31) .!= 0
    let s = plan.shift
    let rebased = magnitudeBits &- plan.rebias
    var kept = rebased &>> s
    var fraction = rebased &<< (32 &- s)
    var beyond = SIMDMask<SIMD8<Int32>>(repeating: false)
    if plan.needsDenormal {
        let subnormal = magnitudeBits .< plan.minNormalFloatBits
        if any(subnormal) {
            // Per-lane right shift of the significand by s + d, d = Emin - E >= 1.
            let exponentField = magnitudeBits &>> 23
            let implicit = Lanes(repeating: 0).replacing(with: 0x80_0000, where: exponentField .!= 0)
            let significand = (magnitudeBits & 0x7F_FFFF) | implicit
            let effectiveExponent = SIMD8<Int32>(truncatingIfNeeded: exponentField.replacing(with: 1, where: exponentField .== 0)) &- 127
            var distance = SIMD8<Int32>(repeating: plan.minNormalExponent) &- effectiveExponent
            distance = distance.replacing(with: 56 - Int32(s), where: distance .> 56 - Int32(s))
            distance = distance.replacing(with: 0, where: .!subnormal)
            let d = Lanes(truncatingIfNeeded: distance)
            var high = significand &>> s
            var low = significand &<< (32 &- s)
            var lost = Lanes(repeating: 0)
            var step: UInt32 = 1
            while step < 32 {
                let take = (d & step) .!= 0
                let shiftedLow = (low &>> step) | (high &<< (32 &- step))
                lost = lost | (low &<< (32 &- step)).replacing(with: 0, where: .!take)
                low = low.replacing(with: shiftedLow, where: take)
                high = high.replacing(with: high &>> step, where: take)
                step <<= 1
            }
            let take32 = (d & 32) .!= 0
            lost = lost | low.replacing(with: 0, where: .!take32)
            low = low.replacing(with: high, where: take32)
            high = high.replacing(with: 0, where: take32)
            kept = kept.replacing(with: high, where: subnormal)
            fraction = fraction.replacing(with: low, where: subnormal)
            beyond = subnormal .& (lost .!= 0)
        }
    }
    var code = Rule.round(kept, fraction, beyond, negative, random)
    code = code.replacing(with: 0, where: code .< plan.flushBelow)
    let keepSign = plan.negativeZeroAllowed ? negative : negative .& (code .!= 0)
    let signed = Lanes(repeating: 0).replacing(with: plan.signBit, where: keepSign)
    var result = code | signed
    let overflow = code .> plan.maxMagnitude
    if any(overflow) {
        let overflowCode = Lanes(repeating: plan.overflowPositive).replacing(with: plan.overflowNegative, where: negative)
        result = result.replacing(with: overflowCode, where: overflow)
    }
    let special = magnitudeBits .>= 0x7F80_0000
    if any(special) {
        let infinity = Lanes(repeating: plan.infinityPositive).replacing(with: plan.infinityNegative, where: negative)
        var nan = Lanes(repeating: plan.nanPositive).replacing(with: plan.nanNegative, where: negative)
        if plan.nanKeepsPayload { nan = nan | ((magnitudeBits & 0x7F_FFFF) &>> s) }
        result = result.replacing(with: infinity, where: magnitudeBits .== 0x7F80_0000)
        result = result.replacing(with: nan, where: magnitudeBits .> 0x7F80_0000)
    }
    return result &<< plan.storageShift
}

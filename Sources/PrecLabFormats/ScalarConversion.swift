// Scalar encode and decode. Every rounding decision is made with integer operations
// on the input's bit pattern: the magnitude is split into a normalised 64-bit
// significand and an unbiased exponent, the bits below the target's quantum are
// discarded, and the discarded part (a 64-bit fixed-point fraction of the gap) decides
// the increment. This is the reference path; the array kernels must match it bit for bit.

extension FloatFormat {
    // MARK: Encode

    /// Rounds a Double into this format. `random` is used only by stochastic rounding.
    @inlinable
    public func encode(_ x: Double, _ options: RoundingOptions = .nearestEven, random: UInt32 = 0) -> UInt32 {
        let bits = x.bitPattern
        let negative = bits >> 63 != 0
        let exponentField = Int((bits >> 52) & 0x7FF)
        let fraction = bits & ((1 << 52) - 1)
        if exponentField == 0x7FF {
            return fraction != 0
                ? nanCode(negative: negative, payload: fraction << 12)
                : infinityCode(negative: negative, options)
        }
        if exponentField == 0 {
            if fraction == 0 { return zeroCode(negative: negative) }
            let leading = fraction.leadingZeroBitCount
            return encodeFinite(negative: negative, exponent: 63 - leading - 1074,
                                significand: fraction << leading, options, random: random)
        }
        return encodeFinite(negative: negative, exponent: exponentField - 1023,
                            significand: ((1 << 52) | fraction) << 11, options, random: random)
    }

    /// Rounds a Float into this format. For fp32 this is the identity (NaN payloads
    /// included) apart from the flush option.
    @inlinable
    public func encode(_ x: Float, _ options: RoundingOptions = .nearestEven, random: UInt32 = 0) -> UInt32 {
        let bits = x.bitPattern
        let negative = bits >> 31 != 0
        let exponentField = Int((bits >> 23) & 0xFF)
        let fraction = UInt64(bits & 0x7F_FFFF)
        if kind == .fp32 {
            if options.flushSubnormals && exponentField == 0 { return bits & 0x8000_0000 }
            return bits
        }
        if exponentField == 0xFF {
            return fraction != 0
                ? nanCode(negative: negative, payload: fraction << 41)
                : infinityCode(negative: negative, options)
        }
        if exponentField == 0 {
            if fraction == 0 { return zeroCode(negative: negative) }
            let leading = fraction.leadingZeroBitCount
            return encodeFinite(negative: negative, exponent: 63 - leading - 149,
                                significand: fraction << leading, options, random: random)
        }
        return encodeFinite(negative: negative, exponent: exponentField - 127,
                            significand: ((1 << 23) | fraction) << 40, options, random: random)
    }

    /// The code of a signed zero (no -0 in fnuz formats; no zero at all in e8m0fnu).
    @inlinable
    func zeroCode(negative: Bool) -> UInt32 {
        if kind == .e8m0 { return 0xFF }
        if negative && hasNegativeZero { return (UInt32(1) << signShift) << storageShift }
        return 0
    }

    /// The NaN code for a NaN input whose fraction, left-aligned in 64 bits, is `payload`.
    /// IEEE formats keep the sign and the top payload bits and set the quiet bit; the
    /// others have a single NaN. Formats without NaN give a zero of the opposite sign,
    /// which is what ml_dtypes 0.5-0.6 produce.
    @inlinable
    func nanCode(negative: Bool, payload: UInt64) -> UInt32 {
        let sign = negative ? UInt32(1) << signShift : 0
        switch nanEncoding {
        case .ieee:
            let exponentOnes = UInt32((1 << exponentBits) - 1) << mantissaBits
            let kept = UInt32(truncatingIfNeeded: payload >> (64 - mantissaBits))
            return (sign | exponentOnes | kept | (UInt32(1) << (mantissaBits - 1))) << storageShift
        case .extendedRangeAllOnes:
            return sign | UInt32((1 << signShift) - 1)
        case .negativeZeroCode:
            return UInt32(1) << signShift
        case .allOnes:
            return 0xFF
        case .none:
            return negative ? 0 : UInt32(1) << signShift
        }
    }

    /// ±Inf input: kept where the format has Inf (it is exact, not an overflow);
    /// otherwise the largest finite value when saturating, else NaN (or the largest
    /// finite value for formats with neither Inf nor NaN, as ml_dtypes does).
    @inlinable
    func infinityCode(negative: Bool, _ options: RoundingOptions) -> UInt32 {
        if kind == .e8m0 { return options.saturate && !negative ? maxFiniteMagnitude : 0xFF }
        let sign = negative ? UInt32(1) << signShift : 0
        if hasInfinity {
            return (sign | (UInt32((1 << exponentBits) - 1) << mantissaBits)) << storageShift
        }
        if options.saturate || nanEncoding == .none { return sign | maxFiniteMagnitude }
        return nanCode(negative: negative, payload: 0)
    }

    /// Whether `mode` may move a value of this sign away from zero past the largest
    /// finite value (otherwise overflow gives the largest finite value, as IEEE 754
    /// prescribes for directed rounding toward zero).
    @inlinable
    static func roundsAway(_ mode: RoundingMode, negative: Bool) -> Bool {
        switch mode {
        case .nearestEven, .nearestAway, .stochastic: return true
        case .towardZero, .odd: return false
        case .up: return !negative
        case .down: return negative
        }
    }

    /// Rounds the non-zero finite value ±significand·2^(exponent-63) (significand has
    /// bit 63 set) into the format.
    @inlinable
    func encodeFinite(negative: Bool, exponent: Int, significand: UInt64,
                      _ options: RoundingOptions, random: UInt32) -> UInt32 {
        if kind == .e8m0 {
            return encodeScale(negative: negative, exponent: exponent, significand: significand,
                               options, random: random)
        }
        let p = mantissaBits
        let minExponent = minNormalExponent
        // Bits of the significand below the target quantum at this magnitude.
        let discarded = 63 - p + max(0, minExponent - exponent)
        var kept: UInt64
        let fraction: UInt64  // discarded part as a 64-bit fraction of the gap (truncated)
        var sticky = false    // anything lost beyond `fraction`
        if discarded < 64 {
            kept = significand >> UInt64(discarded)
            fraction = significand << UInt64(64 - discarded)
        } else if discarded < 128 {
            kept = 0
            fraction = significand >> UInt64(discarded - 64)
            sticky = discarded > 64 && (significand << UInt64(128 - discarded)) != 0
        } else {
            kept = 0
            fraction = 0
            sticky = true
        }
        let inexact = fraction != 0 || sticky
        let half: UInt64 = 1 << 63
        var increment: UInt64 = 0
        switch options.mode {
        case .nearestEven:
            if fraction > half || (fraction == half && (sticky || kept & 1 == 1)) { increment = 1 }
        case .nearestAway: increment = fraction >= half ? 1 : 0
        case .towardZero: break
        case .up: increment = !negative && inexact ? 1 : 0
        case .down: increment = negative && inexact ? 1 : 0
        case .odd: if inexact { kept |= 1 }
        case .stochastic: increment = random < UInt32(truncatingIfNeeded: fraction >> 32) ? 1 : 0
        }
        let binade = UInt64(max(exponent, minExponent) - minExponent)
        var magnitude = (binade << UInt64(p)) + kept + increment
        if magnitude > UInt64(maxFiniteMagnitude) {
            if !FloatFormat.roundsAway(options.mode, negative: negative) || options.saturate {
                magnitude = UInt64(maxFiniteMagnitude)
            } else if hasInfinity {
                magnitude = UInt64((1 << exponentBits) - 1) << UInt64(p)
            } else if nanEncoding == .none {
                magnitude = UInt64(maxFiniteMagnitude)
            } else {
                return nanCode(negative: negative, payload: 0)
            }
        }
        if options.flushSubnormals && magnitude < (1 << UInt64(p)) { magnitude = 0 }
        let sign: UInt32 = negative && (magnitude != 0 || hasNegativeZero) ? UInt32(1) << signShift : 0
        return (sign | UInt32(truncatingIfNeeded: magnitude)) << storageShift
    }

    /// e8m0fnu: unsigned powers of two 2^-127...2^127, no zero. Negative values are NaN;
    /// values below 2^-127 give 2^-127; nearest modes round ties up (every value has
    /// significand 1, so "even" is undefined; ml_dtypes rounds ties up); round-to-odd
    /// truncates for the same reason.
    @inlinable
    func encodeScale(negative: Bool, exponent: Int, significand: UInt64,
                     _ options: RoundingOptions, random: UInt32) -> UInt32 {
        if negative { return 0xFF }
        if exponent < -127 { return 0 }
        let fraction = significand << 1
        let half: UInt64 = 1 << 63
        var increment = 0
        switch options.mode {
        case .nearestEven, .nearestAway: increment = fraction >= half ? 1 : 0
        case .towardZero, .down, .odd: break
        case .up: increment = fraction != 0 ? 1 : 0
        case .stochastic: increment = random < UInt32(truncatingIfNeeded: fraction >> 32) ? 1 : 0
        }
        let code = exponent + 127 + increment
        if code > Int(maxFiniteMagnitude) {
            let away = FloatFormat.roundsAway(options.mode, negative: false)
            return away && !options.saturate ? 0xFF : maxFiniteMagnitude
        }
        return UInt32(code)
    }

    // MARK: Decode

    /// The exact value of a code as a Double (NaN codes give a NaN with the sign and,
    /// for IEEE formats, the payload).
    @inlinable
    public func decode(_ bits: UInt32) -> Double {
        let code = (bits & codeMask) >> storageShift
        if kind == .e8m0 {
            let magnitude = code & 0xFF
            return magnitude == 0xFF ? .nan : Double(sign: .plus, exponent: Int(magnitude) - 127, significand: 1)
        }
        let negative = (code >> signShift) & 1 == 1
        let magnitude = code & ((UInt32(1) << signShift) - 1)
        let fraction = magnitude & ((UInt32(1) << mantissaBits) - 1)
        let exponentField = Int(magnitude >> mantissaBits)
        if isNaNCode(code) {
            var payload = UInt64(fraction) << (52 - mantissaBits)
            if nanEncoding != .ieee { payload = 1 << 51 }
            let sign: UInt64 = negative && nanEncoding != .negativeZeroCode ? 1 << 63 : 0
            return Double(bitPattern: sign | (0x7FF << 52) | payload)
        }
        if hasInfinity && exponentField == (1 << exponentBits) - 1 {
            return negative ? -.infinity : .infinity
        }
        let value: Double
        if exponentField == 0 {
            value = Double(sign: .plus, exponent: minNormalExponent - mantissaBits, significand: Double(fraction))
        } else {
            value = Double(sign: .plus, exponent: exponentField - bias - mantissaBits,
                           significand: Double((UInt32(1) << mantissaBits) | fraction))
        }
        return negative ? -value : value
    }

    /// The exact value of a code as a Float (every format here fits in Float). IEEE NaN
    /// payloads are kept bit for bit.
    @inlinable
    public func decodeFloat(_ bits: UInt32) -> Float {
        switch kind {
        case .fp32: return Float(bitPattern: bits)
        case .generic where exponentBits == 8:
            // bf16, tf32 and e8mY customs: the code is the top of the fp32 pattern.
            let code = (bits & codeMask) >> storageShift
            return Float(bitPattern: code << (23 - mantissaBits))
        default:
            let code = (bits & codeMask) >> storageShift
            if kind != .e8m0 && nanEncoding == .ieee && isNaNCode(code) {
                let negative = (code >> signShift) & 1
                let fraction = code & ((UInt32(1) << mantissaBits) - 1)
                return Float(bitPattern: (negative << 31) | 0x7F80_0000 | (fraction << (23 - mantissaBits)))
            }
            return Float(decode(bits))
        }
    }

    /// NaN test on an unshifted code.
    @inlinable
    func isNaNCode(_ code: UInt32) -> Bool {
        let magnitude = code & ((UInt32(1) << signShift) - 1)
        switch nanEncoding {
        case .ieee: return magnitude > (UInt32((1 << exponentBits) - 1) << mantissaBits)
        case .extendedRangeAllOnes: return magnitude == (UInt32(1) << signShift) - 1
        case .negativeZeroCode: return code == UInt32(1) << signShift
        case .allOnes: return code & 0xFF == 0xFF
        case .none: return false
        }
    }

    /// Whether a stored code is NaN.
    public func isNaN(_ bits: UInt32) -> Bool { isNaNCode((bits & codeMask) >> storageShift) }

    /// Whether a stored code is ±Inf.
    public func isInfinite(_ bits: UInt32) -> Bool {
        guard hasInfinity else { return false }
        let code = (bits & codeMask) >> storageShift
        return code & ((UInt32(1) << signShift) - 1) == UInt32((1 << exponentBits) - 1) << mantissaBits
    }
}

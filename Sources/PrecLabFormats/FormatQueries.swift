// Questions about stored codes that the replay engine and the `round` command ask:
// spacing of neighbouring values, stepping through codes, and whether an update is
// swallowed by the storage precision.

extension FloatFormat {
    /// Spacing from the stored value to the next value away from zero (at the largest
    /// finite value: the spacing of its binade). NaN for NaN and Inf codes.
    public func ulp(ofBits bits: UInt32) -> Double {
        if isNaN(bits) || isInfinite(bits) { return .nan }
        let code = (bits & codeMask) >> storageShift
        if kind == .e8m0 { return decode(bits) }
        let magnitude = code & ((UInt32(1) << signShift) - 1)
        let exponentField = max(Int(magnitude >> mantissaBits), 1)
        return Double(sign: .plus, exponent: exponentField - bias - mantissaBits, significand: 1)
    }

    /// Half of `ulp(ofBits:)`: under nearest rounding an addition smaller than this in
    /// magnitude (away from zero) leaves the stored value unchanged.
    public func halfULP(ofBits bits: UInt32) -> Double { ulp(ofBits: bits) / 2 }

    /// The code of -value (for fnuz formats 0 stays 0; e8m0fnu has no negatives: NaN).
    public func negate(_ bits: UInt32) -> UInt32 {
        if kind == .e8m0 { return 0xFF }
        if isNaN(bits) && nanEncoding == .negativeZeroCode { return bits }
        let signBit = (UInt32(1) << signShift) << storageShift
        if !hasNegativeZero && bits & ~signBit == 0 { return 0 }
        return bits ^ signBit
    }

    /// The next representable value toward +Inf. NaN stays; +Inf stays; the largest
    /// finite value of a format without Inf stays (there is nothing above it).
    public func nextUp(_ bits: UInt32) -> UInt32 {
        if isNaN(bits) { return bits }
        let code = (bits & codeMask) >> storageShift
        if kind == .e8m0 { return code < maxFiniteMagnitude ? code + 1 : code }
        let signBit = UInt32(1) << signShift
        let magnitude = code & (signBit - 1)
        let infinity = UInt32((1 << exponentBits) - 1) << mantissaBits
        let result: UInt32
        if code & signBit != 0 {
            if magnitude == 0 {
                result = 1                                  // -0 -> smallest positive
            } else if magnitude == 1 {
                result = hasNegativeZero ? signBit : 0      // -smallest -> -0 (or +0)
            } else {
                result = signBit | (magnitude - 1)          // -Inf -> -max as well
            }
        } else if magnitude == maxFiniteMagnitude {
            result = hasInfinity ? infinity : magnitude
        } else if hasInfinity && magnitude == infinity {
            result = magnitude
        } else {
            result = magnitude + 1
        }
        return result << storageShift
    }

    /// The next representable value toward -Inf (mirror of `nextUp`).
    public func nextDown(_ bits: UInt32) -> UInt32 {
        if isNaN(bits) { return bits }
        if kind == .e8m0 {
            let code = bits & 0xFF
            return code > 0 ? code - 1 : code
        }
        return negate(nextUp(negate(bits)))
    }

    /// PyTorch `param.add_(update)` on a stored parameter: the sum is formed in fp32
    /// (round to nearest even), then rounded into the format with `options`. Two
    /// roundings, as PyTorch does (see docs/formats.md).
    @inlinable
    public func add(stored: UInt32, delta: Float, _ options: RoundingOptions = .nearestEven,
                    random: UInt32 = 0) -> UInt32 {
        let sum = decodeFloat(stored) + delta
        return encode(sum, options, random: random)
    }

    /// Whether `add(stored:delta:)` changes the stored bits.
    public func additionChangesBits(stored: UInt32, delta: Float, _ options: RoundingOptions = .nearestEven,
                                    random: UInt32 = 0) -> Bool {
        add(stored: stored, delta: delta, options, random: random) != stored
    }
}

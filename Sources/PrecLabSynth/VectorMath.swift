/// The two transcendental functions of the Box-Muller transform, eight fp32 lanes at a
/// time, from basic IEEE operations only (no libm). They run several times faster than
/// scalar libm calls and give the same bits on every machine, which keeps synthetic
/// streams reproducible across platforms. Accuracy: a few fp32 ULPs (tests check it
/// against float64 libm).
enum VectorMath {
    typealias Lanes = SIMD8<Float>

    /// 1.5·2^23: adding it to a float of magnitude below 2^22 rounds to an integer held
    /// in the low mantissa bits of the sum.
    static let magic: Float = 12_582_912
    static let magicBits: Int32 = 0x4B40_0000

    /// ln(x) for normal x in (0, 1]: x = 2^e·m with m in [√½, √2), and
    /// ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172, by its odd series to s^11.
    @inline(__always)
    static func logarithm(_ x: Lanes) -> Lanes {
        // Masks and selects are done with integer arithmetic: SIMDMask-based `replace`
        // compiles to a lane-by-lane loop.
        let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
        let field = bits & 0x007F_FFFF
        let high = ((0x0035_04F3 &- field) &>> 31) & 1        // 1 where the mantissa > √2
        let exponent = (bits &>> 23) &- 127 &+ high
        let mantissa = unsafeBitCast((field | 0x3F80_0000) &- (high &<< 23), to: Lanes.self)
        let s = (mantissa - 1) / (mantissa + 1)
        let s2 = s * s
        var series = Lanes(repeating: 2.0 / 11.0)
        series = series * s2 + 2.0 / 9.0
        series = series * s2 + 2.0 / 7.0
        series = series * s2 + 2.0 / 5.0
        series = series * s2 + 2.0 / 3.0
        series = series * s2 + 2.0
        // Integer to float by the 1.5·2^23 trick (exact for |e| < 2^22), which stays in
        // vector registers where the generic SIMD conversion does not.
        let e = unsafeBitCast(exponent &+ magicBits, to: Lanes.self) - magic
        // ln 2 split in a part exact in fp32 products with |e| < 2^8 and a remainder.
        return e * 0.693_145_751_953_125 + (e * 1.428_606_820_309_417_2e-06 + s * series)
    }

    /// √x for positive normal x, by three Newton steps on 1/√x from the classic bit-level
    /// first guess, then x·(1/√x): within a few fp32 ULPs. (The SIMD `squareRoot()` of
    /// the standard library compiles to a lane-by-lane libm call here, which also stops
    /// the surrounding arithmetic from being vectorised.)
    @inline(__always)
    static func squareRoot(_ x: Lanes) -> Lanes {
        let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
        var y = unsafeBitCast(0x5F37_59DF &- (bits &>> 1), to: Lanes.self)
        let half = x * 0.5
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        return x * y
    }

    /// (cos 2πt, sin 2πt) for t in [0, 1) given with at most 24 fractional bits:
    /// t = q/4 + f with q = round(4t) and |f| ≤ 1/8 (exact), x = 2πf in [−π/4, π/4],
    /// Taylor polynomials of sin and cos on x, then the quadrant q mod 4.
    @inline(__always)
    static func cosineSineOfTurns(_ t: Lanes) -> (cosine: Lanes, sine: Lanes) {
        // round(4t) to nearest even, as a float and as an integer, by the same trick.
        let shifted = t * 4 + magic
        let quarter = shifted - magic
        let q = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- magicBits) & 3
        let x = (t - quarter * 0.25) * (2 * Float.pi)
        let x2 = x * x
        var sine = Lanes(repeating: 1.0 / 362_880.0)
        sine = sine * x2 - 1.0 / 5040.0
        sine = sine * x2 + 1.0 / 120.0
        sine = sine * x2 - 1.0 / 6.0
        sine = (sine * x2) * x + x
        var cosine = Lanes(repeating: -1.0 / 3_628_800.0)
        cosine = cosine * x2 + 1.0 / 40320.0
        cosine = cosine * x2 - 1.0 / 720.0
        cosine = cosine * x2 + 1.0 / 24.0
        cosine = cosine * x2 - 0.5
        cosine = cosine * x2 + 1
        // Rotate by q quarter turns: q=1 (−sin, cos), q=2 (−cos, −sin), q=3 (sin, −cos).
        let swap = 0 &- (q & 1)                                 // all ones where q is odd
        let cosineBits = unsafeBitCast(cosine, to: SIMD8<Int32>.self)
        let sineBits = unsafeBitCast(sine, to: SIMD8<Int32>.self)
        let negateCosine = (((q &+ 1) &>> 1) & 1) &<< 31        // q = 1, 2
        let negateSine = ((q &>> 1) & 1) &<< 31                 // q = 2, 3
        let c = unsafeBitCast(((cosineBits & ~swap) | (sineBits & swap)) ^ negateCosine, to: Lanes.self)
        let s = unsafeBitCast(((sineBits & ~swap) | (cosineBits & swap)) ^ negateSine, to: Lanes.self)
        return (c, s)
    }
}

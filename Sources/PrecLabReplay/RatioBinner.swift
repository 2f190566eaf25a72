import PrecLabFormats

/// Bins of |u| / half-ULP(stored w) in the octaves of `VisibilityHistogram`, for the
/// step-level histogram of the pure policy. A half-ULP is a power of two, so the octave
/// of the ratio is exactly floor(log2 |u|) minus the half-ULP's exponent: integer
/// arithmetic, no division. Codes of 16 bits or fewer look their exponent up in a table.
struct RatioBinner: Sendable {
    /// Marks a code without a half-ULP (NaN or infinite stored weight).
    static let noHalfULP = Int16.min
    /// The bin that collects elements whose stored weight has no half-ULP.
    static var skippedBin: Int { VisibilityHistogram.binCount }

    let format: FloatFormat
    let exponents: [Int16]?

    init(format: FloatFormat, codeBits: Int) {
        self.format = format
        exponents = codeBits <= 16 ? (0..<(1 << codeBits)).map { RatioBinner.halfULPExponent(format, UInt32($0)) } : nil
    }

    /// log2 of the half-ULP of a code, or `noHalfULP`.
    static func halfULPExponent(_ format: FloatFormat, _ code: UInt32) -> Int16 {
        guard format.decode(code).isFinite else { return noHalfULP }
        let half = format.halfULP(ofBits: code)
        guard half.isFinite, half > 0 else { return noHalfULP }
        return Int16(Int(half.exponent))
    }

    @inline(__always) func exponent(_ code: UInt32) -> Int16 {
        if let exponents { return exponents[Int(code)] }
        return RatioBinner.halfULPExponent(format, code)
    }

    /// The bin of each element's update against its code's half-ULP.
    func bins<Code: FixedWidthInteger>(_ update: UnsafePointer<Float>, _ codes: UnsafePointer<Code>, _ length: Int,
                                       into bins: UnsafeMutablePointer<UInt8>) {
        let octaves = VisibilityHistogram.octaves
        let top = octaves.binCount - 1
        let lowest = octaves.lowestExponent, highest = octaves.highestExponent
        for index in 0..<length {
            let halfExponent = exponent(UInt32(truncatingIfNeeded: codes[index]))
            if halfExponent == RatioBinner.noHalfULP {
                bins[index] = UInt8(RatioBinner.skippedBin)
                continue
            }
            let magnitude = abs(update[index])
            let bin: Int
            if magnitude == 0 {
                bin = 0
            } else if !magnitude.isFinite {
                bin = top
            } else {
                let octave = Int(magnitude.exponent) - Int(halfExponent)
                bin = octave < lowest ? 1 : octave > highest ? top : octave - lowest + 2
            }
            bins[index] = UInt8(bin)
        }
    }
}

/// Distance in ULPs between two fp32 values: the difference of their positions in the
/// ordered line of fp32 bit patterns (-0 and +0 share a position; NaNs sit beyond ±Inf).
func ulpDistance(_ a: Float, _ b: Float) -> UInt64 {
    func position(_ x: Float) -> Int64 {
        let magnitude = Int64(x.bitPattern & 0x7FFF_FFFF)
        return x.bitPattern >> 31 == 1 ? -magnitude : magnitude
    }
    return position(a) > position(b) ? UInt64(position(a) - position(b)) : UInt64(position(b) - position(a))
}

extension FloatFormat {
    /// The stored code of -0 (the sign bit alone), or nil when the format has no
    /// negative zero (fnuz formats, where that code is NaN; unsigned formats). Update
    /// masks pass it to treat +0 -> -0 as "no change" (the paper's Def. 2.1).
    public var negativeZeroBits: UInt32? {
        guard hasSignBit, hasNegativeZero else { return nil }
        return (UInt32(1) << signShift) << storageShift
    }
}

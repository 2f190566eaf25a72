import PrecLabFormats

/// A slow, independent model of every format, written from the tables in
/// docs/formats.md rather than from the library code: it enumerates the
/// representable values of a format and rounds by searching for neighbours, comparing
/// against exact midpoints in Double. Used as the oracle for the boundary tests.
struct ReferenceFormat {
    /// Layout facts, written out per format by hand.
    let signBits: Int
    let exponentBits: Int
    let mantissaBits: Int
    let bias: Int
    let hasInfinity: Bool
    let hasNegativeZero: Bool
    let isScale: Bool  // e8m0fnu
    /// Codes (magnitude, without sign) that are NaN besides the IEEE top-binade rule.
    let nanMagnitudes: Set<UInt32>
    let ieeeNaN: Bool
    let negativeZeroIsNaN: Bool
    let noNaN: Bool
    let storageShift: Int

    /// Positive finite values in increasing order with their magnitude codes.
    let values: [Double]
    let codes: [UInt32]

    init(signBits: Int = 1, exponentBits: Int, mantissaBits: Int, bias: Int, hasInfinity: Bool,
         hasNegativeZero: Bool = true, isScale: Bool = false, nanMagnitudes: Set<UInt32> = [],
         ieeeNaN: Bool = false, negativeZeroIsNaN: Bool = false, noNaN: Bool = false, storageShift: Int = 0) {
        self.signBits = signBits
        self.exponentBits = exponentBits
        self.mantissaBits = mantissaBits
        self.bias = bias
        self.hasInfinity = hasInfinity
        self.hasNegativeZero = hasNegativeZero
        self.isScale = isScale
        self.nanMagnitudes = nanMagnitudes
        self.ieeeNaN = ieeeNaN
        self.negativeZeroIsNaN = negativeZeroIsNaN
        self.noNaN = noNaN
        self.storageShift = storageShift
        var pairs: [(Double, UInt32)] = []
        let topExponent = (1 << exponentBits) - 1
        for magnitude in 0..<(UInt32(1) << (exponentBits + mantissaBits)) {
            let e = Int(magnitude) >> mantissaBits
            let f = Int(magnitude) & ((1 << mantissaBits) - 1)
            if ieeeNaN && e == topExponent { continue }      // Inf and NaN
            if nanMagnitudes.contains(magnitude) { continue }
            let value: Double
            if isScale {
                value = pow2(Int(magnitude) - bias)
            } else if e == 0 {
                value = Double(f) * pow2(1 - bias - mantissaBits)
            } else {
                value = Double((1 << mantissaBits) + f) * pow2(e - bias - mantissaBits)
            }
            pairs.append((value, magnitude))
        }
        pairs.sort { $0.0 < $1.0 }
        values = pairs.map(\.0)
        codes = pairs.map(\.1)
    }

    var signShift: Int { exponentBits + mantissaBits }
    var maxFinite: Double { values.last! }
    var maxCode: UInt32 { codes.last! }
    var infinityMagnitude: UInt32 { UInt32((1 << exponentBits) - 1) << mantissaBits }

    func code(negative: Bool, magnitude: UInt32) -> UInt32 {
        var sign: UInt32 = 0
        if negative && signBits == 1 && (magnitude != 0 || hasNegativeZero) { sign = 1 << signShift }
        return (sign | magnitude) << storageShift
    }

    /// The format's only NaN, or the quiet NaN with the sign and no payload for IEEE formats.
    func nan(negative: Bool) -> UInt32? {
        if ieeeNaN {
            return code(negative: negative, magnitude: infinityMagnitude | (1 << (mantissaBits - 1)))
        }
        if negativeZeroIsNaN { return UInt32(1) << signShift }
        if isScale { return 0xFF }
        if let only = nanMagnitudes.first { return code(negative: negative, magnitude: only) }
        return nil
    }

    /// Is the magnitude code a subnormal (exponent field 0, non-zero)?
    func isSubnormal(_ magnitude: UInt32) -> Bool {
        !isScale && magnitude != 0 && magnitude >> mantissaBits == 0
    }

    /// Rounds a finite or infinite Double by neighbour search. NaN inputs are not handled
    /// here (tests spell those out).
    func round(_ x: Double, _ options: RoundingOptions, random: UInt32 = 0) -> UInt32 {
        precondition(!x.isNaN)
        let negative = x.sign == .minus
        if isScale {
            if negative || x == 0 { return 0xFF }
            if x.isInfinite { return options.saturate ? maxCode : 0xFF }
        }
        if x.isInfinite {
            if hasInfinity { return code(negative: negative, magnitude: infinityMagnitude) }
            if options.saturate || noNaN { return code(negative: negative, magnitude: maxCode) }
            return nan(negative: negative)!
        }
        let a = abs(x)
        if a == 0 { return code(negative: negative, magnitude: 0) }
        if isScale && a < values[0] { return codes[0] }
        // Neighbours lo <= a < hi; beyond the largest finite value hi is the virtual next
        // value of the top binade (spacing kept), with code maxCode + 1.
        var lowIndex = 0
        var lowValue: Double, highValue: Double
        var lowCode: UInt32, highCode: UInt32
        let topSpacing = isScale ? maxFinite : maxFinite - values[values.count - 2]
        if a >= maxFinite {
            // Values beyond the virtual neighbour count as that neighbour for rounding
            // purposes: they overflow in every mode that does not round toward zero.
            lowValue = maxFinite; lowCode = maxCode
            highValue = maxFinite + topSpacing; highCode = maxCode + 1
            if a >= highValue {
                return overflow(negative: negative, options, truncatedOverflows: true)
            }
        } else {
            var lo = 0, hi = values.count - 1  // values[lo] <= a < values[hi]
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if values[mid] <= a { lo = mid } else { hi = mid }
            }
            lowIndex = lo
            lowValue = values[lo]; lowCode = codes[lo]
            highValue = values[hi]; highCode = codes[hi]
        }
        _ = lowIndex
        var chosenUpper: Bool
        if a == lowValue {
            chosenUpper = false
        } else {
            let midpoint = (lowValue + highValue) / 2
            switch options.mode {
            case .nearestEven:
                if a != midpoint { chosenUpper = a > midpoint }
                else if isScale { chosenUpper = true }
                else { chosenUpper = highCode & 1 == 0 }
            case .nearestAway: chosenUpper = a >= midpoint
            case .towardZero: chosenUpper = false
            case .up: chosenUpper = !negative
            case .down: chosenUpper = negative
            case .odd: chosenUpper = !isScale && lowCode & 1 == 0
            case .stochastic:
                let gap = highValue - lowValue
                let fraction = (a - lowValue) / gap  // exact: Sterbenz and a power-of-two gap
                let scaled = (fraction * 4_294_967_296).rounded(.down)
                chosenUpper = Double(random) < scaled
            }
        }
        if chosenUpper && highCode > maxCode {
            let towardZero = options.mode == .towardZero || options.mode == .odd
                || (options.mode == .up && negative) || (options.mode == .down && !negative)
            if towardZero { return code(negative: negative, magnitude: maxCode) }
            return overflow(negative: negative, options, truncatedOverflows: false)
        }
        var magnitude = chosenUpper ? highCode : lowCode
        if options.flushSubnormals && isSubnormal(magnitude) { magnitude = 0 }
        return code(negative: negative, magnitude: magnitude)
    }

    private func overflow(negative: Bool, _ options: RoundingOptions, truncatedOverflows: Bool) -> UInt32 {
        let towardZero = options.mode == .towardZero || options.mode == .odd
            || (options.mode == .up && negative) || (options.mode == .down && !negative)
        if towardZero || options.saturate || noNaN && !hasInfinity {
            return code(negative: negative, magnitude: maxCode)
        }
        if isScale { return 0xFF }
        if hasInfinity { return code(negative: negative, magnitude: infinityMagnitude) }
        return nan(negative: negative)!
    }

    /// The model of each library format, spelled out from the format table.
    static func model(_ format: FloatFormat) -> ReferenceFormat {
        switch format.name {
        case "tf32": return ReferenceFormat(exponentBits: 8, mantissaBits: 10, bias: 127, hasInfinity: true,
                                            ieeeNaN: true, storageShift: 13)
        case "bf16": return ReferenceFormat(exponentBits: 8, mantissaBits: 7, bias: 127, hasInfinity: true, ieeeNaN: true)
        case "fp16": return ReferenceFormat(exponentBits: 5, mantissaBits: 10, bias: 15, hasInfinity: true, ieeeNaN: true)
        case "e5m2": return ReferenceFormat(exponentBits: 5, mantissaBits: 2, bias: 15, hasInfinity: true, ieeeNaN: true)
        case "e4m3fn": return ReferenceFormat(exponentBits: 4, mantissaBits: 3, bias: 7, hasInfinity: false,
                                              nanMagnitudes: [0x7F])
        case "e4m3fnuz": return ReferenceFormat(exponentBits: 4, mantissaBits: 3, bias: 8, hasInfinity: false,
                                                hasNegativeZero: false, negativeZeroIsNaN: true)
        case "e5m2fnuz": return ReferenceFormat(exponentBits: 5, mantissaBits: 2, bias: 16, hasInfinity: false,
                                                hasNegativeZero: false, negativeZeroIsNaN: true)
        case "e2m3fn": return ReferenceFormat(exponentBits: 2, mantissaBits: 3, bias: 1, hasInfinity: false, noNaN: true)
        case "e3m2fn": return ReferenceFormat(exponentBits: 3, mantissaBits: 2, bias: 3, hasInfinity: false, noNaN: true)
        case "e2m1fn": return ReferenceFormat(exponentBits: 2, mantissaBits: 1, bias: 1, hasInfinity: false, noNaN: true)
        case "e8m0fnu": return ReferenceFormat(signBits: 0, exponentBits: 8, mantissaBits: 0, bias: 127,
                                               hasInfinity: false, hasNegativeZero: false, isScale: true,
                                               nanMagnitudes: [0xFF])
        default:
            // IEEE-like custom: bias 2^(e-1)-1, Inf and NaN in the top binade.
            return ReferenceFormat(exponentBits: format.exponentBits, mantissaBits: format.mantissaBits,
                                   bias: (1 << (format.exponentBits - 1)) - 1, hasInfinity: true, ieeeNaN: true)
        }
    }
}

/// 2^k as a Double, built from its bit pattern (independent of the library).
func pow2(_ k: Int) -> Double {
    if k >= -1022 { return Double(bitPattern: UInt64(k + 1023) << 52) }
    return Double(bitPattern: UInt64(1) << UInt64(k + 1074))
}

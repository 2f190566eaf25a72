import PrecLabSupport

/// How a value between two representable neighbours is rounded.
public enum RoundingMode: String, CaseIterable, Sendable, Codable {
    /// To nearest, ties to the even code (IEEE default, PyTorch, ml_dtypes).
    case nearestEven = "nearest-even"
    /// To nearest, ties away from zero.
    case nearestAway = "nearest-away"
    /// Truncation of the magnitude.
    case towardZero = "toward-zero"
    /// Toward +Inf.
    case up
    /// Toward -Inf.
    case down
    /// Truncate, then set the last mantissa bit when anything was discarded (round to odd,
    /// which makes a later rounding to a narrower format correct).
    case odd
    /// Up (in magnitude) with probability equal to the discarded fraction of the gap.
    case stochastic

    /// Short spellings accepted besides the canonical names.
    static let aliases: [String: RoundingMode] = [
        "rne": .nearestEven, "rn": .nearestEven, "nearest": .nearestEven, "nearesteven": .nearestEven,
        "even": .nearestEven, "tiestoeven": .nearestEven,
        "rna": .nearestAway, "nearestaway": .nearestAway, "away": .nearestAway, "tiesaway": .nearestAway,
        "rtz": .towardZero, "rz": .towardZero, "towardzero": .towardZero, "zero": .towardZero,
        "truncate": .towardZero, "trunc": .towardZero, "chop": .towardZero,
        "ru": .up, "rup": .up, "ceil": .up, "ceiling": .up, "towardpositive": .up, "+inf": .up,
        "rd": .down, "rdn": .down, "floor": .down, "towardnegative": .down, "-inf": .down,
        "rto": .odd, "ro": .odd, "roundtoodd": .odd, "toodd": .odd,
        "sr": .stochastic, "stoch": .stochastic, "random": .stochastic,
    ]

    /// Parses a mode name or alias (rne, rna, rtz, ru, rd, rto, sr, ...), case-insensitive.
    public static func named(_ text: String) throws -> RoundingMode {
        let key = text.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " }
        if let mode = allCases.first(where: { $0.rawValue.filter { $0 != "-" } == key }) { return mode }
        if let mode = aliases[key] { return mode }
        throw PrecLabError.invalidArgument("unknown rounding mode '\(text)'; valid: "
            + allCases.map(\.rawValue).joined(separator: ", ") + " (aliases rne, rna, rtz, ru, rd, rto, sr)")
    }
}

/// Rounding mode plus the two policies that are independent of the format.
public struct RoundingOptions: Hashable, Sendable, Codable {
    public var mode: RoundingMode
    /// Results that would be subnormal in the target become zero of the same sign
    /// (decided on the rounded result).
    public var flushSubnormals: Bool
    /// Overflow gives the largest finite value instead of Inf (or NaN where the format
    /// has no Inf).
    public var saturate: Bool

    public init(mode: RoundingMode = .nearestEven, flushSubnormals: Bool = false, saturate: Bool = false) {
        self.mode = mode
        self.flushSubnormals = flushSubnormals
        self.saturate = saturate
    }

    public static let nearestEven = RoundingOptions()

    /// The same overflow and subnormal options with another rounding mode (a storage
    /// policy rounds nearest-even or stochastically whatever mode was configured).
    public func with(mode: RoundingMode) -> RoundingOptions {
        var options = self
        options.mode = mode
        return options
    }
}

/// A counter-based random generator: 32 random bits as a pure function of
/// (seed, stream, step, element index), so stochastic rounding gives the same bits
/// whatever the thread count or chunking.
///
/// Construction (cheap enough to run in 32-bit SIMD lanes next to the rounding):
/// 1. the key words are folded with the SplitMix64 finaliser into a 64-bit `state`;
/// 2. per 2^32-element block of indices, `mix(state ^ (block + 1) * golden)` gives two
///    32-bit keys k1 (low half) and k2 (high half);
/// 3. element i gets `lowbias32(UInt32(i mod 2^32) ^ k1) ^ k2`, where lowbias32 is
///    Wellons' 32-bit integer hash (x ^= x>>16; x *= 0x7feb352d; x ^= x>>15;
///    x *= 0x846ca68b; x ^= x>>16), a bijection with very low avalanche bias.
public struct StochasticKey: Hashable, Sendable {
    public var seed: UInt64
    public var stream: UInt64
    public var step: UInt64

    public init(seed: UInt64, stream: UInt64 = 0, step: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
        self.step = step
    }

    @usableFromInline static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// SplitMix64's output function (Stafford variant 13): a strong 64-bit bijective mix.
    @inlinable @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The 64-bit state all elements of this key derive from.
    @inlinable var state: UInt64 {
        var k = StochasticKey.mix(seed &+ StochasticKey.golden)
        k = StochasticKey.mix(k ^ (stream &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
        k = StochasticKey.mix(k ^ (step &* 0x8CB9_2BA7_2F3D_8DD7) ^ 0x1405_7B7E_F767_814F)
        return k
    }

    /// 32 random bits for element `index`.
    @inlinable public func randomBits(index: Int) -> UInt32 {
        StochasticKey.bits(state: state, index: index)
    }

    /// The two 32-bit keys of the 2^32-element block holding `index`.
    @inlinable @inline(__always)
    static func blockKeys(state: UInt64, index: Int) -> (UInt32, UInt32) {
        let block = UInt64(bitPattern: Int64(index)) >> 32
        let keys = mix(state ^ ((block &+ 1) &* golden))
        return (UInt32(truncatingIfNeeded: keys), UInt32(truncatingIfNeeded: keys >> 32))
    }

    /// Wellons' lowbias32 integer hash.
    @inlinable @inline(__always)
    static func lowbias32(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x = x &* 0x7FEB_352D
        x ^= x >> 15
        x = x &* 0x846C_A68B
        x ^= x >> 16
        return x
    }

    @inlinable @inline(__always)
    static func bits(state: UInt64, index: Int) -> UInt32 {
        let (k1, k2) = blockKeys(state: state, index: index)
        return lowbias32(UInt32(truncatingIfNeeded: index) ^ k1) ^ k2
    }
}

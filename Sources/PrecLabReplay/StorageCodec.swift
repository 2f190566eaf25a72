import PrecLabFormats

/// Rounds fp32 values into a storage format and back, specialised so the step kernels
/// compile to tight loops. Every codec must give the same bits as `FloatFormat`'s own
/// `encode`/`decode` (the tests compare them); the bf16 one exists only for speed.
protocol StorageCodec: Sendable {
    associatedtype Code: FixedWidthInteger & UnsignedInteger & Sendable

    /// Nearest-even with the configured overflow and subnormal options.
    func nearest(_ value: Float) -> Code
    /// The `pure` policy's rounding (`--rounding`); `random` is used only when that
    /// mode is stochastic.
    func pureRound(_ value: Float, random: UInt32) -> Code
    /// Stochastic rounding with the given 32 random bits.
    func stochastic(_ value: Float, random: UInt32) -> Code
    /// The exact fp32 value of a code.
    func decode(_ code: Code) -> Float
    /// Whether `pureRound` consumes random bits.
    var pureIsStochastic: Bool { get }
    /// Whether `pureRound` is `nearest` (the kernels then use the nearest loop, which
    /// vectorises without a per-element mode switch).
    var pureIsNearest: Bool { get }
    /// When non-nil, codes are packed exactly as the format's array kernels expect
    /// (`storageBytes` each) and the step kernels round whole slices through those
    /// vectorised kernels instead of calling the scalar rounding per element.
    var arrayFormat: FloatFormat? { get }
    /// The options of the three roundings, for the array kernels.
    var nearestOptions: RoundingOptions { get }
    var pureOptions: RoundingOptions { get }
    var stochasticOptions: RoundingOptions { get }
}

/// Any format through `FloatFormat`'s scalar paths.
struct GenericCodec<Code: FixedWidthInteger & UnsignedInteger & Sendable>: StorageCodec {
    let format: FloatFormat
    let nearestOptions: RoundingOptions
    let pureOptions: RoundingOptions
    let stochasticOptions: RoundingOptions

    init(configuration: ReplayConfiguration) {
        format = configuration.format
        nearestOptions = configuration.nearestOptions
        pureOptions = configuration.rounding
        stochasticOptions = configuration.stochasticOptions
    }

    var pureIsStochastic: Bool { pureOptions.mode == .stochastic }
    var pureIsNearest: Bool { pureOptions.mode == .nearestEven }
    var arrayFormat: FloatFormat? { MemoryLayout<Code>.size == format.storageBytes ? format : nil }

    @inline(__always) func nearest(_ value: Float) -> Code {
        Code(truncatingIfNeeded: format.encode(value, nearestOptions))
    }

    @inline(__always) func pureRound(_ value: Float, random: UInt32) -> Code {
        Code(truncatingIfNeeded: format.encode(value, pureOptions, random: random))
    }

    @inline(__always) func stochastic(_ value: Float, random: UInt32) -> Code {
        Code(truncatingIfNeeded: format.encode(value, stochasticOptions, random: random))
    }

    @inline(__always) func decode(_ code: Code) -> Float {
        format.decodeFloat(UInt32(truncatingIfNeeded: code))
    }
}

/// bf16 with default options (subnormals kept, non-saturating), where rounding an fp32
/// value is integer arithmetic on its top half. Used only when it applies; other
/// settings fall back to `GenericCodec`.
struct BFloat16Codec: StorageCodec {
    typealias Code = UInt16
    let generic: GenericCodec<UInt16>

    init(configuration: ReplayConfiguration) {
        generic = GenericCodec(configuration: configuration)
    }

    /// The fast path is exact only for plain bf16 without flush or saturation.
    static func applies(to configuration: ReplayConfiguration) -> Bool {
        configuration.format == .bf16 && !configuration.rounding.flushSubnormals
            && !configuration.rounding.saturate
    }

    var pureIsStochastic: Bool { generic.pureIsStochastic }
    var pureIsNearest: Bool { generic.pureIsNearest }
    /// The integer fast path below is faster than the array kernels for bf16.
    var arrayFormat: FloatFormat? { nil }
    var nearestOptions: RoundingOptions { generic.nearestOptions }
    var pureOptions: RoundingOptions { generic.pureOptions }
    var stochasticOptions: RoundingOptions { generic.stochasticOptions }

    /// All ones when `bits` is a NaN, else zero: (Inf's magnitude - |bits|) is negative
    /// exactly for NaNs, and an arithmetic shift spreads its sign. Written as arithmetic
    /// (not a select) because LLVM turned the select into a branch and kept the loops
    /// scalar (measured with perf).
    @inline(__always) static func nanMask(_ bits: UInt32) -> UInt32 {
        UInt32(bitPattern: Int32(bitPattern: 0x7F80_0000 &- (bits & 0x7FFF_FFFF)) >> 31)
    }

    /// Branch-free so loops vectorise: NaN keeps its sign and top payload bits and is
    /// quieted (the formats module's rule; the tests compare every NaN class).
    @inline(__always) func nearest(_ value: Float) -> UInt16 { BFloat16Codec.nearest(value) }

    /// `nearest` needs no configuration: the fast path applies only without flush or saturation.
    @inline(__always) static func nearest(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
        let quietNaN = (bits >> 16) | 0x0040
        let nan = BFloat16Codec.nanMask(bits)
        return UInt16(truncatingIfNeeded: (rounded & ~nan) | (quietNaN & nan))
    }

    @inline(__always) func pureRound(_ value: Float, random: UInt32) -> UInt16 {
        switch generic.pureOptions.mode {
        case .nearestEven: return nearest(value)
        case .stochastic: return stochastic(value, random: random)
        default: return generic.pureRound(value, random: random)
        }
    }

    /// Rounds the magnitude up iff the top 16 random bits are below the 16 discarded
    /// bits: probability exactly (discarded / 2^16), the rule of `FloatFormat`. Both
    /// operands are below 2^16, so their difference is negative exactly when rounding up.
    @inline(__always) func stochastic(_ value: Float, random: UInt32) -> UInt16 {
        let bits = value.bitPattern
        let up = ((random >> 16) &- (bits & 0xFFFF)) >> 31
        let rounded = (bits >> 16) &+ up
        let quietNaN = (bits >> 16) | 0x0040
        let nan = BFloat16Codec.nanMask(bits)
        return UInt16(truncatingIfNeeded: (rounded & ~nan) | (quietNaN & nan))
    }

    @inline(__always) func decode(_ code: UInt16) -> Float {
        Float(bitPattern: UInt32(code) << 16)
    }
}

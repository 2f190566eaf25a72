import PrecLabSupport

/// How a format spells NaN. The low-precision ML formats reuse codes that IEEE 754
/// would give to NaN or Inf to gain range, so each one says exactly which codes are NaN.
public enum NaNEncoding: Sendable, Hashable {
    /// IEEE 754: exponent all ones with a non-zero mantissa (both signs).
    case ieee
    /// e4m3fn: only S.1111.111 is NaN; the rest of the top binade is finite.
    case extendedRangeAllOnes
    /// fnuz formats: the code that would be -0 (0x80) is the only NaN.
    case negativeZeroCode
    /// e8m0fnu: 0xFF is the only NaN.
    case allOnes
    /// fp6 / fp4: no NaN at all.
    case none
}

/// A binary floating-point storage format: sign (optional), exponent and mantissa
/// widths, bias and the special-value conventions. Codes are handled as `UInt32`
/// holding the storage bits (for tf32 the fp32 bit pattern with the low 13 bits zero).
public struct FloatFormat: Hashable, Sendable, CustomStringConvertible {
    /// Canonical short name ("bf16", "e4m3fn", custom "e5m10").
    public let name: String
    public let exponentBits: Int
    public let mantissaBits: Int
    public let bias: Int
    public let hasSignBit: Bool
    public let hasInfinity: Bool
    public let nanEncoding: NaNEncoding
    public let hasNegativeZero: Bool

    /// Which code path a format needs (fp32 from Float is an identity; e8m0fnu has no
    /// zero, no sign and no subnormals).
    @usableFromInline enum Kind: Sendable, Hashable { case fp32, e8m0, generic }
    @usableFromInline let kind: Kind
    /// Codes are stored shifted left by this many bits (13 for tf32, else 0).
    @usableFromInline let storageShift: Int
    /// The largest finite code magnitude (without sign, before `storageShift`).
    @usableFromInline let maxFiniteMagnitude: UInt32
    /// Unbiased exponent of the smallest normal number (1 - bias; -127 for e8m0fnu).
    @usableFromInline let minNormalExponent: Int

    init(name: String, exponentBits: Int, mantissaBits: Int, bias: Int, hasSignBit: Bool = true,
         hasInfinity: Bool, nanEncoding: NaNEncoding, hasNegativeZero: Bool = true,
         kind: Kind = .generic, storageShift: Int = 0) {
        self.name = name
        self.exponentBits = exponentBits
        self.mantissaBits = mantissaBits
        self.bias = bias
        self.hasSignBit = hasSignBit
        self.hasInfinity = hasInfinity
        self.nanEncoding = nanEncoding
        self.hasNegativeZero = hasNegativeZero
        self.kind = kind
        self.storageShift = storageShift
        let magnitudeBits = exponentBits + mantissaBits
        let allOnes = UInt32((UInt64(1) << magnitudeBits) - 1)
        switch nanEncoding {
        case .ieee:
            // Top exponent is Inf/NaN: the largest finite value is the binade below, mantissa all ones.
            maxFiniteMagnitude = allOnes - (UInt32(1) << mantissaBits)
        case .extendedRangeAllOnes, .allOnes:
            maxFiniteMagnitude = allOnes - 1
        case .negativeZeroCode, .none:
            maxFiniteMagnitude = allOnes
        }
        minNormalExponent = kind == .e8m0 ? -bias : 1 - bias
    }

    public var description: String { name }

    /// Meaningful bits of a code (tf32: 19).
    public var bitWidth: Int { (hasSignBit ? 1 : 0) + exponentBits + mantissaBits }

    /// Bytes per element in memory: 1, 2 or 4 (fp6 and fp4 use one byte per code).
    public var storageBytes: Int {
        let stored = bitWidth + storageShift
        return stored <= 8 ? 1 : (stored <= 16 ? 2 : 4)
    }

    /// The safetensors dtype string, nil when safetensors has none (tf32, custom).
    public var safetensorsName: String? {
        switch name {
        case "fp32": return "F32"
        case "bf16": return "BF16"
        case "fp16": return "F16"
        case "e5m2": return "F8_E5M2"
        case "e4m3fn": return "F8_E4M3"
        case "e4m3fnuz": return "F8_E4M3FNUZ"
        case "e5m2fnuz": return "F8_E5M2FNUZ"
        case "e2m3fn": return "F6_E2M3"
        case "e3m2fn": return "F6_E3M2"
        case "e2m1fn": return "F4"
        case "e8m0fnu": return "F8_E8M0"
        default: return nil
        }
    }

    /// The ml_dtypes / numpy type name where one exists.
    public var mlDtypesName: String? {
        switch name {
        case "fp32": return "float32"
        case "bf16": return "bfloat16"
        case "fp16": return "float16"
        case "e5m2": return "float8_e5m2"
        case "e4m3fn": return "float8_e4m3fn"
        case "e4m3fnuz": return "float8_e4m3fnuz"
        case "e5m2fnuz": return "float8_e5m2fnuz"
        case "e2m3fn": return "float6_e2m3fn"
        case "e3m2fn": return "float6_e3m2fn"
        case "e2m1fn": return "float4_e2m1fn"
        case "e8m0fnu": return "float8_e8m0fnu"
        case "e4m3": return "float8_e4m3"
        case "e3m4": return "float8_e3m4"
        default: return nil
        }
    }

    /// Bit position of the sign in a code (before `storageShift`).
    @inlinable var signShift: Int { exponentBits + mantissaBits }

    /// Mask of the meaningful bits of a stored code.
    @inlinable var codeMask: UInt32 {
        UInt32(truncatingIfNeeded: (UInt64(1) << (bitWidth + storageShift)) - 1)
    }

    /// The largest finite value.
    public var maxFinite: Double { decode(maxFiniteMagnitude << storageShift) }
    /// The smallest positive normal value (e8m0fnu: its smallest value 2^-127).
    public var minNormal: Double { Double(sign: .plus, exponent: minNormalExponent, significand: 1) }
    /// The smallest positive value (subnormal where the format has them).
    public var minSubnormal: Double {
        kind == .e8m0 ? minNormal
            : Double(sign: .plus, exponent: minNormalExponent - mantissaBits, significand: 1)
    }
    /// Distance from 1 to the next larger value: 2^-mantissaBits.
    public var epsilon: Double { Double(sign: .plus, exponent: -mantissaBits, significand: 1) }

    /// The code of +Inf, when the format has one.
    public var infinityBits: UInt32? {
        guard hasInfinity else { return nil }
        return (UInt32((1 << exponentBits) - 1) << mantissaBits) << storageShift
    }

    /// The canonical quiet NaN code (positive where NaN has a sign), when the format has NaN.
    public var canonicalNaNBits: UInt32? {
        switch nanEncoding {
        case .ieee:
            let exponentOnes = UInt32((1 << exponentBits) - 1) << mantissaBits
            return (exponentOnes | (UInt32(1) << (mantissaBits - 1))) << storageShift
        case .extendedRangeAllOnes: return UInt32((1 << signShift) - 1)
        case .negativeZeroCode: return UInt32(1) << signShift
        case .allOnes: return 0xFF
        case .none: return nil
        }
    }

    // MARK: The standard formats

    public static let fp32 = FloatFormat(name: "fp32", exponentBits: 8, mantissaBits: 23, bias: 127,
                                         hasInfinity: true, nanEncoding: .ieee, kind: .fp32)
    public static let tf32 = FloatFormat(name: "tf32", exponentBits: 8, mantissaBits: 10, bias: 127,
                                         hasInfinity: true, nanEncoding: .ieee, storageShift: 13)
    public static let bf16 = FloatFormat(name: "bf16", exponentBits: 8, mantissaBits: 7, bias: 127,
                                         hasInfinity: true, nanEncoding: .ieee)
    public static let fp16 = FloatFormat(name: "fp16", exponentBits: 5, mantissaBits: 10, bias: 15,
                                         hasInfinity: true, nanEncoding: .ieee)
    public static let e5m2 = FloatFormat(name: "e5m2", exponentBits: 5, mantissaBits: 2, bias: 15,
                                         hasInfinity: true, nanEncoding: .ieee)
    public static let e4m3fn = FloatFormat(name: "e4m3fn", exponentBits: 4, mantissaBits: 3, bias: 7,
                                           hasInfinity: false, nanEncoding: .extendedRangeAllOnes)
    public static let e4m3fnuz = FloatFormat(name: "e4m3fnuz", exponentBits: 4, mantissaBits: 3, bias: 8,
                                             hasInfinity: false, nanEncoding: .negativeZeroCode,
                                             hasNegativeZero: false)
    public static let e5m2fnuz = FloatFormat(name: "e5m2fnuz", exponentBits: 5, mantissaBits: 2, bias: 16,
                                             hasInfinity: false, nanEncoding: .negativeZeroCode,
                                             hasNegativeZero: false)
    public static let e2m3fn = FloatFormat(name: "e2m3fn", exponentBits: 2, mantissaBits: 3, bias: 1,
                                           hasInfinity: false, nanEncoding: .none)
    public static let e3m2fn = FloatFormat(name: "e3m2fn", exponentBits: 3, mantissaBits: 2, bias: 3,
                                           hasInfinity: false, nanEncoding: .none)
    public static let e2m1fn = FloatFormat(name: "e2m1fn", exponentBits: 2, mantissaBits: 1, bias: 1,
                                           hasInfinity: false, nanEncoding: .none)
    public static let e8m0fnu = FloatFormat(name: "e8m0fnu", exponentBits: 8, mantissaBits: 0, bias: 127,
                                            hasSignBit: false, hasInfinity: false, nanEncoding: .allOnes,
                                            hasNegativeZero: false, kind: .e8m0)

    /// The twelve named formats, widest first.
    public static var standard: [FloatFormat] {
        [fp32, tf32, bf16, fp16, e5m2, e4m3fn, e4m3fnuz, e5m2fnuz, e2m3fn, e3m2fn, e2m1fn, e8m0fnu]
    }

    /// An IEEE-like format (Inf and NaN in the top binade, bias 2^(e-1)-1, subnormals,
    /// signed zero). Widths that match a standard format return it (e8m7 is bf16,
    /// e5m10 fp16, e5m2, e8m10 tf32, e8m23 fp32).
    public static func custom(exponentBits: Int, mantissaBits: Int) throws -> FloatFormat {
        guard (2...8).contains(exponentBits) else {
            throw PrecLabError.invalidArgument("custom format e\(exponentBits)m\(mantissaBits): exponent bits must be 2...8")
        }
        guard (1...23).contains(mantissaBits) else {
            throw PrecLabError.invalidArgument("custom format e\(exponentBits)m\(mantissaBits): mantissa bits must be 1...23 "
                + "(an IEEE-like format needs a mantissa bit for NaN; use e8m0fnu for the scale type)")
        }
        if let match = standard.first(where: {
            $0.exponentBits == exponentBits && $0.mantissaBits == mantissaBits && $0.nanEncoding == .ieee
        }) {
            return match
        }
        return FloatFormat(name: "e\(exponentBits)m\(mantissaBits)", exponentBits: exponentBits,
                           mantissaBits: mantissaBits, bias: (1 << (exponentBits - 1)) - 1,
                           hasInfinity: true, nanEncoding: .ieee)
    }

    /// Normalised spellings (lower case, without '-', '_', ' ') of every alias.
    static let aliases: [String: FloatFormat] = {
        var table: [String: FloatFormat] = [:]
        func add(_ format: FloatFormat, _ names: [String]) {
            for name in names + [format.name] + (format.safetensorsName.map { [$0] } ?? [])
                + (format.mlDtypesName.map { [$0] } ?? []) {
                table[normalise(name)] = format
            }
        }
        add(fp32, ["f32", "float", "single", "ieee32", "torch.float32"])
        add(tf32, ["tensorfloat32", "tensorfloat-32"])
        add(bf16, ["bfloat", "brain16", "torch.bfloat16"])
        add(fp16, ["f16", "half", "binary16", "torch.float16"])
        add(e5m2, ["fp8-e5m2", "f8e5m2", "float8-e5m2", "torch.float8_e5m2"])
        add(e4m3fn, ["fp8-e4m3", "fp8-e4m3fn", "f8e4m3fn", "torch.float8_e4m3fn", "fp8"])
        add(e4m3fnuz, ["fp8-e4m3fnuz", "f8e4m3fnuz", "torch.float8_e4m3fnuz"])
        add(e5m2fnuz, ["fp8-e5m2fnuz", "f8e5m2fnuz", "torch.float8_e5m2fnuz"])
        add(e2m3fn, ["fp6-e2m3", "fp6-e2m3fn", "f6e2m3fn"])
        add(e3m2fn, ["fp6-e3m2", "fp6-e3m2fn", "f6e3m2fn"])
        add(e2m1fn, ["fp4", "fp4-e2m1", "fp4-e2m1fn", "f4e2m1fn", "float4"])
        add(e8m0fnu, ["e8m0", "fp8-e8m0", "f8e8m0fnu", "float8_e8m0", "torch.float8_e8m0fnu"])
        return table
    }()

    static func normalise(_ text: String) -> String {
        String(text.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " })
    }

    /// Looks a format up by name: canonical names, ml_dtypes and torch names, safetensors
    /// dtype strings and common aliases (case-insensitive), or "eXmY" for an IEEE-like
    /// custom format (ml_dtypes' float8_e4m3 / float8_e3m4 are such formats).
    public static func named(_ text: String) throws -> FloatFormat {
        let key = normalise(text)
        if let format = aliases[key] { return format }
        var body = Substring(key)
        if body.hasPrefix("float8") { body = body.dropFirst(6) }
        if body.hasPrefix("e"), let m = body.firstIndex(of: "m"),
           let e = Int(body[body.index(after: body.startIndex)..<m]),
           let mantissa = Int(body[body.index(after: m)...]) {
            return try custom(exponentBits: e, mantissaBits: mantissa)
        }
        throw PrecLabError.invalidArgument("unknown format '\(text)'; valid: "
            + standard.map(\.name).joined(separator: ", ")
            + ", eXmY (IEEE-like custom, e.g. e5m10), and aliases such as bfloat16, half, float32, "
            + "fp8-e4m3, float8_e4m3fn and the safetensors names F32, F16, BF16, F8_E4M3, F8_E5M2, "
            + "F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F6_E2M3, F6_E3M2, F4")
    }
}

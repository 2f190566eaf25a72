import PrecLabSupport

/// A number as typed on the command line: a decimal or hex-float value (read as the
/// nearest Double), or raw fp32 bits written `bits:0x7F800001` (kept exactly, NaN
/// payloads included).
public enum InputValue: Sendable, Equatable {
    case double(Double)
    case float32Bits(UInt32)

    /// Parses `1.5`, `-2e-3`, `0x1.8p-3`, `inf`, `-inf`, `infinity`, `nan`, `-nan`,
    /// `bits:0x7F800001` (also `bits:7F800001`). Throws a usage error otherwise.
    public static func parse(_ text: String) throws -> InputValue {
        let trimmed = text.trimmingWhitespace()
        let lowered = trimmed.lowercased()
        if lowered.hasPrefix("bits:") {
            var digits = Substring(lowered.dropFirst(5))
            if digits.hasPrefix("0x") { digits = digits.dropFirst(2) }
            digits = Substring(digits.filter { $0 != "_" })
            guard !digits.isEmpty, digits.count <= 8, let bits = UInt32(digits, radix: 16) else {
                throw PrecLabError.invalidArgument("'\(text)': raw fp32 bits must be bits:0x followed by 1-8 hex digits")
            }
            return .float32Bits(bits)
        }
        switch lowered {
        case "nan", "+nan": return .double(.nan)
        case "-nan": return .double(-Double.nan)
        default: break
        }
        guard !lowered.isEmpty, let value = Double(lowered), !lowered.contains("nan(") else {
            throw PrecLabError.invalidArgument("'\(text)' is not a number (use decimal, hex float such as 0x1.8p-3, "
                + "inf, -inf, nan, or raw fp32 bits such as bits:0x7F800001)")
        }
        return .double(value)
    }

    /// The value as a Double (fp32 bits widen exactly; NaN payload moves to the top bits).
    public var doubleValue: Double {
        switch self {
        case .double(let value): return value
        case .float32Bits(let bits): return Double(Float(bitPattern: bits))
        }
    }

    /// Encodes into `format` from the exact input: Double inputs through the Double
    /// path, raw fp32 bits through the Float path (so fp32 bits are kept bit for bit).
    public func encode(_ format: FloatFormat, _ options: RoundingOptions, random: UInt32) -> UInt32 {
        switch self {
        case .double(let value): return format.encode(value, options, random: random)
        case .float32Bits(let bits): return format.encode(Float(bitPattern: bits), options, random: random)
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

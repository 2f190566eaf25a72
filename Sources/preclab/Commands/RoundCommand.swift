import Foundation
import PrecLabFormats
import PrecLabSupport

/// `preclab round`: what a value becomes when stored in a format.
enum RoundCommand: Command {
    static let name = "round"
    static let summary = "round values into a format: stored bits, fields, decoded value, error in ULPs"
    static let help = """
        usage: preclab round VALUE... --dtype NAME [--rounding MODE] [--seed N]
                             [--flush-subnormals] [--saturate] [--json]

        For each VALUE prints the stored bits (hex and sign/exponent/mantissa fields), the
        decoded value, the rounding error (decoded - value) in ULPs of the stored value, and
        the half-ULP thresholds there: an fp32 update smaller than the threshold is swallowed
        under nearest rounding (away from zero / toward zero; they differ at powers of two).

        VALUE: decimal (1.5, -2e-3), hex float (0x1.8p-3), inf, -inf, nan, or raw fp32 bits
        (bits:0x7F800001, encoded through the fp32 path so NaN payloads survive). Decimals
        are read as the nearest Double first, then rounded into the format.

        options:
          --dtype NAME          format: fp32 tf32 bf16 fp16 e5m2 e4m3fn e4m3fnuz e5m2fnuz
                                e2m3fn e3m2fn e2m1fn e8m0fnu, aliases (bfloat16, half,
                                F8_E4M3, ...) or a custom IEEE-like eXmY (e5m10, e8m3)
          --custom eXmY         same as --dtype, for custom formats
          --rounding MODE       nearest-even (default), nearest-away, toward-zero, up, down,
                                odd, stochastic (aliases rne rna rtz ru rd rto sr)
          --seed N              stochastic rounding seed (default 0); value i uses
                                StochasticKey(seed: N).randomBits(index: i)
          --flush-subnormals    results that would be subnormal become zero
          --saturate            overflow gives the largest finite value instead of Inf/NaN
          --json                machine-readable output
        """
    static let options: [OptionSpec] = [
        .value("--dtype"), .value("--custom"), .value("--rounding"), .value("--seed"),
        .flag("--flush-subnormals"), .flag("--saturate"), .flag("--json"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let texts = try arguments.requireSomePositionals(names: "one or more VALUEs")
        if arguments.value("--dtype") != nil && arguments.value("--custom") != nil {
            throw UsageError("give either --dtype or --custom, not both")
        }
        guard let dtype = arguments.value("--dtype") ?? arguments.value("--custom") else {
            throw UsageError("--dtype is required (e.g. --dtype bf16 or --dtype e5m10)")
        }
        let format = try FloatFormat.named(dtype)
        var options = RoundingOptions()
        if let mode = arguments.value("--rounding") { options.mode = try RoundingMode.named(mode) }
        options.flushSubnormals = arguments.flag("--flush-subnormals")
        options.saturate = arguments.flag("--saturate")
        let seed = try arguments.number("--seed", .seed, default: 0)
        let key = StochasticKey(seed: seed)
        let values = try texts.map(InputValue.parse)

        var results: [JSONValue] = []
        var lines: [String] = []
        for (index, input) in values.enumerated() {
            let random = key.randomBits(index: index)
            let bits = input.encode(format, options, random: random)
            let report = Report(format: format, input: input, text: texts[index], bits: bits)
            results.append(report.json(options: options, random: random))
            lines.append(contentsOf: report.lines())
        }
        if arguments.flag("--json") {
            Console.out(JSONValue.array(results).serialized())
            return
        }
        var heading = "\(format.name) (\(format.hasSignBit ? "1/" : "")\(format.exponentBits)/\(format.mantissaBits)), "
            + "rounding \(options.mode.rawValue)"
        if options.mode == .stochastic { heading += " seed \(seed)" }
        if options.flushSubnormals { heading += ", flush subnormals" }
        if options.saturate { heading += ", saturating" }
        Console.out(heading)
        Console.out(lines.joined(separator: "\n"))
    }

    /// Everything shown for one value.
    struct Report {
        let format: FloatFormat
        let input: InputValue
        let text: String
        let bits: UInt32

        var exactInput: Double { input.doubleValue }
        var decoded: Double { format.decode(bits) }
        var code: UInt32 { bits >> UInt32(format == .tf32 ? 13 : 0) }

        var fields: (sign: String, exponent: String, mantissa: String) {
            func binary(_ value: UInt32, _ width: Int) -> String {
                guard width > 0 else { return "" }
                let digits = String(value, radix: 2)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            let m = format.mantissaBits, e = format.exponentBits
            let sign = format.hasSignBit ? binary((code >> UInt32(e + m)) & 1, 1) : ""
            return (sign, binary((code >> UInt32(m)) & ((1 << UInt32(e)) - 1), e), binary(code & ((1 << UInt32(m)) - 1), m))
        }

        var isFiniteResult: Bool { !format.isNaN(bits) && !format.isInfinite(bits) }

        /// (decoded - input) / ulp at the stored value; nil when either side is not finite.
        var errorInULPs: Double? {
            guard isFiniteResult, exactInput.isFinite else { return nil }
            return (decoded - exactInput) / format.ulp(ofBits: bits)
        }

        /// Half the gap to the next value toward zero (differs from the half-ULP away from
        /// zero at powers of two).
        var halfGapTowardZero: Double? {
            guard isFiniteResult, decoded != 0 else { return nil }
            let inward = decoded > 0 ? format.nextDown(bits) : format.nextUp(bits)
            return abs(decoded - format.decode(inward)) / 2
        }

        func lines() -> [String] {
            let f = fields
            let fieldText = [f.sign, f.exponent, f.mantissa].filter { !$0.isEmpty }.joined(separator: " ")
            var result = ["\(text)  ->  \(FormatsCommand.hex(bits, format))  [\(fieldText)]  = \(describe(decoded))"]
            if isFiniteResult {
                var detail = "    input \(describe(exactInput))"
                if let error = errorInULPs { detail += ", error \(String(format: "%+.6g", error)) ulp" }
                detail += ", ulp \(describe(format.ulp(ofBits: bits)))"
                detail += ", half-ulp \(describe(format.halfULP(ofBits: bits)))"
                if let inward = halfGapTowardZero, inward != format.halfULP(ofBits: bits) {
                    detail += " (toward zero \(describe(inward)))"
                }
                result.append(detail)
            }
            return result
        }

        func describe(_ value: Double) -> String {
            if value.isNaN { return value.sign == .minus ? "-nan" : "nan" }
            if value.isInfinite { return value < 0 ? "-inf" : "inf" }
            return "\(value)"
        }

        func json(options: RoundingOptions, random: UInt32) -> JSONValue {
            var object = JSONObject()
            object["input"] = .string(text)
            object["value"] = exactInput.isFinite ? .number(exactInput) : .string(describe(exactInput))
            object["dtype"] = .string(format.name)
            object["rounding"] = .string(options.mode.rawValue)
            if options.mode == .stochastic { object["random"] = .int(Int(random)) }
            object["bits"] = .string(FormatsCommand.hex(bits, format))
            let f = fields
            object["sign"] = f.sign.isEmpty ? .null : .string(f.sign)
            object["exponent"] = .string(f.exponent)
            object["mantissa"] = .string(f.mantissa)
            object["decoded"] = decoded.isFinite ? .number(decoded) : .string(describe(decoded))
            object["is_nan"] = .bool(format.isNaN(bits))
            object["is_infinite"] = .bool(format.isInfinite(bits))
            object["error_ulps"] = errorInULPs.map { .number($0) } ?? .null
            object["ulp"] = isFiniteResult ? .finite(format.ulp(ofBits: bits)) : .null
            object["half_ulp"] = isFiniteResult ? .finite(format.halfULP(ofBits: bits)) : .null
            object["half_ulp_toward_zero"] = halfGapTowardZero.map { .number($0) } ?? .null
            return .object(object)
        }
    }
}

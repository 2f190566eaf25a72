import Foundation
import PrecLabFormats
import PrecLabSupport

/// `preclab formats`: the table of every storage format preclab knows.
enum FormatsCommand: Command {
    static let name = "formats"
    static let summary = "list the low-precision formats: bits, bias, range, epsilon, Inf/NaN codes"
    static let help = """
        usage: preclab formats [--dtype NAME]... [--json]

        Prints every standard format (fp32, tf32, bf16, fp16, e5m2, e4m3fn, e4m3fnuz,
        e5m2fnuz, e2m3fn, e3m2fn, e2m1fn, e8m0fnu) with its sign/exponent/mantissa bits,
        storage bytes, bias, largest finite value, smallest normal and subnormal values,
        epsilon (2^-mantissa bits), the ULP at 1, and how Inf and NaN are encoded.

        options:
          --dtype NAME   show only these formats (repeatable); accepts aliases
                         (bfloat16, half, F8_E4M3, ...) and custom eXmY formats (e5m10)
          --json         machine-readable output
        """
    static let options: [OptionSpec] = [.value("--dtype", repeatable: true), .flag("--json")]

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else {
            throw UsageError("unexpected argument '\(arguments.positionals[0])'")
        }
        let formats = try arguments.allValues("--dtype").isEmpty
            ? FloatFormat.standard : arguments.allValues("--dtype").map(FloatFormat.named)
        if arguments.flag("--json") {
            Console.out(JSONValue.array(formats.map(describe)).serialized())
            return
        }
        let header = ["name", "s/e/m", "bytes", "bias", "max finite", "min normal", "min subnormal",
                      "epsilon", "ulp(1)", "Inf", "NaN", "safetensors"]
        var rows: [[String]] = [header]
        for format in formats {
            rows.append([
                format.name,
                "\(format.hasSignBit ? 1 : 0)/\(format.exponentBits)/\(format.mantissaBits)",
                String(format.storageBytes), String(format.bias),
                short(format.maxFinite), short(format.minNormal), short(format.minSubnormal),
                short(format.epsilon), short(ulpAtOne(format)),
                infinityText(format), nanText(format), format.safetensorsName ?? "-",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for (index, row) in rows.enumerated() {
            let line = row.enumerated().map { column, cell in
                column == 0 || column >= 9 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
            Console.out(line.trimmingCharacters(in: .whitespaces))
            if index == 0 { Console.out(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))) }
        }
        Console.out("""

            NaN never becomes Inf or a number (fp6/fp4 have no NaN and give zero, as ml_dtypes does);
            overflow gives Inf (or NaN where there is no Inf) unless --saturate; fp6/fp4 have
            neither and saturate. See docs/formats.md.
            """)
    }

    static func ulpAtOne(_ format: FloatFormat) -> Double { format.ulp(ofBits: format.encode(1.0)) }

    static func hex(_ bits: UInt32, _ format: FloatFormat) -> String {
        let digits = String(bits, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, format.storageBytes * 2 - digits.count)) + digits
    }

    static func infinityText(_ format: FloatFormat) -> String {
        guard let bits = format.infinityBits else { return "none" }
        return hex(bits, format) + "/" + hex(format.negate(bits), format)
    }

    static func nanText(_ format: FloatFormat) -> String {
        switch format.nanEncoding {
        case .ieee: return "exp all 1s, mant!=0 (" + hex(format.canonicalNaNBits!, format) + ")"
        case .extendedRangeAllOnes: return "S.1111.111 (" + hex(format.canonicalNaNBits!, format) + "/"
            + hex(format.negate(format.canonicalNaNBits!), format) + ")"
        case .negativeZeroCode: return "0x80 only (no -0)"
        case .allOnes: return "0xFF only"
        case .none: return "none"
        }
    }

    /// A short readable number: exact when it fits, else 7 significant digits.
    static func short(_ value: Double) -> String {
        let exact = "\(value)"
        if exact.count <= 12 { return exact }
        return String(format: "%.7g", value)
    }

    static func describe(_ format: FloatFormat) -> JSONValue {
        var object = JSONObject()
        object["name"] = .string(format.name)
        object["sign_bits"] = .int(format.hasSignBit ? 1 : 0)
        object["exponent_bits"] = .int(format.exponentBits)
        object["mantissa_bits"] = .int(format.mantissaBits)
        object["bit_width"] = .int(format.bitWidth)
        object["storage_bytes"] = .int(format.storageBytes)
        object["bias"] = .int(format.bias)
        object["max_finite"] = .finite(format.maxFinite)
        object["min_normal"] = .finite(format.minNormal)
        object["min_subnormal"] = .finite(format.minSubnormal)
        object["epsilon"] = .finite(format.epsilon)
        object["ulp_at_one"] = .finite(ulpAtOne(format))
        object["has_infinity"] = .bool(format.hasInfinity)
        object["infinity_bits"] = format.infinityBits.map { .string(hex($0, format)) } ?? .null
        object["nan_encoding"] = .string(nanEncodingName(format.nanEncoding))
        object["nan_bits"] = format.canonicalNaNBits.map { .string(hex($0, format)) } ?? .null
        object["has_negative_zero"] = .bool(format.hasNegativeZero)
        object["safetensors"] = format.safetensorsName.map { .string($0) } ?? .null
        object["ml_dtypes"] = format.mlDtypesName.map { .string($0) } ?? .null
        return .object(object)
    }

    static func nanEncodingName(_ encoding: NaNEncoding) -> String {
        switch encoding {
        case .ieee: return "ieee"
        case .extendedRangeAllOnes: return "all-ones"
        case .negativeZeroCode: return "negative-zero-code"
        case .allOnes: return "0xFF"
        case .none: return "none"
        }
    }
}

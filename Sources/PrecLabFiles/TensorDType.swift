/// The element types of safetensors, by their names in the format.
///
/// The sub-byte types (F6_*, F4) are stored packed, so sizes are counted in bits; a
/// tensor's byte size is `elements × bitWidth / 8` and must come out whole.
public enum TensorDType: String, CaseIterable, Sendable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", i32 = "I32", u32 = "U32"
    case i64 = "I64", u64 = "U64"
    case f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64", c64 = "C64"
    case f8E4M3 = "F8_E4M3", f8E5M2 = "F8_E5M2", f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ", f8E5M2FNUZ = "F8_E5M2FNUZ"
    case f6E2M3 = "F6_E2M3", f6E3M2 = "F6_E3M2", f4 = "F4"

    /// The dtype spelled as in safetensors headers (case-sensitive, as the format is).
    public static func named(_ name: String) -> TensorDType? { TensorDType(rawValue: name) }

    /// The name used in safetensors headers.
    public var name: String { rawValue }

    /// Bits per element.
    public var bitWidth: Int {
        switch self {
        case .f4: return 4
        case .f6E2M3, .f6E3M2: return 6
        case .bool, .u8, .i8, .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .i64, .u64, .f64, .c64: return 64
        }
    }

    /// Bytes per element, or nil for the packed sub-byte types.
    public var byteWidth: Int? { bitWidth % 8 == 0 ? bitWidth / 8 : nil }

    /// Whether the elements are real floating-point numbers (complex C64 is not: it
    /// holds two F32 per element and cannot be cast to a real format).
    public var isFloatingPoint: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64, .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ,
             .f6E2M3, .f6E3M2, .f4:
            return true
        default:
            return false
        }
    }

    /// The alignment the reference writer sorts by (bytes; sub-byte types count as 1).
    public var alignment: Int { max(1, bitWidth / 8) }

    /// Bytes taken by `elements` values, or nil when the count overflows or a packed
    /// type does not fill a whole number of bytes.
    public func byteCount(elements: Int) -> Int? {
        let (bits, overflow) = elements.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}

/// The product of a shape's dimensions, or nil on overflow or a negative dimension.
public func elementCount(of shape: [Int]) -> Int? {
    var count = 1
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
        if overflow { return nil }
        count = product
    }
    return count
}

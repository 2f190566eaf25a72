/// Packing of the sub-byte safetensors dtypes (F4, F6_E2M3, F6_E3M2).
///
/// Convention used by preclab: element `i` occupies bits `[i·w, (i+1)·w)` of the
/// little-endian bit stream of the tensor's bytes (LSB first), so for F4 element 0 is
/// the low nibble of byte 0. Elsewhere in preclab codes live one per byte (in the low
/// bits), which is what these functions convert from and to.
public enum SubBytePacking {
    /// Packs `count` codes (one per byte, low `bitWidth` bits used) into
    /// `count × bitWidth / 8` bytes. `count × bitWidth` must be a multiple of 8.
    public static func pack(_ codes: UnsafeRawBufferPointer, count: Int, bitWidth: Int,
                            into packed: UnsafeMutableRawBufferPointer) {
        precondition(count * bitWidth % 8 == 0 && packed.count >= count * bitWidth / 8)
        let mask = UInt32((1 << bitWidth) - 1)
        var accumulator: UInt32 = 0
        var bits = 0
        var output = 0
        for index in 0..<count {
            accumulator |= (UInt32(codes[index]) & mask) << UInt32(bits)
            bits += bitWidth
            while bits >= 8 {
                packed[output] = UInt8(truncatingIfNeeded: accumulator)
                output += 1
                accumulator >>= 8
                bits -= 8
            }
        }
    }

    /// Unpacks `count` codes into one byte each.
    public static func unpack(_ packed: UnsafeRawBufferPointer, count: Int, bitWidth: Int,
                              into codes: UnsafeMutableRawBufferPointer) {
        precondition(packed.count * 8 >= count * bitWidth && codes.count >= count)
        let mask = UInt32((1 << bitWidth) - 1)
        var accumulator: UInt32 = 0
        var bits = 0
        var input = 0
        for index in 0..<count {
            while bits < bitWidth {
                accumulator |= UInt32(packed[input]) << UInt32(bits)
                input += 1
                bits += 8
            }
            codes[index] = UInt8(accumulator & mask)
            accumulator >>= UInt32(bitWidth)
            bits -= bitWidth
        }
    }
}

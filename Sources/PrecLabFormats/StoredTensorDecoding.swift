import PrecLabSupport

/// Decoding a stored tensor (little-endian codes, as in safetensors or npy files) to
/// fp32, for the commands that take base weights from a checkpoint.
public enum StoredTensorDecoding {
    /// The fp32 values of `count` elements stored as `dtypeName` (a safetensors dtype
    /// name such as "BF16", "F8_E4M3" or "F64", or any format name). F64 rounds to the
    /// nearest fp32, as `tensor.float()` does; every other float format decodes exactly.
    /// Packed sub-byte types (F6_*, F4) are not handled here.
    public static func floats(_ bytes: UnsafeRawBufferPointer, dtypeName: String, count: Int) throws -> [Float] {
        var values = [Float](repeating: 0, count: count)
        if dtypeName == "F64" {
            guard bytes.count == 8 * count else { throw sizeMismatch(bytes.count, count, dtypeName) }
            for index in 0..<count {
                values[index] = Float(Double(bitPattern: UInt64(littleEndian:
                    bytes.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))))
            }
            return values
        }
        let format = try FloatFormat.named(dtypeName)
        guard bytes.count == format.storageBytes * count else {
            throw sizeMismatch(bytes.count, count, dtypeName)
        }
        values.withUnsafeMutableBufferPointer { format.decode(bytes, into: $0) }
        return values
    }

    private static func sizeMismatch(_ byteCount: Int, _ count: Int, _ name: String) -> PrecLabError {
        .badData("\(byteCount) bytes cannot hold \(count) \(name) values")
    }
}

import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport

/// A tensor's elements as codes of the format a comparison is made in, shared by
/// checkpoint comparison and consistency.
///
/// A tensor already stored in that format is used in place (its mapped bytes, no copy);
/// any other floating-point dtype is converted once, rounding to nearest-even from the
/// exact stored value (fp32 and narrower through Float, F64 directly from Double, so
/// there is never a double rounding). Converting a narrower format up is exact.
public struct TensorCodes: @unchecked Sendable {
    public let count: Int
    public let bytesPerCode: Int
    /// Whether the stored dtype differed from the comparison format.
    public let converted: Bool
    private let mapped: UnsafeRawBufferPointer?
    private let owned: [UInt8]
    /// Keeps the mapping alive while the bytes are in use.
    private let owner: Checkpoint?

    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let mapped { return try withExtendedLifetime(owner) { try body(mapped) } }
        return try owned.withUnsafeBytes(body)
    }

    /// Why a stored dtype cannot be compared, or nil when it can.
    public static func unsupportedReason(_ dtype: TensorDType) -> String? {
        guard dtype.isFloatingPoint else { return "dtype \(dtype.name) is not a floating-point type" }
        guard dtype.byteWidth != nil else { return "packed dtype \(dtype.name) is not supported" }
        if dtype != .f64, (try? FloatFormat.named(dtype.name)) == nil {
            return "dtype \(dtype.name) has no matching format"
        }
        return nil
    }

    public static func load(_ checkpoint: Checkpoint, _ tensor: CheckpointTensor, as format: FloatFormat,
                     threads: Int) throws -> TensorCodes {
        let bytes = checkpoint.bytes(of: tensor)
        let count = tensor.info.elementCount
        let width = format.storageBytes
        if format.safetensorsName == tensor.dtype.name {
            return TensorCodes(count: count, bytesPerCode: width, converted: false, mapped: bytes, owned: [],
                               owner: checkpoint)
        }
        if let reason = unsupportedReason(tensor.dtype) {
            throw PrecLabError.badData(file: checkpoint.path, tensor: tensor.name, reason)
        }
        var codes = [UInt8](repeating: 0, count: count * width)
        if tensor.dtype == .f64 {
            for index in 0..<count {
                let value = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                var code = format.encode(value)
                for byte in 0..<width {
                    codes[index * width + byte] = UInt8(truncatingIfNeeded: code)
                    code >>= 8
                }
            }
        } else {
            let source = try FloatFormat.named(tensor.dtype.name)
            var floats = [Float](repeating: 0, count: count)
            floats.withUnsafeMutableBufferPointer { target in
                if tensor.dtype == .f32 {
                    for index in 0..<count {
                        target[index] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                    }
                } else {
                    source.decode(bytes, into: target, threads: threads)
                }
            }
            floats.withUnsafeBufferPointer { values in
                codes.withUnsafeMutableBytes { format.encode(values, into: $0, threads: threads) }
            }
        }
        return TensorCodes(count: count, bytesPerCode: width, converted: true, mapped: nil, owned: codes, owner: nil)
    }

    /// The decoded values as a float64 matrix (exact: every format here fits a Float).
    public func matrix(rows: Int, columns: Int, format: FloatFormat, threads: Int) -> Matrix {
        precondition(rows * columns == count)
        var floats = [Float](repeating: 0, count: count)
        floats.withUnsafeMutableBufferPointer { target in
            withBytes { format.decode($0, into: target, threads: threads) }
        }
        return floats.withUnsafeBufferPointer { values in
            Matrix(rows: rows, columns: columns, rowMajorElement: { Double(values[$0]) })
        }
    }

    /// Positions where the codes of `self` and `other` differ; `zeroSignBit` from
    /// `zeroSignBit(format:signedZeroChanges:)` (+0 -> -0 is no change by default).
    public func differingMask(_ other: TensorCodes, zeroSignBit: UInt64, threads: Int) -> BitMask {
        withBytes { a in
            other.withBytes { b in
                CodeComparison.differingCodesMask(a, b, bytesPerCode: bytesPerCode, zeroSignBit: zeroSignBit,
                                                  threads: threads)
            }
        }
    }

    public func differingCount(_ other: TensorCodes, zeroSignBit: UInt64, threads: Int) -> Int {
        withBytes { a in
            other.withBytes { b in
                CodeComparison.countDifferingCodes(a, b, bytesPerCode: bytesPerCode, zeroSignBit: zeroSignBit,
                                                   threads: threads)
            }
        }
    }
}

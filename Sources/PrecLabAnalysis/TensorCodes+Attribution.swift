import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport

/// What checkpoint comparison and consistency need from stored codes to tell precision
/// from structure (issue 12): the signed-zero rule, binade strata and half-ULPs.
extension TensorCodes {
    /// The sign bit that makes ±0 pairs equal in code comparisons, or 0 (bit
    /// inequality) when signed-zero changes count or the format has no -0.
    static func zeroSignBit(format: FloatFormat, signedZeroChanges: Bool) -> UInt64 {
        signedZeroChanges ? 0 : UInt64(format.negativeZeroBits ?? 0)
    }

    /// The binade strata of the stored codes (for the magnitude baselines).
    func strata(format: FloatFormat, threads: Int) -> MagnitudeStrata {
        var floats = [Float](repeating: 0, count: count)
        floats.withUnsafeMutableBufferPointer { target in
            withBytes { format.decode($0, into: target, threads: threads) }
        }
        return MagnitudeStrata(storedValues: floats.map(Double.init), minimumNormal: format.minNormal)
    }

    /// Half an ULP of each stored code (NaN for Inf/NaN codes).
    func halfULP(_ index: Int, format: FloatFormat) -> Double {
        withBytes { bytes in
            var code: UInt32 = 0
            for byte in 0..<bytesPerCode { code |= UInt32(bytes[index * bytesPerCode + byte]) << UInt32(8 * byte) }
            return format.decode(code).isFinite ? format.halfULP(ofBits: code) : .nan
        }
    }
}

/// Exact source values of a stored tensor (any float dtype, fp64 included), read in
/// place: the fp32 side of a comparison's precision-hidden changes.
struct SourceValues: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let dtype: TensorDType
    let format: FloatFormat?
    let owner: Checkpoint

    init(_ checkpoint: Checkpoint, _ tensor: CheckpointTensor) {
        bytes = checkpoint.bytes(of: tensor)
        dtype = tensor.dtype
        format = tensor.dtype == .f64 ? nil : try? FloatFormat.named(tensor.dtype.name)
        owner = checkpoint
    }

    /// Whether the dtype carries more bits than `format` (so storing in it can hide changes).
    static func isWider(_ dtype: TensorDType, than format: FloatFormat) -> Bool {
        if dtype == .f64 { return true }
        guard let source = try? FloatFormat.named(dtype.name) else { return false }
        return source.bitWidth > format.bitWidth
    }

    subscript(index: Int) -> Double {
        withExtendedLifetime(owner) {
            if dtype == .f64 { return Double(bitPattern: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
            let width = format!.storageBytes
            var code: UInt32 = 0
            for byte in 0..<width { code |= UInt32(bytes[index * width + byte]) << UInt32(8 * byte) }
            return format!.decode(code)
        }
    }
}

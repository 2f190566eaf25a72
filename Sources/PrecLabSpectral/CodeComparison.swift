import PrecLabSupport

/// Bit-equality scans of two tensors' stored codes (bf16, fp16, fp32, ...): the update
/// sparsity of [P] is the fraction of codes that are bit-for-bit equal.
///
/// Buffers may sit at any byte offset of a mapped file, so every load is unaligned.
/// Work is split into fixed chunks of `chunkCodes` codes; counts are integers, so the
/// result is exact and independent of the thread count.
public enum CodeComparison {
    /// Codes per parallel chunk (a multiple of 64 so mask chunks own whole words).
    public static let chunkCodes = 1 << 20

    /// The number of positions where the codes of `a` and `b` differ. Both buffers hold
    /// the same number of codes of `bytesPerCode` bytes (1, 2, 4 or 8).
    public static func countDifferingCodes(
        _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, bytesPerCode: Int,
        threads: Int = ParallelChunks.threadCount
    ) -> Int {
        precondition([1, 2, 4, 8].contains(bytesPerCode), "codes must be 1, 2, 4 or 8 bytes")
        precondition(a.count == b.count && a.count % bytesPerCode == 0, "buffers differ in size")
        let codes = a.count / bytesPerCode
        guard codes > 0 else { return 0 }
        let pa = UnsafeSendable(a.baseAddress!), pb = UnsafeSendable(b.baseAddress!)
        let counts = ParallelChunks.map(count: codes, chunkSize: chunkCodes, threads: threads) { range in
            let offset = range.lowerBound * bytesPerCode
            let first = pa.value + offset, second = pb.value + offset
            switch bytesPerCode {
            case 1: return countDiffering(first, second, codes: range.count, lanes: SIMD64<UInt8>.self)
            case 2: return countDiffering(first, second, codes: range.count, lanes: SIMD32<UInt16>.self)
            case 4: return countDiffering(first, second, codes: range.count, lanes: SIMD16<UInt32>.self)
            default: return countDiffering(first, second, codes: range.count, lanes: SIMD8<UInt64>.self)
            }
        }
        return counts.reduce(0, +)
    }

    /// The update mask: bit p set where code p of `a` differs from code p of `b`.
    public static func differingCodesMask(
        _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, bytesPerCode: Int,
        threads: Int = ParallelChunks.threadCount
    ) -> BitMask {
        precondition([1, 2, 4, 8].contains(bytesPerCode), "codes must be 1, 2, 4 or 8 bytes")
        precondition(a.count == b.count && a.count % bytesPerCode == 0, "buffers differ in size")
        let codes = a.count / bytesPerCode
        var words = [UInt64](repeating: 0, count: (codes + 63) / 64)
        guard codes > 0 else { return BitMask(count: 0) }
        let pa = UnsafeSendable(a.baseAddress!), pb = UnsafeSendable(b.baseAddress!)
        words.withUnsafeMutableBufferPointer { target in
            let out = UnsafeSendable(target.baseAddress!)
            ParallelChunks.forEach(count: codes, chunkSize: chunkCodes, threads: threads) { range in
                var position = range.lowerBound
                while position < range.upperBound {
                    let inWord = min(64, range.upperBound - position)
                    var word: UInt64 = 0
                    let offset = position * bytesPerCode
                    for lane in 0..<inWord {
                        let byteOffset = offset + lane * bytesPerCode
                        if !codesEqual(pa.value + byteOffset, pb.value + byteOffset, bytesPerCode) {
                            word |= 1 << UInt64(lane)
                        }
                    }
                    out.value[position >> 6] = word
                    position += inWord
                }
            }
        }
        return BitMask(count: codes, words: words)
    }

    @inline(__always)
    static func codesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ bytes: Int) -> Bool {
        switch bytes {
        case 1: return a.load(as: UInt8.self) == b.load(as: UInt8.self)
        case 2: return a.loadUnaligned(as: UInt16.self) == b.loadUnaligned(as: UInt16.self)
        case 4: return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
        default: return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
        }
    }

    /// Counts differing lanes a vector at a time; per-lane counters are folded into
    /// the total before they can wrap (every 255 vectors, the limit of 8-bit lanes).
    @inline(__always)
    static func countDiffering<V: SIMD>(
        _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, codes: Int, lanes: V.Type
    ) -> Int where V.Scalar: FixedWidthInteger & UnsignedInteger {
        let width = V.scalarCount
        let stride = MemoryLayout<V.Scalar>.size
        let vectors = codes / width
        var total = 0
        var vector = 0
        let one = V(repeating: 1), zero = V(repeating: 0)
        while vector < vectors {
            let blockEnd = min(vectors, vector + 255)
            var counters = zero
            while vector < blockEnd {
                let offset = vector * width * stride
                let x = a.loadUnaligned(fromByteOffset: offset, as: V.self)
                let y = b.loadUnaligned(fromByteOffset: offset, as: V.self)
                counters &+= one.replacing(with: zero, where: x .== y)
                vector += 1
            }
            for lane in 0..<width { total += Int(counters[lane]) }
        }
        for code in (vectors * width)..<codes {
            let offset = code * stride
            if a.loadUnaligned(fromByteOffset: offset, as: V.Scalar.self)
                != b.loadUnaligned(fromByteOffset: offset, as: V.Scalar.self) { total += 1 }
        }
        return total
    }
}

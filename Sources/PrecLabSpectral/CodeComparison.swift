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
        _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, bytesPerCode: Int, zeroSignBit: UInt64 = 0,
        threads: Int = ParallelChunks.threadCount
    ) -> Int {
        precondition([1, 2, 4, 8].contains(bytesPerCode), "codes must be 1, 2, 4 or 8 bytes")
        precondition(a.count == b.count && a.count % bytesPerCode == 0, "buffers differ in size")
        let codes = a.count / bytesPerCode
        guard codes > 0 else { return 0 }
        let pa = UnsafeSendable(a.baseAddress!), pb = UnsafeSendable(b.baseAddress!)
        let counts = ParallelChunks.map(count: codes, chunkSize: chunkCodes, threads: threads) { range in
            let offset = range.lowerBound * bytesPerCode
            return countDiffering(pa.value + offset, pb.value + offset, codes: range.count, bytesPerCode: bytesPerCode,
                                  zeroSignBit: zeroSignBit)
        }
        return counts.reduce(0, +)
    }

    /// The update mask: bit p set where code p of `a` differs from code p of `b`.
    ///
    /// `zeroSignBit` (here and in `countDifferingCodes`) is the sign bit of a code in
    /// formats with a negative zero: when nonzero, codes that are both zeros (+0 and -0,
    /// every bit but that one clear) count as equal, as the paper's Def. 2.1 counts
    /// "both zero" as unchanged. 0 compares bits only. Never pass the sign of a format
    /// whose sign-only code is not -0 (fnuz formats: it is NaN).
    public static func differingCodesMask(
        _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, bytesPerCode: Int, zeroSignBit: UInt64 = 0,
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
                fillMaskWords(pa.value, pb.value, codes: range, bytesPerCode: bytesPerCode, zeroSignBit: zeroSignBit,
                              into: out.value)
            }
        }
        return BitMask(count: codes, words: words)
    }

    /// Mask words for the codes in `range` (which starts at a multiple of 64): each
    /// 64-bit input word yields one flag per code by the SWAR test of
    /// `countDiffering`, and the flags are packed in code order.
    static func fillMaskWords(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, codes range: Range<Int>,
                              bytesPerCode: Int, zeroSignBit: UInt64 = 0, into out: UnsafeMutablePointer<UInt64>) {
        let fieldBits = 8 * bytesPerCode
        let fields = 64 / fieldBits
        var top: UInt64 = 0
        for field in 0..<fields { top |= 1 << UInt64(field * fieldBits + fieldBits - 1) }
        let low = ~top
        let zeros = ZeroSignMask(zeroSignBit: zeroSignBit, fieldBits: fieldBits)
        var position = range.lowerBound
        if bytesPerCode == 2 {
            // bf16/fp16: the four flags of an input word sit at bits 15, 31, 47, 63;
            // shifted down to 0, 16, 32, 48 and multiplied by 1 + 2^15 + 2^30 + 2^45
            // they land, without carries, at bits 45...48 in code order.
            while position + 64 <= range.upperBound {
                var maskWord: UInt64 = 0
                let base = position &* 2
                for inputWord in 0..<16 {
                    let o = base &+ inputWord &* 8
                    let x = a.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                    let y = b.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                    let d = x ^ y
                    var top15 = (((d & low) &+ low) | d) & top
                    if zeros.active { top15 &= zeros.notBothZero(x, y, low: low, top: top) }
                    let flags = top15 &>> 15
                    let nibble = ((flags &* 0x0000_2000_4000_8001) &>> 45) & 0xF
                    maskWord |= nibble &<< UInt64(4 * inputWord)
                }
                out[position >> 6] = maskWord
                position += 64
            }
        }
        // Whole mask words: 64 codes = 8 * bytesPerCode input words.
        while position + 64 <= range.upperBound {
            var maskWord: UInt64 = 0
            let base = position * bytesPerCode
            var bit: UInt64 = 0
            for inputWord in 0..<(8 * bytesPerCode) {
                let o = base &+ inputWord &* 8
                let x = a.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                let y = b.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                let d = x ^ y
                var flags = (((d & low) &+ low) | d) & top
                if zeros.active { flags &= zeros.notBothZero(x, y, low: low, top: top) }
                for field in 0..<fields {
                    maskWord |= ((flags &>> UInt64(field * fieldBits + fieldBits - 1)) & 1) &<< bit
                    bit &+= 1
                }
            }
            out[position >> 6] = maskWord
            position += 64
        }
        // The last partial word, code by code.
        if position < range.upperBound {
            var maskWord: UInt64 = 0
            for lane in 0..<(range.upperBound - position) {
                let o = (position + lane) * bytesPerCode
                if !codesEqual(a + o, b + o, bytesPerCode, zeroSignBit: zeroSignBit) { maskWord |= 1 << UInt64(lane) }
            }
            out[position >> 6] = maskWord
        }
    }

    @inline(__always)
    static func codesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ bytes: Int, zeroSignBit: UInt64 = 0) -> Bool {
        let x: UInt64, y: UInt64
        switch bytes {
        case 1: x = UInt64(a.load(as: UInt8.self)); y = UInt64(b.load(as: UInt8.self))
        case 2: x = UInt64(a.loadUnaligned(as: UInt16.self)); y = UInt64(b.loadUnaligned(as: UInt16.self))
        case 4: x = UInt64(a.loadUnaligned(as: UInt32.self)); y = UInt64(b.loadUnaligned(as: UInt32.self))
        default: x = a.loadUnaligned(as: UInt64.self); y = b.loadUnaligned(as: UInt64.self)
        }
        if x == y { return true }
        return zeroSignBit != 0 && (x | y) & ~zeroSignBit == 0
    }

    /// Counts differing codes eight bytes at a time, for any alignment (SWAR: SIMD
    /// within a register). With d = x ^ y, the top bit of each code's field of
    /// ((d & low) + low) | d is set exactly when the field of d is nonzero, where `low`
    /// has every field's top bit clear and all other bits set; the sum cannot carry
    /// across fields. Shifted down, those bits add 1 to per-field counters, which are
    /// summed every `block` words, before a field could overflow (no popcount in the
    /// loop: the baseline x86-64 target has no POPCNT instruction).
    ///
    /// Measured: `loadUnaligned` of a SIMD vector type compiles to element-wise code
    /// here (0.1 GB/s), while unaligned UInt64 loads run at memory speed.
    static func countDiffering(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, codes: Int, bytesPerCode: Int,
                               zeroSignBit: UInt64 = 0) -> Int {
        let fieldBits = 8 * bytesPerCode
        let fields = 64 / fieldBits
        var top: UInt64 = 0
        for field in 0..<fields { top |= 1 << UInt64(field * fieldBits + fieldBits - 1) }
        let low = ~top
        let shift = UInt64(fieldBits - 1)
        let fieldMask: UInt64 = fieldBits == 64 ? ~0 : (1 << UInt64(fieldBits)) - 1
        // Each of the 4 accumulators gains at most 1 per field per step.
        let block = fieldBits == 8 ? 255 : 4096
        let words = codes * bytesPerCode / 8
        var total = 0
        var word = 0
        let zeros = ZeroSignMask(zeroSignBit: zeroSignBit, fieldBits: fieldBits)
        @inline(__always) func flag(_ offset: Int) -> UInt64 {
            let x = a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let y = b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let d = x ^ y
            var flags = (((d & low) &+ low) | d) & top
            if zeros.active { flags &= zeros.notBothZero(x, y, low: low, top: top) }
            return flags &>> shift
        }
        while word + 4 <= words {
            let steps = min(block, (words - word) / 4)
            var c0: UInt64 = 0, c1: UInt64 = 0, c2: UInt64 = 0, c3: UInt64 = 0
            for _ in 0..<steps {
                let o = word &* 8
                c0 &+= flag(o)
                c1 &+= flag(o &+ 8)
                c2 &+= flag(o &+ 16)
                c3 &+= flag(o &+ 24)
                word &+= 4
            }
            for field in 0..<fields {
                let at = UInt64(field * fieldBits)
                total &+= Int((c0 &>> at) & fieldMask) &+ Int((c1 &>> at) & fieldMask)
                    &+ Int((c2 &>> at) & fieldMask) &+ Int((c3 &>> at) & fieldMask)
            }
        }
        while word < words {
            total &+= flag(word &* 8).nonzeroBitCount
            word &+= 1
        }
        // Codes in the last partial word.
        var code = words * 8 / bytesPerCode
        while code < codes {
            let o = code * bytesPerCode
            if !codesEqual(a + o, b + o, bytesPerCode, zeroSignBit: zeroSignBit) { total += 1 }
            code += 1
        }
        return total
    }
}

/// The "both codes are zeros" test of the signed-zero rule, for every code field of a
/// 64-bit word at once: the magnitude bits (all but the sign) of x | y are zero exactly
/// when both codes are ±0.
struct ZeroSignMask {
    /// Whether ±0 pairs count as equal (a nonzero sign bit was given).
    let active: Bool
    /// The magnitude bits of every field.
    let magnitude: UInt64

    init(zeroSignBit: UInt64, fieldBits: Int) {
        active = zeroSignBit != 0
        let fieldMask: UInt64 = fieldBits == 64 ? ~0 : (1 << UInt64(fieldBits)) - 1
        precondition(zeroSignBit & ~fieldMask == 0, "the sign bit lies outside the code")
        var magnitude: UInt64 = 0
        for field in 0..<(64 / fieldBits) { magnitude |= (fieldMask & ~zeroSignBit) << UInt64(field * fieldBits) }
        self.magnitude = magnitude
    }

    /// The top bit of each field set where the two codes are not both zeros.
    @inline(__always) func notBothZero(_ x: UInt64, _ y: UInt64, low: UInt64, top: UInt64) -> UInt64 {
        let t = (x | y) & magnitude
        return (((t & low) &+ low) | t) & top
    }
}

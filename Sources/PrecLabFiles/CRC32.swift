import CPrecLabKernels
import PrecLabSupport

/// CRC-32 of the ISO-HDLC / zlib family (reflected polynomial 0xEDB88320, initial value
/// and final xor 0xFFFFFFFF): the value of Python's `zlib.crc32`.
///
/// Speed comes from folding with carry-less multiplication (`preclab_crc32_fold`, in C,
/// when the CPU has PCLMULQDQ: checked at run time) or else slicing-by-16 (sixteen
/// 256-entry tables, 16 bytes per step), and, for large buffers, from computing
/// fixed-size pieces on several threads and joining them with `combine` (zlib's GF(2)
/// matrix method). The joined value is the CRC of the
/// whole buffer by construction, so it does not depend on the thread count.
public enum CRC32 {
    /// `tables[k][b]`: the CRC contribution of byte `b` followed by `k` zero bytes.
    static let tables: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 16 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            table[byte] = crc
        }
        for slice in 1..<16 {
            for byte in 0..<256 {
                let previous = table[(slice - 1) * 256 + byte]
                table[slice * 256 + byte] = (previous >> 8) ^ table[Int(previous & 0xFF)]
            }
        }
        return table
    }()

    /// Buffers at least this large are split across threads.
    public static let parallelThreshold = 1 << 21
    /// Size of the pieces of a parallel CRC (fixed, independent of the thread count).
    static let pieceSize = 1 << 20

    /// The CRC of `bytes`, continuing from `crc` (the CRC of everything before them;
    /// 0 for a fresh start, as in `zlib.crc32(data, crc)`).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0,
                                threads: Int = ParallelChunks.threadCount) -> UInt32 {
        if bytes.count < parallelThreshold || threads <= 1 {
            return update(crc, bytes)
        }
        let shared = UnsafeSendable(bytes)
        let pieces = ParallelChunks.map(count: bytes.count, chunkSize: pieceSize, threads: threads) { range in
            update(0, UnsafeRawBufferPointer(rebasing: shared.value[range]))
        }
        return join(pieces, continuing: crc, totalLength: bytes.count)
    }

    /// The CRC of consecutive pieces of `pieceSize` bytes (the last may be shorter, the
    /// whole `totalLength` long), from their CRCs, continuing from `crc`: one operator
    /// for all the whole pieces.
    static func join(_ pieces: [UInt32], continuing crc: UInt32, totalLength: Int) -> UInt32 {
        let whole = Appender(length: pieceSize)
        var result = crc
        for (index, piece) in pieces.enumerated() {
            let length = min(pieceSize, totalLength - index * pieceSize)
            result = length == pieceSize ? whole.combine(result, piece) : combine(result, piece, length: length)
        }
        return result
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Whether `update` folds with carry-less multiplication on this CPU.
    public static let foldingAvailable = preclab_crc32_folding_available() != 0

    /// Buffers at least this long are folded (when the CPU can).
    static let foldingThreshold = 64

    /// Single-threaded: folding for the whole 16-byte blocks of a long buffer when the
    /// CPU can, slicing-by-16 for the rest.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard foldingAvailable, bytes.count >= foldingThreshold, let start = bytes.baseAddress else {
            return updateWithTables(crc, bytes)
        }
        let folded = bytes.count & ~15
        let state = preclab_crc32_fold(~crc, start.assumingMemoryBound(to: UInt8.self), folded)
        return updateWithTables(~state, UnsafeRawBufferPointer(rebasing: bytes[folded...]))
    }

    /// Slicing-by-16 alone (the tests and the bench compare the folding with it).
    public static func updateWithTables(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var value = ~crc
        guard var pointer = bytes.baseAddress else { return crc }
        var remaining = bytes.count
        tables.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            while remaining >= 16 {
                let word0 = UInt32(littleEndian: pointer.loadUnaligned(as: UInt32.self)) ^ value
                let word1 = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let word2 = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                let word3 = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
                value = t[15 * 256 + Int(word0 & 0xFF)] ^ t[14 * 256 + Int((word0 >> 8) & 0xFF)]
                    ^ t[13 * 256 + Int((word0 >> 16) & 0xFF)] ^ t[12 * 256 + Int(word0 >> 24)]
                    ^ t[11 * 256 + Int(word1 & 0xFF)] ^ t[10 * 256 + Int((word1 >> 8) & 0xFF)]
                    ^ t[9 * 256 + Int((word1 >> 16) & 0xFF)] ^ t[8 * 256 + Int(word1 >> 24)]
                    ^ t[7 * 256 + Int(word2 & 0xFF)] ^ t[6 * 256 + Int((word2 >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((word2 >> 16) & 0xFF)] ^ t[4 * 256 + Int(word2 >> 24)]
                    ^ t[3 * 256 + Int(word3 & 0xFF)] ^ t[2 * 256 + Int((word3 >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((word3 >> 16) & 0xFF)] ^ t[Int(word3 >> 24)]
                pointer += 16
                remaining -= 16
            }
            while remaining > 0 {
                value = (value >> 8) ^ t[Int((value ^ UInt32(pointer.load(as: UInt8.self))) & 0xFF)]
                pointer += 1
                remaining -= 1
            }
        }
        return ~value
    }

    /// The CRC of A followed by B, given crc(A), crc(B) and B's length (zlib's
    /// crc32_combine): appending `length` zero bytes to A is a linear map over GF(2)
    /// (`Appender`), built by repeated squaring of the one-zero-bit operator.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, length: Int) -> UInt32 {
        guard length > 0 else { return crcA }
        return Appender(length: length).combine(crcA, crcB)
    }

    /// The map that appends `length` zero bytes to a CRC, built once: joining many
    /// pieces of one length then costs one 32 x 32 product over GF(2) each. It is
    /// composed of powers of the one-zero-bit operator, found by repeated squaring (the
    /// powers commute).
    public struct Appender: Sendable {
        public let length: Int
        /// Column i: the image of the CRC with only bit i set.
        private let columns: [UInt32]

        public init(length: Int) {
            self.length = length
            var odd = [UInt32](repeating: 0, count: 32)
            var even = [UInt32](repeating: 0, count: 32)
            odd[0] = 0xEDB8_8320  // operator for one zero bit
            var row: UInt32 = 1
            for n in 1..<32 { odd[n] = row; row <<= 1 }
            CRC32.square(&even, odd)  // two zero bits
            CRC32.square(&odd, even)  // four zero bits
            var result = (0..<32).map { UInt32(1) << UInt32($0) }  // no zero bytes: the identity
            func compose(_ power: [UInt32]) { result = result.map { CRC32.times(power, $0) } }
            var remaining = length
            while remaining != 0 {
                CRC32.square(&even, odd)  // first pass: one zero byte
                if remaining & 1 != 0 { compose(even) }
                remaining >>= 1
                if remaining == 0 { break }
                CRC32.square(&odd, even)
                if remaining & 1 != 0 { compose(odd) }
                remaining >>= 1
            }
            columns = result
        }

        /// The CRC of A followed by B, from crc(A) and crc(B) (B `length` bytes long).
        public func combine(_ crcA: UInt32, _ crcB: UInt32) -> UInt32 { CRC32.times(columns, crcA) ^ crcB }
    }

    fileprivate static func times(_ matrix: [UInt32], _ vector: UInt32) -> UInt32 {
        var sum: UInt32 = 0
        var vector = vector
        var index = 0
        while vector != 0 {
            if vector & 1 != 0 { sum ^= matrix[index] }
            vector >>= 1
            index += 1
        }
        return sum
    }

    fileprivate static func square(_ result: inout [UInt32], _ matrix: [UInt32]) {
        for n in 0..<32 { result[n] = times(matrix, matrix[n]) }
    }
}

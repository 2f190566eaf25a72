import PrecLabSupport

/// A raw DEFLATE decoder (RFC 1951), for the deflated entries of `.npz` archives.
///
/// Foundation on Linux has no public inflate, and the package takes no dependencies,
/// so this is a small table-driven decoder: each Huffman code becomes a lookup table
/// indexed by the next `maxLength` input bits (bit-reversed, as DEFLATE packs codes).
/// Output is capped at `expectedSize` so a hostile archive cannot balloon memory.
public enum Inflate {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decompresses `input`, which must produce exactly `expectedSize` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        var decoder = Decoder(input: input, limit: expectedSize)
        try decoder.run()
        guard decoder.output.count == expectedSize else {
            throw Failure(description: "inflated to \(decoder.output.count) bytes, expected \(expectedSize)")
        }
        return decoder.output
    }

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                     4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
                                      513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
                                       9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// The order in which code-length code lengths are sent.
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    /// A canonical Huffman code as a lookup table: entry = symbol << 4 | code length,
    /// 0 for bit patterns no code starts with.
    struct HuffmanTable {
        var entries: [UInt32]
        var maxLength: Int

        init(lengths: [Int]) throws {
            maxLength = max(1, lengths.max() ?? 0)
            var counts = [Int](repeating: 0, count: 16)
            for length in lengths where length > 0 { counts[length] += 1 }
            // Over-subscribed codes cannot be decoded unambiguously.
            var available = 1
            for length in 1...15 {
                available = available * 2 - counts[length]
                if available < 0 { throw Failure(description: "over-subscribed Huffman code") }
            }
            var nextCode = [Int](repeating: 0, count: 16)
            var code = 0
            for length in 1..<16 {
                nextCode[length] = code
                code = (code + counts[length]) << 1
            }
            entries = [UInt32](repeating: 0, count: 1 << maxLength)
            for (symbol, length) in lengths.enumerated() where length > 0 {
                let assigned = nextCode[length]
                nextCode[length] += 1
                var reversed = 0
                for bit in 0..<length where assigned & (1 << (length - 1 - bit)) != 0 { reversed |= 1 << bit }
                let entry = UInt32(symbol) << 4 | UInt32(length)
                var index = reversed
                while index < entries.count {
                    entries[index] = entry
                    index += 1 << length
                }
            }
        }
    }

    struct Decoder {
        let input: UnsafeRawBufferPointer
        let limit: Int
        var position = 0
        var bitBuffer: UInt64 = 0
        var bitCount = 0
        /// Bits appended past the end of input (as zeros) so peeks never run dry.
        var phantomBits = 0
        var output: [UInt8] = []

        init(input: UnsafeRawBufferPointer, limit: Int) {
            self.input = input
            self.limit = limit
            output.reserveCapacity(limit)
        }

        mutating func refill() {
            while bitCount <= 56 {
                if position < input.count {
                    bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
                    position += 1
                } else {
                    phantomBits += 8
                }
                bitCount += 8
            }
        }

        mutating func bits(_ count: Int) throws -> Int {
            if count == 0 { return 0 }
            if bitCount < count { refill() }
            let value = Int(bitBuffer & ((1 << UInt64(count)) - 1))
            try consume(count)
            return value
        }

        mutating func consume(_ count: Int) throws {
            bitBuffer >>= UInt64(count)
            bitCount -= count
            if phantomBits > bitCount { throw Failure(description: "compressed data ends early") }
        }

        mutating func decode(_ table: HuffmanTable) throws -> Int {
            if bitCount < table.maxLength { refill() }
            let entry = table.entries[Int(bitBuffer & ((1 << UInt64(table.maxLength)) - 1))]
            let length = Int(entry & 0xF)
            guard length > 0 else { throw Failure(description: "invalid Huffman code") }
            try consume(length)
            return Int(entry >> 4)
        }

        mutating func run() throws {
            var last = false
            while !last {
                last = try bits(1) == 1
                switch try bits(2) {
                case 0: try storedBlock()
                case 1: try compressedBlock(try Inflate.fixedTables)
                case 2: try compressedBlock(try dynamicTables())
                default: throw Failure(description: "invalid block type 3")
                }
            }
        }

        mutating func storedBlock() throws {
            // Drop to a byte boundary, then LEN and its complement.
            try consume(bitCount % 8)
            let length = try bits(16)
            let complement = try bits(16)
            guard length == (~complement & 0xFFFF) else { throw Failure(description: "stored block length check failed") }
            guard output.count + length <= limit else { throw Failure(description: "output larger than the expected size") }
            for _ in 0..<length { output.append(UInt8(try bits(8))) }
        }

        mutating func dynamicTables() throws -> (HuffmanTable, HuffmanTable) {
            let literalCount = try bits(5) + 257
            let distanceCount = try bits(5) + 1
            let codeLengthCount = try bits(4) + 4
            guard literalCount <= 286, distanceCount <= 30 else { throw Failure(description: "too many codes") }
            var codeLengthLengths = [Int](repeating: 0, count: 19)
            for index in 0..<codeLengthCount { codeLengthLengths[Inflate.codeLengthOrder[index]] = try bits(3) }
            let codeLengthTable = try HuffmanTable(lengths: codeLengthLengths)
            var lengths: [Int] = []
            while lengths.count < literalCount + distanceCount {
                let symbol = try decode(codeLengthTable)
                switch symbol {
                case 0...15: lengths.append(symbol)
                case 16:
                    guard let previous = lengths.last else { throw Failure(description: "repeat with no previous length") }
                    lengths += Array(repeating: previous, count: 3 + (try bits(2)))
                case 17: lengths += Array(repeating: 0, count: 3 + (try bits(3)))
                default: lengths += Array(repeating: 0, count: 11 + (try bits(7)))
                }
            }
            guard lengths.count == literalCount + distanceCount else { throw Failure(description: "code lengths overrun") }
            guard lengths[256] > 0 else { throw Failure(description: "no end-of-block code") }
            return (try HuffmanTable(lengths: Array(lengths[..<literalCount])),
                    try HuffmanTable(lengths: Array(lengths[literalCount...])))
        }

        mutating func compressedBlock(_ tables: (HuffmanTable, HuffmanTable)) throws {
            let (literals, distances) = tables
            while true {
                let symbol = try decode(literals)
                if symbol < 256 {
                    guard output.count < limit else { throw Failure(description: "output larger than the expected size") }
                    output.append(UInt8(symbol))
                    continue
                }
                if symbol == 256 { return }
                let lengthIndex = symbol - 257
                guard lengthIndex < 29 else { throw Failure(description: "invalid length symbol") }
                let length = Inflate.lengthBase[lengthIndex] + (try bits(Inflate.lengthExtra[lengthIndex]))
                let distanceSymbol = try decode(distances)
                guard distanceSymbol < 30 else { throw Failure(description: "invalid distance symbol") }
                let distance = Inflate.distanceBase[distanceSymbol] + (try bits(Inflate.distanceExtra[distanceSymbol]))
                guard distance <= output.count else { throw Failure(description: "distance reaches before the start") }
                guard output.count + length <= limit else { throw Failure(description: "output larger than the expected size") }
                let start = output.count - distance
                for offset in 0..<length { output.append(output[start + offset]) }
            }
        }
    }

    static var fixedTables: (HuffmanTable, HuffmanTable) {
        get throws {
            var lengths = [Int](repeating: 8, count: 288)
            for symbol in 144..<256 { lengths[symbol] = 9 }
            for symbol in 256..<280 { lengths[symbol] = 7 }
            return (try HuffmanTable(lengths: lengths), try HuffmanTable(lengths: [Int](repeating: 5, count: 30)))
        }
    }
}

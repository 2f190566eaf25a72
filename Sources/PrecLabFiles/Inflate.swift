import PrecLabSupport

/// A raw DEFLATE decoder (RFC 1951), for the deflated entries of `.npz` archives.
///
/// Foundation on Linux has no public inflate, and the package takes no dependencies,
/// so this is a small table-driven decoder: each Huffman code becomes a lookup table
/// indexed by the next `maxLength` input bits (bit-reversed, as DEFLATE packs codes).
///
/// Output never grows past the size the archive declares, and it goes to one of two
/// places, so that a hostile archive cannot balloon memory:
/// - `decompress(_:into:)`: straight into one caller buffer of exactly the declared
///   size (the data is needed; nothing else is allocated);
/// - `stream(_:expectedSize:_:)`: through a fixed window of `streamingWindow` bytes
///   handed out in pieces (a check or a summary; memory independent of the size).
public enum Inflate {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Bytes of output memory the streaming pass holds: the 32 KiB DEFLATE history plus
    /// the pieces handed out.
    public static let streamingWindow = 256 << 10
    /// DEFLATE back-references reach at most this far.
    static let historySize = 32 << 10

    /// Decompresses `input`, which must produce exactly `expectedSize` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        try checkRatio(input, expectedSize)
        return try [UInt8](unsafeUninitializedCapacity: max(1, expectedSize)) { buffer, initialized in
            try decompress(input, into: UnsafeMutableRawBufferPointer(
                start: buffer.baseAddress, count: expectedSize))
            initialized = expectedSize
        }
    }

    /// Decompresses `input` into `output`, which it must fill exactly.
    public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try checkRatio(input, output.count)
        // An empty output still needs a valid address for the decoder.
        let placeholder = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        defer { placeholder.deallocate() }
        let base = output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? placeholder
        var decoder = Decoder(input: input, limit: output.count, window: base, capacity: output.count,
                              sliding: false, emit: nil)
        try decoder.run()
        guard decoder.produced == output.count else {
            throw Failure(description: "inflated to \(decoder.produced) bytes, expected \(output.count)")
        }
    }

    /// Decompresses `input`, which must produce exactly `expectedSize` bytes, handing the
    /// output to `body` in order, in pieces of at most `streamingWindow` bytes. Memory
    /// used does not depend on `expectedSize`.
    public static func stream(_ input: UnsafeRawBufferPointer, expectedSize: Int,
                              _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try checkRatio(input, expectedSize)
        let window = UnsafeMutablePointer<UInt8>.allocate(capacity: streamingWindow)
        defer { window.deallocate() }
        try withoutActuallyEscaping(body) { body in
            var decoder = Decoder(input: input, limit: expectedSize, window: window, capacity: streamingWindow,
                                  sliding: true, emit: body)
            try decoder.run()
            try decoder.flush()
            guard decoder.produced == expectedSize else {
                throw Failure(description: "inflated to \(decoder.produced) bytes, expected \(expectedSize)")
            }
        }
    }

    /// DEFLATE expands at most 1032:1 (258-byte matches in under two bits each).
    static func checkRatio(_ input: UnsafeRawBufferPointer, _ expectedSize: Int) throws {
        guard expectedSize >= 0, expectedSize <= input.count * 1032 + 64 else {
            throw Failure(description: "claims \(expectedSize) bytes from \(input.count) compressed bytes, more than DEFLATE can produce")
        }
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

    /// The decoder state. Output goes to `window[0..<capacity]`; in sliding mode a full
    /// window is handed to `emit` and all but the last `historySize` bytes are dropped.
    struct Decoder {
        let input: UnsafeRawBufferPointer
        let limit: Int
        var position = 0
        var bitBuffer: UInt64 = 0
        var bitCount = 0
        /// Bits appended past the end of input (as zeros) so peeks never run dry.
        var phantomBits = 0
        let window: UnsafeMutablePointer<UInt8>
        let capacity: Int
        let sliding: Bool
        let emit: ((UnsafeRawBufferPointer) throws -> Void)?
        /// Bytes held in `window`.
        var count = 0
        /// Bytes of `window` already handed to `emit`.
        var emitted = 0
        /// Bytes produced so far (all of them, emitted or not).
        var produced = 0

        init(input: UnsafeRawBufferPointer, limit: Int, window: UnsafeMutablePointer<UInt8>, capacity: Int,
             sliding: Bool, emit: ((UnsafeRawBufferPointer) throws -> Void)?) {
            self.input = input
            self.limit = limit
            self.window = window
            self.capacity = capacity
            self.sliding = sliding
            self.emit = emit
        }

        /// Makes room for `length` more bytes (at most 258) and checks the size limit.
        @inline(__always)
        mutating func reserve(_ length: Int) throws {
            guard produced + length <= limit else { throw Failure(description: "output larger than the expected size") }
            if count + length > capacity { try slide() }
        }

        /// Hands out the unemitted bytes and keeps only the history.
        mutating func slide() throws {
            guard sliding else { throw Failure(description: "output larger than the expected size") }
            try flush()
            let keep = min(count, Inflate.historySize)
            (window).update(from: window + (count - keep), count: keep)
            count = keep
            emitted = keep
        }

        /// Hands the bytes not yet emitted to `emit`.
        mutating func flush() throws {
            if let emit, count > emitted {
                try emit(UnsafeRawBufferPointer(start: window + emitted, count: count - emitted))
            }
            emitted = count
        }

        @inline(__always)
        mutating func append(_ byte: UInt8) {
            window[count] = byte
            count += 1
            produced += 1
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
            guard produced + length <= limit else { throw Failure(description: "output larger than the expected size") }
            var remaining = length
            while remaining > 0 {
                let piece = min(remaining, 258)
                try reserve(piece)
                for _ in 0..<piece { append(UInt8(try bits(8))) }
                remaining -= piece
            }
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
                    try reserve(1)
                    append(UInt8(symbol))
                    continue
                }
                if symbol == 256 { return }
                let lengthIndex = symbol - 257
                guard lengthIndex < 29 else { throw Failure(description: "invalid length symbol") }
                let length = Inflate.lengthBase[lengthIndex] + (try bits(Inflate.lengthExtra[lengthIndex]))
                let distanceSymbol = try decode(distances)
                guard distanceSymbol < 30 else { throw Failure(description: "invalid distance symbol") }
                let distance = Inflate.distanceBase[distanceSymbol] + (try bits(Inflate.distanceExtra[distanceSymbol]))
                guard distance <= produced else { throw Failure(description: "distance reaches before the start") }
                try reserve(length)
                // After `reserve` the window holds at least the last historySize bytes.
                let source = window + (count - distance)
                let destination = window + count
                if distance >= length {
                    destination.update(from: source, count: length)
                } else if distance == 1 {
                    destination.update(repeating: source.pointee, count: length)
                } else {
                    for offset in 0..<length { destination[offset] = source[offset] }
                }
                count += length
                produced += length
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

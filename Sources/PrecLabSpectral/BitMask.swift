/// A set of positions 0..<count stored as bits in 64-bit words (bit `i % 64` of word
/// `i / 64`). Positions of a matrix mask are row-major indices `i * columns + j`.
/// Bits past `count` in the last word are always zero, so counts are plain popcounts.
public struct BitMask: Sendable, Equatable {
    public let count: Int
    public private(set) var words: [UInt64]

    /// An empty mask over `count` positions.
    public init(count: Int) {
        precondition(count >= 0, "mask size must be non-negative")
        self.count = count
        words = Array(repeating: 0, count: (count + 63) / 64)
    }

    /// A mask over explicit words; stray bits past `count` are cleared.
    public init(count: Int, words: [UInt64]) {
        precondition(words.count == (count + 63) / 64, "word count does not match the mask size")
        self.count = count
        self.words = words
        clearTail()
    }

    /// A mask holding `positions`.
    public init<S: Sequence>(count: Int, positions: S) where S.Element == Int {
        self.init(count: count)
        for position in positions { insert(position) }
    }

    /// A mask with a bit per element of `flags`.
    public init(_ flags: [Bool]) {
        self.init(count: flags.count)
        for (index, flag) in flags.enumerated() where flag { insert(index) }
    }

    public subscript(position: Int) -> Bool {
        precondition(position >= 0 && position < count, "mask position out of range")
        return words[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    public mutating func insert(_ position: Int) {
        precondition(position >= 0 && position < count, "mask position out of range")
        words[position >> 6] |= 1 << UInt64(position & 63)
    }

    /// The number of set positions.
    public var population: Int {
        words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// The fraction of positions set (0 for an empty mask).
    public var density: Double { count == 0 ? 0 : Double(population) / Double(count) }

    /// |self ∩ other|, by popcount of the ANDed words.
    public func intersectionCount(_ other: BitMask) -> Int {
        precondition(count == other.count, "masks of different sizes")
        var total = 0
        for index in words.indices { total += (words[index] & other.words[index]).nonzeroBitCount }
        return total
    }

    /// |self ∪ other|.
    public func unionCount(_ other: BitMask) -> Int {
        precondition(count == other.count, "masks of different sizes")
        var total = 0
        for index in words.indices { total += (words[index] | other.words[index]).nonzeroBitCount }
        return total
    }

    public func intersection(_ other: BitMask) -> BitMask {
        precondition(count == other.count, "masks of different sizes")
        return BitMask(count: count, words: zip(words, other.words).map { $0 & $1 })
    }

    public func union(_ other: BitMask) -> BitMask {
        precondition(count == other.count, "masks of different sizes")
        return BitMask(count: count, words: zip(words, other.words).map { $0 | $1 })
    }

    /// The positions not in the mask.
    public var complement: BitMask {
        BitMask(count: count, words: words.map { ~$0 })
    }

    /// self ∩ complement(other).
    public func subtracting(_ other: BitMask) -> BitMask {
        precondition(count == other.count, "masks of different sizes")
        return BitMask(count: count, words: zip(words, other.words).map { $0 & ~$1 })
    }

    /// Calls `body` with every set position, ascending, without building an array
    /// (masks of embedding matrices hold hundreds of millions of positions).
    public func forEachPosition(_ body: (Int) -> Void) {
        for (wordIndex, word) in words.enumerated() {
            var remaining = word
            while remaining != 0 {
                body(wordIndex &* 64 &+ remaining.trailingZeroBitCount)
                remaining &= remaining &- 1
            }
        }
    }

    /// The set positions, ascending.
    public var positions: [Int] {
        var result: [Int] = []
        for (wordIndex, word) in words.enumerated() {
            var remaining = word
            while remaining != 0 {
                result.append(wordIndex * 64 + remaining.trailingZeroBitCount)
                remaining &= remaining - 1
            }
        }
        return result
    }

    private mutating func clearTail() {
        let used = count & 63
        if used != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(used)) - 1 }
    }
}

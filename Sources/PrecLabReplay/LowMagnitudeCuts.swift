/// The bottom-α |W0| masks of one tensor without sorting it: for each cut size m, the
/// m smallest |W0| in the (magnitude, index) order of `LowMagnitudeMask.order` are the
/// entries whose magnitude key is below a threshold k, plus the first t entries (in
/// index order) whose key equals k. k and t come from two radix-histogram passes (the
/// key's top 15 bits, then the low 16 bits inside the buckets the cuts fall in).
///
/// Nothing is kept per element: a third pass counts, per fixed chunk of `chunkSize`
/// entries, the ties met before the chunk, so a `Cursor` can name the mask level of
/// every entry of any chunk on its own (chunks can be counted in parallel).
struct LowMagnitudeCuts: Sendable {
    /// |x| as its bit pattern: orders every non-negative float, Inf and NaN included.
    @inline(__always) static func key(_ value: Float) -> UInt32 { value.bitPattern & 0x7FFF_FFFF }

    let count: Int
    let chunkSize: Int
    /// Per cut: entries with a key below `thresholds[c]` are in the mask, and so are the
    /// first `ties[c]` entries whose key equals it.
    let thresholds: [UInt32]
    let ties: [Int]
    /// The cuts' slots ordered by size (the masks are nested in that order). An entry's
    /// level is the position here of the smallest mask holding it, `levelCount` if none.
    private let bySize: [Int]
    private let sortedThresholds: [UInt32]
    private let sortedTies: [Int]
    /// Per chunk, per level: entries before the chunk whose key equals that threshold.
    private let tiesBefore: [Int]
    /// Per high bucket (key >> 16), the level of every key in it, or `mixedBucket`
    /// when a threshold falls inside it: a lookup instead of comparisons for almost
    /// every entry.
    private let bucketLevels: [UInt8]
    static let mixedBucket = UInt8.max

    var levelCount: Int { bySize.count }

    /// - Parameters:
    ///   - cuts: mask sizes, each in 0...count (at most 254 of them).
    ///   - chunkSize: the chunks `cursor(chunk:)` serves.
    ///   - value: the tensor's W0 at a local index.
    init(count: Int, cuts: [Int], chunkSize: Int? = nil, value: (Int) -> Float) {
        precondition(cuts.count < 255, "at most 254 cuts")
        self.count = count
        let chunkSize = max(1, chunkSize ?? count)
        self.chunkSize = chunkSize
        var high = [Int](repeating: 0, count: 1 << 15)
        high.withUnsafeMutableBufferPointer { high in
            for index in 0..<count { high[Int(LowMagnitudeCuts.key(value(index)) >> 16)] += 1 }
        }
        // The high bucket of each cut's m-th smallest key and the rank inside it.
        var bucketOf = [Int](repeating: -1, count: cuts.count)
        var rankIn = [Int](repeating: 0, count: cuts.count)
        for (slot, cut) in cuts.enumerated() where cut > 0 && cut < count {
            let (bucket, before) = LowMagnitudeCuts.seek(high[...], rank: cut)
            bucketOf[slot] = bucket
            rankIn[slot] = cut - before
        }
        // Low-16-bit histograms of the buckets the cuts fall in, one row per bucket.
        let buckets = Array(Set(bucketOf.filter { $0 >= 0 })).sorted()
        var rowOf = [Int](repeating: -1, count: 1 << 15)
        for (row, bucket) in buckets.enumerated() { rowOf[bucket] = row }
        var low = [Int](repeating: 0, count: buckets.count << 16)
        if !buckets.isEmpty {
            rowOf.withUnsafeBufferPointer { rowOf in
                low.withUnsafeMutableBufferPointer { low in
                    for index in 0..<count {
                        let key = LowMagnitudeCuts.key(value(index))
                        let row = rowOf[Int(key >> 16)]
                        if row >= 0 { low[row << 16 | Int(key & 0xFFFF)] += 1 }
                    }
                }
            }
        }
        var thresholds = [UInt32](repeating: 0, count: cuts.count)
        var ties = [Int](repeating: 0, count: cuts.count)
        for (slot, cut) in cuts.enumerated() {
            if cut >= count {
                thresholds[slot] = UInt32.max  // every key (at most 0x7FFFFFFF) is below it
                continue
            }
            guard cut > 0 else { continue }  // threshold 0 and no ties: empty
            let row = rowOf[bucketOf[slot]] << 16
            let (lowBits, before) = LowMagnitudeCuts.seek(low[row..<(row + (1 << 16))], rank: rankIn[slot])
            thresholds[slot] = UInt32(bucketOf[slot]) << 16 | UInt32(lowBits - row)
            ties[slot] = rankIn[slot] - before
        }
        self.thresholds = thresholds
        self.ties = ties
        let bySize = cuts.indices.sorted { (cuts[$0], $0) < (cuts[$1], $1) }
        self.bySize = bySize
        let sortedThresholds = bySize.map { thresholds[$0] }
        self.sortedThresholds = sortedThresholds
        sortedTies = bySize.map { ties[$0] }
        let levels = bySize.count
        // A key's level is the number of thresholds not above it; in a bucket holding
        // no threshold, that is the number of thresholds in lower buckets.
        var bucketLevels = [UInt8](repeating: 0, count: 1 << 15)
        var notAbove = 0
        for bucket in bucketLevels.indices {
            let before = notAbove
            while notAbove < levels && Int(sortedThresholds[notAbove] >> 16) <= bucket { notAbove += 1 }
            bucketLevels[bucket] = notAbove > before ? LowMagnitudeCuts.mixedBucket : UInt8(notAbove)
        }
        self.bucketLevels = bucketLevels
        // The ties met before each chunk, per level. Only keys in a bucket holding a
        // threshold can equal one: a table lookup sets almost every entry aside.
        let chunks = (count + chunkSize - 1) / chunkSize
        var tiesBefore = [Int](repeating: 0, count: chunks * levels)
        var running = [Int](repeating: 0, count: levels)
        sortedThresholds.withUnsafeBufferPointer { thresholds in
            bucketLevels.withUnsafeBufferPointer { bucketLevels in
                for chunk in 0..<chunks {
                    for level in 0..<levels { tiesBefore[chunk * levels + level] = running[level] }
                    for index in (chunk * chunkSize)..<min(count, (chunk + 1) * chunkSize) {
                        let key = LowMagnitudeCuts.key(value(index))
                        guard bucketLevels[Int(key >> 16)] == LowMagnitudeCuts.mixedBucket else { continue }
                        for level in 0..<levels where key == thresholds[level] { running[level] += 1 }
                    }
                }
            }
        }
        self.tiesBefore = tiesBefore
    }

    /// The first index of `counts` where the running total reaches `rank` (which the
    /// whole slice reaches), with the total before it. Whole blocks are skipped on their
    /// sums (vectorised) before the walk inside the block.
    static func seek(_ counts: ArraySlice<Int>, rank: Int) -> (index: Int, before: Int) {
        let block = 256
        var index = counts.startIndex, before = 0
        while index + block <= counts.endIndex {
            let sum = counts[index..<(index + block)].reduce(0, &+)
            if before + sum >= rank { break }
            before += sum
            index += block
        }
        while before + counts[index] < rank {
            before += counts[index]
            index += 1
        }
        return (index, before)
    }

    /// Walks the entries of one chunk in index order, naming each one's level.
    struct Cursor {
        let bucketLevels: UnsafeBufferPointer<UInt8>
        let thresholds: UnsafeBufferPointer<UInt32>
        let ties: UnsafeBufferPointer<Int>
        /// Per level, entries so far whose key equals its threshold.
        let seen: UnsafeMutableBufferPointer<Int>

        /// The level of the next entry (keys must come in index order).
        @inline(__always) func level(ofKey key: UInt32) -> Int {
            let level = bucketLevels[Int(key >> 16)]
            return level != LowMagnitudeCuts.mixedBucket ? Int(level) : levelInMixedBucket(key)
        }

        /// The smallest mask whose threshold is above the key (counted without branches:
        /// levels are data-dependent), or a smaller one whose threshold equals the key
        /// while that mask has ties left. Such masks sit just below, since thresholds
        /// grow with the mask size.
        private func levelInMixedBucket(_ key: UInt32) -> Int {
            var above = 0
            for threshold in thresholds { above &+= Int((UInt64(key) &- UInt64(threshold)) >> 63) }  // key < it
            var level = thresholds.count &- above
            var position = level &- 1
            while position >= 0 && thresholds[position] == key {
                if seen[position] < ties[position] { level = position }
                seen[position] &+= 1
                position &-= 1
            }
            return level
        }
    }

    /// Runs `body` with a cursor positioned at the start of chunk `chunk`.
    func withCursor<R>(chunk: Int, _ body: (Cursor) throws -> R) rethrows -> R {
        let levels = levelCount
        return try sortedThresholds.withUnsafeBufferPointer { thresholds in
            try sortedTies.withUnsafeBufferPointer { ties in
                try bucketLevels.withUnsafeBufferPointer { bucketLevels in
                    try withUnsafeTemporaryAllocation(of: Int.self, capacity: max(levels, 1)) { seen in
                        for level in 0..<levels { seen[level] = tiesBefore[chunk * levels + level] }
                        return try body(Cursor(bucketLevels: bucketLevels, thresholds: thresholds, ties: ties,
                                               seen: seen))
                    }
                }
            }
        }
    }

    /// Per cut slot, the sum of `perLevel` over the levels inside its mask (the masks
    /// are nested: a cut holds its own level and every smaller one).
    func cumulative<T>(_ zero: T, _ add: (T, T) -> T, _ perLevel: (Int) -> T) -> [T] {
        var results = [T](repeating: zero, count: levelCount)
        var running = zero
        for (position, slot) in bySize.enumerated() {
            running = add(running, perLevel(position))
            results[slot] = running
        }
        return results
    }

    /// Entries inside each cut's mask for which `isVisible(local index)` holds; `value`
    /// gives W0 again, as to `init`.
    func counts(value: (Int) -> Float, _ isVisible: (Int) -> Bool) -> [Int] {
        var perLevel = [Int](repeating: 0, count: levelCount + 1)
        for chunk in 0..<((count + chunkSize - 1) / chunkSize) {
            withCursor(chunk: chunk) { cursor in
                for index in (chunk * chunkSize)..<min(count, (chunk + 1) * chunkSize) {
                    let level = cursor.level(ofKey: LowMagnitudeCuts.key(value(index)))
                    if isVisible(index) { perLevel[level] += 1 }
                }
            }
        }
        return cumulative(0, +) { perLevel[$0] }
    }
}

/// The bottom-α |W0| masks of one tensor without sorting it: for each cut size m, the
/// m smallest |W0| in the (magnitude, index) order of `LowMagnitudeMask.order` are the
/// entries whose magnitude key is below a threshold k, plus the first t entries (in
/// index order) whose key equals k. k and t come from two radix-histogram passes (the
/// key's top 15 bits, then the low 16 bits inside the buckets the cuts fall in), so
/// the analysis needs one byte per element (the smallest mask holding it) where a sort
/// needed 20.
struct LowMagnitudeCuts {
    /// |x| as its bit pattern: orders every non-negative float, Inf and NaN included.
    @inline(__always) static func key(_ value: Float) -> UInt32 { value.bitPattern & 0x7FFF_FFFF }

    let count: Int
    /// Per cut: entries with a key below `thresholds[c]` are in the mask, and so are the
    /// first `ties[c]` entries whose key equals it.
    let thresholds: [UInt32]
    let ties: [Int]
    /// The cuts' slots ordered by size (the masks are nested in that order).
    private let bySize: [Int]
    /// Per element, the position in `bySize` of the smallest mask holding it, or
    /// `bySize.count` when none does: one byte per element.
    private let levels: [UInt8]

    /// - Parameters:
    ///   - cuts: mask sizes, each in 0...count (at most 254 of them).
    ///   - value: the tensor's W0 at a local index.
    init(count: Int, cuts: [Int], value: (Int) -> Float) {
        precondition(cuts.count < 255, "at most 254 cuts")
        self.count = count
        var high = [Int](repeating: 0, count: 1 << 15)
        for index in 0..<count { high[Int(LowMagnitudeCuts.key(value(index)) >> 16)] += 1 }
        // The high bucket of each cut's m-th smallest key and the rank inside it.
        var bucketOf = [Int](repeating: -1, count: cuts.count)
        var rankIn = [Int](repeating: 0, count: cuts.count)
        for (slot, cut) in cuts.enumerated() where cut > 0 && cut < count {
            var before = 0
            for bucket in high.indices {
                if before + high[bucket] >= cut {
                    bucketOf[slot] = bucket
                    rankIn[slot] = cut - before
                    break
                }
                before += high[bucket]
            }
        }
        // Low-16-bit histograms of the buckets the cuts fall in, one row per bucket.
        let buckets = Array(Set(bucketOf.filter { $0 >= 0 })).sorted()
        var rowOf = [Int](repeating: -1, count: 1 << 15)
        for (row, bucket) in buckets.enumerated() { rowOf[bucket] = row }
        var low = [Int](repeating: 0, count: buckets.count << 16)
        if !buckets.isEmpty {
            for index in 0..<count {
                let key = LowMagnitudeCuts.key(value(index))
                let row = rowOf[Int(key >> 16)]
                if row >= 0 { low[row << 16 | Int(key & 0xFFFF)] += 1 }
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
            var before = 0
            for lowBits in 0..<(1 << 16) {
                let entries = low[row | lowBits]
                if before + entries >= rankIn[slot] {
                    thresholds[slot] = UInt32(bucketOf[slot]) << 16 | UInt32(lowBits)
                    ties[slot] = rankIn[slot] - before
                    break
                }
                before += entries
            }
        }
        self.thresholds = thresholds
        self.ties = ties
        let bySize = cuts.indices.sorted { (cuts[$0], $0) < (cuts[$1], $1) }
        self.bySize = bySize
        // Each element's level, walking the masks from the largest down so the last
        // mask found holding it is the smallest; tie counters advance for every mask
        // whose threshold the key equals.
        var levels = [UInt8](repeating: UInt8(bySize.count), count: count)
        let sortedThresholds = bySize.map { thresholds[$0] }, sortedTies = bySize.map { ties[$0] }
        var tiesSeen = [Int](repeating: 0, count: bySize.count)
        sortedThresholds.withUnsafeBufferPointer { threshold in
            sortedTies.withUnsafeBufferPointer { tie in
                tiesSeen.withUnsafeMutableBufferPointer { seen in
                    levels.withUnsafeMutableBufferPointer { levels in
                        for index in 0..<count {
                            let key = LowMagnitudeCuts.key(value(index))
                            var level = threshold.count
                            for position in stride(from: threshold.count - 1, through: 0, by: -1) {
                                if key < threshold[position] {
                                    level = position
                                } else if key == threshold[position] {
                                    if seen[position] < tie[position] { level = position }
                                    seen[position] += 1
                                } else {
                                    break  // smaller masks have thresholds no larger
                                }
                            }
                            levels[index] = UInt8(level)
                        }
                    }
                }
            }
        }
        self.levels = levels
    }

    /// Entries inside each cut's mask for which `isVisible(local index)` holds.
    func counts(_ isVisible: (Int) -> Bool) -> [Int] {
        let levelCount = bySize.count
        var perLevel = [Int](repeating: 0, count: levelCount + 1)
        levels.withUnsafeBufferPointer { levels in
            perLevel.withUnsafeMutableBufferPointer { perLevel in
                for index in 0..<count {
                    let level = Int(levels[index])
                    if level < levelCount && isVisible(index) { perLevel[level] += 1 }
                }
            }
        }
        var results = [Int](repeating: 0, count: levelCount)
        var running = 0
        for (position, slot) in bySize.enumerated() {
            running += perLevel[position]
            results[slot] = running
        }
        return results
    }

    /// Per cut: the mask's entries in each of `labelCount` classes, `label(local index)`
    /// naming an entry's class (the magnitude baselines count masks per binade).
    func countsByLabel(_ labelCount: Int, _ label: (Int) -> Int) -> [[Int]] {
        let levelCount = bySize.count
        var perLevel = [[Int]](repeating: [Int](repeating: 0, count: labelCount), count: levelCount)
        levels.withUnsafeBufferPointer { levels in
            for index in 0..<count {
                let level = Int(levels[index])
                if level < levelCount { perLevel[level][label(index)] += 1 }
            }
        }
        var results = [[Int]](repeating: [], count: levelCount)
        var running = [Int](repeating: 0, count: labelCount)
        for (position, slot) in bySize.enumerated() {
            for labelIndex in 0..<labelCount { running[labelIndex] += perLevel[position][labelIndex] }
            results[slot] = running
        }
        return results
    }
}

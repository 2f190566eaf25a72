/// The bottom-α |W0| masks of one tensor without sorting it: for each cut size m, the
/// m smallest |W0| in the (magnitude, index) order of `LowMagnitudeMask.order` are the
/// entries whose magnitude key is below a threshold k, plus the first t entries (in
/// index order) whose key equals k. k and t come from two radix-histogram passes (the
/// key's top 15 bits, then the low 16 bits inside the buckets the cuts fall in), so
/// the analysis needs no per-element memory (a sort needed 20 bytes per element).
struct LowMagnitudeCuts {
    /// |x| as its bit pattern: orders every non-negative float, Inf and NaN included.
    @inline(__always) static func key(_ value: Float) -> UInt32 { value.bitPattern & 0x7FFF_FFFF }

    let count: Int
    /// Per cut: entries with a key below `thresholds[c]` are in the mask, and so are the
    /// first `ties[c]` entries whose key equals it.
    let thresholds: [UInt32]
    let ties: [Int]
    private let value: (Int) -> Float

    /// - Parameters:
    ///   - cuts: mask sizes, each in 0...count.
    ///   - value: the tensor's W0 at a local index.
    init(count: Int, cuts: [Int], value: @escaping (Int) -> Float) {
        self.count = count
        self.value = value
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
        let buckets = Array(Set(bucketOf.filter { $0 >= 0 })).sorted()
        var low = [Int: [Int]]()
        for bucket in buckets { low[bucket] = [Int](repeating: 0, count: 1 << 16) }
        if !buckets.isEmpty {
            for index in 0..<count {
                let key = LowMagnitudeCuts.key(value(index))
                let bucket = Int(key >> 16)
                if low[bucket] != nil { low[bucket]![Int(key & 0xFFFF)] += 1 }
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
            let histogram = low[bucketOf[slot]]!
            var before = 0
            for lowBits in histogram.indices {
                if before + histogram[lowBits] >= rankIn[slot] {
                    thresholds[slot] = UInt32(bucketOf[slot]) << 16 | UInt32(lowBits)
                    ties[slot] = rankIn[slot] - before
                    break
                }
                before += histogram[lowBits]
            }
        }
        self.thresholds = thresholds
        self.ties = ties
    }

    /// Entries inside each cut's mask for which `isVisible(local index)` holds.
    func counts(_ isVisible: (Int) -> Bool) -> [Int] {
        var results = [Int](repeating: 0, count: thresholds.count)
        var tiesSeen = [Int](repeating: 0, count: thresholds.count)
        for index in 0..<count {
            let key = LowMagnitudeCuts.key(value(index))
            var visible: Bool? = nil
            for slot in thresholds.indices {
                let inside: Bool
                if key < thresholds[slot] {
                    inside = true
                } else if key == thresholds[slot] && tiesSeen[slot] < ties[slot] {
                    tiesSeen[slot] += 1
                    inside = true
                } else {
                    inside = false
                }
                if inside {
                    if visible == nil { visible = isVisible(index) }
                    if visible! { results[slot] += 1 }
                }
            }
        }
        return results
    }
}

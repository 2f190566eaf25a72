import PrecLabFormats
import PrecLabSupport

/// What the final analysis needs of a stored code: its half-ULP, for the bin of an
/// entry's |ΔW_true| / half-ULP (none when the code is not finite), and its binade
/// stratum (`MagnitudeStratum`), numbered compactly over the strata the format can
/// reach so per-stratum counters stay small. Codes of 16 bits or fewer are looked up
/// in tables built once per analysis; wider codes ask the format.
struct StoredCodeClasses: Sendable {
    let format: FloatFormat
    let minimumNormal: Double
    /// The full stratum of the format's smallest normal binade; compact numbers keep
    /// zero, subnormal and non-finite as they are and number the normal binades from
    /// there on, so the compact order is the full order.
    let firstNormal: Int
    /// Compact strata the format can reach.
    let stratumCount: Int
    /// Per code, log2 of its half-ULP (`noHalfULP` when the code is not finite), when
    /// every half-ULP is a power of two; otherwise the half-ULPs themselves.
    private let halfExponents: [Int16]?
    private let halfULPs: [Double]?
    private let strata: [UInt16]?
    private static let noHalfULP = Int16.min

    init<Codec: StorageCodec>(codec: Codec, format: FloatFormat) {
        self.format = format
        minimumNormal = format.minNormal
        firstNormal = MagnitudeStratum.of(format.minNormal, minimumNormal: format.minNormal)
        let largest = format.maxFinite
        let lastNormal = largest.isFinite && largest >= format.minNormal
            ? MagnitudeStratum.of(largest, minimumNormal: format.minNormal) : MagnitudeStratum.count - 1
        stratumCount = MagnitudeStratum.nonFinite + 1 + lastNormal - firstNormal + 1
        if Codec.Code.bitWidth <= 16 {
            let codes = 0..<(1 << Codec.Code.bitWidth)
            let halves = codes.map { StoredCodeClasses.halfULP(format, UInt32($0)) }
            let powersOfTwo = halves.allSatisfy {
                !$0.isFinite || ($0 > 0 && $0.significand == 1 && abs($0.exponent) < 256)
            }
            halfExponents = powersOfTwo ? halves.map { $0.isFinite ? Int16($0.exponent) : StoredCodeClasses.noHalfULP } : nil
            halfULPs = powersOfTwo ? nil : halves
            let value = { (code: Int) in codec.decode(Codec.Code(truncatingIfNeeded: code)) }
            let (minimumNormal, firstNormal) = (self.minimumNormal, self.firstNormal)
            strata = codes.map { UInt16(StoredCodeClasses.compactStratum(value($0), minimumNormal, firstNormal)) }
        } else {
            halfExponents = nil
            halfULPs = nil
            strata = nil
        }
    }

    /// The visibility-histogram bin of |trueDelta| / half-ULP(code), or
    /// `FinalCountLayout.skippedRatioBin` when the code has no half-ULP.
    @inline(__always) func ratioBin(_ code: UInt32, trueDelta: Double) -> Int {
        let octaves = VisibilityHistogram.octaves
        if let halfExponents {
            // With a half-ULP of 2^e the ratio is exact (a difference of two floats is 0
            // or of magnitude in [2^-149, 2^129), and |e| < 256), so its octave is
            // trueDelta's exponent minus e: the division's bin, without the division or
            // a branch (bins are data-dependent). Zero, then Inf and NaN, as `OctaveBins`.
            let exponent = Int(halfExponents[Int(code)])
            let field = Int(truncatingIfNeeded: (trueDelta.bitPattern >> 52) & 0x7FF)
            let top = octaves.binCount - 1
            let octave = min(max(field - 1023 - exponent - octaves.lowestExponent + 2, 1), top)
            let bin = field == 0 ? 0 : field == 0x7FF ? top : octave
            return exponent == Int(StoredCodeClasses.noHalfULP) ? FinalCountLayout.skippedRatioBin : bin
        }
        let half = halfULPs.map { $0[Int(code)] } ?? StoredCodeClasses.halfULP(format, code)
        guard half.isFinite else { return FinalCountLayout.skippedRatioBin }
        return VisibilityHistogram.bin(ofRatio: trueDelta.isNaN ? .nan : abs(trueDelta) / half)
    }

    /// Whether `withCodeTables` has tables to give.
    var hasCodeTables: Bool { strata != nil && halfExponents != nil }

    /// The per-code tables of a format whose codes have 16 bits or fewer and whose
    /// half-ULPs are all powers of two (as bf16's), for the C counting kernel; nil
    /// otherwise.
    func withCodeTables<R>(_ body: (_ strata: UnsafePointer<UInt16>, _ halfExponents: UnsafePointer<Int16>) -> R) -> R? {
        guard let strata, let halfExponents else { return nil }
        return strata.withUnsafeBufferPointer { strata in
            halfExponents.withUnsafeBufferPointer { body(strata.baseAddress!, $0.baseAddress!) }
        }
    }

    /// The compact stratum of a code whose decoded value is `value`.
    @inline(__always) func stratum(_ code: UInt32, value: Float) -> Int {
        if let strata { return Int(strata[Int(code)]) }
        return StoredCodeClasses.compactStratum(value, minimumNormal, firstNormal)
    }

    private static func halfULP(_ format: FloatFormat, _ code: UInt32) -> Double {
        guard format.decode(code).isFinite else { return .nan }
        return format.halfULP(ofBits: code)
    }

    @inline(__always) private static func compactStratum(_ value: Float, _ minimumNormal: Double,
                                                         _ firstNormal: Int) -> Int {
        let full = MagnitudeStratum.of(Double(value), minimumNormal: minimumNormal)
        return full <= MagnitudeStratum.nonFinite ? full : full - firstNormal + MagnitudeStratum.nonFinite + 1
    }
}

/// Where each integer count of the final analysis lives in one flat block of `size`
/// Ints: a chunk's counts are one buffer to zero and to add into its tensor's.
struct FinalCountLayout: Sendable {
    let strata: Int
    /// Mask levels (`LowMagnitudeCuts.levelCount`); level `levels` is outside every mask.
    let levels: Int
    let policies: Int
    /// The visibility histogram plus one bin for entries without a half-ULP.
    static let ratioBins = VisibilityHistogram.binCount + 1
    static var skippedRatioBin: Int { VisibilityHistogram.binCount }
    static let magnitudeBins = MagnitudeBins.binCount

    // Per tensor.
    let trueChanged = 0
    let magnitudeHistogram = 1
    var histogram: Int { magnitudeHistogram + FinalCountLayout.magnitudeBins }
    /// Entries per level (rows, one more for "no mask") and stratum: the rows add up to
    /// the entries per stratum.
    var maskByLevel: Int { histogram + FinalCountLayout.ratioBins }
    var firstPolicy: Int { maskByLevel + (levels + 1) * strata }

    // Per policy, from `policy(_:)`.
    static let visible = 0, hidden = 1, hiddenNeverLeft = 2, hiddenReturned = 3, hiddenSwamped = 4,
               spurious = 5, nonFinite = 6, visibleByStratum = 7
    var visibleByMagnitude: Int { FinalCountLayout.visibleByStratum + strata }
    var visibleByBin: Int { visibleByMagnitude + FinalCountLayout.magnitudeBins }
    var visibleByLevel: Int { visibleByBin + FinalCountLayout.ratioBins }
    var policyStride: Int { visibleByLevel + levels + 1 }

    var size: Int { firstPolicy + policies * policyStride }

    /// Offset of a policy's block (its fields are the static offsets above).
    @inline(__always) func policy(_ index: Int) -> Int { firstPolicy + index * policyStride }
}

extension FinalAnalysis {
    /// Where a policy's final code comes from.
    enum FinalCodeSource {
        /// fp32: no code, the truth itself.
        case truth
        /// master: the truth's nearest-even export.
        case nearestOfTruth
        /// pure, stochastic, kahan: the stored weights.
        case stored(UnsafeMutablePointer<Codec.Code>)
    }

    func sources() -> [FinalCodeSource] {
        core.configuration.policies.map { policy in
            switch policy {
            case .fp32: return .truth
            case .master: return .nearestOfTruth
            case .pure: return .stored(core.pure!.pointer)
            case .stochastic: return .stored(core.stochastic!.pointer)
            case .kahan: return .stored(core.kahanWeights!.pointer)
            }
        }
    }

    /// What the counting pass keeps of each entry of a 64-entry word.
    struct WordEntry {
        var stratum: Int32
        var magnitude: UInt8, ratio: UInt8, level: UInt8
        var storedValue: Float
    }

    /// Adds the integer counts of one chunk of a tensor (local indices `range`, a
    /// multiple of 64 from the tensor start, the chunk `chunk` of `cuts`) into `counts`,
    /// laid out as `layout`. Words of 64 entries: each entry's classes (stratum,
    /// magnitude and ratio bins, mask level) are found once; each policy's visibility
    /// and signs become bit masks (built without branches: they are data-dependent),
    /// so its fixed counts are population counts and only its visible entries touch
    /// its histograms; or, for a policy that shows most entries (judged on the chunk's
    /// first word), its invisible entries, subtracted from the chunk's totals at the end.
    func countChunk(tensor: Int, chunk: Int, range: Range<Int>, cuts: LowMagnitudeCuts,
                    classes: StoredCodeClasses, layout: FinalCountLayout, into counts: UnsafeMutablePointer<Int>) {
        precondition(range.lowerBound % 64 == 0, "chunks start on a word")
        let start = core.tensorStarts[tensor]
        let base = core.base.pointer + start, truths = core.truth.pointer + start
        let storedBase = core.storedBase.pointer + start
        let leftInterval = core.leftInterval.map { $0.pointer + core.wordStarts[tensor] }
        let codec = core.codec
        // Bits of entries whose two zeros count as no change (none with signed zeros).
        let sameZeros: UInt64 = core.configuration.signedZeroChanges ? 0 : ~0
        let exportsTruth = core.configuration.tracksInterval  // some stored policy runs
        let magnitudes = counts + layout.magnitudeHistogram
        let histogram = counts + layout.histogram, maskByLevel = counts + layout.maskByLevel
        let strata = layout.strata
        let sources = self.sources()
        // Per policy (bit), whether the chunk counts its invisible entries.
        var complement: UInt32 = 0
        cuts.withCursor(chunk: chunk) { cursor in
            // Per entry of a word: its classes, and the truth's nearest-even export (the
            // master policy's code).
            withUnsafeTemporaryAllocation(of: WordEntry.self, capacity: 64) { entries in
                withUnsafeTemporaryAllocation(of: Codec.Code.self, capacity: 64) { exports in
                    for wordStart in stride(from: range.lowerBound, to: range.upperBound, by: 64) {
                        let length = min(64, range.upperBound - wordStart)
                        // Bits of the word's entries: truly changed; swamped if hidden (the
                        // truth's export differs from the stored base: it ended outside the
                        // stored base's rounding interval I); true change up or down (a
                        // Double difference of floats has the sign of their order); truth
                        // not finite; stored base zero.
                        var word = WordBits()
                        for offset in 0..<length {
                            let local = wordStart &+ offset
                            let w0 = base[local], truth = truths[local], stored = storedBase[local]
                            let storedValue = codec.decode(stored)
                            let stratum = classes.stratum(UInt32(truncatingIfNeeded: stored), value: storedValue)
                            let magnitude = MagnitudeBins.bin(of: w0)
                            let ratio = classes.ratioBin(UInt32(truncatingIfNeeded: stored),
                                                         trueDelta: Double(truth) - Double(w0))
                            let level = cursor.level(ofKey: LowMagnitudeCuts.key(w0))
                            let exported = exportsTruth ? codec.nearest(truth) : stored
                            entries[offset] = WordEntry(stratum: Int32(stratum), magnitude: UInt8(magnitude),
                                                        ratio: UInt8(ratio), level: UInt8(level),
                                                        storedValue: storedValue)
                            exports[offset] = exported
                            let zeroPair = bit(w0 == 0, offset) & bit(truth == 0, offset)
                            word.changed |= bit(w0.bitPattern != truth.bitPattern, offset) & ~(zeroPair & sameZeros)
                            let exportedZero = bit(codec.decode(exported) == 0, offset)
                            word.storedZero |= bit(storedValue == 0, offset)
                            word.swamped |= bit(exported != stored, offset)
                                & ~(exportedZero & word.storedZero & sameZeros)
                            word.rises |= bit(truth > w0, offset)
                            word.falls |= bit(truth < w0, offset)
                            word.truthNonFinite |= bit(!truth.isFinite, offset)
                            magnitudes[magnitude] &+= 1
                            histogram[ratio] &+= 1
                            maskByLevel[level &* strata &+ stratum] &+= 1
                        }
                        counts[layout.trueChanged] &+= word.changed.nonzeroBitCount
                        // Hidden entries that left I after some step (the engine's bit).
                        word.left = leftInterval.map { $0[wordStart >> 6] } ?? 0
                        for (index, source) in sources.enumerated() {
                            var policy = word  // fp32: the truth's own bits
                            if case .truth = source {} else {
                                let codes: UnsafePointer<Codec.Code>
                                if case .stored(let weights) = source {
                                    codes = UnsafePointer(weights + start + wordStart)
                                } else {
                                    codes = UnsafePointer(exports.baseAddress!)
                                }
                                policy = storedPolicyBits(word, codes: codes, storedBase: storedBase + wordStart,
                                                          entries: entries, length: length, sameZeros: sameZeros)
                            }
                            if wordStart == range.lowerBound && 2 * policy.changed.nonzeroBitCount > length {
                                complement |= 1 << UInt32(index)
                            }
                            let counted = (complement >> UInt32(index)) & 1 == 1
                                ? ~policy.changed & (length == 64 ? ~0 : (1 &<< UInt64(length)) &- 1)
                                : policy.changed
                            addPolicy(policy, truth: word, counted: counted, entries: entries,
                                      into: counts + layout.policy(index), layout: layout)
                        }
                    }
                }
            }
        }
        guard complement != 0 else { return }
        // The chunk's entries per class, then visible = all - invisible for those policies.
        var perStratum = [Int](repeating: 0, count: strata), perLevel = [Int](repeating: 0, count: layout.levels + 1)
        for level in 0...layout.levels {
            for stratum in 0..<strata {
                perStratum[stratum] += maskByLevel[level * strata + stratum]
                perLevel[level] += maskByLevel[level * strata + stratum]
            }
        }
        for index in sources.indices where (complement >> UInt32(index)) & 1 == 1 {
            let policy = counts + layout.policy(index)
            func complementOf(_ offset: Int, _ totals: (Int) -> Int, count: Int) {
                for slot in 0..<count { policy[offset + slot] = totals(slot) - policy[offset + slot] }
            }
            complementOf(FinalCountLayout.visibleByStratum, { perStratum[$0] }, count: strata)
            complementOf(layout.visibleByMagnitude, { magnitudes[$0] }, count: FinalCountLayout.magnitudeBins)
            complementOf(layout.visibleByBin, { histogram[$0] }, count: FinalCountLayout.ratioBins)
            complementOf(layout.visibleByLevel, { perLevel[$0] }, count: layout.levels + 1)
        }
    }

    /// Bit masks over the entries of a word (bit = offset in the word).
    struct WordBits {
        /// Truth: truly changed. A policy: visible (its stored bits changed).
        var changed: UInt64 = 0
        /// The truth's export differs from the stored base (hidden: swamped).
        var swamped: UInt64 = 0
        /// The truth (a policy: its stored value) went up or down from the base.
        var rises: UInt64 = 0, falls: UInt64 = 0
        /// The truth (a policy: its stored value) is not finite.
        var truthNonFinite: UInt64 = 0
        var storedZero: UInt64 = 0
        /// The engine's bit: the truth left the stored base's rounding interval.
        var left: UInt64 = 0
    }

    /// A stored policy's bits over a word: visible, the sign of its stored change, its
    /// non-finite values; `truth`'s other bits carried over.
    @inline(__always) private func storedPolicyBits(_ truth: WordBits, codes: UnsafePointer<Codec.Code>,
                                                    storedBase: UnsafePointer<Codec.Code>,
                                                    entries: UnsafeMutableBufferPointer<WordEntry>, length: Int,
                                                    sameZeros: UInt64) -> WordBits {
        let codec = core.codec
        var bits = truth
        var differs: UInt64 = 0, zero: UInt64 = 0
        bits.rises = 0; bits.falls = 0; bits.truthNonFinite = 0
        for offset in 0..<length {
            let code = codes[offset]
            let value = codec.decode(code), storedValue = entries[offset].storedValue
            differs |= bit(code != storedBase[offset], offset)
            zero |= bit(value == 0, offset)
            bits.rises |= bit(value > storedValue, offset)
            bits.falls |= bit(value < storedValue, offset)
            bits.truthNonFinite |= bit(!value.isFinite, offset)
        }
        bits.changed = differs & ~(zero & truth.storedZero & sameZeros)
        return bits
    }

    /// Adds a policy's counts over a word (`policy` its bits, `truth` the truth's);
    /// its histograms take the entries of `counted` (its visible ones, or its
    /// invisible ones in a complemented chunk).
    @inline(__always) private func addPolicy(_ policy: WordBits, truth: WordBits, counted: UInt64,
                                             entries: UnsafeMutableBufferPointer<WordEntry>,
                                             into counts: UnsafeMutablePointer<Int>, layout: FinalCountLayout) {
        let visible = policy.changed
        let hidden = truth.changed & ~visible
        counts[FinalCountLayout.visible] &+= visible.nonzeroBitCount
        counts[FinalCountLayout.hidden] &+= hidden.nonzeroBitCount
        counts[FinalCountLayout.hiddenSwamped] &+= (hidden & truth.swamped).nonzeroBitCount
        counts[FinalCountLayout.hiddenReturned] &+= (hidden & ~truth.swamped & truth.left).nonzeroBitCount
        counts[FinalCountLayout.hiddenNeverLeft] &+= (hidden & ~truth.swamped & ~truth.left).nonzeroBitCount
        // A stored change of the opposite sign to the truth's.
        let opposite = policy.rises & truth.falls | policy.falls & truth.rises
        counts[FinalCountLayout.spurious] &+= (visible & opposite).nonzeroBitCount
        counts[FinalCountLayout.nonFinite] &+= policy.truthNonFinite.nonzeroBitCount
        let byStratum = counts + FinalCountLayout.visibleByStratum, byMagnitude = counts + layout.visibleByMagnitude
        let byBin = counts + layout.visibleByBin, byLevel = counts + layout.visibleByLevel
        var remaining = counted
        while remaining != 0 {
            let entry = entries[remaining.trailingZeroBitCount]
            remaining &= remaining &- 1
            byStratum[Int(entry.stratum)] &+= 1
            byMagnitude[Int(entry.magnitude)] &+= 1
            byBin[Int(entry.ratio)] &+= 1
            byLevel[Int(entry.level)] &+= 1
        }
    }

    /// `condition` as bit `offset` of a word, without a branch.
    @inline(__always) private func bit(_ condition: Bool, _ offset: Int) -> UInt64 {
        UInt64(condition ? 1 : 0) &<< UInt64(truncatingIfNeeded: offset)
    }

    /// Per policy, Σ (ΔW_policy - ΔW_true)² and Σ ΔW_true² over one tensor in index
    /// order (the sums must not depend on how the tensor is cut), over the entries where
    /// both changes are finite. The policies are lanes of one vector: each lane is its
    /// own sequential sum, and adding +0 where an entry is left out keeps its bits (a
    /// sum of squares is never -0). Blocks of entries first find each policy's changes
    /// (eight lanes per entry, one per policy, lanes past the policies stay 0, so an
    /// entry's changes are one vector load), then add them up.
    func squaredSums(tensor: Int) -> [(error: Double, truth: Double)] {
        let policies = core.configuration.policies.count
        precondition(policies <= 8, "at most 8 policies")
        let start = core.tensorStarts[tensor], count = core.tensors[tensor].count
        let base = core.base.pointer + start, truths = core.truth.pointer + start
        let storedBase = core.storedBase.pointer + start
        let codec = core.codec
        let block = 512
        var errors = SIMD8<Double>(), squaredTruths = SIMD8<Double>()
        let sources = self.sources()
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 9 * block) { scratch in
            scratch.initialize(repeating: 0)
            let deltas = scratch.baseAddress!, trueDeltas = deltas + 8 * block  // deltas[8 * entry + policy]
            for blockStart in stride(from: 0, to: count, by: block) {
                let length = min(block, count - blockStart)
                let w0 = base + blockStart, truth = truths + blockStart, stored = storedBase + blockStart
                for offset in 0..<length { trueDeltas[offset] = Double(truth[offset]) - Double(w0[offset]) }
                for (index, source) in sources.enumerated() {
                    let lane = deltas + index
                    switch source {
                    case .truth:
                        for offset in 0..<length { lane[8 &* offset] = trueDeltas[offset] }
                    case .nearestOfTruth:
                        for offset in 0..<length {
                            lane[8 &* offset] = Double(codec.decode(codec.nearest(truth[offset])))
                                - Double(codec.decode(stored[offset]))
                        }
                    case .stored(let weights):
                        let final = weights + start + blockStart
                        for offset in 0..<length {
                            lane[8 &* offset] = Double(codec.decode(final[offset])) - Double(codec.decode(stored[offset]))
                        }
                    }
                }
                @inline(__always) func policyDeltas(_ offset: Int) -> SIMD8<Double> {
                    UnsafeRawPointer(deltas + 8 &* offset).loadUnaligned(as: SIMD8<Double>.self)
                }
                // Masks only in blocks holding a non-finite change (an exponent field of
                // all ones carries into bit 63 when one more is added to it; entries past
                // the block's length can only send it to the masked loop, which is exact).
                var nonFinite: UInt64 = 0
                for delta in UnsafeBufferPointer(start: deltas, count: 9 * block) {
                    nonFinite |= (delta.bitPattern & 0x7FF0_0000_0000_0000) &+ (1 << 52)
                }
                var blockErrors = errors, blockTruths = squaredTruths  // kept in registers
                if nonFinite >> 63 == 0 {
                    for offset in 0..<length {
                        let trueDelta = SIMD8(repeating: trueDeltas[offset]), error = policyDeltas(offset) - trueDelta
                        blockErrors += error * error
                        blockTruths += trueDelta * trueDelta
                    }
                } else {
                    for offset in 0..<length {
                        let trueDelta = SIMD8(repeating: trueDeltas[offset]), policyDelta = policyDeltas(offset)
                        let error = policyDelta - trueDelta
                        // x - x is NaN exactly for ±Inf and NaN.
                        let finite = (policyDelta - policyDelta .== 0) .& (trueDelta - trueDelta .== 0)
                        blockErrors += (error * error).replacing(with: 0, where: .!finite)
                        blockTruths += (trueDelta * trueDelta).replacing(with: 0, where: .!finite)
                    }
                }
                errors = blockErrors
                squaredTruths = blockTruths
            }
        }
        return (0..<policies).map { (errors[$0], squaredTruths[$0]) }
    }
}

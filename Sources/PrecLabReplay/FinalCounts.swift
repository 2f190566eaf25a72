import PrecLabFormats
import PrecLabSupport

/// What the final analysis needs of a stored code: its half-ULP (NaN when the code is
/// not finite) and its binade stratum (`MagnitudeStratum`), numbered compactly over
/// the strata the format can reach so per-stratum counters stay small. Codes of 16
/// bits or fewer are looked up in tables built once per analysis; wider codes ask the
/// format.
struct StoredCodeClasses: Sendable {
    let format: FloatFormat
    let minimumNormal: Double
    /// The full stratum of the format's smallest normal binade; compact numbers keep
    /// zero, subnormal and non-finite as they are and number the normal binades from
    /// there on, so the compact order is the full order.
    let firstNormal: Int
    /// Compact strata the format can reach.
    let stratumCount: Int
    private let halfULPs: [Double]?
    private let strata: [UInt16]?

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
            halfULPs = codes.map { StoredCodeClasses.halfULP(format, UInt32($0)) }
            let value = { (code: Int) in codec.decode(Codec.Code(truncatingIfNeeded: code)) }
            let (minimumNormal, firstNormal) = (self.minimumNormal, self.firstNormal)
            strata = codes.map { UInt16(StoredCodeClasses.compactStratum(value($0), minimumNormal, firstNormal)) }
        } else {
            halfULPs = nil
            strata = nil
        }
    }

    @inline(__always) func halfULP(_ code: UInt32) -> Double {
        if let halfULPs { return halfULPs[Int(code)] }
        return StoredCodeClasses.halfULP(format, code)
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
    let stratumSizes = 1
    var magnitudeHistogram: Int { stratumSizes + strata }
    var histogram: Int { magnitudeHistogram + FinalCountLayout.magnitudeBins }
    /// Entries per level (rows, one more for "no mask") and stratum.
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
        /// The truth's nearest-even export (the master policy's code).
        var exported: Codec.Code
        var storedValue: Float
    }

    /// Adds the integer counts of one chunk of a tensor (local indices `range`, a
    /// multiple of 64 from the tensor start, the chunk `chunk` of `cuts`) into `counts`,
    /// laid out as `layout`. Words of 64 entries: each entry's classes (stratum,
    /// magnitude and ratio bins, mask level) are found once; each policy's visibility
    /// and signs become bit masks, so its fixed counts are population counts and only
    /// its visible entries touch its histograms.
    func countChunk(tensor: Int, chunk: Int, range: Range<Int>, cuts: LowMagnitudeCuts,
                    classes: StoredCodeClasses, layout: FinalCountLayout, into counts: UnsafeMutablePointer<Int>) {
        precondition(range.lowerBound % 64 == 0, "chunks start on a word")
        let start = core.tensorStarts[tensor]
        let base = core.base.pointer + start, truths = core.truth.pointer + start
        let storedBase = core.storedBase.pointer + start
        let leftInterval = core.leftInterval.map { $0.pointer + core.wordStarts[tensor] }
        let codec = core.codec
        let signedZeros = core.configuration.signedZeroChanges
        let exportsTruth = core.configuration.tracksInterval  // some stored policy runs
        let strata = layout.strata
        let sources = self.sources()
        cuts.withCursor(chunk: chunk) { cursor in
            sources.withUnsafeBufferPointer { sources in
                withUnsafeTemporaryAllocation(of: WordEntry.self, capacity: 64) { entries in
                    for wordStart in stride(from: range.lowerBound, to: range.upperBound, by: 64) {
                        let length = min(64, range.upperBound - wordStart)
                        // Bits of the word's entries: truly changed, swamped if hidden (the
                        // truth's export differs from the stored base: it ended outside the
                        // stored base's rounding interval I), true change up or down (a
                        // Double difference of floats has the sign of their order), truth
                        // not finite.
                        var changed: UInt64 = 0, swamped: UInt64 = 0, rises: UInt64 = 0, falls: UInt64 = 0
                        var truthNonFinite: UInt64 = 0
                        for offset in 0..<length {
                            let local = wordStart + offset
                            let w0 = base[local], truth = truths[local], stored = storedBase[local]
                            let storedValue = codec.decode(stored)
                            let stratum = classes.stratum(UInt32(truncatingIfNeeded: stored), value: storedValue)
                            let magnitude = MagnitudeBins.bin(of: w0)
                            let half = classes.halfULP(UInt32(truncatingIfNeeded: stored))
                            let trueDelta = Double(truth) - Double(w0)
                            let ratio = half.isFinite
                                ? VisibilityHistogram.bin(ofRatio: trueDelta.isNaN ? .nan : abs(trueDelta) / half)
                                : FinalCountLayout.skippedRatioBin
                            let level = cursor.level(ofKey: LowMagnitudeCuts.key(w0))
                            let exported = exportsTruth ? codec.nearest(truth) : stored
                            entries[offset] = WordEntry(stratum: Int32(stratum), magnitude: UInt8(magnitude),
                                                        ratio: UInt8(ratio), level: UInt8(level),
                                                        exported: exported, storedValue: storedValue)
                            let bit = UInt64(1) << UInt64(offset)
                            changed |= FinalAnalysis.valuesDiffer(w0, truth, signedZeros: signedZeros) ? bit : 0
                            swamped |= FinalAnalysis.codesDiffer(exported, stored, codec, signedZeros: signedZeros)
                                ? bit : 0
                            rises |= truth > w0 ? bit : 0
                            falls |= truth < w0 ? bit : 0
                            truthNonFinite |= truth.isFinite ? 0 : bit
                            counts[layout.stratumSizes + stratum] &+= 1
                            counts[layout.magnitudeHistogram + magnitude] &+= 1
                            counts[layout.histogram + ratio] &+= 1
                            counts[layout.maskByLevel + level * strata + stratum] &+= 1
                        }
                        counts[layout.trueChanged] &+= changed.nonzeroBitCount
                        // Hidden entries that left I after some step (the engine's bit).
                        let left = leftInterval.map { $0[wordStart >> 6] } ?? 0
                        for (index, source) in sources.enumerated() {
                            var visible = changed, up = rises, down = falls, nonFinite = truthNonFinite
                            if case .truth = source {} else {
                                visible = 0; up = 0; down = 0; nonFinite = 0
                                for offset in 0..<length {
                                    let code: Codec.Code
                                    if case .stored(let weights) = source {
                                        code = weights[start + wordStart + offset]
                                    } else {
                                        code = entries[offset].exported
                                    }
                                    let stored = storedBase[wordStart + offset]
                                    let value = codec.decode(code), storedValue = entries[offset].storedValue
                                    let bit = UInt64(1) << UInt64(offset)
                                    visible |= FinalAnalysis.codesDiffer(code, stored, codec, signedZeros: signedZeros)
                                        ? bit : 0
                                    up |= value > storedValue ? bit : 0
                                    down |= value < storedValue ? bit : 0
                                    nonFinite |= value.isFinite ? 0 : bit
                                }
                            }
                            let policy = layout.policy(index)
                            let hidden = changed & ~visible
                            counts[policy + FinalCountLayout.visible] &+= visible.nonzeroBitCount
                            counts[policy + FinalCountLayout.hidden] &+= hidden.nonzeroBitCount
                            counts[policy + FinalCountLayout.hiddenSwamped] &+= (hidden & swamped).nonzeroBitCount
                            counts[policy + FinalCountLayout.hiddenReturned] &+= (hidden & ~swamped & left).nonzeroBitCount
                            counts[policy + FinalCountLayout.hiddenNeverLeft] &+= (hidden & ~swamped & ~left).nonzeroBitCount
                            // A stored change of the opposite sign to the truth's.
                            counts[policy + FinalCountLayout.spurious] &+= (visible & (up & falls | down & rises)).nonzeroBitCount
                            counts[policy + FinalCountLayout.nonFinite] &+= nonFinite.nonzeroBitCount
                            var remaining = visible
                            while remaining != 0 {
                                let entry = entries[remaining.trailingZeroBitCount]
                                remaining &= remaining &- 1
                                counts[policy + FinalCountLayout.visibleByStratum + Int(entry.stratum)] &+= 1
                                counts[policy + layout.visibleByMagnitude + Int(entry.magnitude)] &+= 1
                                counts[policy + layout.visibleByBin + Int(entry.ratio)] &+= 1
                                counts[policy + layout.visibleByLevel + Int(entry.level)] &+= 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Per policy, Σ (ΔW_policy - ΔW_true)² and Σ ΔW_true² over one tensor in index
    /// order (the sums must not depend on how the tensor is cut), over the entries where
    /// both changes are finite. The policies are lanes of one vector: each lane is its
    /// own sequential sum, and adding +0 where an entry is left out keeps its bits (a
    /// sum of squares is never -0). Blocks of entries first gather every policy's
    /// change, then add them, so the vectors are read long after their lanes were
    /// written.
    func squaredSums(tensor: Int) -> [(error: Double, truth: Double)] {
        let policies = core.configuration.policies.count
        precondition(policies <= 8, "at most 8 policies")
        let start = core.tensorStarts[tensor], count = core.tensors[tensor].count
        let base = core.base.pointer + start, truths = core.truth.pointer + start
        let storedBase = core.storedBase.pointer + start
        let codec = core.codec
        let block = 256
        var errors = SIMD8<Double>(), squaredTruths = SIMD8<Double>()
        let sources = self.sources()
        withUnsafeTemporaryAllocation(of: SIMD8<Double>.self, capacity: block) { policyDeltas in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: block) { trueDeltas in
                for blockStart in stride(from: 0, to: count, by: block) {
                    let length = min(block, count - blockStart)
                    for offset in 0..<length {
                        let local = blockStart + offset
                        trueDeltas[offset] = Double(truths[local]) - Double(base[local])
                    }
                    for (index, source) in sources.enumerated() {
                        for offset in 0..<length {
                            let local = blockStart + offset
                            let code: Codec.Code
                            switch source {
                            case .truth:
                                policyDeltas[offset][index] = trueDeltas[offset]
                                continue
                            case .nearestOfTruth: code = codec.nearest(truths[local])
                            case .stored(let weights): code = weights[start + local]
                            }
                            policyDeltas[offset][index] = Double(codec.decode(code)) - Double(codec.decode(storedBase[local]))
                        }
                    }
                    for offset in 0..<length {
                        let trueDelta = SIMD8(repeating: trueDeltas[offset]), policyDelta = policyDeltas[offset]
                        // x - x is NaN exactly for ±Inf and NaN.
                        let finite = (policyDelta - policyDelta .== 0) .& (trueDelta - trueDelta .== 0)
                        let error = policyDelta - trueDelta
                        errors += (error * error).replacing(with: 0, where: .!finite)
                        squaredTruths += (trueDelta * trueDelta).replacing(with: 0, where: .!finite)
                    }
                }
            }
        }
        return (0..<policies).map { (errors[$0], squaredTruths[$0]) }
    }

    /// Whether two codes differ as stored changes count it: bitwise, except that the
    /// two zeros are the same value unless `signedZeros`.
    @inline(__always) static func codesDiffer(_ code: Codec.Code, _ stored: Codec.Code, _ codec: Codec,
                                              signedZeros: Bool) -> Bool {
        code != stored && (signedZeros || !(codec.decode(code) == 0 && codec.decode(stored) == 0))
    }

    /// The engine's bit for a local index: the truth left the stored base's rounding
    /// interval after some step (never, when no stored policy ran).
    @inline(__always) static func leftBit(_ words: UnsafeMutablePointer<UInt64>?, _ local: Int) -> Bool {
        guard let words else { return false }
        return (words[local >> 6] >> UInt64(local & 63)) & 1 == 1
    }
}

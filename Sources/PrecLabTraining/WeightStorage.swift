import PrecLabFormats
import PrecLabReplay
import PrecLabSupport

/// The weights of a training run as a storage policy keeps them, inside the loop.
///
/// The policies are replay's (`ReplayPolicy`), with the same rounding functions
/// (`FloatFormat`'s array kernels, the same stochastic keys), so that a closed-loop run
/// and a replay of its own update stream store the same bits:
/// - fp32: fp32 weights; the forward pass sees them.
/// - master: fp32 master weights updated by the optimizer; the forward pass sees their
///   nearest-even rounding to the format (as mixed-precision trainers do).
/// - pure: codes in the format; a step's update u = fp32(w_new − w) is added in fp32 and
///   the sum rounded into storage with the pure rounding mode: code ← round(w + u).
/// - stochastic: as pure, with stochastic rounding keyed by (seed, tensor index, step,
///   element index): `StochasticKey(seed:stream:step:)` as in replay.
/// - kahan: as pure, with a compensation buffer C in the format (nearest-even):
///   c = rn(C + u); w' = rn(w + c); C = rn(c + rn(w − w')).
/// The stored base is the nearest-even rounding of the fp32 starting weights.
public final class WeightStorage {
    public let policy: ReplayPolicy
    public let format: FloatFormat
    /// The pure policy's rounding, with the overflow and subnormal options for every rounding.
    public let rounding: RoundingOptions
    public let seed: UInt64
    public let threads: Int
    public let counts: [Int]

    /// fp32 and master: the fp32 master weights. Stored policies: the decoded codes.
    public private(set) var optimizerWeights: [[Float]]
    /// What the forward pass uses.
    public private(set) var forwardWeights: [[Float]]
    /// Stored policies: packed codes (`format.storageBytes` each). master: the codes of
    /// the forward copy.
    public private(set) var codes: [[UInt8]]
    private var compensation: [[UInt8]]
    /// The nearest-even codes of the starting weights (fp32 policy: their fp32 bits).
    public let baseCodes: [[UInt8]]

    var nearestOptions: RoundingOptions { rounding.with(mode: .nearestEven) }

    var stochasticOptions: RoundingOptions { rounding.with(mode: .stochastic) }

    /// The format weights are stored in under this policy (fp32 for the fp32 policy).
    public var storedFormat: FloatFormat { policy == .fp32 ? .fp32 : format }

    public init(initial: [[Float]], policy: ReplayPolicy, format: FloatFormat,
                rounding: RoundingOptions = RoundingOptions(), seed: UInt64 = 0,
                threads: Int = ParallelChunks.threadCount) {
        self.policy = policy
        self.format = format
        self.rounding = rounding
        self.seed = seed
        self.threads = threads
        counts = initial.map(\.count)
        optimizerWeights = initial
        forwardWeights = initial
        codes = []
        compensation = []
        let stored = policy == .fp32 ? FloatFormat.fp32 : format
        var nearest = rounding
        nearest.mode = .nearestEven
        baseCodes = initial.map { WeightStorage.encode(stored, $0, nearest, key: nil, threads: threads) }
        switch policy {
        case .fp32:
            break
        case .master:
            codes = baseCodes
            forwardWeights = baseCodes.map { WeightStorage.decode(format, $0, threads: threads) }
        case .pure, .stochastic, .kahan:
            codes = baseCodes
            forwardWeights = baseCodes.map { WeightStorage.decode(format, $0, threads: threads) }
            optimizerWeights = forwardWeights
            if policy == .kahan {
                compensation = counts.map { count in
                    WeightStorage.encode(format, [Float](repeating: 0, count: count), nearest, key: nil, threads: threads)
                }
            }
        }
    }

    /// What one step did to the stored weights.
    public struct StepEffect {
        /// The intended fp32 update of every tensor: fp32(w_new − w).
        public var updates: [[Float]]
        /// Elements with a non-zero intended update (not counted under fp32 storage,
        /// where nothing vanishes: both are 0).
        public var nonZeroUpdates: Int
        /// Of those, the elements whose stored bits (master: the forward copy) did not
        /// change in this step.
        public var vanished: Int
    }

    /// Stores the optimizer's new weights (computed from `optimizerWeights`) for step `step`.
    @discardableResult
    public func apply(step: UInt64, newWeights: [[Float]]) -> StepEffect {
        precondition(newWeights.map(\.count) == counts)
        var updates: [[Float]] = []
        var nonZero = 0, vanished = 0
        for tensor in counts.indices {
            let old = optimizerWeights[tensor], new = newWeights[tensor]
            let update = WeightStorage.difference(new, old)
            let previousCodes = policy == .fp32 ? [] : codes[tensor]
            switch policy {
            case .fp32:
                optimizerWeights[tensor] = new
                forwardWeights[tensor] = new
            case .master:
                optimizerWeights[tensor] = new
                codes[tensor] = WeightStorage.encode(format, new, nearestOptions, key: nil, threads: threads)
                forwardWeights[tensor] = WeightStorage.decode(format, codes[tensor], threads: threads)
            case .pure, .stochastic:
                var sum = old
                for i in sum.indices { sum[i] += update[i] }
                let options = policy == .pure ? rounding : stochasticOptions
                let key = StochasticKey(seed: seed, stream: UInt64(tensor), step: step)
                codes[tensor] = WeightStorage.encode(format, sum, options, key: key, threads: threads)
                optimizerWeights[tensor] = WeightStorage.decode(format, codes[tensor], threads: threads)
                forwardWeights[tensor] = optimizerWeights[tensor]
            case .kahan:
                applyKahan(tensor, update)
            }
            // fp32 storage keeps every update by construction (w' = w + u exactly when
            // u = w' − w is non-zero), so it skips the count.
            if policy != .fp32 {
                let counts = WeightStorage.countUpdates(update, old, new, previousCodes,
                                                        codes[tensor], format.storageBytes)
                nonZero += counts.nonZero
                vanished += counts.vanished
            }
            updates.append(update)
        }
        return StepEffect(updates: updates, nonZeroUpdates: nonZero, vanished: vanished)
    }

    /// The Kahan rule of replay's `StepKernels.addKahan`, one rounding at a time.
    private func applyKahan(_ tensor: Int, _ update: [Float]) {
        let nearest = nearestOptions
        var c = WeightStorage.decode(format, compensation[tensor], threads: threads)
        for i in c.indices { c[i] += update[i] }
        c = WeightStorage.decode(format, WeightStorage.encode(format, c, nearest, key: nil, threads: threads),
                                 threads: threads)
        var old = optimizerWeights[tensor]
        var sum = old
        for i in sum.indices { sum[i] += c[i] }
        codes[tensor] = WeightStorage.encode(format, sum, nearest, key: nil, threads: threads)
        let updated = WeightStorage.decode(format, codes[tensor], threads: threads)
        for i in old.indices { old[i] -= updated[i] }
        let lost = WeightStorage.decode(format, WeightStorage.encode(format, old, nearest, key: nil, threads: threads),
                                        threads: threads)
        for i in c.indices { c[i] += lost[i] }
        compensation[tensor] = WeightStorage.encode(format, c, nearest, key: nil, threads: threads)
        optimizerWeights[tensor] = updated
        forwardWeights[tensor] = updated
    }

    /// Elements whose stored bits differ from the stored base (master: the nearest-even
    /// export of the master; fp32: the fp32 bits), per tensor.
    public func visibleCounts() -> [Int] {
        counts.indices.map { tensor in
            let current = policy == .fp32
                ? WeightStorage.encode(.fp32, optimizerWeights[tensor], nearestOptions, key: nil, threads: threads)
                : codes[tensor]
            let width = storedFormat.storageBytes
            var differing = 0
            for i in 0..<counts[tensor] where !WeightStorage.sameCode(current, baseCodes[tensor], i, width) {
                differing += 1
            }
            return differing
        }
    }

    /// The stored weights as fp32 values (fp32 and master: the master).
    public var finalFloat32: [[Float]] { optimizerWeights }

    /// The stored weights' codes in `format` (fp32 and master: the nearest-even export).
    public func storedCodes() -> [[UInt8]] {
        switch policy {
        case .fp32, .master:
            return optimizerWeights.map { WeightStorage.encode(format, $0, nearestOptions, key: nil, threads: threads) }
        case .pure, .stochastic, .kahan:
            return codes
        }
    }

    /// fp32(new − old) elementwise.
    static func difference(_ new: [Float], _ old: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: old.count) { buffer, initialized in
            new.withUnsafeBufferPointer { n in
                old.withUnsafeBufferPointer { o in
                    let out = buffer.baseAddress!, a = n.baseAddress!, b = o.baseAddress!
                    for i in 0..<o.count { out[i] = a[i] - b[i] }
                }
            }
            initialized = old.count
        }
    }

    /// Elements with a non-zero (or NaN) update, and of those the ones whose stored bits
    /// did not change (fp32: the weight's bits; else: the codes), counted branch-free.
    static func countUpdates(_ update: [Float], _ old: [Float], _ new: [Float], _ previousCodes: [UInt8],
                             _ codes: [UInt8]?, _ width: Int) -> (nonZero: Int, vanished: Int) {
        var nonZero = 0, vanished = 0
        update.withUnsafeBufferPointer { u in
            old.withUnsafeBufferPointer { o in
                new.withUnsafeBufferPointer { n in
                    let updates = u.baseAddress!, before = o.baseAddress!, after = n.baseAddress!
                    for i in 0..<u.count {
                        let magnitude = updates[i].bitPattern & 0x7FFF_FFFF
                        let isNonZero = (magnitude | (0 &- magnitude)) >> 31
                        nonZero &+= Int(isNonZero)
                        let unchanged: UInt32
                        if let codes {
                            unchanged = sameCode(previousCodes, codes, i, width) ? 1 : 0
                        } else {
                            let changedBits = before[i].bitPattern ^ after[i].bitPattern
                            unchanged = 1 &- ((changedBits | (0 &- changedBits)) >> 31)
                        }
                        vanished &+= Int(isNonZero & unchanged)
                    }
                }
            }
        }
        return (nonZero, vanished)
    }

    // MARK: Rounding through the formats module

    static func encode(_ format: FloatFormat, _ values: [Float], _ options: RoundingOptions, key: StochasticKey?,
                       threads: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count * format.storageBytes)
        values.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { destination in
                format.encode(source, into: destination, options, key: key, firstIndex: 0, threads: threads)
            }
        }
        return bytes
    }

    static func decode(_ format: FloatFormat, _ bytes: [UInt8], threads: Int) -> [Float] {
        let count = bytes.count / format.storageBytes
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { source in
            values.withUnsafeMutableBufferPointer { destination in
                format.decode(source, into: destination, threads: threads)
            }
        }
        return values
    }

    @inline(__always)
    static func sameCode(_ a: [UInt8], _ b: [UInt8], _ index: Int, _ width: Int) -> Bool {
        let start = index * width
        for byte in start..<(start + width) where a[byte] != b[byte] { return false }
        return true
    }
}

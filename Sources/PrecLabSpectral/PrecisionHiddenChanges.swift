import PrecLabSupport

/// Changes between two wide checkpoints (fp32 tuned weights) that the storage format
/// hides: how many source values differ, how many of those the format's codes show,
/// and the histogram of |W1 − W0| / half-ULP(stored W0) in octaves — the ratio behind
/// "an update smaller than half an ULP vanishes" (docs/metrics.md).
public struct PrecisionHiddenChanges: Sendable, Equatable, Codable {
    /// Octave bins of the ratio: bin 0 holds 0, bin 1 ratios below 2^lowestExponent,
    /// one bin per octave [2^e, 2^(e+1)) up to highestExponent, then the rest (the
    /// same bins as the replay's visibility histogram).
    public static let lowestExponent = -16
    public static let highestExponent = 15
    public static var binCount: Int { highestExponent - lowestExponent + 4 }
    public static var labels: [String] {
        ["0", "<2^\(lowestExponent)"] + (lowestExponent...highestExponent).map { "2^\($0)" }
            + [">=2^\(highestExponent + 1)"]
    }

    /// Elements whose source values differ (±0 pairs count as unchanged unless asked).
    public var sourceChanged: Int
    /// Elements whose stored codes differ (the update mask's population).
    public var storedChanged: Int
    /// Elements per ratio bin (elements with a non-finite stored base are left out).
    public var histogram: [Int]
    /// Elements per ratio bin whose stored code changed.
    public var visibleByBin: [Int]

    /// sourceChanged − storedChanged: truly changed but invisible in the format.
    public var hiddenByPrecision: Int { sourceChanged - storedChanged }

    /// An empty tally (for totals).
    public init() {
        sourceChanged = 0
        storedChanged = 0
        histogram = Array(repeating: 0, count: Self.binCount)
        visibleByBin = histogram
    }

    /// Tallies `count` elements: `base(i)`, `tuned(i)` are the exact source values,
    /// `halfULP(i)` half an ULP of the stored base code (NaN when it has none) and
    /// `storedMask` the positions whose stored codes changed.
    public init(count: Int, base: (Int) -> Double, tuned: (Int) -> Double, halfULP: (Int) -> Double,
                storedMask: BitMask, signedZeroChanges: Bool) {
        precondition(storedMask.count == count, "mask does not match the element count")
        self.init()
        storedChanged = storedMask.population
        for index in 0..<count {
            let w0 = base(index), w1 = tuned(index)
            let differs = w0.bitPattern != w1.bitPattern && (signedZeroChanges || !(w0 == 0 && w1 == 0))
            if differs { sourceChanged += 1 }
            let half = halfULP(index)
            guard half.isFinite, half > 0 else { continue }
            let ratio = differs ? abs(w1 - w0) / half : 0
            let bin = Self.bin(ofRatio: ratio.isNaN ? .infinity : ratio)
            histogram[bin] += 1
            if storedMask[index] { visibleByBin[bin] += 1 }
        }
    }

    /// The bin of a non-negative ratio.
    public static func bin(ofRatio ratio: Double) -> Int {
        if ratio == 0 { return 0 }
        guard ratio.isFinite else { return binCount - 1 }
        let exponent = Int(ratio.exponent)
        if exponent < lowestExponent { return 1 }
        if exponent > highestExponent { return binCount - 1 }
        return exponent - lowestExponent + 2
    }

    /// Adds another tensor's tally.
    public mutating func add(_ other: PrecisionHiddenChanges) {
        sourceChanged += other.sourceChanged
        storedChanged += other.storedChanged
        for bin in histogram.indices {
            histogram[bin] += other.histogram[bin]
            visibleByBin[bin] += other.visibleByBin[bin]
        }
    }

    /// The JSON of one tensor or the total.
    public func json() -> JSONObject {
        JSONObject([
            ("fp32_changed", .int(sourceChanged)), ("hidden_by_precision", .int(hiddenByPrecision)),
            ("precision_ratio_histogram", .array(histogram.map { .int($0) })),
            ("precision_ratio_visible", .array(visibleByBin.map { .int($0) })),
        ])
    }
}

import PrecLabFormats
import PrecLabSupport

/// What a replay simulates and measures.
public struct ReplayConfiguration: Sendable, Codable {
    /// The storage format (`--dtype`).
    public var format: FloatFormat
    /// Rounding for the `pure` policy (`--rounding`), plus the overflow and subnormal
    /// options that apply to every rounding into storage. The stored base, the master
    /// export and the Kahan buffers always round to nearest-even with these options.
    public var rounding: RoundingOptions
    /// Seed of the stochastic-rounding generator and of the null model.
    public var seed: UInt64
    /// The policies to run, in report order.
    public var policies: [ReplayPolicy]
    /// The null model replayed beside the stream under every policy (`--null`), or nil.
    public var nullModel: NullModelKind?
    /// Whether a null model runs (`nullModel != nil`; setting true selects `.permute`).
    public var nullPermute: Bool {
        get { nullModel != nil }
        set { nullModel = newValue ? (nullModel ?? .permute) : nil }
    }
    /// Count a change between +0 and -0 as an update (`--signed-zero-changes`); by
    /// default it is none, as the paper's Def. 2.1 counts "both zero" as unchanged.
    public var signedZeroChanges: Bool
    /// Bottom-α fractions of |W0| at which the overlap with the visible mask is reported.
    public var lowMagnitudeAlphas: [Double]
    /// Worker threads (results never depend on it).
    public var threads: Int
    /// Every recorded update is multiplied by this factor (in fp32) before it is applied
    /// to any policy, the truth included (`--scale`): a first-order, open-loop
    /// learning-rate counterfactual. 1 replays the stream as recorded.
    public var scale: Float = 1
    /// Also collect the step-level views (changes since the previous step per policy,
    /// and the histogram of |u_t| / half-ULP of the pure policy's stored weight). They
    /// cost a few operations per element and step, so they are off unless asked for.
    public var stepViews = false
    /// Elements per tile of the tile-major traversal (a multiple of 64, so a tile owns
    /// whole words of the per-element "left the rounding interval" bits). Results never
    /// depend on it.
    public var tileSize = ReplayConfiguration.defaultTileSize {
        didSet { tileSize = ReplayConfiguration.validTileSize(tileSize) }
    }

    /// 8192 elements keep every policy's state (at most 18 bytes per element), the
    /// scratch slices and the update slice of a tile well inside a 1 MiB L2.
    public static let defaultTileSize = 8192
    /// Kernel counters are 32-bit, so a tile stays far below 2^32 elements.
    public static let maximumTileSize = 1 << 24

    /// A requested tile size rounded up to a multiple of 64 within 64...maximumTileSize.
    static func validTileSize(_ size: Int) -> Int {
        min(maximumTileSize, max(64, (min(size, maximumTileSize) + 63) / 64 * 64))
    }

    public init(
        format: FloatFormat, rounding: RoundingOptions = RoundingOptions(), seed: UInt64 = 0,
        policies: [ReplayPolicy] = ReplayPolicy.allCases, nullPermute: Bool = false,
        nullModel: NullModelKind? = nil, signedZeroChanges: Bool = false,
        lowMagnitudeAlphas: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9],
        threads: Int = ParallelChunks.threadCount, scale: Float = 1, stepViews: Bool = false,
        tileSize: Int = ReplayConfiguration.defaultTileSize
    ) {
        self.format = format
        self.rounding = rounding
        self.seed = seed
        self.policies = policies.sorted()
        self.nullModel = nullModel ?? (nullPermute ? .permute : nil)
        self.signedZeroChanges = signedZeroChanges
        self.lowMagnitudeAlphas = lowMagnitudeAlphas
        self.threads = threads
        self.scale = scale
        self.stepViews = stepViews
        self.tileSize = ReplayConfiguration.validTileSize(tileSize)
    }

    /// Whether any policy's hidden count needs the "left the rounding interval" bits.
    var tracksInterval: Bool { policies.contains { $0 != .fp32 } }

    /// Nearest-even with the configured overflow and subnormal options.
    var nearestOptions: RoundingOptions { rounding.with(mode: .nearestEven) }

    var stochasticOptions: RoundingOptions { rounding.with(mode: .stochastic) }

    func runs(_ policy: ReplayPolicy) -> Bool { policies.contains(policy) }
}

/// A tensor the replay tracks: its name and row-major shape.
public struct ReplayTensor: Sendable, Equatable, Codable {
    public var name: String
    public var shape: [Int]
    /// The tensor's position in the stream when only some tensors are replayed (a
    /// shard): stochastic-rounding keys and the null model's seed use it, so a tensor
    /// replays to the same bits alone as beside the others. Nil: its position here.
    public var streamIndex: Int?
    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], streamIndex: Int? = nil) {
        self.name = name
        self.shape = shape
        self.streamIndex = streamIndex
    }
}

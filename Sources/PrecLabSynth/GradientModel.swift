import PrecLabSupport

/// Where the fixed signal S lies relative to the top-k singular subspaces U_k, V_k of
/// the stored base W0 (docs/synth-model.md, "Gradients").
public enum SignalPlacement: String, CaseIterable, Sendable {
    /// The block U_⊥ B V_⊥ᵀ: orthogonal to both top-k subspaces.
    case outside = "off"
    /// The block U_k C V_kᵀ: inside both top-k subspaces.
    case inside = "in"
    /// Gaussian factors with no reference to W0.
    case random
}

/// Named presets over the gradient knobs: the profiles of synth model 1, kept so that
/// old command lines mean what they meant.
public enum SynthProfile: String, CaseIterable, Sendable {
    /// placement off, snr 0.1, noise RMS 1e-3, rotation 0.
    case rl
    /// placement in, snr 2, noise RMS 5e-4, rotation 0.
    case sft
    /// snr 0 (no signal), noise RMS 1e-3.
    case noise

    /// The knob values of the preset (every other knob at its default).
    public var gradient: GradientModel {
        switch self {
        case .rl: return GradientModel(placement: .outside, snr: 0.1, noiseRMS: 1e-3)
        case .sft: return GradientModel(placement: .inside, snr: 2, noiseRMS: 5e-4)
        case .noise: return GradientModel(placement: .random, snr: 0, noiseRMS: 1e-3)
        }
    }
}

/// The gradient model G_t = a_s·S + a_n·(D_r N_t D_c): S a fixed rank-r matrix with unit
/// entry RMS, placed against the top-k singular subspaces of the stored base; N_t iid
/// standard normal, fresh at every step; D_r, D_c diagonal log-normal noise scales.
/// Each knob changes one thing (docs/synth-model.md).
public struct GradientModel: Sendable, Equatable {
    /// Which block of W0's singular basis the signal's diagonal part occupies.
    public var placement: SignalPlacement
    /// a_s / a_n, the per-step signal-to-noise ratio of the entry RMS.
    public var snr: Double
    /// a_n, the entry RMS of the noise term (before the row and column scales).
    public var noiseRMS: Double
    /// ρ in [0, 1]: the share of ‖S‖_F² in the off-diagonal blocks U_⊥ᵀ S V_k and
    /// U_kᵀ S V_⊥ (half each), the part of the signal that rotates the top-k subspaces.
    public var rotation: Double
    /// Log-standard-deviation of the noise's row scales (0: every row alike).
    public var rowSpread: Double
    /// Log-standard-deviation of the noise's column scales.
    public var columnSpread: Double
    /// k, the principal rank the signal is placed against (the same k the spectral
    /// metrics use); nil for min(16, max(1, p/2)), p = min(m, n).
    public var principalRank: Int?
    /// r, the rank of each block of S; nil for min(8, the block's limit).
    public var signalRank: Int?

    public init(placement: SignalPlacement, snr: Double, noiseRMS: Double = 1e-3, rotation: Double = 0,
                rowSpread: Double = 0, columnSpread: Double = 0, principalRank: Int? = nil,
                signalRank: Int? = nil) {
        self.placement = placement
        self.snr = snr
        self.noiseRMS = noiseRMS
        self.rotation = rotation
        self.rowSpread = rowSpread
        self.columnSpread = columnSpread
        self.principalRank = principalRank
        self.signalRank = signalRank
    }

    /// a_s, the entry RMS of the signal term.
    public var signalRMS: Double { snr * noiseRMS }

    /// Whether the gradient has a signal term at all.
    public var hasSignal: Bool { snr > 0 }

    /// Whether the signal needs W0's singular vectors.
    var needsPrincipalSubspace: Bool { hasSignal && (placement != .random || rotation > 0) }

    /// The model with the knobs that do not act set to fixed values (everything about
    /// the signal when there is none; the placement when rotation 1 leaves no diagonal
    /// part): two models with equal canonical forms give the same stream bits.
    public var canonical: GradientModel {
        var model = self
        if !hasSignal {
            model.placement = .random
            model.rotation = 0
            model.signalRank = nil
        } else if rotation == 1, placement != .random {
            model.placement = .outside
        }
        return model
    }

    /// The default principal rank for a matrix whose smaller side is p.
    public static func defaultPrincipalRank(smallerSide p: Int) -> Int { min(16, max(1, p / 2)) }

    /// The principal rank k used for an m × n tensor.
    public func principalRank(rows: Int, columns: Int) -> Int {
        principalRank ?? GradientModel.defaultPrincipalRank(smallerSide: min(rows, columns))
    }

    /// The largest signal rank an m × n tensor allows: the diagonal block's dimension
    /// (k inside, p − k outside, p random) and, with rotation, the off-diagonal blocks'.
    func signalRankLimit(rows: Int, columns: Int) -> Int {
        let p = min(rows, columns)
        let k = principalRank(rows: rows, columns: columns)
        var limit: Int
        switch placement {
        case .inside: limit = k
        case .outside: limit = p - k
        case .random: limit = p
        }
        if rotation > 0 { limit = min(limit, k, p - k) }
        return max(1, limit)
    }

    /// The signal rank r used for an m × n tensor.
    public func signalRank(rows: Int, columns: Int) -> Int {
        let limit = signalRankLimit(rows: rows, columns: columns)
        return min(signalRank ?? min(8, limit), limit)
    }

    /// Checks the knobs on their own (names as the experiment files and the CLI share them).
    func validateKnobs() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw PrecLabError.invalidArgument(message) }
        }
        try require(snr.isFinite && snr >= 0 && snr <= 1e6, "snr must lie in [0, 1e6], got \(snr)")
        try require(noiseRMS.isFinite && noiseRMS >= 0 && noiseRMS <= 1e6,
                    "noise RMS must lie in [0, 1e6], got \(noiseRMS)")
        try require(signalRMS <= 1e6, "snr x noise RMS must be at most 1e6, got \(signalRMS)")
        try require(rotation.isFinite && rotation >= 0 && rotation <= 1,
                    "rotation must lie in [0, 1], got \(rotation)")
        try require(rowSpread.isFinite && rowSpread >= 0 && rowSpread <= 4,
                    "row spread must lie in [0, 4], got \(rowSpread)")
        try require(columnSpread.isFinite && columnSpread >= 0 && columnSpread <= 4,
                    "column spread must lie in [0, 4], got \(columnSpread)")
        try require(!(placement == .random && rotation > 0),
                    "rotation needs placement off or in (a random signal has no diagonal block to rotate away from)")
        if let k = principalRank { try require(k >= 1, "k must be at least 1, got \(k)") }
        if let r = signalRank { try require(r >= 1, "signal rank must be at least 1, got \(r)") }
    }

    /// Checks the ranks against an m × n tensor named `name`.
    func validate(rows: Int, columns: Int, name: String) throws {
        try validateKnobs()
        let p = min(rows, columns)
        guard p >= 2 else {
            throw PrecLabError.invalidArgument("tensor \(name): synth needs matrices with both sides >= 2, got \(rows)x\(columns)")
        }
        if let k = principalRank, !(1 ..< p).contains(k) {
            throw PrecLabError.invalidArgument("tensor \(name): k = \(k) must be between 1 and \(p - 1) for \(rows)x\(columns)")
        }
        if let r = signalRank, hasSignal {
            let limit = signalRankLimit(rows: rows, columns: columns)
            if r > limit {
                let k = principalRank(rows: rows, columns: columns)
                throw PrecLabError.invalidArgument("tensor \(name): signal rank \(r) must be between 1 and \(limit) for placement \(placement.rawValue)\(rotation > 0 ? " with rotation" : "") and k = \(k) on \(rows)x\(columns)")
            }
        }
    }
}

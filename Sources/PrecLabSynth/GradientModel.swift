import CLapack
import PrecLabSupport

/// Where the simulated gradient's fixed signal lives (docs/synth-model.md).
public enum SynthProfile: String, CaseIterable, Sendable {
    /// A weak signal, orthogonal to the top-k singular subspaces of W0, under strong noise.
    case rl
    /// A stronger signal inside the top-k singular subspaces of W0.
    case sft
    /// No signal: iid noise only.
    case noise
}

/// The gradient model G_t = a_s·S + a_n·N_t: S a fixed rank-r matrix with unit entry
/// RMS placed by the profile, N_t iid standard normal, fresh at every step.
public struct GradientModel: Sendable, Equatable {
    public var profile: SynthProfile
    /// a_s, the entry RMS of the signal term.
    public var signalRMS: Double
    /// a_n, the entry RMS of the noise term.
    public var noiseRMS: Double
    /// k, the principal rank the signal is placed against; nil for max(1, min(m,n)/16).
    public var principalRank: Int?
    /// r, the rank of S; nil for min(8, k) (and at most min(m,n) − k for rl).
    public var signalRank: Int?

    public init(profile: SynthProfile, signalRMS: Double? = nil, noiseRMS: Double? = nil,
                principalRank: Int? = nil, signalRank: Int? = nil) {
        self.profile = profile
        let defaults = GradientModel.defaultAmplitudes(profile)
        self.signalRMS = signalRMS ?? defaults.signal
        self.noiseRMS = noiseRMS ?? defaults.noise
        self.principalRank = principalRank
        self.signalRank = signalRank
    }

    /// Default (a_s, a_n): rl 1e-4 under 1e-3 noise (signal-to-noise 0.1 per step),
    /// sft 1e-3 over 5e-4 noise (2.0), noise 0 and 1e-3.
    public static func defaultAmplitudes(_ profile: SynthProfile) -> (signal: Double, noise: Double) {
        switch profile {
        case .rl: return (1e-4, 1e-3)
        case .sft: return (1e-3, 5e-4)
        case .noise: return (0, 1e-3)
        }
    }

    /// The principal rank k used for an m × n tensor.
    public func principalRank(rows: Int, columns: Int) -> Int {
        let p = min(rows, columns)
        return min(principalRank ?? max(1, p / 16), p - 1)
    }

    /// The signal rank r used for an m × n tensor.
    public func signalRank(rows: Int, columns: Int) -> Int {
        let p = min(rows, columns)
        let k = principalRank(rows: rows, columns: columns)
        let limit = profile == .rl ? p - k : k
        return max(1, min(signalRank ?? min(8, k), limit))
    }

    /// Checks the ranks against an m × n tensor named `name`.
    func validate(rows: Int, columns: Int, name: String) throws {
        let p = min(rows, columns)
        guard p >= 2 else {
            throw PrecLabError.invalidArgument("tensor \(name): synth needs matrices with both sides >= 2, got \(rows)x\(columns)")
        }
        if let k = principalRank, !(1 ..< p).contains(k) {
            throw PrecLabError.invalidArgument("tensor \(name): principal rank \(k) must be between 1 and \(p - 1) for \(rows)x\(columns)")
        }
        if let r = signalRank {
            let k = principalRank(rows: rows, columns: columns)
            let limit = profile == .rl ? p - k : k
            if !(1 ... limit).contains(r) {
                throw PrecLabError.invalidArgument("tensor \(name): signal rank \(r) must be between 1 and \(limit) for the \(profile.rawValue) profile with k = \(k) on \(rows)x\(columns)")
            }
        }
    }
}

enum GradientSignal {
    /// The fixed signal S (row-major m × n, entry RMS 1) for a profile, or nil for the
    /// noise profile. sft: S = (U_k C)(V_k D)ᵀ with C, D Gaussian k × r, so S lies in the
    /// top-k subspaces on both sides. rl: S = (P⊥ G)(Q⊥ H)ᵀ with G, H Gaussian and
    /// P⊥ = I − U_k U_kᵀ, Q⊥ = I − V_k V_kᵀ, so S is orthogonal to both top-k subspaces.
    static func make(profile: SynthProfile, principal: PrincipalSubspace, signalRank r: Int,
                     seed: UInt64, tensor: Int) -> [Float]? {
        let m = principal.rows, n = principal.columns, k = principal.rank
        let leftRandom = CounterRandom(seed: seed, tensor: tensor, purpose: .signalLeft)
        let rightRandom = CounterRandom(seed: seed, tensor: tensor, purpose: .signalRight)
        let a: [Double], b: [Double]
        switch profile {
        case .noise:
            return nil
        case .sft:
            a = multiply(principal.left, rows: m, inner: k, by: leftRandom.gaussianArray(count: k * r), columns: r)
            b = multiply(principal.right, rows: n, inner: k, by: rightRandom.gaussianArray(count: k * r), columns: r)
        case .rl:
            a = projectOff(principal.left, rows: m, rank: k, leftRandom.gaussianArray(count: m * r), columns: r)
            b = projectOff(principal.right, rows: n, rank: k, rightRandom.gaussianArray(count: n * r), columns: r)
        }
        // Sᵀ (n × m, column-major) = B·Aᵀ; its memory is S row-major.
        var s = [Double](repeating: 0, count: m * n)
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeBufferPointer { ap in
                s.withUnsafeMutableBufferPointer { sp in
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(r),
                                1.0, bp.baseAddress, Int32(n), ap.baseAddress, Int32(m),
                                0.0, sp.baseAddress, Int32(n))
                }
            }
        }
        var sumOfSquares = 0.0
        for value in s { sumOfSquares += value * value }  // fixed order
        let scale = sumOfSquares > 0 ? (Double(m * n) / sumOfSquares).squareRoot() : 0
        return s.map { Float($0 * scale) }
    }

    /// X (rows × inner) · Y (inner × columns), all column-major.
    private static func multiply(_ x: [Double], rows: Int, inner: Int, by y: [Double],
                                 columns: Int) -> [Double] {
        var result = [Double](repeating: 0, count: rows * columns)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                result.withUnsafeMutableBufferPointer { rp in
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns),
                                Int32(inner), 1.0, xp.baseAddress, Int32(rows), yp.baseAddress,
                                Int32(inner), 0.0, rp.baseAddress, Int32(rows))
                }
            }
        }
        return result
    }

    /// (I − Q Qᵀ)·G for Q (rows × rank) with orthonormal columns, applied twice so the
    /// result is orthogonal to Q to working precision ("twice is enough").
    private static func projectOff(_ q: [Double], rows: Int, rank: Int, _ g: [Double],
                                   columns: Int) -> [Double] {
        var result = g
        var coefficients = [Double](repeating: 0, count: rank * columns)
        for _ in 0 ..< 2 {
            q.withUnsafeBufferPointer { qp in
                result.withUnsafeMutableBufferPointer { rp in
                    coefficients.withUnsafeMutableBufferPointer { cp in
                        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(columns),
                                    Int32(rows), 1.0, qp.baseAddress, Int32(rows), rp.baseAddress,
                                    Int32(rows), 0.0, cp.baseAddress, Int32(rank))
                        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns),
                                    Int32(rank), -1.0, qp.baseAddress, Int32(rows), cp.baseAddress,
                                    Int32(rank), 1.0, rp.baseAddress, Int32(rows))
                    }
                }
            }
        }
        return result
    }
}

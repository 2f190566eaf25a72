import Foundation
import PrecLabSupport

/// How the top-k singular triplets are found.
public enum TopSVDMethod: String, Sendable, Codable {
    /// Randomized when `useRandomized` says so, exact otherwise.
    case automatic
    /// The full thin SVD, truncated (the default wherever angles or masks are reported:
    /// a randomized sketch can miss a rotation by degrees when the gap is small).
    case exact
    /// Halko-Martinsson-Tropp randomized range finder with power iterations; reported
    /// angles come with `SubspaceErrorEstimate`s.
    case randomized
}

/// Settings of the randomized top-k SVD (Halko, Martinsson, Tropp, SIAM Review 2011,
/// algorithms 4.4 and 5.1).
public struct RandomizedSVDOptions: Sendable, Equatable, Codable {
    /// Extra columns of the Gaussian test matrix beyond k.
    public var oversampling: Int
    /// Power iterations (A Aᵀ)^q A Ω, each followed by a QR re-orthonormalisation.
    public var powerIterations: Int
    /// Seed of the Gaussian test matrix. The same seed is used for base and tuned
    /// matrices so that their approximations are correlated, not independent.
    public var seed: UInt64

    public init(oversampling: Int = 10, powerIterations: Int = 5, seed: UInt64 = 0x5EED_0F_C0FFEE) {
        self.oversampling = oversampling
        self.powerIterations = powerIterations
        self.seed = seed
    }
}

extension LinearAlgebra {
    /// Whether the randomized method is used for the top `k` triplets of an m×n matrix
    /// under `.automatic`: when k + oversampling <= min(m, n) / 4, i.e. the sketch is at
    /// most a quarter of the smaller dimension, where it is clearly cheaper than a full
    /// SVD.
    public static func useRandomized(rows: Int, columns: Int, k: Int, options: RandomizedSVDOptions) -> Bool {
        4 * (k + options.oversampling) <= min(rows, columns)
    }

    /// The top `k` singular triplets of `matrix` (k is clamped to min(m, n)).
    public static func topSVD(
        of matrix: Matrix, k: Int, method: TopSVDMethod = .exact,
        options: RandomizedSVDOptions = RandomizedSVDOptions()
    ) throws -> (svd: SVD, randomized: Bool) {
        let kept = max(0, min(k, matrix.rows, matrix.columns))
        let randomized: Bool
        switch method {
        case .exact: randomized = false
        case .randomized: randomized = kept + options.oversampling <= min(matrix.rows, matrix.columns)
        case .automatic: randomized = useRandomized(rows: matrix.rows, columns: matrix.columns, k: kept, options: options)
        }
        if randomized {
            return (try randomizedSVD(of: matrix, k: kept, options: options), true)
        }
        return (try thinSVD(of: matrix).truncated(to: kept), false)
    }

    /// The randomized top-k SVD: Y = A Ω with a seeded Gaussian Ω (n×(k+p)), q power
    /// iterations with QR after every product (keeps the small singular directions
    /// from being lost to rounding), then the exact SVD of the small Qᵀ A.
    public static func randomizedSVD(
        of matrix: Matrix, k: Int, options: RandomizedSVDOptions = RandomizedSVDOptions()
    ) throws -> SVD {
        let m = matrix.rows, n = matrix.columns
        let sketch = k + options.oversampling
        precondition(k >= 0 && sketch <= min(m, n), "sketch size exceeds the matrix")
        try requireFinite(matrix)
        let omega = GaussianSampler(seed: options.seed).matrix(rows: n, columns: sketch)
        var q = try orthonormalBasis(of: BLAS.multiply(matrix, omega))
        for _ in 0..<options.powerIterations {
            let z = try orthonormalBasis(of: BLAS.multiply(matrix, transposeA: true, q))
            q = try orthonormalBasis(of: BLAS.multiply(matrix, z))
        }
        let small = BLAS.multiply(q, transposeA: true, matrix)  // sketch×n
        let smallSVD = try thinSVD(of: small)
        var result = SVD(u: BLAS.multiply(q, smallSVD.u), singularValues: smallSVD.singularValues,
                         v: smallSVD.v).truncated(to: k)
        result.fixSigns()
        return result
    }
}

/// An a-posteriori bound on how far computed top-k singular subspaces (Û, V̂ with
/// approximate singular values Σ̂) are from the exact ones of a matrix A.
///
/// Wedin's sin θ theorem in residual form (Wedin 1972; Stewart & Sun, Matrix
/// Perturbation Theory, Thm V.4.4): with R = A V̂ − Û Σ̂, S = Aᵀ Û − V̂ Σ̂ and
/// δ = σ̂_k − σ_{k+1}(A) > 0 (σ̂_k the smallest computed value, σ_{k+1} the exact next
/// singular value of A),
///     max(sin θ_max(U_k, Û), sin θ_max(V_k, V̂)) <= max(‖R‖₂, ‖S‖₂) / δ.
/// When δ <= 0 (or the ratio reaches 1) the bound says nothing.
public struct SubspaceErrorEstimate: Sendable, Equatable, Codable {
    /// max(‖A V̂ − Û Σ̂‖₂, ‖Aᵀ Û − V̂ Σ̂‖₂).
    public let residual: Double
    /// σ̂_k − σ_{k+1}(A).
    public let gap: Double

    public init(residual: Double, gap: Double) {
        self.residual = residual
        self.gap = gap
    }

    /// residual / gap, the bound on sin θ_max; nil when the gap is not positive.
    public var sineBound: Double? { gap > 0 ? residual / gap : nil }

    /// arcsin(sineBound) in radians, the bound on the largest angle between the
    /// computed and the exact subspace; nil when the bound says nothing (sine >= 1).
    public var angleBound: Double? {
        guard let sine = sineBound, sine < 1 else { return nil }
        return asin(sine)
    }
}

extension LinearAlgebra {
    /// The residual and gap of computed top triplets `top` of `matrix`, given the exact
    /// (k+1)-th singular value of the matrix (0 when k = min(m, n)).
    public static func subspaceErrorEstimate(of matrix: Matrix, top: SVD, nextSingularValue: Double) throws
        -> SubspaceErrorEstimate
    {
        let k = top.rank
        guard k > 0 else { return SubspaceErrorEstimate(residual: 0, gap: .infinity) }
        var uSigma = top.u, vSigma = top.v
        for j in 0..<k {
            let sigma = top.singularValues[j]
            for i in 0..<uSigma.rows { uSigma.storage[i + j * uSigma.rows] *= sigma }
            for i in 0..<vSigma.rows { vSigma.storage[i + j * vSigma.rows] *= sigma }
        }
        let r = BLAS.multiply(matrix, top.v) - uSigma
        let s = BLAS.multiply(matrix, transposeA: true, top.u) - vSigma
        let residual = max(try singularValues(of: r).first ?? 0, try singularValues(of: s).first ?? 0)
        return SubspaceErrorEstimate(residual: residual, gap: top.singularValues[k - 1] - nextSingularValue)
    }
}

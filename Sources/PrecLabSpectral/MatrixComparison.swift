import Foundation
import PrecLabSupport

/// Options of the per-matrix spectral comparison. Defaults follow the follow-up study
/// the science notes cite for masks (rank 64, α = 0.5); k = 64 keeps angles cheap.
public struct SpectralOptions: Sendable, Equatable, Codable {
    /// Dimension of the top singular subspaces compared by principal angles, and of
    /// the subspace the update energy is measured in.
    public var k: Int
    /// Rank of the reconstruction W0^(rank) whose top-α magnitudes form the principal mask.
    public var rank: Int
    /// Fraction of entries in the principal and low-magnitude masks.
    public var alpha: Double
    /// Exact (the default) or randomized top-k SVD (`.automatic`: randomized when
    /// 4·(max(k, rank) + oversampling) <= min(m, n)). Randomized triplets come with an
    /// a-posteriori error estimate, and angles are refused when it cannot bound their
    /// error below `MatrixComparison.angleToleranceDegrees`.
    public var method: TopSVDMethod
    public var randomized: RandomizedSVDOptions

    public init(k: Int = 64, rank: Int = 64, alpha: Double = 0.5, method: TopSVDMethod = .exact,
                randomized: RandomizedSVDOptions = RandomizedSVDOptions()) {
        self.k = k
        self.rank = rank
        self.alpha = alpha
        self.method = method
        self.randomized = randomized
    }
}

/// Every spectral metric of one weight matrix W0 -> W1 (see docs/metrics.md).
public struct MatrixComparison: Sendable, Codable {
    public let rows: Int
    public let columns: Int
    /// The subspace dimension and reconstruction rank actually used (clamped to min(m, n)).
    public let k: Int
    public let rank: Int
    public let alpha: Double
    /// Whether the top triplets came from the randomized SVD.
    public let randomized: Bool
    /// For randomized triplets: the a-posteriori error estimates of W0's and W1's top-k
    /// subspaces (nil for the exact SVD, or when no angle is defined).
    public let subspaceErrorBase: SubspaceErrorEstimate?
    public let subspaceErrorTuned: SubspaceErrorEstimate?
    /// Why the principal angles are not reported although they are defined (randomized
    /// SVD whose error bound is not below `angleToleranceDegrees`); nil otherwise.
    public let angleNote: String?

    /// Full spectra, descending.
    public let singularValuesBase: [Double]
    public let singularValuesTuned: [Double]
    /// ||σ(W1) - σ(W0)||₂ / ||σ(W0)||₂; nil when W0 = 0.
    public let nss: Double?
    /// Principal angles (radians, ascending) between the top-k left (U) and right (V)
    /// singular subspaces of W0 and W1.
    public let anglesU: [Double]
    public let anglesV: [Double]

    /// The update mask's population (entries that changed).
    public let changed: Int
    public let principalMaskSize: Int
    public let lowMaskSize: Int
    public let controlMaskSize: Int
    /// |M• ∩ M| / |M| for the principal, low-magnitude and control masks; nil when
    /// nothing changed. Random baseline: α (control: its own density).
    public let principalOverlap: Double?
    public let lowOverlap: Double?
    public let controlOverlap: Double?
    /// The magnitude-stratified expectations of the three overlaps: the overlap an
    /// update mask with the same change count per binade of the stored W0, but
    /// otherwise unrelated to the mask, would have (`MaskStatistics.stratifiedOverlap`).
    /// Nil where the observed overlap is nil.
    public let principalOverlapMagnitude: Double?
    public let lowOverlapMagnitude: Double?
    public let controlOverlapMagnitude: Double?

    /// ||U_k U_kᵀ ΔW V_k V_kᵀ||_F² / ||ΔW||_F² with U_k, V_k of W0; nil when ΔW = 0.
    public let energyTopK: Double?
    public let deltaFrobenius: Double
    public let deltaSpectral: Double
    /// ||ΔW||_F² / ||ΔW||₂²; nil when ΔW = 0.
    public let stableRank: Double?
    public let baseFrobenius: Double
    public let bounds: SpectralBounds

    /// Summaries of the update mask's row ratios ρ_i and column ratios κ_j.
    public let rowRatios: RatioSummary
    public let columnRatios: RatioSummary

    /// Max and mean principal angles in degrees; nil when the top subspaces are not
    /// defined (k = 0, or W0 or W1 is the zero matrix, whose singular vectors are arbitrary).
    public var angleUMaxDegrees: Double? { anglesU.last.map(degrees) }
    public var angleVMaxDegrees: Double? { anglesV.last.map(degrees) }
    public var angleUMeanDegrees: Double? { anglesU.isEmpty ? nil : degrees(mean(anglesU)) }
    public var angleVMeanDegrees: Double? { anglesV.isEmpty ? nil : degrees(mean(anglesV)) }
    /// max(angleUMaxDegrees, angleVMaxDegrees), nil when undefined.
    public var angleMaxDegrees: Double? {
        guard let u = angleUMaxDegrees, let v = angleVMaxDegrees else { return nil }
        return max(u, v)
    }
    /// Density of the control mask M_princ ∩ complement(M_low) (its random baseline).
    public var controlDensity: Double {
        rows * columns == 0 ? 0 : Double(controlMaskSize) / Double(rows * columns)
    }
    /// The random (independent-mask) baselines of the overlaps: α for the principal
    /// and low-magnitude masks, the control mask's density for the control; nil where
    /// the observed overlap is nil.
    public var principalOverlapRandom: Double? { principalOverlap == nil ? nil : alpha }
    public var lowOverlapRandom: Double? { lowOverlap == nil ? nil : alpha }
    public var controlOverlapRandom: Double? { controlOverlap == nil ? nil : controlDensity }

    /// Largest error bound (degrees) under which randomized angles are still reported.
    public static let angleToleranceDegrees = 0.01

    /// Bound (degrees) on the error of every reported principal angle from the
    /// randomized triplets: θ_err(W0) + θ_err(W1) (see `SubspaceErrorEstimate`); nil for
    /// the exact SVD and +inf when a gap is not positive.
    public var angleErrorBoundDegrees: Double? {
        guard let base = subspaceErrorBase, let tuned = subspaceErrorTuned else { return nil }
        guard let a = base.angleBound, let b = tuned.angleBound else { return .infinity }
        return degrees(a + b)
    }

    /// Compares W0 (`base`) with W1 (`tuned`).
    ///
    /// `updateMask` is M over row-major positions, normally from bit inequality of the
    /// stored low-precision codes; when nil, M is where the float64 values differ.
    /// Throws bad data for non-finite input or a LAPACK failure.
    ///
    /// The OpenBLAS thread count is first set to `BLASThreads.threads(rows:columns:)`
    /// (when it is not already that), so a direct caller gets the same bits on any
    /// machine. Several comparisons at once must go through `SpectralScheduler`, which
    /// sets the same counts and runs large matrices one at a time.
    ///
    /// `strata` are the binade strata of the stored W0 in the storage format (for the
    /// magnitude baselines); when nil, W0's values are stratified as fp32 values.
    public init(base: Matrix, tuned: Matrix, updateMask: BitMask? = nil, strata: MagnitudeStrata? = nil,
                options: SpectralOptions = SpectralOptions()) throws {
        precondition(base.rows == tuned.rows && base.columns == tuned.columns, "shape mismatch")
        precondition(options.alpha >= 0 && options.alpha <= 1, "alpha outside [0, 1]")
        let m = base.rows, n = base.columns
        let blasThreads = BLASThreads.threads(rows: m, columns: n)
        if BLASThreads.current != blasThreads { BLASThreads.set(blasThreads) }
        let full = min(m, n)
        rows = m
        columns = n
        alpha = options.alpha
        k = max(0, min(options.k, full))
        rank = max(0, min(options.rank, full))
        try LinearAlgebra.requireFinite(base)
        try LinearAlgebra.requireFinite(tuned)

        let mask = updateMask ?? MatrixComparison.valueMask(base, tuned)
        precondition(mask.count == m * n, "update mask does not match the shape")

        // Top triplets of both matrices with one method, one sketch size and one seed,
        // so that approximation errors of the randomized path are shared, not added.
        let count = max(k, rank)
        let useRandomized: Bool
        switch options.method {
        case .exact: useRandomized = false
        case .randomized: useRandomized = count + options.randomized.oversampling <= full
        case .automatic:
            useRandomized = LinearAlgebra.useRandomized(rows: m, columns: n, k: count, options: options.randomized)
        }
        randomized = useRandomized
        let topBase: SVD, topTuned: SVD
        if useRandomized {
            singularValuesBase = try LinearAlgebra.singularValues(of: base)
            singularValuesTuned = try LinearAlgebra.singularValues(of: tuned)
            topBase = try LinearAlgebra.randomizedSVD(of: base, k: count, options: options.randomized)
            topTuned = try LinearAlgebra.randomizedSVD(of: tuned, k: count, options: options.randomized)
        } else {
            let fullBase = try LinearAlgebra.thinSVD(of: base)
            let fullTuned = try LinearAlgebra.thinSVD(of: tuned)
            singularValuesBase = fullBase.singularValues
            singularValuesTuned = fullTuned.singularValues
            topBase = fullBase.truncated(to: count)
            topTuned = fullTuned.truncated(to: count)
        }

        let baseNorm = scaledNorm(singularValuesBase)
        let spectralShift = scaledNorm(zip(singularValuesTuned, singularValuesBase).map { $0 - $1 })
        nss = baseNorm > 0 ? spectralShift / baseNorm : nil
        baseFrobenius = base.frobeniusNorm

        // A zero matrix has no principal directions (LAPACK returns arbitrary singular
        // vectors for it, e.g. a zero-initialised LoRA B), so angles, the principal mask
        // and the top-k energy are undefined there rather than computed from noise.
        let subspacesDefined = k > 0 && (singularValuesBase.first ?? 0) > 0 && (singularValuesTuned.first ?? 0) > 0
        let subspaceBase = topBase.truncated(to: k)
        let subspaceTuned = topTuned.truncated(to: k)
        if useRandomized && subspacesDefined {
            let errorBase = try LinearAlgebra.subspaceErrorEstimate(
                of: base, top: subspaceBase, nextSingularValue: singularValuesBase.count > k ? singularValuesBase[k] : 0)
            let errorTuned = try LinearAlgebra.subspaceErrorEstimate(
                of: tuned, top: subspaceTuned, nextSingularValue: singularValuesTuned.count > k ? singularValuesTuned[k] : 0)
            subspaceErrorBase = errorBase
            subspaceErrorTuned = errorTuned
        } else {
            subspaceErrorBase = nil
            subspaceErrorTuned = nil
        }
        var refusal: String? = nil
        if let base = subspaceErrorBase, let tuned = subspaceErrorTuned {
            let bound = (base.angleBound.flatMap { a in tuned.angleBound.map { degrees(a + $0) } }) ?? .infinity
            if !(bound < MatrixComparison.angleToleranceDegrees) {
                refusal = "randomized SVD: the a-posteriori bound on the angle error ("
                    + (bound.isFinite ? "\(bound)°" : "none: a gap sigma_k - sigma_k+1 is not positive")
                    + ") is not below \(MatrixComparison.angleToleranceDegrees)°, so angles are not reported; the exact SVD gives them"
            }
        }
        angleNote = refusal
        let anglesShown = subspacesDefined && refusal == nil
        anglesU = anglesShown ? try PrincipalAngles.between(subspaceBase.u, subspaceTuned.u) : []
        anglesV = anglesShown ? try PrincipalAngles.between(subspaceBase.v, subspaceTuned.v) : []

        // Masks.
        changed = mask.population
        let principal = MagnitudeMasks.largest(topBase.truncated(to: rank).reconstruction().rowMajorMagnitudes,
                                               fraction: options.alpha)
        let low = MagnitudeMasks.smallest(base.rowMajorMagnitudes, fraction: options.alpha)
        let control = principal.subtracting(low)
        principalMaskSize = principal.population
        lowMaskSize = low.population
        controlMaskSize = control.population
        let principalDefined = rank > 0 && (singularValuesBase.first ?? 0) > 0
        principalOverlap = principalDefined ? MaskStatistics.overlap(principal, with: mask) : nil
        lowOverlap = MaskStatistics.overlap(low, with: mask)
        controlOverlap = principalDefined ? MaskStatistics.overlap(control, with: mask) : nil
        let strata = strata ?? MagnitudeStrata(storedMatrix: base, minimumNormal: Double(Float.leastNormalMagnitude))
        precondition(strata.count == m * n, "strata do not match the shape")
        let sizes = strata.sizes
        let changedPerStratum = strata.counts(in: mask)
        func expected(_ selection: BitMask) -> Double? {
            StratifiedBaseline.overlap(sizes: sizes, changed: changedPerStratum, selected: strata.counts(in: selection))
        }
        principalOverlapMagnitude = principalDefined ? expected(principal) : nil
        lowOverlapMagnitude = expected(low)
        controlOverlapMagnitude = principalDefined ? expected(control) : nil
        rowRatios = RatioSummary(MaskStatistics.rowRatios(mask, rows: m, columns: n))
        columnRatios = RatioSummary(MaskStatistics.columnRatios(mask, rows: m, columns: n))

        // The update itself.
        let delta = tuned - base
        let deltaValues = try LinearAlgebra.singularValues(of: delta)
        deltaFrobenius = delta.frobeniusNorm
        deltaSpectral = deltaValues.first ?? 0
        stableRank = deltaSpectral > 0 ? (deltaFrobenius * deltaFrobenius) / (deltaSpectral * deltaSpectral) : nil
        if deltaFrobenius > 0 && subspacesDefined {
            // ||U_k U_kᵀ E V_k V_kᵀ||_F = ||U_kᵀ E V_k||_F because U_k, V_k are orthonormal.
            let projected = BLAS.multiply(BLAS.multiply(subspaceBase.u, transposeA: true, delta), subspaceBase.v)
            let ratio = projected.frobeniusNorm / deltaFrobenius
            energyTopK = ratio * ratio
        } else {
            energyTopK = deltaFrobenius > 0 && k == 0 ? 0 : nil
        }

        bounds = SpectralBounds(
            sigmaBase: singularValuesBase, sigmaTuned: singularValuesTuned, k: k,
            maxAngleU: refusal == nil ? anglesU.last ?? 0 : nil, maxAngleV: refusal == nil ? anglesV.last ?? 0 : nil,
            deltaSpectral: deltaSpectral, deltaFrobenius: deltaFrobenius,
            baseFrobenius: baseFrobenius, nss: nss)
    }

    /// M where the float64 values differ bit for bit (row-major positions), except that
    /// +0 and -0 are the same value (Def. 2.1 of [P]).
    public static func valueMask(_ base: Matrix, _ tuned: Matrix) -> BitMask {
        var mask = BitMask(count: base.elementCount)
        for i in 0..<base.rows {
            for j in 0..<base.columns where base[i, j].bitPattern != tuned[i, j].bitPattern
                && !(base[i, j] == 0 && tuned[i, j] == 0) {
                mask.insert(i * base.columns + j)
            }
        }
        return mask
    }
}

@inline(__always) func degrees(_ radians: Double) -> Double { radians * 180 / Double.pi }

func mean(_ values: [Double]) -> Double {
    values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
}

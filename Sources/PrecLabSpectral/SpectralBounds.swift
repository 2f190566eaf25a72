import Foundation

/// One perturbation inequality evaluated on a matrix pair: the measured left side
/// beside the theoretical right side.
public struct BoundCheck: Sendable, Equatable, Codable {
    public let measured: Double
    /// The right-hand side; nil when the bound does not apply (e.g. Wedin with k equal
    /// to the full rank, so there is no (k+1)-th singular value).
    public let bound: Double?
    /// The bound says nothing (Wedin: the gap is not positive or the bound is >= 1).
    public let vacuous: Bool

    /// Whether measured <= bound, allowing `tolerance` for rounding in float64.
    public func holds(tolerance: Double) -> Bool {
        guard let bound else { return true }
        return measured <= bound + tolerance
    }
}

/// The consistency bounds of the science notes, computed beside the measurements
/// (σ are singular values, descending; E = ΔW = W1 - W0):
/// - Weyl: max_i |σ_i(W1) - σ_i(W0)| <= ||E||₂
/// - Mirsky: sqrt(Σ_i (σ_i(W1) - σ_i(W0))²) <= ||E||_F, hence NSS <= ||E||_F / ||W0||_F
/// - Wedin: max(sin θ_max(U_k), sin θ_max(V_k)) <= ||E||₂ / δ with the gap
///   δ = σ_k(W1) - σ_{k+1}(W0) (Wedin 1972; Stewart & Sun, Thm V.4.4). The notes write
///   the gap as σ_k(W0) - σ_{k+1}(W0); that form is only first-order in ||E|| and can
///   fail for large perturbations, so the rigorous gap is used for the check and the
///   W0 gap is reported beside it. Vacuous when δ <= 0 or the bound is >= 1.
/// - Ky Fan: |Σ_{i<=k} σ_i(W1) - Σ_{i<=k} σ_i(W0)| <= k·||E||₂
public struct SpectralBounds: Sendable, Equatable, Codable {
    public let weyl: BoundCheck
    public let mirsky: BoundCheck
    public let nssMirsky: BoundCheck
    public let wedinU: BoundCheck
    public let wedinV: BoundCheck
    public let kyFan: BoundCheck
    /// σ_k(W0) - σ_{k+1}(W0), the gap as the science notes write it (nil when k is the
    /// full rank).
    public let baseGap: Double?
    /// σ_k(W1) - σ_{k+1}(W0), the gap Wedin's theorem uses.
    public let wedinGap: Double?

    /// Evaluates every bound. `sigmaBase`/`sigmaTuned` are full spectra (descending),
    /// `maxAngleU`/`maxAngleV` the largest principal angles (radians) of the top-k
    /// subspaces (nil when they were not measured: Wedin is then reported without a
    /// bound), `deltaSpectral`/`deltaFrobenius` the norms of E, `baseFrobenius`
    /// ||W0||_F and `nss` the measured NSS.
    public init(
        sigmaBase: [Double], sigmaTuned: [Double], k: Int, maxAngleU: Double?, maxAngleV: Double?,
        deltaSpectral: Double, deltaFrobenius: Double, baseFrobenius: Double, nss: Double?
    ) {
        precondition(sigmaBase.count == sigmaTuned.count, "spectra of different lengths")
        var largest = 0.0
        var squares: [Double] = []
        squares.reserveCapacity(sigmaBase.count)
        for (base, tuned) in zip(sigmaBase, sigmaTuned) {
            largest = max(largest, abs(tuned - base))
            squares.append(tuned - base)
        }
        weyl = BoundCheck(measured: largest, bound: deltaSpectral, vacuous: false)
        mirsky = BoundCheck(measured: scaledNorm(squares), bound: deltaFrobenius, vacuous: false)
        if let nss, baseFrobenius > 0 {
            nssMirsky = BoundCheck(measured: nss, bound: deltaFrobenius / baseFrobenius, vacuous: false)
        } else {
            nssMirsky = BoundCheck(measured: nss ?? 0, bound: nil, vacuous: true)
        }
        let kept = min(k, sigmaBase.count)
        let topBase = sigmaBase.prefix(kept).reduce(0, +)
        let topTuned = sigmaTuned.prefix(kept).reduce(0, +)
        kyFan = BoundCheck(measured: abs(topTuned - topBase), bound: Double(kept) * deltaSpectral, vacuous: false)

        if kept >= 1 && kept < sigmaBase.count {
            let gapBase = sigmaBase[kept - 1] - sigmaBase[kept]
            let gap = sigmaTuned[kept - 1] - sigmaBase[kept]
            baseGap = gapBase
            wedinGap = gap
            let bound: Double = gap > 0 ? deltaSpectral / gap : .infinity
            let vacuous = !(gap > 0) || bound >= 1
            if let maxAngleU, let maxAngleV {
                wedinU = BoundCheck(measured: sin(maxAngleU), bound: bound, vacuous: vacuous)
                wedinV = BoundCheck(measured: sin(maxAngleV), bound: bound, vacuous: vacuous)
            } else {
                wedinU = BoundCheck(measured: 0, bound: nil, vacuous: true)
                wedinV = BoundCheck(measured: 0, bound: nil, vacuous: true)
            }
        } else {
            baseGap = nil
            wedinGap = nil
            wedinU = BoundCheck(measured: sin(maxAngleU ?? 0), bound: nil, vacuous: true)
            wedinV = BoundCheck(measured: sin(maxAngleV ?? 0), bound: nil, vacuous: true)
        }
    }
}


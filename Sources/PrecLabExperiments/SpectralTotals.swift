import PrecLabSpectral

/// The magnitude-stratified overlap baselines of issue 12 (the overlap an update mask
/// with the same change count per binade of the stored W0 would have), as
/// `MatrixComparison` reports them. On a spectral library without them, these defaults
/// give nil and the reports leave the magnitude columns empty; once `MatrixComparison`
/// has its own `principalOverlapMagnitude` etc., those witness the requirements (a
/// type's own members take precedence over a protocol extension's) and the reports
/// show them with no change here.
protocol OverlapMagnitudeBaselines {
    var principalOverlapMagnitude: Double? { get }
    var lowOverlapMagnitude: Double? { get }
    var controlOverlapMagnitude: Double? { get }
}

extension OverlapMagnitudeBaselines {
    var principalOverlapMagnitude: Double? { nil }
    var lowOverlapMagnitude: Double? { nil }
    var controlOverlapMagnitude: Double? { nil }
}

extension MatrixComparison: OverlapMagnitudeBaselines {}

/// Spectral metrics over the matrices of a grid point (the TOTAL rows): every metric is
/// the mean over the matrices weighted by parameter count (over the matrices where it
/// is defined), and the largest angle of any matrix has its own field.
struct SpectralTotals {
    /// Σ|M| over the matrices.
    var changed = 0
    var nss: Double?
    /// Weighted means of each matrix's largest and mean principal angle (degrees).
    var angleUMax: Double?
    var angleVMax: Double?
    var angleUMean: Double?
    var angleVMean: Double?
    /// The largest principal angle of any matrix, left and right.
    var angleUMaxOfAll: Double?
    var angleVMaxOfAll: Double?
    var principalOverlap: Double?
    var principalOverlapRandom: Double?
    var principalOverlapMagnitude: Double?
    var lowOverlap: Double?
    var lowOverlapRandom: Double?
    var lowOverlapMagnitude: Double?
    var controlOverlap: Double?
    var controlOverlapRandom: Double?
    var controlOverlapMagnitude: Double?
    var energyTopK: Double?

    /// The larger of the two sides' weighted-mean largest angles.
    var angleMax: Double? { largest(angleUMax, angleVMax) }
    /// The largest angle of any matrix on either side.
    var angleMaxOfAll: Double? { largest(angleUMaxOfAll, angleVMaxOfAll) }

    init(_ tensors: [TensorSpectralResult]) {
        func mean(_ value: (MatrixComparison) -> Double?) -> Double? {
            var sum = 0.0, weight = 0.0
            for tensor in tensors {
                guard let x = value(tensor.comparison), x.isFinite else { continue }
                let size = Double(tensor.rows * tensor.columns)
                sum += x * size
                weight += size
            }
            return weight > 0 ? sum / weight : nil
        }
        func maximum(_ value: (MatrixComparison) -> Double?) -> Double? {
            tensors.compactMap { value($0.comparison) }.filter(\.isFinite).max()
        }
        changed = tensors.reduce(0) { $0 + $1.comparison.changed }
        nss = mean(\.nss)
        angleUMax = mean(\.angleUMaxDegrees)
        angleVMax = mean(\.angleVMaxDegrees)
        angleUMean = mean(\.angleUMeanDegrees)
        angleVMean = mean(\.angleVMeanDegrees)
        angleUMaxOfAll = maximum(\.angleUMaxDegrees)
        angleVMaxOfAll = maximum(\.angleVMaxDegrees)
        principalOverlap = mean(\.principalOverlap)
        principalOverlapRandom = mean { $0.principalOverlap == nil ? nil : $0.alpha }
        principalOverlapMagnitude = mean(\.principalOverlapMagnitude)
        lowOverlap = mean(\.lowOverlap)
        lowOverlapRandom = mean { $0.lowOverlap == nil ? nil : $0.alpha }
        lowOverlapMagnitude = mean(\.lowOverlapMagnitude)
        controlOverlap = mean(\.controlOverlap)
        controlOverlapRandom = mean { $0.controlOverlap == nil ? nil : $0.controlDensity }
        controlOverlapMagnitude = mean(\.controlOverlapMagnitude)
        energyTopK = mean(\.energyTopK)
    }
}

private func largest(_ a: Double?, _ b: Double?) -> Double? {
    switch (a, b) {
    case let (x?, y?): return max(x, y)
    case let (x?, nil): return x
    case let (nil, y?): return y
    default: return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLapack
import PrecLabSupport

/// The top-k singular subspaces of a base matrix W0 (m × n): `left` is U_k (m × k) and
/// `right` is V_k (n × k), both column-major with orthonormal columns.
public struct PrincipalSubspace: Sendable {
    public let rows: Int
    public let columns: Int
    public let rank: Int
    public let left: [Double]
    public let right: [Double]
}

/// How the generated base weights are shaped (docs/synth-model.md, "Base weights").
public struct BaseSpectrum: Sendable, Equatable {
    /// Singular values fall as (i+1)^(-exponent), i = 0, 1, ...
    public var exponent: Double
    /// Root mean square of the entries of W0.
    public var entryRMS: Double
    /// Round the base to bf16 values (kept in fp32), as a model loaded from a bf16
    /// checkpoint into fp32 master weights would start.
    public var roundToBFloat16: Bool
    /// T >= 0: rows and columns of W0 are scaled by log-normal factors exp(T·z) (outlier
    /// rows and columns, heavy-tailed entries); 0 keeps the plain power-law base.
    public var tail: Double

    public init(exponent: Double = 0.6, entryRMS: Double = 0.02, roundToBFloat16: Bool = true, tail: Double = 0) {
        self.exponent = exponent
        self.entryRMS = entryRMS
        self.roundToBFloat16 = roundToBFloat16
        self.tail = tail
    }

    /// The singular values σ_i = c·(i+1)^(-β) of an m × n base, with c chosen so that
    /// the entry RMS, sqrt(Σσ_i² / (m·n)), equals `entryRMS`.
    public func singularValues(rows: Int, columns: Int) -> [Double] {
        let count = min(rows, columns)
        let shape = (0 ..< count).map { 1.0 / pow(Double($0 + 1), exponent) }
        var sumOfSquares = 0.0
        for value in shape { sumOfSquares += value * value }
        let scale = entryRMS * (Double(rows) * Double(columns) / sumOfSquares).squareRoot()
        return shape.map { $0 * scale }
    }
}

enum SyntheticBase {
    /// W0 = U diag(σ) Vᵀ with Haar-random U (m × p), V (n × p), p = min(m, n), computed
    /// in float64; with a tail T > 0 then W0 ← D_r W0 D_c (log-normal diagonal scales)
    /// rescaled to the entry RMS; rounded to fp32 (and to bf16 values when the spectrum
    /// asks). Returns the stored values, row-major.
    static func generate(rows: Int, columns: Int, spectrum: BaseSpectrum,
                         seed: UInt64, tensor: Int) throws -> [Float] {
        let p = min(rows, columns)
        let left = try RandomOrthogonal.columns(
            rows: rows, columns: p,
            random: CounterRandom(seed: seed, tensor: tensor, purpose: .baseLeftFactor))
        let right = try RandomOrthogonal.columns(
            rows: columns, columns: p,
            random: CounterRandom(seed: seed, tensor: tensor, purpose: .baseRightFactor))
        let sigma = spectrum.singularValues(rows: rows, columns: columns)
        // V·diag(σ), column j of V scaled by σ_j.
        var scaledRight = right
        for j in 0 ..< p {
            for i in 0 ..< columns { scaledRight[j * columns + i] *= sigma[j] }
        }
        // Wᵀ (n × m, column-major) = (V diag σ)·Uᵀ; its memory is W row-major.
        var product = [Double](repeating: 0, count: rows * columns)
        scaledRight.withUnsafeBufferPointer { a in
            left.withUnsafeBufferPointer { b in
                product.withUnsafeMutableBufferPointer { c in
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans,
                                Int32(columns), Int32(rows), Int32(p), 1.0,
                                a.baseAddress, Int32(columns), b.baseAddress, Int32(rows),
                                0.0, c.baseAddress, Int32(columns))
                }
            }
        }
        if spectrum.tail > 0 {
            let rowScales = logNormalScales(count: rows, spread: spectrum.tail,
                                            random: CounterRandom(seed: seed, tensor: tensor, purpose: .baseRowScale))
            let columnScales = logNormalScales(count: columns, spread: spectrum.tail,
                                               random: CounterRandom(seed: seed, tensor: tensor, purpose: .baseColumnScale))
            var sumOfSquares = 0.0
            for i in 0 ..< rows {
                for j in 0 ..< columns {
                    product[i * columns + j] *= rowScales[i] * columnScales[j]
                    sumOfSquares += product[i * columns + j] * product[i * columns + j]
                }
            }
            let rescale = spectrum.entryRMS * (Double(rows * columns) / sumOfSquares).squareRoot()
            for index in product.indices { product[index] *= rescale }
        }
        return product.map { value -> Float in
            let single = Float(value)
            return spectrum.roundToBFloat16 ? roundToBFloat16(single) : single
        }
    }

    /// exp(spread·z_i) for `count` standard normal z_i, divided by their root mean
    /// square, so the factors have mean square exactly 1.
    static func logNormalScales(count: Int, spread: Double, random: CounterRandom) -> [Double] {
        let factors = random.gaussianArray(count: count).map { exp(spread * $0) }
        var sumOfSquares = 0.0
        for value in factors { sumOfSquares += value * value }
        let norm = (sumOfSquares / Double(count)).squareRoot()
        return factors.map { $0 / norm }
    }

    /// The top-k singular subspaces of a given row-major m × n matrix, by a float64 SVD
    /// (LAPACK dgesdd): always of the stored base, so that the signal is placed against
    /// the matrix the replay and the spectral metrics see, not an unrounded original.
    static func principalSubspace(of weights: [Float], rows: Int, columns: Int,
                                  rank k: Int, name: String) throws -> PrincipalSubspace {
        let p = min(rows, columns)
        var a = weights.map(Double.init)
        var singular = [Double](repeating: 0, count: p)
        var u = [Double](repeating: 0, count: rows * p)
        var vt = [Double](repeating: 0, count: p * columns)
        let status = a.withUnsafeMutableBufferPointer { ap in
            singular.withUnsafeMutableBufferPointer { sp in
                u.withUnsafeMutableBufferPointer { up in
                    vt.withUnsafeMutableBufferPointer { vp in
                        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")),
                                       Int32(rows), Int32(columns), ap.baseAddress, Int32(columns),
                                       sp.baseAddress, up.baseAddress, Int32(p),
                                       vp.baseAddress, Int32(columns))
                    }
                }
            }
        }
        guard status == 0 else {
            throw PrecLabError.badData("tensor \(name): the SVD of the base did not converge (LAPACK dgesdd status \(status))")
        }
        var left = [Double](repeating: 0, count: rows * k)
        for c in 0 ..< k {
            for r in 0 ..< rows { left[c * rows + r] = u[r * p + c] }
        }
        let right = Array(vt[0 ..< k * columns])  // row c of Vᵀ is column c of V
        return PrincipalSubspace(rows: rows, columns: columns, rank: k, left: left, right: right)
    }
}

/// Rounds an fp32 value to the nearest bf16 value (ties to even), returned as fp32.
/// Finite inputs only (the base never holds NaN or infinities).
@inline(__always)
func roundToBFloat16(_ value: Float) -> Float {
    let bits = value.bitPattern
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return Float(bitPattern: rounded & 0xFFFF_0000)
}

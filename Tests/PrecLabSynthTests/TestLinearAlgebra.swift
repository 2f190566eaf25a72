import CLapack

/// A float64 SVD of a row-major m × n matrix through LAPACK dgesdd: the independent
/// oracle the tests check the generator's spectra and subspaces against.
struct TestSVD {
    let rows: Int
    let columns: Int
    /// Singular values, descending.
    let values: [Double]
    /// U, row-major m × p.
    let u: [Double]
    /// Vᵀ, row-major p × n.
    let vt: [Double]

    init(rowMajor matrix: [Double], rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        let p = min(rows, columns)
        var a = matrix
        var s = [Double](repeating: 0, count: p)
        var u = [Double](repeating: 0, count: rows * p)
        var vt = [Double](repeating: 0, count: p * columns)
        let status = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(columns),
                                    &a, Int32(columns), &s, &u, Int32(p), &vt, Int32(columns))
        precondition(status == 0, "dgesdd failed: \(status)")
        values = s
        self.u = u
        self.vt = vt
    }

    /// ||U_kᵀ X V_k||_F² / ||X||_F² for a row-major m × n matrix X: the share of X's
    /// energy in the top-k singular subspaces of this matrix (both sides).
    func principalEnergyShare(of x: [Double], rank k: Int) -> Double {
        let p = min(rows, columns)
        var total = 0.0
        for value in x { total += value * value }
        // Y = X V_k  (m × k), V_k[j][c] = vt[c*n + j]
        var y = [Double](repeating: 0, count: rows * k)
        for i in 0 ..< rows {
            for c in 0 ..< k {
                var sum = 0.0
                for j in 0 ..< columns { sum += x[i * columns + j] * vt[c * columns + j] }
                y[i * k + c] = sum
            }
        }
        // Z = U_kᵀ Y (k × k), U_k[i][c] = u[i*p + c]
        var inside = 0.0
        for a in 0 ..< k {
            for b in 0 ..< k {
                var sum = 0.0
                for i in 0 ..< rows { sum += u[i * p + a] * y[i * k + b] }
                inside += sum * sum
            }
        }
        return inside / total
    }
}

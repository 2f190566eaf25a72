import CLapack
import PrecLabSupport

/// A (possibly truncated) singular value decomposition A ≈ U diag(σ) Vᵀ.
///
/// Signs are fixed so that results are reproducible: in every left singular vector the
/// entry of largest magnitude (the first such entry on ties) is positive, and the right
/// vector is flipped with it.
public struct SVD: Sendable {
    /// Left singular vectors, m×r, orthonormal columns.
    public var u: Matrix
    /// Singular values, descending, r of them.
    public var singularValues: [Double]
    /// Right singular vectors, n×r, orthonormal columns (V, not Vᵀ).
    public var v: Matrix

    public init(u: Matrix, singularValues: [Double], v: Matrix) {
        precondition(u.columns == singularValues.count && v.columns == singularValues.count,
                     "SVD factors disagree on the rank")
        self.u = u
        self.singularValues = singularValues
        self.v = v
    }

    public var rank: Int { singularValues.count }

    /// The leading `count` triplets.
    public func truncated(to count: Int) -> SVD {
        let kept = min(count, rank)
        return SVD(u: u.leadingColumns(kept), singularValues: Array(singularValues.prefix(kept)),
                   v: v.leadingColumns(kept))
    }

    /// U diag(σ) Vᵀ, the rank-r reconstruction.
    public func reconstruction() -> Matrix {
        var scaled = u
        for j in 0..<rank {
            let sigma = singularValues[j]
            for i in 0..<u.rows { scaled.storage[i + j * u.rows] *= sigma }
        }
        return BLAS.multiply(scaled, v, transposeB: true)
    }

    /// Applies the sign convention in place.
    mutating func fixSigns() {
        let m = u.rows
        let n = v.rows
        for j in 0..<rank {
            var largest = -1.0
            var sign = 1.0
            for i in 0..<m {
                let value = u.storage[i + j * m]
                if abs(value) > largest {
                    largest = abs(value)
                    sign = value < 0 ? -1 : 1
                }
            }
            if sign < 0 {
                for i in 0..<m { u.storage[i + j * m] = -u.storage[i + j * m] }
                for i in 0..<n { v.storage[i + j * n] = -v.storage[i + j * n] }
            }
        }
    }
}

/// Dense decompositions through LAPACK (divide-and-conquer `dgesdd`, QR by
/// `dgeqrf`/`dorgqr`), always float64 and column-major.
public enum LinearAlgebra {
    /// All min(m, n) singular values, descending (`dgesdd`, jobz 'N').
    public static func singularValues(of matrix: Matrix) throws -> [Double] {
        let m = matrix.rows, n = matrix.columns
        let count = min(m, n)
        if count == 0 { return [] }
        try requireFinite(matrix)
        var a = matrix.storage
        var values = [Double](repeating: 0, count: count)
        var iwork = [LapackInt](repeating: 0, count: 8 * count)
        // Column-major LAPACKE passes ldu = ldvt = 1 through untouched for jobz 'N'.
        var unusedU = [Double](repeating: 0, count: 1)
        var unusedVt = [Double](repeating: 0, count: 1)
        try gesdd(job: "N", m: m, n: n, a: &a, s: &values, u: &unusedU, ldu: 1,
                  vt: &unusedVt, ldvt: 1, iwork: &iwork)
        return values
    }

    /// The thin SVD: U is m×min(m,n), V is n×min(m,n) (`dgesdd`, jobz 'S').
    public static func thinSVD(of matrix: Matrix) throws -> SVD {
        let m = matrix.rows, n = matrix.columns
        let count = min(m, n)
        if count == 0 {
            return SVD(u: Matrix(rows: m, columns: 0), singularValues: [], v: Matrix(rows: n, columns: 0))
        }
        try requireFinite(matrix)
        var a = matrix.storage
        var values = [Double](repeating: 0, count: count)
        var u = [Double](repeating: 0, count: m * count)
        var vt = [Double](repeating: 0, count: count * n)
        var iwork = [LapackInt](repeating: 0, count: 8 * count)
        try gesdd(job: "S", m: m, n: n, a: &a, s: &values, u: &u, ldu: m,
                  vt: &vt, ldvt: count, iwork: &iwork)
        // Vᵀ is count×n column-major; its transpose V is n×count.
        let v = Matrix(rows: count, columns: n, columnMajor: vt).transposed
        var svd = SVD(u: Matrix(rows: m, columns: count, columnMajor: u), singularValues: values, v: v)
        svd.fixSigns()
        return svd
    }

    /// An orthonormal basis of the column space of `matrix` (m×n, m >= n): the Q of a
    /// Householder QR (`dgeqrf` + `dorgqr`).
    public static func orthonormalBasis(of matrix: Matrix) throws -> Matrix {
        let m = matrix.rows, n = matrix.columns
        precondition(m >= n, "orthonormalBasis needs at least as many rows as columns")
        if n == 0 { return matrix }
        guard LAPACKCall.fits(m, n) else { throw PrecLabError.badData("matrix too large for LAPACK") }
        var a = matrix.storage
        var tau = [Double](repeating: 0, count: n)
        var query = 0.0
        try LAPACKCall.check(LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, LapackInt(m), LapackInt(n),
                                                 &a, LapackInt(m), &tau, &query, -1), "dgeqrf")
        var query2 = 0.0
        try LAPACKCall.check(LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, LapackInt(m), LapackInt(n),
                                                 LapackInt(n), &a, LapackInt(m), &tau, &query2, -1), "dorgqr")
        let size = max(1, Int(max(query, query2)))
        var work = [Double](repeating: 0, count: size)
        try LAPACKCall.check(LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, LapackInt(m), LapackInt(n),
                                                 &a, LapackInt(m), &tau, &work, LapackInt(size)), "dgeqrf")
        try LAPACKCall.check(LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, LapackInt(m), LapackInt(n),
                                                 LapackInt(n), &a, LapackInt(m), &tau, &work,
                                                 LapackInt(size)), "dorgqr")
        return Matrix(rows: m, columns: n, columnMajor: a)
    }

    static func requireFinite(_ matrix: Matrix) throws {
        guard matrix.isFinite else {
            throw PrecLabError.badData("matrix contains NaN or infinite values; no SVD is defined")
        }
    }

    /// `dgesdd` with a workspace query; column-major, so LAPACKE passes the arrays
    /// straight to Fortran without transposing.
    private static func gesdd(
        job: Unicode.Scalar, m: Int, n: Int, a: inout [Double], s: inout [Double],
        u: inout [Double], ldu: Int, vt: inout [Double], ldvt: Int, iwork: inout [LapackInt]
    ) throws {
        guard LAPACKCall.fits(m, n, m * n) else { throw PrecLabError.badData("matrix too large for LAPACK") }
        let jobz = LAPACKCall.character(job)
        var query = 0.0
        try LAPACKCall.check(LAPACKE_dgesdd_work(
            LAPACK_COL_MAJOR, jobz, LapackInt(m), LapackInt(n), &a, LapackInt(max(1, m)), &s,
            &u, LapackInt(ldu), &vt, LapackInt(ldvt), &query, -1, &iwork), "dgesdd")
        let size = max(1, Int(query))
        var work = [Double](repeating: 0, count: size)
        try LAPACKCall.check(LAPACKE_dgesdd_work(
            LAPACK_COL_MAJOR, jobz, LapackInt(m), LapackInt(n), &a, LapackInt(max(1, m)), &s,
            &u, LapackInt(ldu), &vt, LapackInt(ldvt), &work, LapackInt(size), &iwork), "dgesdd")
    }
}

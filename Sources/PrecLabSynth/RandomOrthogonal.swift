import CLapack
import PrecLabSupport

/// Random matrices with orthonormal columns, drawn from the Haar measure: the Q factor
/// of a Gaussian matrix, with each column's sign chosen so that R has a positive
/// diagonal (without that fix the distribution is not uniform; Mezzadri 2007).
enum RandomOrthogonal {
    /// A `rows × columns` matrix (rows ≥ columns) with orthonormal columns, column-major,
    /// from the Gaussian numbers of `random`.
    static func columns(rows: Int, columns: Int, random: CounterRandom) throws -> [Double] {
        precondition(rows >= columns && columns >= 1, "need rows >= columns >= 1")
        var matrix = random.gaussianArray(count: rows * columns)
        var tau = [Double](repeating: 0, count: columns)
        let m = Int32(rows), n = Int32(columns)
        var status = matrix.withUnsafeMutableBufferPointer { a in
            tau.withUnsafeMutableBufferPointer { t in
                LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a.baseAddress, m, t.baseAddress)
            }
        }
        guard status == 0 else {
            throw PrecLabError.badData("synth: LAPACK dgeqrf failed with status \(status)")
        }
        // The sign of R's diagonal, read before dorgqr overwrites the upper triangle.
        let signs = (0 ..< columns).map { matrix[$0 * rows + $0] < 0 ? -1.0 : 1.0 }
        status = matrix.withUnsafeMutableBufferPointer { a in
            tau.withUnsafeMutableBufferPointer { t in
                LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, n, n, a.baseAddress, m, t.baseAddress)
            }
        }
        guard status == 0 else {
            throw PrecLabError.badData("synth: LAPACK dorgqr failed with status \(status)")
        }
        for column in 0 ..< columns where signs[column] < 0 {
            for row in 0 ..< rows { matrix[column * rows + row].negate() }
        }
        return matrix
    }
}

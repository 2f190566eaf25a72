import Foundation

/// Principal angles between two subspaces, accurate for tiny angles as well as large
/// ones (Knyazev & Argentati, SIAM J. Sci. Comput. 23(6), 2002).
///
/// arccos alone loses every angle below about 1e-8 rad in float64 (cos θ rounds to 1);
/// arcsin alone loses angles near 90°. Both are computed: the cosines are the singular
/// values of Q_aᵀQ_b, the sines those of Q_b - Q_a(Q_aᵀQ_b). With the cosines sorted
/// descending and the sines ascending, index i describes the i-th smallest angle in
/// both lists; the angle is arcsin(sine) where cos² >= 1/2 (θ <= 45°), arccos(cosine)
/// elsewhere. (Pairing the two lists in the same sort order, as scipy 1.17's
/// `subspace_angles` does, mixes angles up when they straddle 45°.)
public enum PrincipalAngles {
    /// The min(p, q) principal angles, in radians, ascending, between the column spaces
    /// of `a` (m×p) and `b` (m×q). Both must have orthonormal columns.
    public static func between(_ a: Matrix, _ b: Matrix) throws -> [Double] {
        precondition(a.rows == b.rows, "subspaces live in spaces of different dimension")
        // The wider basis plays Q_a so that the residual has exactly as many columns
        // as there are angles.
        let (wide, narrow) = a.columns >= b.columns ? (a, b) : (b, a)
        let count = narrow.columns
        if count == 0 { return [] }
        precondition(wide.columns <= wide.rows, "a basis cannot have more columns than rows")
        let cross = BLAS.multiply(wide, transposeA: true, narrow)          // p×q
        let cosines = try LinearAlgebra.singularValues(of: cross)            // descending
        let residual = narrow - BLAS.multiply(wide, cross)                   // m×q
        let sines = try LinearAlgebra.singularValues(of: residual)           // descending
        precondition(cosines.count == count && sines.count == count)
        var angles = [Double](repeating: 0, count: count)
        for index in 0..<count {
            let cosine = min(1, max(0, cosines[index]))
            let sine = min(1, max(0, sines[count - 1 - index]))
            angles[index] = cosine * cosine >= 0.5 ? asin(sine) : acos(cosine)
        }
        return angles
    }
}

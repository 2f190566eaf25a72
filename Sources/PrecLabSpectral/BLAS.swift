import CLapack
import PrecLabSupport

/// Matrix products through CBLAS `dgemm`, on column-major storage.
public enum BLAS {
    /// `op(a) * op(b)`, where `op` transposes when asked.
    public static func multiply(
        _ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false
    ) -> Matrix {
        let m = transposeA ? a.columns : a.rows
        let inner = transposeA ? a.rows : a.columns
        let innerB = transposeB ? b.columns : b.rows
        let n = transposeB ? b.rows : b.columns
        precondition(inner == innerB, "inner dimensions do not match: \(inner) vs \(innerB)")
        var result = Matrix(rows: m, columns: n)
        if m == 0 || n == 0 { return result }
        if inner == 0 { return result }
        precondition(LAPACKCall.fits(m, n, inner), "matrix too large for 32-bit BLAS")
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                result.storage.withUnsafeMutableBufferPointer { pc in
                    cblas_dgemm(
                        CblasColMajor,
                        transposeA ? CblasTrans : CblasNoTrans,
                        transposeB ? CblasTrans : CblasNoTrans,
                        blasint(m), blasint(n), blasint(inner),
                        1.0, pa.baseAddress, blasint(max(1, a.rows)),
                        pb.baseAddress, blasint(max(1, b.rows)),
                        0.0, pc.baseAddress, blasint(max(1, m)))
                }
            }
        }
        return result
    }
}

/// How many threads OpenBLAS uses, chosen so that results never depend on the
/// machine's core count or `PRECLAB_THREADS`.
///
/// OpenBLAS may give different last bits for different thread counts, so the count is
/// never taken from the environment: a matrix pair is analysed with one BLAS thread
/// when it is small (`isSmall`, a function of the shape only), and with
/// `largeMatrixThreads` (a constant) otherwise. Small matrices get their parallelism
/// from running several tensors at once instead (see `SpectralScheduler`).
public enum BLASThreads {
    /// OpenBLAS threads for one large matrix. A constant, not the core count, so the
    /// same input gives the same bits on any machine with the same OpenBLAS build.
    public static let largeMatrixThreads: Int32 = 2

    /// Matrices with at most this many elements are "small" (one BLAS thread each).
    public static let smallMatrixElementLimit = 512 * 512

    /// Whether a rows×columns matrix counts as small.
    public static func isSmall(rows: Int, columns: Int) -> Bool {
        rows * columns <= smallMatrixElementLimit
    }

    /// The OpenBLAS thread count used for a rows×columns matrix.
    public static func threads(rows: Int, columns: Int) -> Int32 {
        isSmall(rows: rows, columns: columns) ? 1 : largeMatrixThreads
    }

    /// Sets the OpenBLAS thread count (process-wide). Callers must not change it while
    /// another thread is inside BLAS.
    public static func set(_ count: Int32) {
        openblas_set_num_threads(count)
    }

    /// The current OpenBLAS thread count.
    public static var current: Int32 { openblas_get_num_threads() }

    /// OpenBLAS's build configuration and the CPU kernel it chose at run time (for
    /// benchmark reports: the kernel decides speed and, with OPENBLAS_CORETYPE, last bits).
    public static var libraryDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(config.split(separator: " ").joined(separator: " ")), core \(core)"
    }
}

/// Helpers shared by the LAPACK wrappers.
enum LAPACKCall {
    /// Whether every dimension fits a 32-bit LAPACK integer.
    static func fits(_ values: Int...) -> Bool {
        values.allSatisfy { $0 >= 0 && $0 <= Int(Int32.max) }
    }

    static func character(_ scalar: Unicode.Scalar) -> CChar {
        CChar(bitPattern: UInt8(scalar.value))
    }

    /// Throws a bad-data error for a failed LAPACK routine.
    static func check(_ info: LapackInt, _ routine: String) throws {
        if info == 0 { return }
        if info < 0 {
            preconditionFailure("\(routine): argument \(-info) invalid (a bug in preclab)")
        }
        throw PrecLabError.badData("\(routine) did not converge (info \(info))")
    }
}

/// LAPACKE's `lapack_int` (a C macro Swift cannot import): 32-bit on Debian's
/// liblapacke (LP64 interface).
typealias LapackInt = Int32

import CLapack
#if canImport(Glibc)
import Glibc
#endif

/// The element type of the network's arithmetic: `Float` for training (BLAS `sgemm`),
/// `Double` for the gradient checks (BLAS `dgemm`), so one implementation serves both.
public protocol TrainingScalar: BinaryFloatingPoint, Sendable {
    /// Row-major `C = op(A) op(B) + beta C` with `op(A)` m×k and `op(B)` k×n.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     _ a: UnsafePointer<Self>, lda: Int, _ b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, _ c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    static func errorFunction(_ x: Self) -> Self
    /// x ← max(x, 0) elementwise (ReLU).
    static func reluInPlace(_ values: UnsafeMutablePointer<Self>, _ count: Int)
    /// g ← (z > 0 ? g : 0) elementwise (the ReLU derivative applied).
    static func keepWherePositive(_ gradient: UnsafeMutablePointer<Self>, _ z: UnsafePointer<Self>, _ count: Int)
}

extension Float: TrainingScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inline(__always) public static func exponential(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func logarithm(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func errorFunction(_ x: Float) -> Float { erff(x) }

    /// Branch-free on the bit patterns so the loop vectorises (a compare-and-branch
    /// loop mispredicts on the random signs of pre-activations): a value whose sign bit
    /// is set becomes +0, anything else is kept.
    public static func reluInPlace(_ values: UnsafeMutablePointer<Float>, _ count: Int) {
        let raw = UnsafeMutableRawPointer(values).assumingMemoryBound(to: Int32.self)
        for i in 0..<count { raw[i] &= ~(raw[i] >> 31) }
    }

    /// Keeps g where z's bit pattern is a positive non-zero value: (−z & ~z) has its
    /// sign bit set exactly then (−0 and +0 give 0).
    public static func keepWherePositive(_ gradient: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>,
                                         _ count: Int) {
        let g = UnsafeMutableRawPointer(gradient).assumingMemoryBound(to: Int32.self)
        let pre = UnsafeRawPointer(z).assumingMemoryBound(to: Int32.self)
        for i in 0..<count {
            let bits = pre[i]
            g[i] &= ((0 &- bits) & ~bits) >> 31
        }
    }
}

extension Double: TrainingScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            _ a: UnsafePointer<Double>, lda: Int, _ b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, _ c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inline(__always) public static func exponential(_ x: Double) -> Double { exp(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { log(x) }
    @inline(__always) public static func errorFunction(_ x: Double) -> Double { erf(x) }

    public static func reluInPlace(_ values: UnsafeMutablePointer<Double>, _ count: Int) {
        for i in 0..<count where !(values[i] > 0) { values[i] = 0 }
    }

    public static func keepWherePositive(_ gradient: UnsafeMutablePointer<Double>, _ z: UnsafePointer<Double>,
                                         _ count: Int) {
        for i in 0..<count where !(z[i] > 0) { gradient[i] = 0 }
    }
}

/// OpenBLAS runs on one thread inside training: the matrices are small (a thread pool
/// costs more than it saves) and one thread makes every product's bits independent of
/// the machine's core count.
public enum TrainingBLAS {
    public static func useOneThread() {
        openblas_set_num_threads(1)
    }
}

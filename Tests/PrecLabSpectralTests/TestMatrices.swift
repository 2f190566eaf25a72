import Foundation
@testable import PrecLabSpectral

/// Test inputs built without LAPACK or BLAS, so they can check them: a small seeded
/// generator, Householder reflections, naive products.
struct TestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed ^ 0x2545_F491_4F6C_DD1D }

    /// xorshift64* — independent of the library's SplitMix-based sampler.
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// Uniform in [-1, 1).
    mutating func symmetric() -> Double {
        Double(next() >> 11) * 0x1p-52 - 1
    }

    /// Approximately normal (sum of 12 uniforms, centred): enough for test noise.
    mutating func normalish() -> Double {
        var total = 0.0
        for _ in 0..<12 { total += Double(next() >> 11) * 0x1p-53 }
        return total - 6
    }

    mutating func vector(_ count: Int) -> [Double] { (0..<count).map { _ in symmetric() } }
}

enum TestMatrices {
    /// The product of `count` random Householder reflections, an n×n orthogonal matrix.
    static func orthogonal(_ n: Int, reflections count: Int, random: inout TestRandom) -> [[Double]] {
        var q = (0..<n).map { i in (0..<n).map { j in i == j ? 1.0 : 0.0 } }
        for _ in 0..<count {
            let v = random.vector(n)
            q = applyHouseholder(v, toRowsOf: q)
        }
        return q
    }

    /// (I - 2vvᵀ/vᵀv) · A, for A given as an array of rows.
    static func applyHouseholder(_ v: [Double], toRowsOf a: [[Double]]) -> [[Double]] {
        let norm2 = v.reduce(0) { $0 + $1 * $1 }
        let columns = a[0].count
        var result = a
        for j in 0..<columns {
            var dot = 0.0
            for i in 0..<a.count { dot += v[i] * a[i][j] }
            let factor = 2 * dot / norm2
            for i in 0..<a.count { result[i][j] -= factor * v[i] }
        }
        return result
    }

    /// Naive product of row arrays.
    static func product(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let inner = b.count
        let columns = b[0].count
        return a.map { row in
            (0..<columns).map { j in
                var total = 0.0
                for t in 0..<inner { total += row[t] * b[t][j] }
                return total
            }
        }
    }

    static func transpose(_ a: [[Double]]) -> [[Double]] {
        (0..<a[0].count).map { j in a.map { $0[j] } }
    }

    static func matrix(_ rows: [[Double]]) -> Matrix {
        Matrix(rows: rows.count, columns: rows[0].count, rowMajor: rows.flatMap { $0 })
    }

    /// An m×n matrix U diag(σ) Vᵀ with random orthogonal U, V (Householder products)
    /// and the given singular values; returns the matrix and its factors as rows.
    static func withSpectrum(rows m: Int, columns n: Int, singularValues sigma: [Double],
                             seed: UInt64, reflections: Int = 4)
        -> (matrix: Matrix, u: [[Double]], v: [[Double]])
    {
        var random = TestRandom(seed: seed)
        let u = orthogonal(m, reflections: reflections, random: &random)
        let v = orthogonal(n, reflections: reflections, random: &random)
        // U diag(σ) Vᵀ with σ padding the leading min(m, n) columns.
        var scaled = u
        for i in 0..<m {
            for j in 0..<m { scaled[i][j] = j < sigma.count ? u[i][j] * sigma[j] : 0 }
        }
        let trimmed = scaled.map { Array($0.prefix(min(m, n))) }
        let vtRows = transpose(v).prefix(min(m, n)).map { $0 }
        let a = product(trimmed, Array(vtRows))
        return (matrix(a), u, v)
    }

    /// Columns `0..<count` of a row-array matrix, as a Matrix.
    static func leadingColumns(_ a: [[Double]], _ count: Int) -> Matrix {
        matrix(a.map { Array($0.prefix(count)) })
    }

    /// A random m×n matrix with entries uniform in [-1, 1).
    static func random(rows: Int, columns: Int, seed: UInt64, scale: Double = 1) -> Matrix {
        var random = TestRandom(seed: seed)
        return Matrix(rows: rows, columns: columns, rowMajor: (0..<(rows * columns)).map { _ in scale * random.symmetric() })
    }
}

/// The largest |x - y| over two equally long arrays.
func maxDifference(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count)
    return zip(x, y).map { abs($0 - $1) }.max() ?? 0
}

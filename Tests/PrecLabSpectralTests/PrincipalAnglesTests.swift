import XCTest
@testable import PrecLabSpectral

final class PrincipalAnglesTests: XCTestCase {
    /// Two p-dimensional subspaces of R^m with prescribed principal angles: Q_a spans
    /// e_1..e_p, Q_b has columns cos θ_i e_i + sin θ_i e_{p+i}; both are then rotated
    /// by the same random orthogonal matrix (which preserves the angles).
    func subspaces(angles: [Double], dimension m: Int, seed: UInt64) -> (Matrix, Matrix) {
        let p = angles.count
        var a = [[Double]](repeating: [Double](repeating: 0, count: p), count: m)
        var b = a
        for (i, theta) in angles.enumerated() {
            a[i][i] = 1
            b[i][i] = cos(theta)
            b[p + i][i] = sin(theta)
        }
        var random = TestRandom(seed: seed)
        let q = TestMatrices.orthogonal(m, reflections: 3, random: &random)
        return (TestMatrices.matrix(TestMatrices.product(q, a)), TestMatrices.matrix(TestMatrices.product(q, b)))
    }

    func check(_ expected: [Double], dimension: Int, seeds: [UInt64] = [1, 2, 3]) throws {
        for seed in seeds {
            let (a, b) = subspaces(angles: expected, dimension: dimension, seed: seed)
            let sortedExpected = expected.sorted()
            for (x, y) in [(a, b), (b, a)] {
                let got = try PrincipalAngles.between(x, y)
                XCTAssertEqual(got.count, expected.count)
                XCTAssertEqual(got, got.sorted(), "angles must be ascending")
                for (g, e) in zip(got, sortedExpected) {
                    XCTAssertLessThan(abs(g - e), 1e-12, "seed \(seed): got \(got), expected \(sortedExpected)")
                    if e < 1e-3 {
                        // Tiny angles: relative accuracy (arccos alone would return 0).
                        XCTAssertLessThan(abs(g - e) / e, e < 1e-8 ? 1e-5 : 1e-6, "seed \(seed): \(g) vs \(e)")
                    }
                }
            }
        }
    }

    func testTinyAndLargeAngle() throws {
        try check([1e-9, 1.2], dimension: 6)
    }

    func testThreeAnglesTwoTiny() throws {
        try check([1e-6, 1e-7, 1.3], dimension: 8)
    }

    /// scipy 1.17 returns (1.2, 0.0) for true (1e-9, 1.2): both lists must be paired by
    /// angle rank, not by position in their own sort order.
    func testAnglesStraddling45Degrees() throws {
        try check([0.3, 0.7, 0.9, 1.5], dimension: 9)
        try check([Double.pi / 4 - 1e-3, Double.pi / 4 + 1e-3], dimension: 5)
    }

    func testIdenticalAndOrthogonalSubspaces() throws {
        let (a, _) = subspaces(angles: [0.1, 0.2], dimension: 5, seed: 4)
        let same = try PrincipalAngles.between(a, a)
        XCTAssertLessThan(same.max()!, 1e-15)
        try check([Double.pi / 2, 0.5], dimension: 5)
    }

    func testDifferentDimensions() throws {
        // span(e1) against span(e1 cos t + e3 sin t, e2): one angle, t.
        let t = 1e-8
        let a = Matrix(rows: 3, columns: 1, rowMajor: [1, 0, 0])
        let b = Matrix(rows: 3, columns: 2, rowMajor: [cos(t), 0, 0, 1, sin(t), 0])
        for (x, y) in [(a, b), (b, a)] {
            let angles = try PrincipalAngles.between(x, y)
            XCTAssertEqual(angles.count, 1)
            XCTAssertEqual(angles[0], t, accuracy: 1e-20)
        }
    }
}

import XCTest
import PrecLabSupport
@testable import PrecLabSpectral

final class SVDTests: XCTestCase {
    /// Singular values chosen by hand, matrix built from Householder factors.
    let sigma: [Double] = [10, 5, 2, 1, 0.5, 1e-3, 1e-9]

    func testSingularValuesOfConstructedMatrix() throws {
        for (m, n) in [(9, 7), (7, 9), (7, 7)] {
            let built = TestMatrices.withSpectrum(rows: m, columns: n, singularValues: sigma, seed: 11)
            let values = try LinearAlgebra.singularValues(of: built.matrix)
            XCTAssertEqual(values.count, 7)
            XCTAssertLessThan(maxDifference(values, sigma), 1e-12, "\(m)x\(n): \(values)")
        }
    }

    func testThinSVDFactorsMatchConstruction() throws {
        let built = TestMatrices.withSpectrum(rows: 9, columns: 7, singularValues: sigma, seed: 5)
        let svd = try LinearAlgebra.thinSVD(of: built.matrix)
        XCTAssertEqual(svd.u.rows, 9); XCTAssertEqual(svd.u.columns, 7)
        XCTAssertEqual(svd.v.rows, 7); XCTAssertEqual(svd.v.columns, 7)
        XCTAssertLessThan(maxDifference(svd.singularValues, sigma), 1e-12)
        // The distinct, well separated leading vectors equal the construction's up to sign.
        for j in 0..<5 {
            let expectedU = built.u.map { $0[j] }
            let expectedV = built.v.map { $0[j] }
            let gotU = svd.u.column(j), gotV = svd.v.column(j)
            let sign = zip(expectedU, gotU).map { $0 * $1 }.reduce(0, +) < 0 ? -1.0 : 1.0
            XCTAssertLessThan(maxDifference(gotU.map { sign * $0 }, expectedU), 1e-12, "u\(j)")
            XCTAssertLessThan(maxDifference(gotV.map { sign * $0 }, expectedV), 1e-12, "v\(j)")
        }
        // Reconstruction.
        let back = svd.reconstruction()
        XCTAssertLessThan(maxDifference(back.storage, built.matrix.storage), 1e-13)
    }

    func testSignConventionLargestEntryPositive() throws {
        let built = TestMatrices.withSpectrum(rows: 6, columns: 5, singularValues: [4, 3, 2, 1, 0.5], seed: 3)
        for matrix in [built.matrix, -1 * built.matrix] {
            let svd = try LinearAlgebra.thinSVD(of: matrix)
            for j in 0..<svd.rank {
                let column = svd.u.column(j)
                let largest = column.max { abs($0) < abs($1) }!
                XCTAssertGreaterThan(largest, 0, "column \(j)")
            }
            XCTAssertLessThan(maxDifference(svd.reconstruction().storage, matrix.storage), 1e-13)
        }
    }

    func testDiagonalAndZeroMatrices() throws {
        let diagonal = Matrix.diagonal(rows: 3, columns: 4, [2, -7, 0.25])
        XCTAssertEqual(try LinearAlgebra.singularValues(of: diagonal), [7, 2, 0.25])
        XCTAssertEqual(try LinearAlgebra.singularValues(of: Matrix(rows: 3, columns: 2)), [0, 0])
        XCTAssertEqual(try LinearAlgebra.singularValues(of: Matrix(rows: 0, columns: 5)), [])
        let empty = try LinearAlgebra.thinSVD(of: Matrix(rows: 4, columns: 0))
        XCTAssertEqual(empty.rank, 0)
        XCTAssertEqual(try LinearAlgebra.singularValues(of: Matrix(rows: 1, columns: 1, rowMajor: [-0.0])), [0])
        // A subnormal survives (LAPACK scales tiny matrices).
        let tiny = try LinearAlgebra.singularValues(of: Matrix(rows: 1, columns: 2, rowMajor: [0x1p-1060, 0]))
        XCTAssertEqual(tiny, [0x1p-1060])
    }

    func testNonFiniteInputIsBadData() {
        for bad in [Double.nan, .infinity, -.infinity] {
            let matrix = Matrix(rows: 2, columns: 2, rowMajor: [1, 2, bad, 4])
            XCTAssertThrowsError(try LinearAlgebra.singularValues(of: matrix)) { error in
                XCTAssertEqual((error as? PrecLabError)?.isDataError, true)
            }
            XCTAssertThrowsError(try LinearAlgebra.thinSVD(of: matrix))
            XCTAssertThrowsError(try MatrixComparison(base: matrix, tuned: matrix))
        }
    }

    func testOrthonormalBasisSpansColumns() throws {
        let a = TestMatrices.random(rows: 8, columns: 3, seed: 9)
        let q = try LinearAlgebra.orthonormalBasis(of: a)
        let gram = BLAS.multiply(q, transposeA: true, q)
        XCTAssertLessThan(maxDifference(gram.storage, Matrix.identity(3).storage), 1e-14)
        // Projecting A onto span(Q) leaves A unchanged.
        let projected = BLAS.multiply(q, BLAS.multiply(q, transposeA: true, a))
        XCTAssertLessThan(maxDifference(projected.storage, a.storage), 1e-14)
    }

    func testMultiplyAgainstNaiveProduct() {
        let a = TestMatrices.random(rows: 5, columns: 3, seed: 1)
        let b = TestMatrices.random(rows: 5, columns: 4, seed: 2)
        let rowsA = (0..<5).map { i in (0..<3).map { a[i, $0] } }
        let rowsB = (0..<5).map { i in (0..<4).map { b[i, $0] } }
        let expected = TestMatrices.product(TestMatrices.transpose(rowsA), rowsB)
        let got = BLAS.multiply(a, transposeA: true, b)
        XCTAssertLessThan(maxDifference(got.rowMajorElements, expected.flatMap { $0 }), 1e-15)
        let gotT = BLAS.multiply(b, transposeA: true, a)   // (BᵀA) = (AᵀB)ᵀ
        XCTAssertLessThan(maxDifference(gotT.transposed.storage, got.storage), 1e-15)
    }

    func testMatrixLayoutRoundTrip() {
        let m = Matrix(rows: 2, columns: 3, rowMajor: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m.storage, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(m[1, 2], 6)
        XCTAssertEqual(m.rowMajorElements, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m.transposed.rowMajorElements, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(Matrix(rows: 2, columns: 3, rowMajorElement: { Double($0 + 1) }), m)
        XCTAssertEqual(m.rowMajorMagnitudes, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Matrix(rows: 1, columns: 2, rowMajor: [3, -4]).frobeniusNorm, 5)
        // No overflow or underflow where the plain sum of squares would (to 1 ulp).
        XCTAssertEqual(scaledNorm([3e200, 4e200]), 5e200, accuracy: 5e200 * 0x1p-52)
        XCTAssertEqual(scaledNorm([3e-200, -4e-200]), 5e-200, accuracy: 5e-200 * 0x1p-52)
        XCTAssertEqual(scaledNorm([]), 0)
        XCTAssertEqual(scaledNorm([0, -0.0]), 0)
    }
}

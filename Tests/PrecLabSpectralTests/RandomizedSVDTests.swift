import XCTest
@testable import PrecLabSpectral

final class RandomizedSVDTests: XCTestCase {
    /// A gapped spectrum: 8 large values, then a flat tail 1000x smaller.
    func gappedSpectrum(_ count: Int) -> [Double] {
        (0..<count).map { (i: Int) -> Double in
            let position = Double(i)
            if i < 8 { return 100 * pow(0.7, position) }
            return 0.05 * (1 - position / Double(2 * count))
        }
    }

    func testMatchesFullSVDOnGappedSpectrum() throws {
        let spectrum = gappedSpectrum(120)
        let built = TestMatrices.withSpectrum(rows: 160, columns: 120, singularValues: spectrum, seed: 21)
        XCTAssertTrue(LinearAlgebra.useRandomized(rows: 160, columns: 120, k: 8, options: RandomizedSVDOptions()))
        let fast = try LinearAlgebra.topSVD(of: built.matrix, k: 8, method: .automatic)
        XCTAssertTrue(fast.randomized)
        let exact = try LinearAlgebra.topSVD(of: built.matrix, k: 8, method: .exact)
        XCTAssertFalse(exact.randomized)
        for i in 0..<8 {
            XCTAssertEqual(fast.svd.singularValues[i], spectrum[i], accuracy: 1e-12 * spectrum[0])
            XCTAssertEqual(exact.svd.singularValues[i], spectrum[i], accuracy: 1e-12 * spectrum[0])
        }
        let anglesU = try PrincipalAngles.between(fast.svd.u, exact.svd.u)
        let anglesV = try PrincipalAngles.between(fast.svd.v, exact.svd.v)
        XCTAssertLessThan(anglesU.max()!, 1e-12)
        XCTAssertLessThan(anglesV.max()!, 1e-12)
        // Same sign convention, so the vectors themselves agree.
        XCTAssertLessThan(maxDifference(fast.svd.u.storage, exact.svd.u.storage), 1e-10)
        XCTAssertLessThan(maxDifference(fast.svd.v.storage, exact.svd.v.storage), 1e-10)
    }

    func testWideMatrixAndSeedsReproducible() throws {
        let spectrum = gappedSpectrum(100)
        let built = TestMatrices.withSpectrum(rows: 100, columns: 150, singularValues: spectrum, seed: 8)
        let first = try LinearAlgebra.randomizedSVD(of: built.matrix, k: 5)
        let second = try LinearAlgebra.randomizedSVD(of: built.matrix, k: 5)
        XCTAssertEqual(first.u.storage, second.u.storage, "same seed, same bits")
        XCTAssertEqual(first.singularValues, second.singularValues)
        let other = try LinearAlgebra.randomizedSVD(of: built.matrix, k: 5,
                                                     options: RandomizedSVDOptions(seed: 99))
        for i in 0..<5 {
            XCTAssertEqual(other.singularValues[i], spectrum[i], accuracy: 1e-12 * spectrum[0])
        }
        let reference = TestMatrices.leadingColumns(built.u, 5)
        XCTAssertLessThan(try PrincipalAngles.between(other.u, reference).max()!, 1e-12)
    }

    func testAutomaticRuleUsesExactForSmallMatrices() throws {
        XCTAssertFalse(LinearAlgebra.useRandomized(rows: 100, columns: 100, k: 64, options: RandomizedSVDOptions()))
        XCTAssertTrue(LinearAlgebra.useRandomized(rows: 4096, columns: 4096, k: 64, options: RandomizedSVDOptions()))
        // Boundary: 4 (k + 10) <= min(m, n).
        XCTAssertTrue(LinearAlgebra.useRandomized(rows: 40, columns: 50, k: 0, options: RandomizedSVDOptions()))
        XCTAssertFalse(LinearAlgebra.useRandomized(rows: 43, columns: 50, k: 1, options: RandomizedSVDOptions()))
        XCTAssertTrue(LinearAlgebra.useRandomized(rows: 44, columns: 50, k: 1, options: RandomizedSVDOptions()))
        let small = TestMatrices.random(rows: 6, columns: 5, seed: 1)
        XCTAssertFalse(try LinearAlgebra.topSVD(of: small, k: 9).randomized)
        XCTAssertEqual(try LinearAlgebra.topSVD(of: small, k: 9).svd.rank, 5)
    }

    func testGaussianSamplerIsCounterBased() {
        let sampler = GaussianSampler(seed: 7)
        let matrix = sampler.matrix(rows: 50, columns: 40)
        XCTAssertEqual(matrix[3, 2], sampler.normal(at: UInt64(3 + 2 * 50)))
        // Moments of 2000 samples: mean ~ 0, variance ~ 1 (loose, 5 sigma).
        let values = matrix.storage
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        XCTAssertLessThan(abs(mean), 5 / sqrt(2000))
        XCTAssertLessThan(abs(variance - 1), 5 * sqrt(2.0 / 2000))
        XCTAssertNotEqual(GaussianSampler(seed: 8).normal(at: 0), sampler.normal(at: 0))
    }

    /// `--svd exact` is the default: even where the old automatic rule would sketch.
    func testExactIsTheDefault() throws {
        XCTAssertEqual(SpectralOptions().method, .exact)
        let built = TestMatrices.withSpectrum(rows: 160, columns: 120, singularValues: gappedSpectrum(120), seed: 3)
        XCTAssertTrue(LinearAlgebra.useRandomized(rows: 160, columns: 120, k: 8, options: RandomizedSVDOptions()))
        let c = try MatrixComparison(base: built.matrix, tuned: built.matrix, options: SpectralOptions(k: 8, rank: 8))
        XCTAssertFalse(c.randomized)
        XCTAssertNil(c.subspaceErrorBase)
        XCTAssertNil(c.angleNote)
        XCTAssertFalse(try LinearAlgebra.topSVD(of: built.matrix, k: 8).randomized)
    }

    /// σ_k and σ_{k+1} 1e-9 apart and a tail that decays too slowly for the sketch to
    /// separate: no residual can bound the angle error, so randomized angles are
    /// refused (nil, with a note) while the exact path reports them. (With a fast-
    /// decaying tail the sketch resolves even a tiny gap and the bound certifies it;
    /// the refusal is about what the estimate can prove, not about the gap alone.)
    func testRandomizedRefusesAnglesWithTinyGap() throws {
        var spectrum = (0..<100).map { 7 - 1e-9 - 2e-3 * Double($0) }   // σ_5... = 7 − 1e-9, slowly down
        for i in 0..<4 { spectrum[i] = 10 - Double(i) }                  // 10, 9, 8, 7: gap σ_4 − σ_5 = 1e-9
        let base = TestMatrices.withSpectrum(rows: 120, columns: 100, singularValues: spectrum, seed: 5).matrix
        let tuned = base + TestMatrices.random(rows: 120, columns: 100, seed: 6, scale: 1e-4)
        let options = SpectralOptions(k: 4, rank: 4, alpha: 0.5, method: .randomized)
        let c = try MatrixComparison(base: base, tuned: tuned, options: options)
        XCTAssertTrue(c.randomized)
        XCTAssertNil(c.angleUMaxDegrees)
        XCTAssertNil(c.angleVMaxDegrees)
        XCTAssertNotNil(c.angleNote)
        let estimate = try XCTUnwrap(c.subspaceErrorBase)
        XCTAssertLessThan(estimate.gap, 1e-6)
        XCTAssertFalse(c.angleErrorBoundDegrees! < MatrixComparison.angleToleranceDegrees)
        let json = c.jsonFields()
        XCTAssertEqual(json["angle_u_max_deg"], .null)
        XCTAssertNotNil(json["angle_note"]?.stringValue)
        XCTAssertNotNil(json["svd_error"]?.objectValue)
        let exact = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 4, rank: 4, alpha: 0.5))
        XCTAssertNotNil(exact.angleUMaxDegrees)
    }

    /// A well-separated spectrum: randomized angles are reported, their error bound is
    /// below 0.01°, and they agree with the exact angles within that bound.
    func testRandomizedAnglesWithinTheirBound() throws {
        let spectrum = gappedSpectrum(120)
        let base = TestMatrices.withSpectrum(rows: 160, columns: 120, singularValues: spectrum, seed: 7).matrix
        let tuned = base + TestMatrices.random(rows: 160, columns: 120, seed: 8, scale: 1e-3)
        let randomized = try MatrixComparison(base: base, tuned: tuned,
                                              options: SpectralOptions(k: 8, rank: 8, alpha: 0.5, method: .randomized))
        let exact = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 8, rank: 8, alpha: 0.5))
        XCTAssertTrue(randomized.randomized)
        XCTAssertNil(randomized.angleNote)
        let bound = try XCTUnwrap(randomized.angleErrorBoundDegrees)
        XCTAssertLessThan(bound, MatrixComparison.angleToleranceDegrees)
        XCTAssertEqual(randomized.angleUMaxDegrees!, exact.angleUMaxDegrees!, accuracy: bound)
        XCTAssertEqual(randomized.angleVMaxDegrees!, exact.angleVMaxDegrees!, accuracy: bound)
        // The residual is an honest estimate: the computed subspace is within
        // arcsin(residual / gap) of the exact top-8 subspace of W0.
        let reference = try LinearAlgebra.thinSVD(of: base).truncated(to: 8)
        let top = try LinearAlgebra.randomizedSVD(of: base, k: 8)
        let estimate = try LinearAlgebra.subspaceErrorEstimate(of: base, top: top, nextSingularValue: spectrum[8])
        XCTAssertLessThanOrEqual(try PrincipalAngles.between(top.u, reference.u).max()!, estimate.angleBound! + 1e-15)
        XCTAssertLessThanOrEqual(try PrincipalAngles.between(top.v, reference.v).max()!, estimate.angleBound! + 1e-15)
    }
}

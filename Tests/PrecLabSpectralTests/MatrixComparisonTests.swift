import XCTest
@testable import PrecLabSpectral

final class MatrixComparisonTests: XCTestCase {
    func testNSSByHand() throws {
        // σ(W0) = (4, 3), σ(W1) = (5, 3): NSS = |(1, 0)| / |(4, 3)| = 1/5.
        let base = Matrix.diagonal(rows: 2, columns: 2, [3, 4])
        let tuned = Matrix.diagonal(rows: 2, columns: 2, [3, 5])
        let result = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 1, rank: 1))
        XCTAssertEqual(result.nss!, 0.2, accuracy: 1e-16)
        XCTAssertEqual(result.singularValuesBase, [4, 3])
        XCTAssertEqual(result.deltaSpectral, 1)
        XCTAssertEqual(result.deltaFrobenius, 1)
        XCTAssertEqual(result.stableRank, 1)
        XCTAssertEqual(result.changed, 1)
        XCTAssertEqual(result.bounds.weyl.measured, 1)
        XCTAssertEqual(result.bounds.kyFan.measured, 1)
        XCTAssertEqual(result.bounds.kyFan.bound, 1)
        // Top-1 subspaces are both e2: no rotation; energy of E = e2 e2ᵀ is all inside.
        XCTAssertEqual(try XCTUnwrap(result.angleUMaxDegrees), 0, accuracy: 1e-12)
        XCTAssertEqual(result.energyTopK!, 1, accuracy: 1e-15)
        XCTAssertEqual(result.bounds.baseGap, 1)
        XCTAssertEqual(result.bounds.wedinGap, 2)   // σ_1(W1) - σ_2(W0) = 5 - 3
        XCTAssertEqual(result.bounds.wedinU.bound, 0.5)
        XCTAssertFalse(result.bounds.wedinU.vacuous)
        XCTAssertNil(try MatrixComparison(base: Matrix(rows: 2, columns: 2), tuned: tuned).nss)
    }

    func testEnergyInsideAndOutsideTopSubspace() throws {
        let base = Matrix.diagonal(rows: 5, columns: 5, [5, 4, 3, 2, 1])
        let options = SpectralOptions(k: 2, rank: 2)
        func energy(_ entries: [(Int, Int, Double)]) throws -> Double? {
            var tuned = base
            for (i, j, value) in entries { tuned[i, j] += value }
            return try MatrixComparison(base: base, tuned: tuned, options: options).energyTopK
        }
        XCTAssertEqual(try energy([(0, 1, 1e-3)])!, 1, accuracy: 1e-12)         // in U_2 × V_2
        XCTAssertEqual(try energy([(2, 3, 1e-3)])!, 0, accuracy: 1e-12)         // outside
        XCTAssertEqual(try energy([(0, 0, 1e-3), (2, 2, 1e-3)])!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(try energy([(0, 4, 1e-3)])!, 0, accuracy: 1e-12)         // left in, right out
        XCTAssertNil(try energy([]))
    }

    /// W0 = a bᵀ with a = (1, 2, 3), b = (1, -4, 0.5):
    ///   1  -4  0.5        |.| row-major: [1, 4, 0.5, 2, 8, 1, 3, 12, 1.5]
    ///   2  -8  1
    ///   3 -12  1.5
    /// rank-1 reconstruction = W0. Top 5 (α = 0.5, round(4.5) = 5): 12, 8, 4, 3, 2 ->
    /// {1, 3, 4, 6, 7}. Bottom 5: 0.5, 1, 1, 1.5, 2 -> {0, 2, 3, 5, 8}. Control
    /// = principal minus low = {1, 4, 6, 7}.
    func testMasksAndOverlapsByHand() throws {
        let base = Matrix(rows: 3, columns: 3, rowMajor: [1, -4, 0.5, 2, -8, 1, 3, -12, 1.5])
        var tuned = base
        tuned[1, 1] = -8.5; tuned[2, 1] = -12.25; tuned[2, 2] = 1.75   // positions 4, 7, 8
        let result = try MatrixComparison(base: base, tuned: tuned,
                                          options: SpectralOptions(k: 1, rank: 1, alpha: 0.5))
        XCTAssertEqual(result.changed, 3)
        XCTAssertEqual(result.principalMaskSize, 5)
        XCTAssertEqual(result.lowMaskSize, 5)
        XCTAssertEqual(result.controlMaskSize, 4)
        XCTAssertEqual(result.principalOverlap, 2.0 / 3)   // {4, 7}
        XCTAssertEqual(result.lowOverlap, 1.0 / 3)         // {8}
        XCTAssertEqual(result.controlOverlap, 2.0 / 3)     // {4, 7}
        XCTAssertEqual(result.controlDensity, 4.0 / 9)
        XCTAssertEqual(result.rowRatios.maximum, 2.0 / 3)
        XCTAssertEqual(result.columnRatios.maximum, 2.0 / 3)
        // An explicit mask replaces value inequality.
        let explicit = try MatrixComparison(base: base, tuned: tuned, updateMask: BitMask(count: 9, positions: [0]),
                                            options: SpectralOptions(k: 1, rank: 1))
        XCTAssertEqual(explicit.changed, 1)
        XCTAssertEqual(explicit.lowOverlap, 1)
        XCTAssertEqual(explicit.principalOverlap, 0)
    }

    /// Mirsky, Weyl, Ky Fan always; Wedin where it is not vacuous; several seeds and
    /// perturbation sizes, exact and randomized paths.
    func testMeasurementsNeverExceedBounds() throws {
        let spectrum = (0..<60).map { (i: Int) -> Double in
            i < 6 ? 50.0 - 5 * Double(i) : 2 * pow(0.97, Double(i))
        }
        var wedinChecked = 0
        for seed: UInt64 in [1, 2, 3, 4] {
            let built = TestMatrices.withSpectrum(rows: 80, columns: 60, singularValues: spectrum, seed: seed)
            for scale in [1e-8, 1e-4, 1e-1, 3.0] {
                let noise = TestMatrices.random(rows: 80, columns: 60, seed: seed + 100, scale: scale)
                let tuned = built.matrix + noise
                for method in [TopSVDMethod.exact, .randomized] {
                    let result = try MatrixComparison(
                        base: built.matrix, tuned: tuned,
                        options: SpectralOptions(k: 5, rank: 5, method: method))
                    XCTAssertEqual(result.randomized, method == .randomized)
                    let tolerance = 1e-12 * 50
                    let b = result.bounds
                    XCTAssertTrue(b.weyl.holds(tolerance: tolerance), "Weyl \(b.weyl)")
                    XCTAssertTrue(b.mirsky.holds(tolerance: tolerance), "Mirsky \(b.mirsky)")
                    XCTAssertTrue(b.nssMirsky.holds(tolerance: 1e-14), "NSS \(b.nssMirsky)")
                    XCTAssertTrue(b.kyFan.holds(tolerance: tolerance), "Ky Fan \(b.kyFan)")
                    XCTAssertLessThanOrEqual(result.nss!, b.nssMirsky.bound! + 1e-14)
                    if !b.wedinU.vacuous {
                        wedinChecked += 1
                        XCTAssertTrue(b.wedinU.holds(tolerance: 1e-10), "seed \(seed) scale \(scale) \(b.wedinU)")
                        XCTAssertTrue(b.wedinV.holds(tolerance: 1e-10), "seed \(seed) scale \(scale) \(b.wedinV)")
                    }
                    if scale >= 3 { XCTAssertTrue(b.wedinU.vacuous, "gap 5 against ||E|| ~ 3 * sqrt(80)") }
                }
            }
        }
        XCTAssertGreaterThan(wedinChecked, 12, "most cases must exercise Wedin")
    }

    /// The literal counterexample for the W0-gap form: W0 = diag(1, 0), W1 = diag(0.5, 0.5 + ε).
    /// The top vector rotates by 90° although ||E||₂ / (σ_1 - σ_2 of W0) = 0.5; Wedin's
    /// gap σ_1(W1) - σ_2(W0) keeps the check true.
    func testWedinUsesRigorousGap() throws {
        let base = Matrix.diagonal(rows: 2, columns: 2, [1, 0])
        let tuned = Matrix.diagonal(rows: 2, columns: 2, [0.5, 0.5 + 1e-3])
        let result = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 1, rank: 1))
        XCTAssertEqual(try XCTUnwrap(result.angleUMaxDegrees), 90, accuracy: 1e-9)
        XCTAssertEqual(result.bounds.baseGap, 1)
        XCTAssertTrue(result.bounds.wedinU.vacuous)       // bound 0.501 / 0.501 >= 1
        XCTAssertTrue(result.bounds.wedinU.holds(tolerance: 0))
    }

    func testKClampedAndWedinNotApplicableAtFullRank() throws {
        let base = TestMatrices.random(rows: 4, columns: 3, seed: 1)
        let tuned = base + TestMatrices.random(rows: 4, columns: 3, seed: 2, scale: 1e-3)
        let result = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 64, rank: 64))
        XCTAssertEqual(result.k, 3)
        XCTAssertEqual(result.rank, 3)
        XCTAssertNil(result.bounds.wedinU.bound)
        XCTAssertEqual(result.anglesV.max()!, 0, accuracy: 1e-12, "V_3 spans all of R^3")
        XCTAssertEqual(result.principalMaskSize, 6)
    }

    func testJSONFieldsNameEveryMetric() throws {
        let base = Matrix.diagonal(rows: 2, columns: 2, [3, 4])
        let tuned = Matrix.diagonal(rows: 2, columns: 2, [3, 5])
        let result = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 1, rank: 1))
        let fields = result.jsonFields()
        for key in ["nss", "angle_u_max_deg", "angle_v_max_deg", "angle_u_mean_deg", "angle_v_mean_deg",
                    "principal_overlap", "low_overlap", "alpha", "k", "rank", "energy_top_k", "bounds"] {
            XCTAssertNotNil(fields[key], key)
        }
        XCTAssertEqual(fields["nss"]?.doubleValue ?? 0, 0.2, accuracy: 1e-16)
        XCTAssertEqual(fields["k"], .integer(1))
        XCTAssertEqual(result.boundViolations, [])
        XCTAssertEqual(result.boundChecks.map(\.name), ["weyl", "mirsky", "nss_mirsky", "wedin_u", "wedin_v", "ky_fan"])
    }

    func testZeroUpdate() throws {
        let base = TestMatrices.random(rows: 6, columns: 5, seed: 3)
        let result = try MatrixComparison(base: base, tuned: base, options: SpectralOptions(k: 2, rank: 2))
        XCTAssertEqual(result.changed, 0)
        XCTAssertEqual(result.nss, 0)
        XCTAssertNil(result.principalOverlap)
        XCTAssertNil(result.energyTopK)
        XCTAssertNil(result.stableRank)
        // Identical subspaces: only rounding in QᵀQ and Q - Q(QᵀQ) remains.
        XCTAssertLessThan(try XCTUnwrap(result.angleUMaxDegrees), 1e-12)
        XCTAssertEqual(result.deltaFrobenius, 0)
    }

    /// A zero W0 (a zero-initialised LoRA B) has no principal directions: angles, the
    /// principal mask overlap and the top-k energy are undefined, not computed from the
    /// arbitrary singular vectors LAPACK returns for it; NSS is undefined too.
    func testZeroBaseLeavesSubspaceMetricsUndefined() throws {
        let base = Matrix(rows: 8, columns: 6)
        let tuned = Matrix(rows: 8, columns: 6, rowMajorElement: { Double($0 % 5) * 1e-3 - 2e-3 })
        let result = try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 2, rank: 2))
        XCTAssertNil(result.nss)
        XCTAssertNil(result.angleUMaxDegrees)
        XCTAssertNil(result.angleVMeanDegrees)
        XCTAssertNil(result.angleMaxDegrees)
        XCTAssertNil(result.principalOverlap)
        XCTAssertNil(result.controlOverlap)
        XCTAssertNil(result.energyTopK)
        XCTAssertNotNil(result.lowOverlap)   // the low-magnitude mask is still defined (ties by index)
        let fields = result.jsonFields()
        XCTAssertEqual(fields["angle_u_max_deg"], .null)
        XCTAssertEqual(fields["energy_top_k"], .null)
    }
}

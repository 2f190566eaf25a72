import XCTest
import PrecLabSupport
@testable import PrecLabSpectral

/// The magnitude-stratified baselines (issue 12): expectations computed by hand on small
/// matrices, and the defining property that a mask driven only by the binade of |W0|
/// sits exactly (or in expectation) on its magnitude baseline.
final class StratifiedBaselineTests: XCTestCase {
    /// 2x4, two binades: [1, 2) at positions 0, 1, 4, 5 and [1/4, 1/2) at 2, 3, 6, 7.
    let values: [Double] = [1.0, 1.5, 0.25, 0.375, 1.25, 1.75, 0.3125, 0.4375]
    var strata: MagnitudeStrata { MagnitudeStrata(storedValues: values, minimumNormal: 0x1p-126) }

    func testStratumLabels() {
        let fp32Normal = 0x1p-126, fp16Normal = 0x1p-14
        XCTAssertEqual(MagnitudeStratum.of(0.0, minimumNormal: fp32Normal), MagnitudeStratum.zero)
        XCTAssertEqual(MagnitudeStratum.of(-0.0, minimumNormal: fp32Normal), MagnitudeStratum.zero)
        XCTAssertEqual(MagnitudeStratum.of(0x1p-130, minimumNormal: fp32Normal), MagnitudeStratum.subnormal)
        XCTAssertEqual(MagnitudeStratum.of(-0x1p-149, minimumNormal: fp32Normal), MagnitudeStratum.subnormal)
        // fp16: 2^-15 is subnormal there, a normal binade in fp32.
        XCTAssertEqual(MagnitudeStratum.of(0x1p-15, minimumNormal: fp16Normal), MagnitudeStratum.subnormal)
        XCTAssertNotEqual(MagnitudeStratum.of(0x1p-15, minimumNormal: fp32Normal), MagnitudeStratum.subnormal)
        XCTAssertEqual(MagnitudeStratum.of(.infinity, minimumNormal: fp32Normal), MagnitudeStratum.nonFinite)
        XCTAssertEqual(MagnitudeStratum.of(.nan, minimumNormal: fp32Normal), MagnitudeStratum.nonFinite)
        // One binade per exponent, sign ignored; boundaries at powers of two.
        let one = MagnitudeStratum.of(1.0, minimumNormal: fp32Normal)
        XCTAssertEqual(MagnitudeStratum.of(1.9921875, minimumNormal: fp32Normal), one)
        XCTAssertEqual(MagnitudeStratum.of(-1.5, minimumNormal: fp32Normal), one)
        XCTAssertEqual(MagnitudeStratum.of(2.0, minimumNormal: fp32Normal), one + 1)
        XCTAssertEqual(MagnitudeStratum.of(0.99999, minimumNormal: fp32Normal), one - 1)
        XCTAssertEqual(MagnitudeStratum.of(0x1p-126, minimumNormal: fp32Normal), one - 126)
        XCTAssertLessThan(MagnitudeStratum.of(Double.greatestFiniteMagnitude, minimumNormal: fp32Normal),
                          MagnitudeStratum.count)
        XCTAssertGreaterThan(MagnitudeStratum.of(Double.leastNormalMagnitude, minimumNormal: 0), MagnitudeStratum.nonFinite)
    }

    /// Overlap and its baseline differ: M = {0, 1, 2} has c = (2, 1) in the two binades;
    /// X = {0, 2, 3, 5} has x = (2, 2). Expected (2/4·2 + 1/4·2) / 3 = 1/2, observed
    /// |{0, 2}| / 3 = 2/3.
    func testOverlapBaselineDiffersFromObserved() {
        let mask = BitMask(count: 8, positions: [0, 1, 2])
        let selection = BitMask(count: 8, positions: [0, 2, 3, 5])
        XCTAssertEqual(MaskStatistics.stratifiedOverlap(selection, with: mask, strata: strata)!, 0.5, accuracy: 1e-16)
        XCTAssertEqual(MaskStatistics.overlap(selection, with: mask)!, 2.0 / 3, accuracy: 1e-16)
        XCTAssertNil(MaskStatistics.stratifiedOverlap(selection, with: BitMask(count: 8), strata: strata))
    }

    /// A selection made of whole strata: the expectation equals the observed overlap
    /// exactly. X = the binade [1, 2) = {0, 1, 4, 5}: (2/4·4 + 1/4·0) / 3 = 2/3 = |{0, 1}| / 3.
    func testOverlapBaselineEqualsObservedForWholeStrata() {
        let mask = BitMask(count: 8, positions: [0, 1, 2])
        let selection = BitMask(count: 8, positions: [0, 1, 4, 5])
        let expected = MaskStatistics.stratifiedOverlap(selection, with: mask, strata: strata)!
        XCTAssertEqual(expected, 2.0 / 3)
        XCTAssertEqual(expected, MaskStatistics.overlap(selection, with: mask)!)
    }

    /// A = {0, 1, 2}: p = (1/2, 1/4); B = {0, 4, 5}: q = (3/4, 0).
    /// Σ n p q = 4·3/8 = 3/2; Σ n (p + q − pq) = 4·7/8 + 4·1/4 = 9/2; baseline 1/3.
    /// Observed |{0}| / |{0, 1, 2, 4, 5}| = 1/5; Bernoulli (3/8)² / (3/4 − 9/64) = 3/13.
    func testJaccardBaselineByHand() {
        let a = BitMask(count: 8, positions: [0, 1, 2])
        let b = BitMask(count: 8, positions: [0, 4, 5])
        XCTAssertEqual(MaskStatistics.stratifiedJaccard(a, b, strata: strata)!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertEqual(MaskStatistics.jaccard(a, b)!, 0.2, accuracy: 1e-16)
        XCTAssertEqual(MaskStatistics.bernoulliJaccard(3.0 / 8, 3.0 / 8)!, 3.0 / 13, accuracy: 1e-16)
        let consistency = TensorConsistency(masks: [a, b], rows: 2, columns: 4, strata: strata)
        XCTAssertEqual(consistency.jaccardMagnitude[0][1]!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertEqual(consistency.jaccardMagnitude[1][0]!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertEqual(consistency.meanJaccardMagnitude!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertNil(MaskStatistics.stratifiedJaccard(BitMask(count: 8), BitMask(count: 8), strata: strata))
    }

    /// Masks made of whole strata: observed Jaccard = baseline (1 for the same binade,
    /// 0 for disjoint binades).
    func testJaccardBaselineEqualsObservedForWholeStrata() {
        let upper = BitMask(count: 8, positions: [0, 1, 4, 5])
        let lower = BitMask(count: 8, positions: [2, 3, 6, 7])
        XCTAssertEqual(MaskStatistics.stratifiedJaccard(upper, upper, strata: strata), 1)
        XCTAssertEqual(MaskStatistics.jaccard(upper, upper), 1)
        XCTAssertEqual(MaskStatistics.stratifiedJaccard(upper, lower, strata: strata), 0)
        XCTAssertEqual(MaskStatistics.jaccard(upper, lower), 0)
    }

    /// Zeros and subnormals are strata of their own: a mask holding exactly the zero
    /// stratum is "explained" by magnitude even though zero is the smallest magnitude.
    func testZeroAndSubnormalStrata() {
        let values: [Double] = [0, -0.0, 0x1p-140, 0x1p-135, 1, 1.5, 3, 0]
        let strata = MagnitudeStrata(storedValues: values, minimumNormal: 0x1p-126)
        XCTAssertEqual(strata.sizes[MagnitudeStratum.zero], 3)
        XCTAssertEqual(strata.sizes[MagnitudeStratum.subnormal], 2)
        let mask = BitMask(count: 8, positions: [0, 7, 2])          // two zeros, one subnormal
        let selection = BitMask(count: 8, positions: [1, 3, 4])     // one zero, one subnormal, one normal
        // (2/3·1 + 1/2·1 + 0) / 3 = 7/18.
        XCTAssertEqual(MaskStatistics.stratifiedOverlap(selection, with: mask, strata: strata)!, 7.0 / 18, accuracy: 1e-16)
    }

    /// A matrix of mixed magnitudes (entries spread over about 12 binades).
    func spreadMatrix(rows: Int, columns: Int, seed: UInt64) -> Matrix {
        var random = TestRandom(seed: seed)
        return Matrix(rows: rows, columns: columns, rowMajor: (0..<(rows * columns)).map { _ in
            random.normalish() * pow(2, -8 * Double(random.next() % 1000) / 1000)
        })
    }

    /// bf16 half-ULP of a normal value: 2^(floor(log2 |w|) − 8).
    func bf16HalfULP(_ w: Double) -> Double { w == 0 ? 0 : pow(2, Double(w.exponent) - 8) }

    /// A precision-only update mask: every weight receives an update of the same size u,
    /// and it shows where u exceeds half an ULP of the weight. That is a threshold on
    /// |W0| at a power of two, so M is a union of whole binades, c_s / n_s is 0 or 1,
    /// and each stratified expectation Σ_s (c_s/n_s) x_s / Σ c_s is the observed
    /// |X ∩ M| / |M| itself: enrichment 1 for every mask X. The tolerance only covers
    /// the final division (the sums are of integers, exact in float64): 1e-12.
    func testThresholdMaskHasEnrichmentOne() throws {
        let base = spreadMatrix(rows: 48, columns: 40, seed: 11)
        let tuned = base + TestMatrices.random(rows: 48, columns: 40, seed: 12, scale: 1e-2)
        let u = 0x1p-12
        var mask = BitMask(count: 48 * 40)
        for i in 0..<48 { for j in 0..<40 where bf16HalfULP(base[i, j]) < u { mask.insert(i * 40 + j) } }
        XCTAssertGreaterThan(mask.density, 0.1)
        XCTAssertLessThan(mask.density, 0.9)
        let c = try MatrixComparison(base: base, tuned: tuned, updateMask: mask,
                                     options: SpectralOptions(k: 4, rank: 4, alpha: 0.5))
        for (observed, magnitude, name) in [(c.principalOverlap, c.principalOverlapMagnitude, "principal"),
                                            (c.lowOverlap, c.lowOverlapMagnitude, "low"),
                                            (c.controlOverlap, c.controlOverlapMagnitude, "control")] {
            XCTAssertEqual(observed! / magnitude!, 1, accuracy: 1e-12, name)
        }
        // The random baseline is far off: the precision mask avoids the principal
        // weights and hugs the low-magnitude ones.
        XCTAssertLessThan(c.principalOverlap!, c.principalOverlapRandom! - 0.02)
        XCTAssertGreaterThan(c.lowOverlap!, c.lowOverlapRandom! + 0.1)
        XCTAssertEqual(c.controlOverlapRandom, c.controlDensity)
        let json = c.jsonFields()
        XCTAssertEqual(json["principal_overlap_magnitude"]?.doubleValue, c.principalOverlapMagnitude)
        XCTAssertEqual(json["low_overlap_random"]?.doubleValue, 0.5)
        XCTAssertEqual(json["control_overlap_magnitude"]?.doubleValue, c.controlOverlapMagnitude)
    }

    /// Two runs whose changes depend only on the binade (independent Bernoulli draws
    /// with a per-binade probability, large for small weights as under bf16): the
    /// observed Jaccard matches the stratified baseline in expectation, and the
    /// overlaps have enrichment 1 in expectation.
    ///
    /// Tolerance: with N = 65 536 elements the intersection and union are sums of
    /// independent indicators with counts in the tens of thousands; the Jaccard's
    /// standard deviation is about sqrt(J (1 − J) / |union|) <= 0.5 / sqrt(20 000) ≈ 0.0035,
    /// so 0.015 is over four standard deviations (a false failure has probability below
    /// 1e-4, and the seeds are fixed anyway). The Bernoulli baseline sits more than
    /// 0.05 away, so the check can fail. Same reasoning for the overlaps: |M| > 20 000,
    /// so the standard deviation of an overlap is below 0.0035.
    func testBinadeDrivenDrawsMatchBaselinesInExpectation() throws {
        let rows = 256, columns = 256
        let base = spreadMatrix(rows: rows, columns: columns, seed: 21)
        let strata = MagnitudeStrata(storedMatrix: base, minimumNormal: 0x1p-126)
        func probability(_ w: Double) -> Double {
            let e = w.exponent
            return e < -6 ? 0.9 : (e < -3 ? 0.5 : 0.1)
        }
        func draw(seed: UInt64) -> BitMask {
            var random = TestRandom(seed: seed)
            var mask = BitMask(count: rows * columns)
            for i in 0..<rows {
                for j in 0..<columns where Double(random.next() >> 11) * 0x1p-53 < probability(base[i, j]) {
                    mask.insert(i * columns + j)
                }
            }
            return mask
        }
        let first = draw(seed: 101), second = draw(seed: 202)
        // The sizes the tolerance below is argued from.
        XCTAssertGreaterThan(first.unionCount(second), 20_000)
        XCTAssertGreaterThan(first.population, 20_000)
        let observed = MaskStatistics.jaccard(first, second)!
        let magnitude = MaskStatistics.stratifiedJaccard(first, second, strata: strata)!
        let bernoulli = MaskStatistics.bernoulliJaccard(first.density, second.density)!
        XCTAssertEqual(observed, magnitude, accuracy: 0.015)
        XCTAssertGreaterThan(magnitude - bernoulli, 0.05, "the test must be able to tell the two baselines apart")

        let tuned = base + TestMatrices.random(rows: rows, columns: columns, seed: 22, scale: 1e-3)
        let c = try MatrixComparison(base: base, tuned: tuned, updateMask: first, strata: strata,
                                     options: SpectralOptions(k: 4, rank: 4, alpha: 0.5))
        XCTAssertEqual(c.principalOverlap!, c.principalOverlapMagnitude!, accuracy: 0.015)
        XCTAssertEqual(c.lowOverlap!, c.lowOverlapMagnitude!, accuracy: 0.015)
        XCTAssertEqual(c.controlOverlap!, c.controlOverlapMagnitude!, accuracy: 0.015)
        XCTAssertGreaterThan(c.lowOverlap! - 0.5, 0.05, "the random baseline would call this a signal")
    }

    /// Without an explicit mask, M comes from the float64 values: +0 -> -0 is no change.
    func testValueMaskTreatsSignedZerosAsEqual() throws {
        let base = Matrix(rows: 2, columns: 2, rowMajor: [0, 1, 2, 3])
        let tuned = Matrix(rows: 2, columns: 2, rowMajor: [-0.0, 1, 2, 4])
        XCTAssertEqual(MatrixComparison.valueMask(base, tuned).positions, [3])
        XCTAssertEqual(try MatrixComparison(base: base, tuned: tuned, options: SpectralOptions(k: 1, rank: 1)).changed, 1)
    }
}

import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// Issue 12 through the library: precision-hidden changes of fp32 checkpoints, the
/// signed-zero rule and the magnitude baselines of `CheckpointComparison` and
/// `CheckpointConsistency`, against values derived by hand. (AttributionCLITests
/// checks that the flags reach these options and that the files are written.)
final class AttributionAnalysisTests: ScratchTestCase {
    /// fp32 checkpoints compared in bf16 (half an ULP of 1, 4 and 8 in bf16: 2^-8, 2^-6, 2^-5):
    ///   0: 1 -> 1 + 2^-10     ratio 2^-2, rounds back to 1: hidden
    ///   2: 4 -> 4 + 2^-5      ratio 2, bf16-exact: visible
    ///   3: 8 -> 8 + 2^-20     ratio 2^-15: hidden
    ///   5: 1 -> 1 - 2^-9      ratio 2^-1, a tie that rounds to even (1.0): hidden
    ///   6: -0 -> +0           no change by default; a change with signedZeroChanges
    ///   1, 4, 7: unchanged    ratio 0
    /// Default: fp32_changed 4, changed 1, hidden_by_precision 3. Counting ±0: 5, 2, 3.
    static let precisionName = "model.layers.0.mlp.up_proj.weight"
    static let precisionBase: [Double] = [1, 2, 4, 8, 0.5, 1, -0.0, 3]
    static let precisionTuned: [Double] = [1 + 0x1p-10, 2, 4 + 0x1p-5, 8 + 0x1p-20, 0.5, 1 - 0x1p-9, 0, 3]

    func testPrecisionHiddenChangesOfFP32Checkpoints() throws {
        let name = Self.precisionName
        try Fixtures.write(path("base.safetensors"),
                           [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: Self.precisionBase)])
        try Fixtures.write(path("tuned.safetensors"),
                           [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: Self.precisionTuned)])
        for (flag, fp32Changed, changed) in [(false, 4, 1), (true, 5, 2)] {
            let options = CheckpointComparisonOptions(format: .bf16, spectral: SpectralOptions(k: 1, rank: 1),
                                                      signedZeroChanges: flag)
            let comparison = try CheckpointComparison(basePath: path("base.safetensors"),
                                                      tunedPath: path("tuned.safetensors"), options: options)
            let report = comparison.json()
            let row = try XCTUnwrap(report["tensors"]?[0])
            XCTAssertEqual(row["fp32_changed"]?.integerValue, Int64(fp32Changed), "flag \(flag)")
            XCTAssertEqual(row["changed"]?.integerValue, Int64(changed), "flag \(flag)")
            XCTAssertEqual(row["hidden_by_precision"]?.integerValue, 3, "flag \(flag)")
            XCTAssertEqual(report["total"]?["hidden_by_precision"]?.integerValue, 3)
            XCTAssertEqual(report["options"]?["signed_zero_changes"]?.boolValue, flag)
            let labels = try XCTUnwrap(report["precision_ratio_bins"]?.arrayValue?.compactMap(\.stringValue))
            let histogram = try XCTUnwrap(row["precision_ratio_histogram"]?.arrayValue?.compactMap(\.integerValue))
            let visible = try XCTUnwrap(row["precision_ratio_visible"]?.arrayValue?.compactMap(\.integerValue))
            var expected: [String: Int64] = ["0": 4, "2^-2": 1, "2^1": 1, "2^-15": 1, "2^-1": 1]
            for (label, count) in zip(labels, histogram) {
                XCTAssertEqual(count, expected.removeValue(forKey: label) ?? 0, "bin \(label)")
            }
            XCTAssertTrue(expected.isEmpty)
            XCTAssertEqual(visible[labels.firstIndex(of: "2^1")!], 1)
            XCTAssertEqual(visible.reduce(0, +), flag ? 2 : 1)   // the ±0 pair sits in bin 0
            // The plots name every file once (the pre-flight check uses the same names).
            let written = Set(comparison.plots().map(\.name))
            for plot in [ComparisonPlot.precisionHiddenTable, .precisionHidden, .overlapsByType] {
                XCTAssertTrue(written.contains(plot.fileName), plot.fileName)
            }
        }
        // Inputs already in the comparison format: the keys are null.
        let comparison = try CheckpointComparison(basePath: path("base.safetensors"), tunedPath: path("tuned.safetensors"),
                                                  options: CheckpointComparisonOptions(format: .fp32))
        let row = try XCTUnwrap(comparison.json()["tensors"]?[0])
        XCTAssertEqual(row["fp32_changed"], .null)
        XCTAssertEqual(row["hidden_by_precision"], .null)
        XCTAssertEqual(row["changed"]?.integerValue, 4, "fp32 codes: everything but the ±0 pair")
        XCTAssertNotNil(row["principal_overlap_magnitude"]?.doubleValue)
        XCTAssertEqual(row["low_overlap_random"]?.doubleValue, 0.5)
        XCTAssertEqual(row["svd"]?.stringValue, "exact", "exact SVD is the default")
        XCTAssertEqual(row["angle_note"], .null)
        XCTAssertFalse(comparison.plots().contains { $0.name == ComparisonPlot.precisionHidden.fileName })
    }

    /// bf16 base with binades U = {0, 1, 4, 5} (n 4), L = {2, 3, 6} (n 3), Z = {7} (-0).
    /// Run A changes {0, 1, 2}; run B changes {0, 4, 5} and flips -0 to +0.
    /// Default (±0 no change): p = (1/2, 1/3, 0), q = (3/4, 0, 0):
    ///   Σ n p q = 4·3/8 = 3/2; Σ n (p + q − p q) = 4·7/8 + 3·1/3 = 9/2 -> 1/3; observed 1/5.
    /// Counting ±0, q_Z = 1 adds 1 to the union: 3/2 / 11/2 = 3/11; observed 1/6.
    static let consistencyName = "model.layers.0.self_attn.k_proj.weight"

    static func writeConsistencyRuns(base: String, a: String, b: String) throws {
        let name = consistencyName
        let values: [Double] = [1, 1.5, 0.25, 0.375, 1.25, 1.75, 0.3125, -0.0]
        var runA = values, runB = values
        for index in [0, 1, 2] { runA[index] *= 1.5 }
        for index in [0, 4, 5] { runB[index] *= 1.5 }
        runB[7] = 0
        try Fixtures.write(base, [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: values)])
        try Fixtures.write(a, [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: runA)])
        try Fixtures.write(b, [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: runB)])
    }

    func testConsistencyMagnitudeBaselineAndSignedZeros() throws {
        try Self.writeConsistencyRuns(base: path("base.safetensors"), a: path("a.safetensors"), b: path("b.safetensors"))
        for (flag, observed, magnitude) in [(false, 1.0 / 5, 1.0 / 3), (true, 1.0 / 6, 3.0 / 11)] {
            let consistency = try CheckpointConsistency(
                basePath: path("base.safetensors"), runPaths: [path("a.safetensors"), path("b.safetensors")],
                options: ConsistencyOptions(format: .bf16, signedZeroChanges: flag))
            let report = consistency.json()
            let row = try XCTUnwrap(report["tensors"]?[0])
            XCTAssertEqual(row["jaccard"]?[0]?[1]?.doubleValue ?? 0, observed, accuracy: 1e-15, "flag \(flag)")
            XCTAssertEqual(row["jaccard_magnitude"]?[0]?[1]?.doubleValue ?? 0, magnitude, accuracy: 1e-15, "flag \(flag)")
            XCTAssertEqual(row["mean_jaccard_magnitude"]?.doubleValue ?? 0, magnitude, accuracy: 1e-15)
            XCTAssertEqual(report["total"]?["jaccard_magnitude"]?.doubleValue ?? 0, magnitude, accuracy: 1e-15)
            XCTAssertEqual(report["options"]?["signed_zero_changes"]?.boolValue, flag)
            XCTAssertTrue(consistency.text(width: 200).contains("magnitude"))
        }
    }
}

import Foundation
import PrecLabSupport
import XCTest

/// Issue 12 through the CLI: precision-hidden changes of fp32 checkpoints, the
/// signed-zero rule and the magnitude baselines in `compare` and `consistency`.
final class AttributionCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// fp32 checkpoints compared in bf16 (half an ULP of 1, 4 and 8 in bf16: 2^-8, 2^-6, 2^-5):
    ///   0: 1 -> 1 + 2^-10     ratio 2^-2, rounds back to 1: hidden
    ///   2: 4 -> 4 + 2^-5      ratio 2, bf16-exact: visible
    ///   3: 8 -> 8 + 2^-20     ratio 2^-15: hidden
    ///   5: 1 -> 1 - 2^-9      ratio 2^-1, a tie that rounds to even (1.0): hidden
    ///   6: -0 -> +0           no change by default; a change with --signed-zero-changes
    ///   1, 4, 7: unchanged    ratio 0
    /// Default: fp32_changed 4, changed 1, hidden_by_precision 3. With the flag: 5, 2, 3.
    func testPrecisionHiddenChangesOfFP32Checkpoints() throws {
        let name = "model.layers.0.mlp.up_proj.weight"
        let base: [Double] = [1, 2, 4, 8, 0.5, 1, -0.0, 3]
        let tuned: [Double] = [1 + 0x1p-10, 2, 4 + 0x1p-5, 8 + 0x1p-20, 0.5, 1 - 0x1p-9, 0, 3]
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: base)])
        try Fixtures.write(path("tuned.safetensors"), [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: tuned)])
        for (flag, fp32Changed, changed) in [(false, 4, 1), (true, 5, 2)] {
            let json = path("out-\(flag).json"), plots = path("plots-\(flag)")
            var arguments = ["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "1", "--rank", "1",
                             "--json", json, "--plots", plots, "--quiet"]
            if flag { arguments.append("--signed-zero-changes") }
            let result = try CLIRunner.run(arguments)
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try Fixtures.readJSON(json)
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
            let csv = try String(contentsOfFile: plots + "/precision_hidden.csv", encoding: .utf8)
            XCTAssertTrue(csv.contains("2^-15,1,0,1"), csv)
            XCTAssertTrue(FileManager.default.fileExists(atPath: plots + "/precision_hidden.svg"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: plots + "/overlaps_by_type.svg"))
        }
        // Inputs already in --dtype: the keys are null.
        let json = path("bf16.json")
        let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--dtype", "fp32",
                                        "--json", json, "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(try Fixtures.readJSON(json)["tensors"]?[0])
        XCTAssertEqual(row["fp32_changed"], .null)
        XCTAssertEqual(row["hidden_by_precision"], .null)
        XCTAssertEqual(row["changed"]?.integerValue, 4, "fp32 codes: everything but the ±0 pair")
        XCTAssertNotNil(row["principal_overlap_magnitude"]?.doubleValue)
        XCTAssertEqual(row["low_overlap_random"]?.doubleValue, 0.5)
        XCTAssertEqual(row["svd"]?.stringValue, "exact", "exact SVD is the default")
        XCTAssertEqual(row["angle_note"], .null)
    }

    /// bf16 base with binades U = {0, 1, 4, 5} (n 4), L = {2, 3, 6} (n 3), Z = {7} (-0).
    /// Run A changes {0, 1, 2}; run B changes {0, 4, 5} and flips -0 to +0.
    /// Default (±0 no change): p = (1/2, 1/3, 0), q = (3/4, 0, 0):
    ///   Σ n p q = 4·3/8 = 3/2; Σ n (p + q − p q) = 4·7/8 + 3·1/3 = 9/2 -> 1/3; observed 1/5.
    /// With --signed-zero-changes q_Z = 1 adds 1 to the union: 3/2 / 11/2 = 3/11; observed 1/6.
    func testConsistencyMagnitudeBaselineAndSignedZeros() throws {
        let name = "model.layers.0.self_attn.k_proj.weight"
        let base: [Double] = [1, 1.5, 0.25, 0.375, 1.25, 1.75, 0.3125, -0.0]
        var runA = base, runB = base
        for index in [0, 1, 2] { runA[index] *= 1.5 }
        for index in [0, 4, 5] { runB[index] *= 1.5 }
        runB[7] = 0
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: base)])
        try Fixtures.write(path("a.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: runA)])
        try Fixtures.write(path("b.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: runB)])
        for (flag, observed, magnitude) in [(false, 1.0 / 5, 1.0 / 3), (true, 1.0 / 6, 3.0 / 11)] {
            let json = path("c-\(flag).json")
            var arguments = ["consistency", "--base", path("base.safetensors"), path("a.safetensors"), path("b.safetensors"),
                             "--json", json, "--quiet"]
            if flag { arguments.append("--signed-zero-changes") }
            let result = try CLIRunner.run(arguments)
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try Fixtures.readJSON(json)
            let row = try XCTUnwrap(report["tensors"]?[0])
            XCTAssertEqual(row["jaccard"]?[0]?[1]?.doubleValue ?? 0, observed, accuracy: 1e-15, "flag \(flag)")
            XCTAssertEqual(row["jaccard_magnitude"]?[0]?[1]?.doubleValue ?? 0, magnitude, accuracy: 1e-15, "flag \(flag)")
            XCTAssertEqual(row["mean_jaccard_magnitude"]?.doubleValue ?? 0, magnitude, accuracy: 1e-15)
            XCTAssertEqual(report["total"]?["jaccard_magnitude"]?.doubleValue ?? 0, magnitude, accuracy: 1e-15)
            XCTAssertTrue(result.stdout.isEmpty || result.stdout.contains("magnitude"), result.stdout)
        }
    }
}

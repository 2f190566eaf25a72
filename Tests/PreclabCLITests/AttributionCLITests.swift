import Foundation
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// Issue 12 through the CLI: `--signed-zero-changes` reaches compare and consistency,
/// the exact SVD is the default, and the precision-hidden and overlap files are
/// written. The numbers themselves are checked by hand in AttributionAnalysisTests.
final class AttributionCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The fixture of AttributionAnalysisTests.testPrecisionHiddenChangesOfFP32Checkpoints:
    /// by default fp32_changed 4, changed 1; with --signed-zero-changes 5, 2; the bin
    /// 2^-15 holds one hidden weight.
    func testPrecisionHiddenChangesOfFP32Checkpoints() throws {
        let name = "model.layers.0.mlp.up_proj.weight"
        let base: [Double] = [1, 2, 4, 8, 0.5, 1, -0.0, 3]
        let tuned: [Double] = [1 + 0x1p-10, 2, 4 + 0x1p-5, 8 + 0x1p-20, 0.5, 1 - 0x1p-9, 0, 3]
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: base)])
        try Fixtures.write(path("tuned.safetensors"), [FixtureTensor(name: name, dtype: .f32, shape: [2, 4], values: tuned)])
        for (flag, fp32Changed, changed) in [(false, 4, 1), (true, 5, 2)] {
            let json = path("out-\(flag).json"), plots = path("plots-\(flag)"), csvPath = path("out-\(flag).csv")
            var arguments = ["compare", path("base.safetensors"), path("tuned.safetensors"), "--k", "1", "--rank", "1",
                             "--json", json, "--csv", csvPath, "--plots", plots, "--quiet"]
            if flag { arguments.append("--signed-zero-changes") }
            let result = try CLIRunner.run(arguments)
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try Fixtures.readJSON(json)
            let row = try XCTUnwrap(report["tensors"]?[0])
            XCTAssertEqual(row["fp32_changed"]?.integerValue, Int64(fp32Changed), "flag \(flag)")
            XCTAssertEqual(row["changed"]?.integerValue, Int64(changed), "flag \(flag)")
            XCTAssertEqual(row["hidden_by_precision"]?.integerValue, 3, "flag \(flag)")
            XCTAssertEqual(report["options"]?["signed_zero_changes"]?.boolValue, flag)
            let csv = try String(contentsOfFile: plots + "/precision_hidden.csv", encoding: .utf8)
            XCTAssertTrue(csv.contains("2^-15,1,0,1"), csv)
            XCTAssertTrue(FileManager.default.fileExists(atPath: plots + "/precision_hidden.svg"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: plots + "/overlaps_by_type.svg"))
            let table = try String(contentsOfFile: csvPath, encoding: .utf8)
            let header = table.split(separator: "\n")[0].split(separator: ",").map(String.init)
            for column in ["principal_overlap_magnitude", "low_overlap_magnitude", "control_overlap_random",
                           "control_overlap_magnitude", "angle_error_bound_deg", "fp32_changed", "hidden_by_precision"] {
                XCTAssertTrue(header.contains(column), column)
            }
        }
        // Inputs already in --dtype: the keys are null; exact SVD without --svd.
        let json = path("bf16.json")
        let result = try CLIRunner.run(["compare", path("base.safetensors"), path("tuned.safetensors"), "--dtype", "fp32",
                                        "--json", json, "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(try Fixtures.readJSON(json)["tensors"]?[0])
        XCTAssertEqual(row["fp32_changed"], .null)
        XCTAssertEqual(row["hidden_by_precision"], .null)
        XCTAssertEqual(row["changed"]?.integerValue, 4, "fp32 codes: everything but the ±0 pair")
        XCTAssertEqual(row["svd"]?.stringValue, "exact", "exact SVD is the default")
        XCTAssertEqual(row["angle_note"], .null)
    }

    /// The fixture of AttributionAnalysisTests.testConsistencyMagnitudeBaselineAndSignedZeros:
    /// Jaccard 1/5 and magnitude baseline 1/3 by default, 1/6 and 3/11 with the flag.
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
            let json = path("c-\(flag).json"), plots = path("c-plots-\(flag)")
            var arguments = ["consistency", "--base", path("base.safetensors"), path("a.safetensors"), path("b.safetensors"),
                             "--json", json, "--plots", plots, "--quiet"]
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
            let svg = try String(contentsOfFile: plots + "/jaccard_by_type.svg", encoding: .utf8)
            XCTAssertTrue(svg.contains("magnitude baseline"))
        }
    }
}

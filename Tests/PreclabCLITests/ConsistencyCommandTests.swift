import Foundation
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

final class ConsistencyCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The command writes what the library computes (numbers: PrecLabAnalysisTests):
    /// the JSON and both plots with --heatmap.
    func testWritesJSONAndPlots() throws {
        let name = "model.layers.2.self_attn.v_proj.weight"
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: [1, 2, 3, 4, 5, 6, 7, 8])])
        try Fixtures.write(path("run0.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: [1.5, 2, 3, 4, 5, 6, 7, 8])])
        try Fixtures.write(path("run1.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: [1.5, 3, 3, 4, 5, 6, 7, 8])])
        let json = path("out.json"), plots = path("plots")
        let result = try CLIRunner.run(["consistency", "--base", path("base.safetensors"), path("run0.safetensors"),
                                        path("run1.safetensors"), "--json", json, "--plots", plots, "--heatmap", name])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(try Fixtures.readJSON(json)["tensors"]?[0])
        // Masks {0} and {0, 1}: Jaccard 1/2.
        XCTAssertEqual(row["jaccard"]?[0]?[1]?.doubleValue, 0.5)
        for file in ["consensus_heatmap.svg", "jaccard_by_type.svg"] {
            XCTAssertTrue(try String(contentsOfFile: plots + "/" + file, encoding: .utf8).contains("<svg"), file)
        }
    }

    func testUsageAndSkips() throws {
        let name = "w"
        try Fixtures.write(path("base.safetensors"), [
            FixtureTensor(name: name, dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4]),
            FixtureTensor(name: "only.base", dtype: .bf16, shape: [2], values: [1, 2]),
        ])
        try Fixtures.write(path("r1.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        try Fixtures.write(path("r2.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 6])])
        let base = path("base.safetensors"), r1 = path("r1.safetensors"), r2 = path("r2.safetensors")
        for arguments in [[base, r1], ["--base", base, r1], ["--base", base, r1, r2, "--heatmap", name],
                          ["--base", base, r1, r2, "--plots", path("p"), "--heatmap", "nope"]] {
            let result = try CLIRunner.run(["consistency"] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
        }
        let ok = try CLIRunner.run(["consistency", "--base", base, r1, r2, "--quiet"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("skipped only.base: missing in run 1"), ok.stdout)
        let none = try CLIRunner.run(["consistency", "--base", base, r1, r2, "--tensors", "only"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("nothing to compare"), none.stderr)
    }
}

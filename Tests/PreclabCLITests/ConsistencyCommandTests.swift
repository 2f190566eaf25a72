import Foundation
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

final class ConsistencyCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try CLIRunner.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A 2x4 tensor and three runs changing positions {0,1,2,3}, {0,1,4,5} and {0,6}:
    /// Jaccard(1,2) = 2/6, Jaccard(1,3) = 1/5, Jaccard(2,3) = 1/5; densities 1/2, 1/2,
    /// 1/4, baselines 1/3 and (1/8)/(5/8) = 1/5; consensus counts [3,2,1,1,1,1,1,0]
    /// (histogram [1, 5, 1, 1]; unanimous 1/8).
    func testHandCheckedRuns() throws {
        let name = "model.layers.2.self_attn.v_proj.weight"
        let base: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
        func changed(_ positions: [Int]) -> [Double] {
            base.enumerated().map { positions.contains($0.offset) ? $0.element * 1.5 : $0.element }
        }
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: base)])
        for (index, positions) in [[0, 1, 2, 3], [0, 1, 4, 5], [0, 6]].enumerated() {
            try Fixtures.write(path("run\(index).safetensors"),
                               [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: changed(positions))])
        }
        let json = path("out.json"), plots = path("plots")
        let result = try CLIRunner.run(["consistency", "--base", path("base.safetensors"), path("run0.safetensors"),
                                        path("run1.safetensors"), path("run2.safetensors"), "--json", json,
                                        "--plots", plots, "--heatmap", name])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try Fixtures.readJSON(json)
        let row = try XCTUnwrap(report["tensors"]?[0])
        XCTAssertEqual(row["jaccard"]?[0]?[1]?.doubleValue, 2.0 / 6)
        XCTAssertEqual(row["jaccard"]?[0]?[2]?.doubleValue, 1.0 / 5)
        XCTAssertEqual(row["jaccard"]?[1]?[2]?.doubleValue, 1.0 / 5)
        XCTAssertEqual(row["baseline"]?[0]?[1]?.doubleValue ?? 0, 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(row["baseline"]?[0]?[2]?.doubleValue ?? 0, 1.0 / 5, accuracy: 1e-15)
        XCTAssertEqual(row["mean_jaccard"]?.doubleValue ?? 0, (2.0 / 6 + 2.0 / 5) / 3, accuracy: 1e-15)
        XCTAssertEqual(row["consensus_histogram"], .array([1, 5, 1, 1]))
        XCTAssertEqual(row["unanimous_fraction"]?.doubleValue, 1.0 / 8)
        // Row means of the consensus: (3+2+1+1)/12 and (1+1+1+0)/12.
        XCTAssertEqual(row["row_ratio"]?["max"]?.doubleValue, 7.0 / 12)
        XCTAssertEqual(row["row_ratio"]?["min"]?.doubleValue, 3.0 / 12)
        XCTAssertEqual(report["by_type"]?["v"]?["jaccard"]?.doubleValue ?? 0, (2.0 / 6 + 2.0 / 5) / 3, accuracy: 1e-15)
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

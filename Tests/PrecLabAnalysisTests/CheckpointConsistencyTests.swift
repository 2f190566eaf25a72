import Foundation
import PrecLabAnalysis
import PrecLabFormats
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

final class CheckpointConsistencyTests: ScratchTestCase {
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
        var runs: [String] = []
        for (index, positions) in [[0, 1, 2, 3], [0, 1, 4, 5], [0, 6]].enumerated() {
            runs.append(path("run\(index).safetensors"))
            try Fixtures.write(runs[index], [FixtureTensor(name: name, dtype: .bf16, shape: [2, 4], values: changed(positions))])
        }
        let result = try CheckpointConsistency(basePath: path("base.safetensors"), runPaths: runs)
        let row = try XCTUnwrap(result.tensors.first).result
        XCTAssertEqual(row.jaccard[0][1], 2.0 / 6)
        XCTAssertEqual(row.jaccard[0][2], 1.0 / 5)
        XCTAssertEqual(row.jaccard[1][2], 1.0 / 5)
        XCTAssertEqual(try XCTUnwrap(row.baseline[0][1]), 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(row.baseline[0][2]), 1.0 / 5, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(row.meanJaccard), (2.0 / 6 + 2.0 / 5) / 3, accuracy: 1e-15)
        XCTAssertEqual(row.consensus.histogram, [1, 5, 1, 1])
        XCTAssertEqual(row.consensus.unanimousFraction, 1.0 / 8)
        // Row means of the consensus: (3+2+1+1)/12 and (1+1+1+0)/12.
        XCTAssertEqual(row.rowRatios.maximum, 7.0 / 12)
        XCTAssertEqual(row.rowRatios.minimum, 3.0 / 12)
        XCTAssertEqual(try XCTUnwrap(result.summary(of: .v).mean(.jaccard)), (2.0 / 6 + 2.0 / 5) / 3, accuracy: 1e-15)
        XCTAssertEqual(result.plots(heatmap: name).map(\.name), ConsistencyPlot.allCases.map(\.fileName))
        XCTAssertEqual(result.plots().map(\.name), [ConsistencyPlot.jaccardByType.fileName])
    }

    func testFewerThanTwoRunsAndNothingInCommon() throws {
        try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])])
        try Fixtures.write(path("r1.safetensors"), [FixtureTensor(name: "v", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 5])])
        XCTAssertThrowsError(try CheckpointConsistency(basePath: path("base.safetensors"), runPaths: [path("r1.safetensors")])) {
            guard case PrecLabError.invalidArgument = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try CheckpointConsistency(basePath: path("base.safetensors"),
                                                       runPaths: [path("r1.safetensors"), path("r1.safetensors")])) {
            XCTAssertEqual(($0 as? PrecLabError)?.isDataError, true)
            XCTAssertTrue("\($0)".contains("nothing to compare") && "\($0)".contains("w: missing in run 1"), "\($0)")
        }
    }
}

import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport
import PrecLabTestFixtures
import XCTest

/// `CheckpointComparison` called as a library: the numbers `preclab compare` reports,
/// checked against values derived by hand.
final class CheckpointComparisonTests: ScratchTestCase {
    private func options(k: Int, rank: Int, format: FloatFormat = .bf16) -> CheckpointComparisonOptions {
        CheckpointComparisonOptions(format: format, spectral: SpectralOptions(k: k, rank: rank, alpha: 0.5))
    }

    /// `Fixtures.writeHandCheckedPair` derives every expected value by hand.
    func testHandCheckedPair() throws {
        let (q, norm) = try Fixtures.writeHandCheckedPair(base: path("base.safetensors"), tuned: path("tuned.safetensors"))
        let result = try CheckpointComparison(basePath: path("base.safetensors"), tunedPath: path("tuned.safetensors"),
                                              options: options(k: 1, rank: 1))
        let row = try XCTUnwrap(result.tensors.first { $0.name.name == q })
        XCTAssertEqual(row.changed, 1)
        XCTAssertEqual(row.params, 4)
        XCTAssertEqual(row.sparsity, 0.75)
        XCTAssertEqual(row.name.type, .q)
        XCTAssertEqual(row.name.layer, 0)
        let c = try XCTUnwrap(row.comparison)
        XCTAssertEqual(try XCTUnwrap(c.nss), 0.2, accuracy: 1e-15)
        XCTAssertEqual(try XCTUnwrap(c.angleUMaxDegrees), 0, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(c.angleVMaxDegrees), 0, accuracy: 1e-9)
        XCTAssertEqual(c.principalOverlap, 1)
        XCTAssertEqual(c.lowOverlap, 0)
        XCTAssertEqual(c.k, 1)
        XCTAssertEqual(c.rank, 1)
        let normRow = try XCTUnwrap(result.tensors.first { $0.name.name == norm })
        XCTAssertEqual(normRow.changed, 1)
        XCTAssertNil(normRow.comparison)
        XCTAssertEqual(normRow.spectralNote, "1-D tensor: sparsity only")
        XCTAssertEqual(result.total.parameters, 8)
        XCTAssertEqual(result.total.changed, 2)
        XCTAssertEqual(result.total.sparsity, 0.75)
        XCTAssertEqual(try XCTUnwrap(result.summary(of: .q).mean(.nss)), 0.2, accuracy: 1e-15)
        XCTAssertEqual(result.skipped, [SkippedTensor(name: norm, scope: .spectral, reason: "1-D tensor: sparsity only")])
        // The JSON is an encoding of these values.
        let json = result.json()
        XCTAssertEqual(json.objectValue?["total"]?.objectValue?["changed"], 2)
        XCTAssertEqual(json.objectValue?["options"]?.objectValue?["svd"], "exact", "exact SVD is the library default too")
    }

    /// fp32 checkpoints are rounded to bf16 before comparing: at 1 a change of 2^-10
    /// is below half a bf16 ulp (2^-8) and vanishes; at 4 a change of 2^-5 is one bf16
    /// ulp and stays. In fp32 both changes are visible. The same holds for F64 and F16
    /// storage (all four values are exact in fp16).
    func testWiderCheckpointsAreCastToTheComparisonFormat() throws {
        for stored in [TensorDType.f32, .f64, .f16] {
            try Fixtures.write(path("base.safetensors"), [FixtureTensor(name: "w", dtype: stored, shape: [2, 2], values: [1, 2, 4, 8])])
            try Fixtures.write(path("tuned.safetensors"),
                               [FixtureTensor(name: "w", dtype: stored, shape: [2, 2], values: [1 + 0x1p-10, 2, 4 + 0x1p-5, 8])])
            for (format, changed) in [(FloatFormat.bf16, 1), (.fp32, 2)] {
                let result = try CheckpointComparison(basePath: path("base.safetensors"), tunedPath: path("tuned.safetensors"),
                                                      options: options(k: 1, rank: 1, format: format))
                let row = try XCTUnwrap(result.tensors.first)
                XCTAssertEqual(row.changed, changed, "\(stored.name) as \(format.name)")
                XCTAssertEqual(row.converted, !(format == .fp32 && stored == .f32))
            }
        }
    }

    /// A sharded TUNED checkpoint gives the same numbers as the single file; missing and
    /// mismatched tensors are listed with reasons, never dropped silently.
    func testShardedCheckpointAndMismatchedTensors() throws {
        var random = Fixtures.Random(state: 42)
        let a = (0..<(6 * 5)).map { _ in random.next() }
        let aTuned = a.enumerated().map { $0.offset % 3 == 0 ? $0.element * 1.02 : $0.element }
        let c = (0..<9).map { _ in random.next() }
        try Fixtures.write(path("base.safetensors"), [
            FixtureTensor(name: "model.layers.1.mlp.up_proj.weight", dtype: .bf16, shape: [6, 5], values: a),
            FixtureTensor(name: "model.layers.1.mlp.gate_proj.weight", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4]),
            FixtureTensor(name: "model.layers.1.mlp.down_proj.weight", dtype: .bf16, shape: [3, 3], values: c),
            FixtureTensor(name: "model.layers.1.steps", dtype: .i64, shape: [1], values: [3]),
        ])
        let up = FixtureTensor(name: "model.layers.1.mlp.up_proj.weight", dtype: .bf16, shape: [6, 5], values: aTuned)
        let gate = FixtureTensor(name: "model.layers.1.mlp.gate_proj.weight", dtype: .bf16, shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let extra = FixtureTensor(name: "lm_head.weight", dtype: .bf16, shape: [2, 2], values: [1, 0, 0, 1])
        let steps = FixtureTensor(name: "model.layers.1.steps", dtype: .i64, shape: [1], values: [4])
        let sharded = path("tuned")
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: true)
        try Fixtures.writeSharded(sharded, [[up, steps], [gate, extra]])
        try Fixtures.write(path("tuned.safetensors"), [up, gate, extra, steps])

        var results: [CheckpointComparison] = []
        for tuned in [sharded, sharded + "/model.safetensors.index.json", path("tuned.safetensors")] {
            results.append(try CheckpointComparison(basePath: path("base.safetensors"), tunedPath: tuned,
                                                    options: options(k: 2, rank: 2)))
        }
        for result in results.dropFirst() {
            XCTAssertEqual(result.json().objectValue?["tensors"], results[0].json().objectValue?["tensors"],
                           "sharded and single-file results must agree")
        }
        let result = results[0]
        XCTAssertEqual(result.tunedPath, sharded, "reports name a checkpoint as the caller gave it")
        XCTAssertEqual(result.tensors.count, 1)
        XCTAssertEqual(result.tensors[0].changed, 10, "every third of 30 entries scaled by 1.02 (> half a bf16 ulp)")
        let skipped = Dictionary(uniqueKeysWithValues: result.skipped.map { ($0.name, $0.reason) })
        XCTAssertEqual(skipped["model.layers.1.mlp.gate_proj.weight"], "shape [2, 2] in BASE vs [2, 3] in TUNED")
        XCTAssertEqual(skipped["model.layers.1.mlp.down_proj.weight"], "missing in TUNED")
        XCTAssertEqual(skipped["lm_head.weight"], "missing in BASE")
        XCTAssertEqual(skipped["model.layers.1.steps"], "dtype I64 is not a floating-point type")
        // Every file of the sharded checkpoint (index and shards) is an input an output must
        // not replace; a directory opens as its index.
        let checkpoint = try Checkpoint.open(sharded)
        XCTAssertEqual(Set(checkpoint.filePaths.map { URL(fileURLWithPath: $0).lastPathComponent }),
                       ["model.safetensors.index.json", "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors"])
    }

    /// Nothing comparable is a data error naming the reason; a selection is applied
    /// before pairing.
    func testNothingComparableAndSelection() throws {
        try Fixtures.write(path("a.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [2, 2], values: [1, 2, 3, 4])])
        try Fixtures.write(path("b.safetensors"), [FixtureTensor(name: "w", dtype: .bf16, shape: [4], values: [1, 2, 3, 4])])
        XCTAssertThrowsError(try CheckpointComparison(basePath: path("a.safetensors"), tunedPath: path("b.safetensors"))) {
            let error = $0 as? PrecLabError
            XCTAssertEqual(error?.isDataError, true)
            XCTAssertTrue("\($0)".contains("nothing to compare") && "\($0)".contains("shape [2, 2] in BASE vs [4] in TUNED"), "\($0)")
        }
        var selected = CheckpointComparisonOptions()
        selected.selection = try TensorSelection(pattern: "^q_proj$")
        XCTAssertThrowsError(try CheckpointComparison(basePath: path("a.safetensors"), tunedPath: path("a.safetensors"),
                                                      options: selected))
    }
}

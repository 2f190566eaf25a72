import Foundation
import XCTest
@testable import PrecLabSpectral

final class TensorNamingTests: XCTestCase {
    func testTypesAndLayers() {
        let cases: [(String, Int?, MatrixType)] = [
            ("model.layers.3.self_attn.q_proj.weight", 3, .q),
            ("model.layers.12.self_attn.k_proj.weight", 12, .k),
            ("model.layers.0.self_attn.v_proj.weight", 0, .v),
            ("model.layers.7.self_attn.o_proj.weight", 7, .o),
            ("model.layers.27.mlp.gate_proj.weight", 27, .gate),
            ("model.layers.27.mlp.up_proj.weight", 27, .up),
            ("model.layers.27.mlp.down_proj.weight", 27, .down),
            ("model.layers.2.mlp.experts.15.down_proj.weight", 2, .down),
            ("transformer.h.5.attn.c_proj.weight", 5, .o),
            ("transformer.h.5.mlp.c_proj.weight", 5, .down),
            ("transformer.h.5.attn.c_attn.weight", 5, .others),
            ("model.layers.4.self_attn.qkv_proj.weight", 4, .others),
            ("model.embed_tokens.weight", nil, .others),
            ("lm_head.weight", nil, .others),
            ("model.layers.1.input_layernorm.weight", 1, .others),
            // BERT / MiniLM: three matrices named `dense`, one per role.
            ("bert.encoder.layer.3.attention.self.query.weight", 3, .q),
            ("bert.encoder.layer.3.attention.output.dense.weight", 3, .o),
            ("bert.encoder.layer.3.intermediate.dense.weight", 3, .up),
            ("bert.encoder.layer.3.output.dense.weight", 3, .down),
            ("encoder.layer.11.output.LayerNorm.weight", 11, .others),
            // GPT-NeoX: the attention output is `attention.dense`.
            ("gpt_neox.layers.2.attention.dense.weight", 2, .o),
        ]
        for (name, layer, type) in cases {
            let parsed = TensorName(name)
            XCTAssertEqual(parsed.layer, layer, name)
            XCTAssertEqual(parsed.type, type, name)
        }
    }

    func testReportOrder() {
        let names = [
            "lm_head.weight",
            "model.layers.10.self_attn.q_proj.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.2.self_attn.v_proj.weight",
            "model.embed_tokens.weight",
            "model.layers.2.self_attn.q_proj.weight",
        ]
        XCTAssertEqual(names.map(TensorName.init).sorted().map(\.name), [
            "model.embed_tokens.weight",
            "model.layers.2.self_attn.q_proj.weight",
            "model.layers.2.self_attn.v_proj.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.10.self_attn.q_proj.weight",   // numeric, not lexicographic
            "lm_head.weight",
        ])
    }
}

final class SummaryAndConsistencyTests: XCTestCase {
    func testWeightedSummary() {
        var summary = WeightedSummary<String>()
        summary.add(parameters: 100, changed: 10, metrics: [("nss", 1e-3), ("angle", nil)])
        summary.add(parameters: 300, changed: 90, metrics: [("nss", 3e-3), ("angle", 2)])
        XCTAssertEqual(summary.tensors, 2)
        XCTAssertEqual(summary.sparsity, 300.0 / 400)
        // (100·1e-3 + 300·3e-3) / 400 = 1e-3 / 0.4 = 2.5e-3
        XCTAssertEqual(summary.mean("nss")!, 2.5e-3, accuracy: 1e-18)
        XCTAssertEqual(summary.mean("angle"), 2)        // only the tensor that defined it
        XCTAssertNil(summary.mean("missing"))
        XCTAssertEqual(summary.metricNames, ["nss", "angle"])
        XCTAssertNil(WeightedSummary<String>().sparsity)
    }

    func testTensorConsistencyByHand() {
        // 2x4 tensor, three runs.
        let runs = [
            BitMask(count: 8, positions: [0, 1, 2, 3]),      // p = 1/2
            BitMask(count: 8, positions: [0, 1, 4, 5]),      // p = 1/2
            BitMask(count: 8, positions: []),                // p = 0
        ]
        // One stratum for every element: the stratified baseline is the Bernoulli one.
        let result = TensorConsistency(masks: runs, rows: 2, columns: 4,
                                       strata: MagnitudeStrata(labels: [UInt16](repeating: 40, count: 8)))
        XCTAssertEqual(result.densities, [0.5, 0.5, 0])
        XCTAssertEqual(result.jaccard[0][1], 2.0 / 6)
        XCTAssertEqual(result.jaccard[0][2], 0)
        XCTAssertNil(result.jaccard[2][2])
        XCTAssertEqual(result.baseline[0][1]!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertEqual(result.baseline[0][2], 0)
        // Off-diagonal Jaccard: (1/3, 0, 0) each twice -> 1/9.
        XCTAssertEqual(result.meanJaccard!, 1.0 / 9, accuracy: 1e-16)
        XCTAssertEqual(result.meanBaseline!, 1.0 / 9, accuracy: 1e-16)
        XCTAssertEqual(result.jaccardMagnitude[0][1]!, 1.0 / 3, accuracy: 1e-16)
        XCTAssertEqual(result.meanJaccardMagnitude!, 1.0 / 9, accuracy: 1e-16)
        XCTAssertEqual(result.consensus.counts, [2, 2, 1, 1, 1, 1, 0, 0])
        XCTAssertEqual(result.rowRatios.maximum, 6.0 / 12)
        XCTAssertEqual(result.rowRatios.minimum, 2.0 / 12)
        XCTAssertEqual(result.consensus.downsampled(maxRows: 1, maxColumns: 2), [[6.0 / 12, 2.0 / 12]])
        XCTAssertEqual(result.consensus.downsampled(maxRows: 10, maxColumns: 10)[0], [2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3])
    }
}

final class SchedulerTests: XCTestCase {
    /// Results are identical with one worker or two, for small and large shapes.
    func testResultsIndependentOfThreadCount() throws {
        let shapes = [(rows: 600, columns: 500), (rows: 40, columns: 30), (rows: 64, columns: 80), (rows: 30, columns: 40)]
        let pairs = shapes.enumerated().map { index, shape -> (Matrix, Matrix) in
            let base = TestMatrices.random(rows: shape.rows, columns: shape.columns, seed: UInt64(index + 1))
            let tuned = base + TestMatrices.random(rows: shape.rows, columns: shape.columns, seed: UInt64(index + 50), scale: 1e-3)
            return (base, tuned)
        }
        let options = SpectralOptions(k: 8, rank: 8, method: .automatic)   // the large one sketches
        func runAll(threads: Int) -> [MatrixComparison?] {
            let slots = Slots(count: shapes.count)
            SpectralScheduler.run(shapes: shapes, threads: threads) { index in
                slots.set(index, try? MatrixComparison(base: pairs[index].0, tuned: pairs[index].1, options: options))
            }
            return slots.values
        }
        let one = runAll(threads: 1)
        let two = runAll(threads: 2)
        XCTAssertTrue(one[0]!.randomized)
        for (a, b) in zip(one, two) {
            XCTAssertEqual(a!.singularValuesBase, b!.singularValuesBase)
            XCTAssertEqual(a!.anglesU, b!.anglesU)
            XCTAssertEqual(a!.anglesV, b!.anglesV)
            XCTAssertEqual(a!.nss, b!.nss)
            XCTAssertEqual(a!.principalOverlap, b!.principalOverlap)
            XCTAssertEqual(a!.energyTopK, b!.energyTopK)
        }
    }
}

final class DirectCallThreadTests: XCTestCase {
    /// A direct MatrixComparison (no scheduler) fixes the BLAS thread count itself, so
    /// whatever count was set before, the bits are the same (this OpenBLAS gives other
    /// bits with 1 and 2 threads for matrices this size).
    func testDirectCallsIgnorePreviousBLASThreadCount() throws {
        let base = TestMatrices.random(rows: 600, columns: 500, seed: 31)
        let tuned = base + TestMatrices.random(rows: 600, columns: 500, seed: 32, scale: 1e-3)
        let options = SpectralOptions(k: 8, rank: 8)
        let previous = BLASThreads.current
        defer { BLASThreads.set(previous) }
        BLASThreads.set(1)
        let first = try MatrixComparison(base: base, tuned: tuned, options: options)
        XCTAssertEqual(BLASThreads.current, BLASThreads.largeMatrixThreads)
        BLASThreads.set(2)
        let second = try MatrixComparison(base: base, tuned: tuned, options: options)
        XCTAssertEqual(first.singularValuesBase, second.singularValuesBase)
        XCTAssertEqual(first.anglesU, second.anglesU)
        XCTAssertEqual(first.nss, second.nss)
        XCTAssertEqual(first.energyTopK, second.energyTopK)
    }
}

private final class Slots: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [MatrixComparison?]
    init(count: Int) { stored = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: MatrixComparison?) { lock.lock(); stored[index] = value; lock.unlock() }
    var values: [MatrixComparison?] { lock.lock(); defer { lock.unlock() }; return stored }
}

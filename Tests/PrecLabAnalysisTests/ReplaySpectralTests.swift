import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabSpectral
import PrecLabSupport
import XCTest

/// Replay-then-spectral through the library: per policy, the metrics are those of the
/// weights each policy stores, and the update mask is "stored bits changed".
final class ReplaySpectralTests: ScratchTestCase {
    /// A 16x8 matrix and an 8-vector; ten steps of small updates. Returns W0 and W_T
    /// (the fp32 truth, summed here in the order the replay sums: one add per step).
    private func writeStream(_ path: String) throws -> (initial: [Float], final: [Float]) {
        let tensors = [
            UpdateStreamTensor(name: "model.layers.0.q_proj.weight", shape: [16, 8], dtype: "BF16"),
            UpdateStreamTensor(name: "model.layers.0.norm.weight", shape: [8], dtype: "BF16"),
        ]
        let writer = try UpdateStreamWriter(path: path, tensors: tensors, metadata: [])
        var weights: [Float] = (0..<136).map { index -> Float in
            Float(index % 17) * 0.01 - 0.08 + Float(index / 17) * 0.003
        }
        let initial = weights
        try weights.withUnsafeBufferPointer { try writer.writeBase(values: $0) }
        for step in UInt64(1)...10 {
            let update: [Float] = (0..<136).map { index -> Float in Float((index * 3 + Int(step)) % 7 - 3) * 2e-4 }
            for index in weights.indices { weights[index] += update[index] }
            try update.withUnsafeBufferPointer { try writer.writeStep(step: step, learningRate: 1e-4, values: $0) }
        }
        try weights.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()
        return (initial, weights)
    }

    func testEveryPolicyOfEveryMatrixAndTheTruthMatchesTheWeights() throws {
        let path = directory.appendingPathComponent("s.bin").path
        let (initial, final) = try writeStream(path)
        let options = SpectralOptions(k: 4, rank: 4, alpha: 0.5)
        let (result, spectral) = try ReplaySpectral.replay(path: path, configuration: ReplayConfiguration(format: .bf16),
                                                           spectral: options)
        let picture = try XCTUnwrap(spectral)
        XCTAssertEqual(picture.entries.map(\.policy), ReplayPolicy.allCases)
        XCTAssertEqual(picture.skipped.map(\.tensor), ["model.layers.0.norm.weight"])
        XCTAssertTrue(result.finalVerified)

        // The fp32 truth: W0 -> W_T as written, mask = entries whose fp32 bits changed.
        let w0 = initial[0..<128].map(Double.init), wT = final[0..<128].map(Double.init)
        let mask = BitMask((0..<128).map { initial[$0].bitPattern != final[$0].bitPattern })
        let expected = try MatrixComparison(base: Matrix(rows: 16, columns: 8, rowMajor: w0),
                                            tuned: Matrix(rows: 16, columns: 8, rowMajor: wT),
                                            updateMask: mask, options: options)
        let truth = try XCTUnwrap(picture.entries.first { $0.policy == .fp32 }).comparison
        XCTAssertEqual(truth.changed, mask.population)
        XCTAssertEqual(truth.changed, result.tensors[0].trueChanged)
        XCTAssertEqual(truth.nss, expected.nss)
        XCTAssertEqual(truth.principalOverlap, expected.principalOverlap)
        XCTAssertEqual(truth.singularValuesTuned, expected.singularValuesTuned)

        // Without spectral options only the replay runs.
        XCTAssertNil(try ReplaySpectral.replay(path: path, configuration: ReplayConfiguration(format: .bf16),
                                               spectral: nil).spectral)
    }

    /// Non-finite weights give no metrics (the caller lists the tensor as skipped).
    func testNonFiniteWeightsAreNotMeasured() throws {
        XCTAssertNil(try ReplaySpectral.measure(rows: 2, columns: 2, before: [1, 0, 0, .nan], after: [1, 0, 0, 1],
                                                changed: BitMask(count: 4), options: SpectralOptions(k: 1, rank: 1)))
        XCTAssertNil(try ReplaySpectral.measure(rows: 2, columns: 2, before: [1, 0, 0, 1], after: [.infinity, 0, 0, 1],
                                                changed: BitMask(count: 4), options: SpectralOptions(k: 1, rank: 1)))
    }
}

import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// Issue 12 in the replay: magnitude baselines of the low-|W0| overlaps by hand, the
/// signed-zero rule, and null models replayed under every policy.
final class AttributionReplayTests: XCTestCase {
    /// The value at a path of object keys.
    private func at(_ value: JSONValue?, _ keys: String...) -> JSONValue? {
        var current = value
        for key in keys { current = current?.objectValue?[key] }
        return current
    }

    private func run(base: [Float], shape: [Int], updates: [[Float]], alphas: [Double] = [0.5],
                     null: NullModelKind? = nil, signedZeros: Bool = false, seed: UInt64 = 0) throws -> ReplayResult {
        let configuration = ReplayConfiguration(format: .bf16, seed: seed, nullModel: null, signedZeroChanges: signedZeros,
                                                lowMagnitudeAlphas: alphas, threads: 2)
        let engine = try base.withUnsafeBufferPointer {
            try ReplayEngine(tensors: [ReplayTensor(name: "w", shape: shape)], base: $0, configuration: configuration)
        }
        for (step, update) in updates.enumerated() {
            try update.withUnsafeBufferPointer {
                try engine.apply(step: UInt64(step + 1), delta: $0, recordCurvePoint: false)
            }
        }
        return engine.finish()
    }

    /// 2x4, bf16-exact: binade [1, 2) at positions 0, 1, 4, 5 and [1/4, 1/2) at 2, 3, 6, 7.
    /// One step moves positions 0, 2 and 3 by far more than half an ULP (2^-6 on 1.0,
    /// 2^-8 on 0.25 and 0.375; all sums bf16-exact), so every policy shows {0, 2, 3}:
    /// c = 1 in the upper binade, 2 in the lower one.
    /// |W0| ascending: 2, 6, 3, 7, 0, 4, 1, 5.
    /// - α = 0.375, mask {2, 6, 3}: expected (2/4)·3 / 3 = 0.5, observed |{2, 3}| / 3 = 2/3.
    /// - α = 0.5, mask = the lower binade: expected (2/4)·4 / 3 = 2/3 = observed.
    /// - α = 0.625, mask {2, 6, 3, 7, 0}: expected ((2/4)·4 + (1/4)·1) / 3 = 0.75, observed 1.
    func testLowOverlapMagnitudeBaselineByHand() throws {
        let base: [Float] = [1, 1.5, 0.25, 0.375, 1.25, 1.75, 0.3125, 0.4375]
        var update = [Float](repeating: 0, count: 8)
        update[0] = 0x1p-6
        update[2] = 0x1p-8
        update[3] = 0x1p-8
        let result = try run(base: base, shape: [2, 4], updates: [update], alphas: [0.375, 0.5, 0.625])
        for policy in ReplayPolicy.allCases {
            let metrics = result.tensors[0].policies[policy]!
            XCTAssertEqual(metrics.visibleChanged, 3, "\(policy)")
            XCTAssertEqual(metrics.lowMagnitudeOverlap, [2.0 / 3, 2.0 / 3, 1], "\(policy)")
            let expected = [0.5, 2.0 / 3, 0.75]
            for (value, target) in zip(metrics.lowMagnitudeOverlapMagnitude, expected) {
                XCTAssertEqual(value, target, accuracy: 1e-15, "\(policy)")
            }
            XCTAssertEqual(metrics.lowMagnitudeOverlapMagnitude[1], metrics.lowMagnitudeOverlap[1], "whole binade: equal")
        }
        // Totals pool expected counts like visible ones; the JSON carries all three.
        let total = result.total(.master)
        XCTAssertEqual(total.expectedInLowMagnitude[0], 1.5, accuracy: 1e-15)
        let json = result.json()
        let policy = at(json, "total", "policies", "master")
        XCTAssertEqual(at(policy, "low_magnitude_overlap_magnitude")?.arrayValue?.count, 3)
        XCTAssertEqual(at(policy, "low_magnitude_overlap_random")?.arrayValue?.compactMap { $0.doubleValue },
                       [0.375, 0.5, 0.625])
    }

    /// Base -0 plus an update of +0 gives +0: the bits change, the value does not. By
    /// default that is no update anywhere (truth, visible, hidden); with the flag it is.
    func testSignedZeroChangeCountsOnlyWithTheFlag() throws {
        let base: [Float] = [-0.0, 1, 0.5, 0]
        let update: [Float] = [0, 0, 0x1p-2, 0]
        let plain = try run(base: base, shape: [4], updates: [update])
        XCTAssertEqual(plain.tensors[0].trueChanged, 1)   // only 0.5 -> 0.75
        for policy in ReplayPolicy.allCases {
            XCTAssertEqual(plain.tensors[0].policies[policy]!.visibleChanged, 1, "\(policy)")
            XCTAssertEqual(plain.tensors[0].policies[policy]!.hidden, 0, "\(policy)")
        }
        let flagged = try run(base: base, shape: [4], updates: [update], signedZeros: true)
        XCTAssertEqual(flagged.tensors[0].trueChanged, 2)
        for policy in ReplayPolicy.allCases {
            XCTAssertEqual(flagged.tensors[0].policies[policy]!.visibleChanged, 2, "\(policy)")
        }
        XCTAssertEqual(at(flagged.json(), "signed_zero_changes")?.boolValue, true)
    }

    /// A null that only moves updates among equal weights changes nothing: with every
    /// row constant, `permute-rows` gives exactly the real counts for every policy; with
    /// every column constant, `permute-cols` does. The full permutation moves updates
    /// across rows of different binades and does change them. (Stochastic rounding is
    /// the exception: its random bits belong to positions, so a moved update meets
    /// other bits and the counts agree only in distribution; it is left out.)
    func testNullModelsKeepWhatTheyPermuteWithin() throws {
        let rows = 4, columns = 16
        let rowValues: [Float] = [1, 0.0078125, 64, 0.5]
        var random = TestRandom(seed: 3)
        let updates = (0..<5).map { _ in (0..<(rows * columns)).map { _ in Float(random.uniform()) * 0x1p-6 } }
        let rowConstant = (0..<(rows * columns)).map { rowValues[$0 / columns] }
        let byRows = try run(base: rowConstant, shape: [rows, columns], updates: updates, null: .permuteRows, seed: 9)
        let full = try run(base: rowConstant, shape: [rows, columns], updates: updates, null: .permute, seed: 9)
        var differs = false
        let deterministic = ReplayPolicy.allCases.filter { $0 != .stochastic }
        for policy in deterministic {
            let real = byRows.tensors[0].policies[policy]!
            let null = try XCTUnwrap(byRows.tensors[0].nullPolicies?[policy], "null runs for \(policy)")
            XCTAssertEqual(null.visibleChanged, real.visibleChanged, "\(policy)")
            XCTAssertEqual(null.visibleByMagnitude, real.visibleByMagnitude, "\(policy)")
            if full.tensors[0].nullPolicies![policy]!.visibleChanged != real.visibleChanged { differs = true }
        }
        XCTAssertTrue(differs, "moving updates across binades must change some policy's count")

        let columnValues = (0..<columns).map { rowValues[$0 % 4] * Float(1 + $0 / 4) }
        let columnConstant = (0..<(rows * columns)).map { columnValues[$0 % columns] }
        let byColumns = try run(base: columnConstant, shape: [rows, columns], updates: updates, null: .permuteColumns, seed: 4)
        for policy in deterministic {
            XCTAssertEqual(byColumns.tensors[0].nullPolicies![policy]!.visibleChanged,
                           byColumns.tensors[0].policies[policy]!.visibleChanged, "\(policy)")
        }
        let json = byColumns.json()
        XCTAssertEqual(at(json, "null_model")?.stringValue, "permute-cols")
        XCTAssertNotNil(at(json, "total", "null", "policies", "pure", "low_magnitude_overlap_magnitude"))
    }

    /// The permutations are permutations, and stay within rows / columns.
    func testPermutationsStayWithinRowsAndColumns() {
        let tensors = [ReplayTensor(name: "a", shape: [3, 5]), ReplayTensor(name: "b", shape: [7])]
        for kind in NullModelKind.allCases {
            let permutation = NullPermutation(kind: kind, tensors: tensors, seed: 5)
            XCTAssertEqual(permutation.source.sorted(), Array(0..<22), "\(kind)")
            for index in 0..<15 {
                let from = permutation.source[index]
                XCTAssertLessThan(from, 15)
                if kind == .permuteRows { XCTAssertEqual(from / 5, index / 5) }
                if kind == .permuteColumns { XCTAssertEqual(from % 5, index % 5) }
            }
            for index in 15..<22 {
                XCTAssertGreaterThanOrEqual(permutation.source[index], 15)
                if kind == .permuteColumns { XCTAssertEqual(permutation.source[index], index, "1-D: one row") }
            }
        }
    }
}

import PrecLabAnalysis
import PrecLabSupport
import XCTest

/// The partition behind `--shard I/N` (and the recorder's `shards=N`).
final class TensorShardingTests: XCTestCase {
    /// Worked by hand: order a100, b60, c50, d40, e10; loads after each step
    /// [100,0] [100,60] [100,110] [140,110] [140,120].
    func testGreedyLargestFirstOntoTheLightestShard() {
        let assignment = TensorSharding.assign(names: ["c", "a", "e", "b", "d"], elementCounts: [50, 100, 10, 60, 40],
                                               shards: 2)
        XCTAssertEqual(assignment, [1, 0, 1, 1, 0])
    }

    /// Equal sizes are taken in name order and equal loads go to the lowest shard:
    /// w -> 0, x -> 1, y -> 0 (loads [5,0] [5,5] [10,5]) whatever the input order.
    func testTiesByNameThenShardIndex() {
        XCTAssertEqual(TensorSharding.assign(names: ["x", "w", "y"], elementCounts: [5, 5, 5], shards: 2), [1, 0, 0])
        XCTAssertEqual(TensorSharding.assign(names: ["y", "x", "w"], elementCounts: [5, 5, 5], shards: 2), [0, 1, 0])
        // Code-point order: "B" (0x42) before "a" (0x61), "é" (U+00E9) after "z".
        XCTAssertEqual(TensorSharding.assign(names: ["a", "é", "B", "z"], elementCounts: [1, 1, 1, 1], shards: 4),
                       [1, 3, 0, 2])
    }

    func testMoreShardsThanTensorsLeavesShardsEmptyAndOneShardTakesAll() {
        XCTAssertEqual(TensorSharding.assign(names: ["p", "q"], elementCounts: [3, 7], shards: 5), [1, 0])
        XCTAssertEqual(TensorSharding.assign(names: ["p", "q", "r"], elementCounts: [0, 7, 1], shards: 1), [0, 0, 0])
    }

    /// Random sizes: deterministic, independent of the input order, every tensor in
    /// exactly one shard, and the greedy bound max load <= min load + largest tensor.
    func testDeterministicCompleteAndBalanced() {
        var state: UInt64 = 0x1234_5678_9ABC_DEF1
        func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        for trial in 0..<40 {
            let count = 1 + Int(next() % 60)
            let names = (0..<count).map { "layers.\($0).w\(next() % 3)" }
            let sizes = (0..<count).map { _ in next() % 4 == 0 ? 4096 : Int(next() % 5000) }
            let shards = 1 + trial % 9
            let assignment = TensorSharding.assign(names: names, elementCounts: sizes, shards: shards)
            XCTAssertEqual(assignment, TensorSharding.assign(names: names, elementCounts: sizes, shards: shards))
            let permutation = Array((0..<count).reversed())
            let permuted = TensorSharding.assign(names: permutation.map { names[$0] },
                                                 elementCounts: permutation.map { sizes[$0] }, shards: shards)
            XCTAssertEqual(permutation.map { assignment[$0] }, permuted, "trial \(trial)")
            XCTAssertTrue(assignment.allSatisfy { (0..<shards).contains($0) })
            var loads = Array(repeating: 0, count: shards)
            for (tensor, shard) in assignment.enumerated() { loads[shard] += sizes[tensor] }
            XCTAssertEqual(loads.reduce(0, +), sizes.reduce(0, +))
            XCTAssertLessThanOrEqual(loads.max()!, loads.min()! + sizes.max()!, "trial \(trial): \(loads)")
            // The named shards together list every tensor once.
            var listed: [String] = []
            for index in 1...shards {
                listed += TensorSharding.names(of: try! TensorShard(index: index, count: shards), names: names,
                                               elementCounts: sizes)
            }
            XCTAssertEqual(listed.count, names.count)
            XCTAssertEqual(Set(listed), Set(names))
        }
    }

    func testShardSyntax() throws {
        XCTAssertEqual(try TensorShard(parsing: "2/8"), try TensorShard(index: 2, count: 8))
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3", "-1/2", "", "/2"] {
            XCTAssertThrowsError(try TensorShard(parsing: bad), bad)
        }
    }
}

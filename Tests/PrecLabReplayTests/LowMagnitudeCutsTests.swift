import XCTest
@testable import PrecLabReplay

/// The sort-free bottom-α masks against the sorted (magnitude, index) order.
final class LowMagnitudeCutsTests: XCTestCase {
    /// Values with many ties (a few distinct magnitudes of both signs), ±0, subnormals,
    /// ±Inf and NaN; cut sizes across 0...n (a repeated one included, unsorted), with a
    /// random visibility mask.
    func testCutsSelectTheSameEntriesAsTheSortedOrder() {
        var random = TestRandom(seed: 77)
        let subnormal = Float.leastNormalMagnitude / 1024  // a subnormal, used with both signs
        let palette: [Float] = [0, -0, subnormal, -subnormal, 0.5, -0.5, 0.25, 1, -1, .infinity, -.infinity, .nan,
                                0.0625, 3e-3, -3e-3]
        for count in [1, 7, 300] {
            let values = (0..<count).map { _ -> Float in
                random.nextUInt64() % 3 == 0 ? palette[Int(random.nextUInt64() % UInt64(palette.count))]
                    : random.uniform() * 0.01
            }
            let visible = (0..<count).map { _ in random.nextUInt64() % 2 == 0 }
            let order = LowMagnitudeMask.order(count: count) { values[$0] }
            var cuts = Array(stride(from: 0, through: count, by: max(1, count / 60)))
            cuts += [count, count / 2, count / 2, count / 3]
            cuts.reverse()
            // One chunk, and chunks of 1 and 7 entries (ties carried across chunks).
            for chunkSize in [nil, 1, 7] {
                let selection = LowMagnitudeCuts(count: count, cuts: cuts, chunkSize: chunkSize) { values[$0] }
                let counted = selection.counts(value: { values[$0] }) { visible[$0] }
                for (slot, cut) in cuts.enumerated() {
                    let expected = order.prefix(cut).filter { visible[$0] }.count
                    XCTAssertEqual(counted[slot], expected, "n \(count) cut \(cut) chunk \(chunkSize ?? count)")
                }
                XCTAssertEqual(selection.counts(value: { values[$0] }) { _ in true }, cuts,
                               "n \(count): the masks hold exactly the cut sizes")
            }
        }
    }
}

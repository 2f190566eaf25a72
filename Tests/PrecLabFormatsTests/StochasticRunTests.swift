import XCTest
@testable import PrecLabFormats

final class StochasticRunTests: XCTestCase {
    /// The run fill equals per-element draws, including across a 2^32-block boundary.
    func testFillMatchesPerElementBits() {
        let key = StochasticKey(seed: 42, stream: 3, step: 17)
        for first in [0, 5, (1 << 32) - 7, 3 << 32] {
            var buffer = [UInt32](repeating: 0, count: 40)
            buffer.withUnsafeMutableBufferPointer { key.fillRandomBits(from: first, count: 40, into: $0.baseAddress!) }
            for offset in 0..<40 {
                XCTAssertEqual(buffer[offset], key.randomBits(index: first + offset), "first \(first) offset \(offset)")
            }
        }
    }
}

import XCTest
@testable import PrecLabSupport

final class ParallelChunksTests: XCTestCase {
    func testRangesCoverEveryIndexOnceAtBoundarySizes() {
        for count in [0, 1, 2, 63, 64, 65, 127, 128, 129, 1000] {
            for chunk in [1, 7, 64, 128] {
                let ranges = ParallelChunks.ranges(count: count, chunkSize: chunk)
                XCTAssertEqual(ranges.reduce(0) { $0 + $1.count }, count, "count \(count) chunk \(chunk)")
                XCTAssertEqual(ranges.first?.lowerBound ?? 0, 0)
                for (a, b) in zip(ranges, ranges.dropFirst()) {
                    XCTAssertEqual(a.upperBound, b.lowerBound)
                    XCTAssertEqual(a.count, chunk)
                }
            }
        }
    }

    func testMapReductionIsIndependentOfThreadCount() {
        // A float sum whose value depends on association order: identical bits are
        // only possible if chunk boundaries and fold order ignore the thread count.
        let values: [Float] = (0..<100_003).map { (index: Int) -> Float in
            let coarse = Float((index * 7919) % 1013) * 1e-3
            return coarse + 1e-7 * Float(index)
        }
        func total(threads: Int) -> Float {
            let partial = ParallelChunks.map(count: values.count, chunkSize: 4096, threads: threads) { range in
                var sum: Float = 0
                for index in range { sum += values[index] }
                return sum
            }
            return partial.reduce(0, +)
        }
        let one = total(threads: 1)
        for threads in [2, 3, 8] {
            XCTAssertEqual(total(threads: threads).bitPattern, one.bitPattern, "threads \(threads)")
        }
    }
}

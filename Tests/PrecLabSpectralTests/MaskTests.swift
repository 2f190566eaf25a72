import XCTest
@testable import PrecLabSpectral

final class MaskTests: XCTestCase {
    func testSelectionSizeRoundsHalfAwayFromZero() {
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.5, of: 3), 2)   // 1.5 -> 2
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.5, of: 5), 3)   // 2.5 -> 3
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.5, of: 1), 1)   // 0.5 -> 1
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.25, of: 6), 2)  // 1.5 -> 2
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.3, of: 4), 1)   // 1.2 -> 1
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.4, of: 4), 2)   // 1.6 -> 2
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0, of: 9), 0)
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 1, of: 9), 9)
        XCTAssertEqual(MagnitudeMasks.selectionSize(fraction: 0.5, of: 0), 0)
    }

    func testLargestAndSmallestByHand() {
        //            0    1    2    3    4    5    6    7
        let values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
        XCTAssertEqual(MagnitudeMasks.largest(values, fraction: 0.5).positions, [2, 4, 5, 7])
        XCTAssertEqual(MagnitudeMasks.smallest(values, fraction: 0.5).positions, [0, 1, 3, 6])
        XCTAssertEqual(MagnitudeMasks.largest(values, fraction: 0.125).positions, [5])
        XCTAssertEqual(MagnitudeMasks.smallest(values, fraction: 0).positions, [])
        XCTAssertEqual(MagnitudeMasks.largest(values, fraction: 1).population, 8)
    }

    func testTiesGoToLowerIndex() {
        // Bottom 1 of a tie between positions 1 and 3: position 1.
        let values = [3.0, 1.0, 4.0, 1.0, 5.0]
        XCTAssertEqual(MagnitudeMasks.smallest(values, fraction: 0.2).positions, [1])
        // Top 3 of [5, 7, 5, 5, 7]: both 7s, then the first 5.
        XCTAssertEqual(MagnitudeMasks.largest([5, 7, 5, 5, 7], fraction: 0.6).positions, [0, 1, 4])
        // All equal: the first round(α n).
        let flat = [Double](repeating: 2, count: 130)
        XCTAssertEqual(MagnitudeMasks.largest(flat, fraction: 0.5).positions, Array(0..<65))
        XCTAssertEqual(MagnitudeMasks.smallest(flat, fraction: 0.5).positions, Array(0..<65))
        // Zeros (both signs are equal magnitudes) and subnormals.
        let mixed = [0.0, 0x1p-1070, 0.0, 1e-300, 0.0]
        XCTAssertEqual(MagnitudeMasks.smallest(mixed, fraction: 0.4).positions, [0, 2])
        XCTAssertEqual(MagnitudeMasks.largest(mixed, fraction: 0.4).positions, [1, 3])
        XCTAssertEqual(MagnitudeMasks.largest([.infinity, 1, .infinity], fraction: 0.34).positions, [0])
    }

    func testSelectionAgainstSortReference() {
        var random = TestRandom(seed: 12)
        for count in [1, 2, 63, 64, 65, 127, 128, 129, 1000] {
            // Few distinct values so ties are common.
            let values = (0..<count).map { _ in Double(random.next() % 7) }
            for alpha in [0.1, 0.5, 0.77] {
                let size = MagnitudeMasks.selectionSize(fraction: alpha, of: count)
                let byLargest = (0..<count).sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
                let bySmallest = (0..<count).sorted { values[$0] != values[$1] ? values[$0] < values[$1] : $0 < $1 }
                XCTAssertEqual(MagnitudeMasks.largest(values, fraction: alpha).positions,
                               byLargest.prefix(size).sorted(), "n \(count) α \(alpha)")
                XCTAssertEqual(MagnitudeMasks.smallest(values, fraction: alpha).positions,
                               bySmallest.prefix(size).sorted(), "n \(count) α \(alpha)")
            }
        }
    }

    func testBitMaskAtWordBoundaries() {
        for count in [0, 1, 2, 63, 64, 65, 127, 128, 129] {
            let evens = BitMask(count: count, positions: stride(from: 0, to: count, by: 2))
            let threes = BitMask(count: count, positions: stride(from: 0, to: count, by: 3))
            let expectedEvens = (count + 1) / 2
            let expectedThrees = (count + 2) / 3
            let expectedBoth = (count + 5) / 6
            XCTAssertEqual(evens.population, expectedEvens, "n \(count)")
            XCTAssertEqual(evens.intersectionCount(threes), expectedBoth, "n \(count)")
            XCTAssertEqual(evens.unionCount(threes), expectedEvens + expectedThrees - expectedBoth)
            XCTAssertEqual(evens.complement.population, count - expectedEvens, "tail bits stay clear")
            XCTAssertEqual(evens.subtracting(threes).population, expectedEvens - expectedBoth)
            XCTAssertEqual(evens.intersection(threes).positions, Array(stride(from: 0, to: count, by: 6)))
            XCTAssertEqual(evens.union(threes).population, evens.unionCount(threes))
            if count > 0 {
                XCTAssertTrue(evens[0])
                XCTAssertEqual(evens[count - 1], (count - 1) % 2 == 0)
            }
        }
        XCTAssertEqual(BitMask(count: 3, words: [~0]).population, 3)
        XCTAssertEqual(BitMask([true, false, true]).positions, [0, 2])
    }
}

final class MaskStatisticsTests: XCTestCase {
    func testJaccardAndBaseline() {
        let a = BitMask(count: 10, positions: [0, 1, 2, 3])
        let b = BitMask(count: 10, positions: [2, 3, 4, 5, 6, 7])
        XCTAssertEqual(MaskStatistics.jaccard(a, b), 2.0 / 8.0)
        XCTAssertEqual(MaskStatistics.jaccard(a, a), 1)
        XCTAssertNil(MaskStatistics.jaccard(BitMask(count: 10), BitMask(count: 10)))
        // pq / (p + q - pq): p = q = 1/2 gives (1/4) / (3/4) = 1/3.
        XCTAssertEqual(MaskStatistics.bernoulliJaccard(0.5, 0.5)!, 1.0 / 3.0, accuracy: 1e-16)
        // p = 0.4, q = 0.6: 0.24 / 0.76.
        XCTAssertEqual(MaskStatistics.bernoulliJaccard(0.4, 0.6)!, 0.24 / 0.76, accuracy: 1e-15)
        XCTAssertEqual(MaskStatistics.bernoulliJaccard(1, 0.3)!, 0.3, accuracy: 1e-16)
        XCTAssertEqual(MaskStatistics.bernoulliJaccard(0, 0.3), 0)
        XCTAssertNil(MaskStatistics.bernoulliJaccard(0, 0))
    }

    func testOverlap() {
        let mask = BitMask(count: 8, positions: [1, 2, 5])
        let selection = BitMask(count: 8, positions: [0, 1, 2, 3])
        XCTAssertEqual(MaskStatistics.overlap(selection, with: mask), 2.0 / 3.0)
        XCTAssertNil(MaskStatistics.overlap(selection, with: BitMask(count: 8)))
    }

    func testRowAndColumnRatios() {
        // 3x4 mask:
        // 1 1 0 0
        // 0 0 0 0
        // 1 1 1 1
        let mask = BitMask(count: 12, positions: [0, 1, 8, 9, 10, 11])
        XCTAssertEqual(MaskStatistics.rowRatios(mask, rows: 3, columns: 4), [0.5, 0, 1])
        XCTAssertEqual(MaskStatistics.columnRatios(mask, rows: 3, columns: 4), [2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3])
        // Rows straddling word boundaries: 3 rows of 50.
        let wide = BitMask(count: 150, positions: Array(40..<110))
        XCTAssertEqual(MaskStatistics.rowRatios(wide, rows: 3, columns: 50), [10.0 / 50, 1, 10.0 / 50])
        let summary = RatioSummary([0.5, 0, 1])
        XCTAssertEqual(summary.mean, 0.5)
        XCTAssertEqual(summary.minimum, 0)
        XCTAssertEqual(summary.maximum, 1)
        XCTAssertEqual(summary.standardDeviation, (1.0 / 6).squareRoot(), accuracy: 1e-16)
        XCTAssertNil(RatioSummary([0, 0]).coefficientOfVariation)
    }

    func testConsensus() {
        // Three runs over a 2x3 tensor.
        let runs = [
            BitMask(count: 6, positions: [0, 1, 2]),
            BitMask(count: 6, positions: [0, 1, 5]),
            BitMask(count: 6, positions: [0, 4]),
        ]
        let consensus = Consensus(masks: runs, rows: 2, columns: 3)
        XCTAssertEqual(consensus.counts, [3, 2, 1, 0, 1, 1])
        XCTAssertEqual(consensus.histogram, [1, 3, 1, 1])
        XCTAssertEqual(consensus.unanimousFraction, 1.0 / 6)
        XCTAssertEqual(consensus.rowMeans, [6.0 / 9, 2.0 / 9])
        XCTAssertEqual(consensus.columnMeans, [3.0 / 6, 3.0 / 6, 2.0 / 6])
        XCTAssertEqual(consensus.ratios[1], 2.0 / 3)
    }
}

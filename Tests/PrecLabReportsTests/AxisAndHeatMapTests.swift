import Foundation
import XCTest
@testable import PrecLabReports

final class AxisTicksTests: XCTestCase {
    func testHandPickedRanges() {
        XCTAssertEqual(AxisTicks.linear(lower: 0, upper: 1, targetCount: 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        // span 0.074 / 6 = 0.0123 -> step 0.02; 0.013 rounds down to 0, 0.087 up to 0.1.
        let small = AxisTicks.linear(lower: 0.013, upper: 0.087, targetCount: 6)
        XCTAssertEqual(small.step, 0.02)
        XCTAssertEqual(small.ticks, [0, 0.02, 0.04, 0.06, 0.08, 0.1])
        XCTAssertEqual(AxisTicks.linear(lower: -3, upper: 7, targetCount: 5).ticks, [-4, -2, 0, 2, 4, 6, 8])
        XCTAssertEqual(AxisTicks.linear(lower: 0, upper: 200, targetCount: 7).ticks, [0, 50, 100, 150, 200])
        XCTAssertEqual(AxisTicks.linear(lower: 5, upper: 5).ticks, [5])
        XCTAssertEqual(AxisTicks.linearInside(lower: 0.013, upper: 0.087, targetCount: 6).ticks, [0.02, 0.04, 0.06, 0.08])
    }

    func testTicksCoverTheRangeWithOneTwoFiveSteps() {
        var state: UInt64 = 12345
        func random() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        for _ in 0..<2000 {
            let scale = pow(10, (random() * 40 - 20).rounded())
            var a = (random() * 2 - 1) * scale
            var b = a + random() * scale * pow(10, (random() * 4 - 2).rounded())
            if random() < 0.1 { b = a + scale }  // exact spans
            if a > b { swap(&a, &b) }
            guard a < b else { continue }
            let target = 2 + Int(random() * 10)
            let (ticks, step) = AxisTicks.linear(lower: a, upper: b, targetCount: target)
            let context = "range [\(a), \(b)] target \(target): step \(step) ticks \(ticks)"
            XCTAssertLessThanOrEqual(ticks.first!, a, context)
            XCTAssertGreaterThanOrEqual(ticks.last!, b, context)
            XCTAssertLessThanOrEqual(ticks.count - 1, target + 2, context)
            let exponent = (log10(step)).rounded(.down)
            let mantissa = step / pow(10, exponent)
            XCTAssertTrue([1, 2, 5, 10].contains { abs(mantissa - $0) < 1e-9 }, context)
            for (index, tick) in ticks.enumerated() {
                let expected = ticks.first! + Double(index) * step
                XCTAssertLessThanOrEqual(abs(tick - expected), step * 1e-9, context)
            }
        }
    }

    func testDecades() {
        XCTAssertEqual(AxisTicks.decades(lower: 1e-3, upper: 0.5), -3...0)
        XCTAssertEqual(AxisTicks.decades(lower: 1, upper: 1000), 0...3)
        XCTAssertEqual(AxisTicks.decades(lower: 1, upper: 1), 0...1)
        XCTAssertEqual(AxisTicks.decades(lower: 0.05, upper: 0.05), -2...(-1))
        XCTAssertEqual(AxisTicks.decades(lower: 1e-300, upper: 1e300), -300...300)
        XCTAssertEqual(AxisTicks.decades(lower: 999, upper: 1001), 2...4)
        XCTAssertEqual(AxisTicks.decades(lower: .leastNonzeroMagnitude, upper: 1), -324...0)
    }

    func testLabels() {
        XCTAssertEqual(AxisTicks.label(0.6, step: 0.2), "0.6")
        XCTAssertEqual(AxisTicks.label(0, step: 0.2), "0")
        XCTAssertEqual(AxisTicks.label(-0.0, step: 0.2), "0")
        XCTAssertEqual(AxisTicks.label(1500, step: 500), "1500")
        XCTAssertEqual(AxisTicks.label(0.015, step: 0.005), "0.015")
        XCTAssertEqual(AxisTicks.label(2.5e-5, step: 5e-6), "2.5e-05")
        XCTAssertEqual(AxisTicks.label(2e6, step: 1e6), "2e+06")
        XCTAssertEqual(AxisTicks.label(-3e-5, step: 1e-5), "-3e-05")
    }
}

final class HeatMapTests: XCTestCase {
    /// 5 x 5 matrix with v[r][c] = 5r + c, reduced to 2 x 2 with 3 x 3 blocks.
    func testBlockAverageByHand() {
        let values = (0..<25).map(Double.init)
        let result = HeatMap.blockAverage(values, rows: 5, columns: 5, maxRows: 2, maxColumns: 2)
        XCTAssertEqual(result.rowBlock, 3)
        XCTAssertEqual(result.columnBlock, 3)
        XCTAssertEqual(result.rows, 2)
        XCTAssertEqual(result.columns, 2)
        // Block means: rows 0-2 / cols 0-2 = 5*1 + 1; cols 3-4 = 5*1 + 3.5;
        // rows 3-4 / cols 0-2 = 5*3.5 + 1; cols 3-4 = 5*3.5 + 3.5.
        XCTAssertEqual(result.values, [6, 8.5, 18.5, 21])
    }

    func testBlockAverageSkipsNaNAndKeepsAllNaNBlocks() {
        var values = (0..<25).map(Double.init)
        values[0] = .nan                         // block (0,0): (54 - 0) / 8 values
        for index in [18, 19, 23, 24] { values[index] = .nan }  // block (1,1) is all NaN
        let result = HeatMap.blockAverage(values, rows: 5, columns: 5, maxRows: 2, maxColumns: 2)
        XCTAssertEqual(result.values[0], 6.75)
        XCTAssertEqual(result.values[1], 8.5)
        XCTAssertEqual(result.values[2], 18.5)
        XCTAssertTrue(result.values[3].isNaN)
    }

    func testBlockAverageOneDirectionAndNoOp() {
        let values = (0..<24).map(Double.init)  // 4 x 6
        let columnsOnly = HeatMap.blockAverage(values, rows: 4, columns: 6, maxRows: 4, maxColumns: 3)
        XCTAssertEqual(columnsOnly.rows, 4)
        XCTAssertEqual(columnsOnly.columns, 3)
        XCTAssertEqual(columnsOnly.values, [0.5, 2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5, 16.5, 18.5, 20.5, 22.5])
        let same = HeatMap.blockAverage(values, rows: 4, columns: 6, maxRows: 512, maxColumns: 512)
        XCTAssertEqual(same.values, values)
        XCTAssertEqual(same.rowBlock, 1)
    }

    func testColorRampEndsAndPaletteIndices() {
        XCTAssertTrue(PlotPalette.rampColor(0) == (0x44, 0x01, 0x54))
        XCTAssertTrue(PlotPalette.rampColor(1) == (0xFD, 0xE7, 0x25))
        XCTAssertTrue(PlotPalette.rampColor(-3) == PlotPalette.rampColor(0))
        XCTAssertTrue(PlotPalette.rampColor(.nan) == PlotPalette.rampColor(0))
        XCTAssertEqual(HeatMap.paletteIndex(0, lower: 0, upper: 1), 0)
        XCTAssertEqual(HeatMap.paletteIndex(1, lower: 0, upper: 1), 254)
        XCTAssertEqual(HeatMap.paletteIndex(7, lower: 0, upper: 1), 254)
        XCTAssertEqual(HeatMap.paletteIndex(.nan, lower: 0, upper: 1), 255)
        XCTAssertEqual(HeatMap.paletteIndex(0.5, lower: 0, upper: 1), 127)
    }

    func testPNGChecksumsAgainstKnownValues() {
        // The standard check values: CRC-32 of "123456789" and Adler-32 of "Wikipedia".
        XCTAssertEqual(PalettePNG.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(PalettePNG.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
        let png = PalettePNG.encode(width: 2, height: 1, indices: [0, 1], palette: [(0, 0, 0), (255, 255, 255)])
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // Every PNG ends with the same IEND chunk.
        XCTAssertEqual(Array(png.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        // Stored blocks split at 65,535 bytes: 70,000 bytes need two.
        let stream = PalettePNG.zlibStored([UInt8](repeating: 7, count: 70_000))
        XCTAssertEqual(stream.count, 2 + 5 + 65_535 + 5 + 4_465 + 4)
    }
}

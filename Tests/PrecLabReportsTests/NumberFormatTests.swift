import XCTest
@testable import PrecLabReports

final class NumberFormatTests: XCTestCase {
    func testCountGroupsThousands() {
        XCTAssertEqual(NumberFormat.count(0), "0")
        XCTAssertEqual(NumberFormat.count(999), "999")
        XCTAssertEqual(NumberFormat.count(1000), "1,000")
        XCTAssertEqual(NumberFormat.count(1_234_567), "1,234,567")
        XCTAssertEqual(NumberFormat.count(-1234), "-1,234")
        XCTAssertEqual(NumberFormat.count(-999), "-999")
        XCTAssertEqual(NumberFormat.count(Int64.min), "-9,223,372,036,854,775,808")
        XCTAssertEqual(NumberFormat.count(UInt64.max), "18,446,744,073,709,551,615")
    }

    func testCompactCountUnitsAndRollover() {
        XCTAssertEqual(NumberFormat.compactCount(0), "0")
        XCTAssertEqual(NumberFormat.compactCount(999), "999")
        XCTAssertEqual(NumberFormat.compactCount(1000), "1.0k")
        XCTAssertEqual(NumberFormat.compactCount(1234), "1.2k")
        XCTAssertEqual(NumberFormat.compactCount(-1234), "-1.2k")
        XCTAssertEqual(NumberFormat.compactCount(999_949), "999.9k")
        // 999.96k rounds to 1000.0k at one decimal: it belongs to the next unit.
        XCTAssertEqual(NumberFormat.compactCount(999_960), "1.0M")
        XCTAssertEqual(NumberFormat.compactCount(1_543_714_304), "1.5B")
        XCTAssertEqual(NumberFormat.compactCount(2_000_000_000_000), "2.0T")
        XCTAssertEqual(NumberFormat.compactCount(5_000_000_000_000_000), "5000.0T")
    }

    func testFixedAndPercent() {
        XCTAssertEqual(NumberFormat.fixed(0, decimals: 2), "0.00")
        XCTAssertEqual(NumberFormat.fixed(-0.0, decimals: 2), "0.00")
        XCTAssertEqual(NumberFormat.fixed(-0.001, decimals: 2), "0.00")
        XCTAssertEqual(NumberFormat.fixed(-0.005001, decimals: 2), "-0.01")
        XCTAssertEqual(NumberFormat.fixed(2.5, decimals: 0), "2")  // ties to even, as printf
        XCTAssertEqual(NumberFormat.fixed(0.125, decimals: 2), "0.12")
        XCTAssertEqual(NumberFormat.fixed(1e20, decimals: 1), "100000000000000000000.0")
        XCTAssertEqual(NumberFormat.fixed(.nan, decimals: 2), "nan")
        XCTAssertEqual(NumberFormat.fixed(.infinity, decimals: 2), "inf")
        XCTAssertEqual(NumberFormat.fixed(-.infinity, decimals: 2), "-inf")
        XCTAssertEqual(NumberFormat.percent(0.1234), "12.3%")
        XCTAssertEqual(NumberFormat.percent(1), "100.0%")
        XCTAssertEqual(NumberFormat.percent(0, decimals: 2), "0.00%")
        XCTAssertEqual(NumberFormat.percent(-0.00001), "0.0%")
        XCTAssertEqual(NumberFormat.percent(0.99999, decimals: 2), "100.00%")
        XCTAssertEqual(NumberFormat.percent(.nan), "nan")
    }

    func testScientific() {
        XCTAssertEqual(NumberFormat.scientific(1.3e-5), "1.3e-05")
        XCTAssertEqual(NumberFormat.scientific(0), "0.0e+00")
        XCTAssertEqual(NumberFormat.scientific(-0.0), "0.0e+00")
        XCTAssertEqual(NumberFormat.scientific(-2.5e300, digits: 2), "-2.50e+300")
        XCTAssertEqual(NumberFormat.scientific(.leastNonzeroMagnitude, digits: 0), "5e-324")
        XCTAssertEqual(NumberFormat.scientific(.infinity), "inf")
    }

    func testGeneralSwitchesToScientificOutsideOrdinaryMagnitudes() {
        XCTAssertEqual(NumberFormat.general(0), "0")
        XCTAssertEqual(NumberFormat.general(-0.0), "0")
        XCTAssertEqual(NumberFormat.general(0.0123), "0.0123")
        XCTAssertEqual(NumberFormat.general(0.001), "0.00100")
        XCTAssertEqual(NumberFormat.general(0.000999), "9.99e-04")
        XCTAssertEqual(NumberFormat.general(1.3e-5), "1.30e-05")
        XCTAssertEqual(NumberFormat.general(-1.3e-5), "-1.30e-05")
        XCTAssertEqual(NumberFormat.general(1), "1.00")
        XCTAssertEqual(NumberFormat.general(9.996), "10.0")  // rounding moves the exponent
        XCTAssertEqual(NumberFormat.general(12345.6), "12346")
        XCTAssertEqual(NumberFormat.general(123_456.7), "123457")
        XCTAssertEqual(NumberFormat.general(999_499.9), "999500")
        XCTAssertEqual(NumberFormat.general(999_999.6), "1.00e+06")
        XCTAssertEqual(NumberFormat.general(1.7976931348623157e308), "1.80e+308")
        XCTAssertEqual(NumberFormat.general(.nan), "nan")
        XCTAssertEqual(NumberFormat.general(-.infinity), "-inf")
    }

    func testDegrees() {
        XCTAssertEqual(NumberFormat.degrees(12.3456), "12.35°")
        XCTAssertEqual(NumberFormat.degrees(90, decimals: 0), "90°")
        XCTAssertEqual(NumberFormat.degrees(-0.0001), "0.00°")
        XCTAssertEqual(NumberFormat.degrees(.nan), "nan")
    }

    func testShortestRoundTrips() {
        XCTAssertEqual(NumberFormat.shortest(0.1), "0.1")
        XCTAssertEqual(NumberFormat.shortest(1e-5), "1e-05")
        XCTAssertEqual(NumberFormat.shortest(-0.0), "-0.0")
        XCTAssertEqual(NumberFormat.shortest(.nan), "nan")
        XCTAssertEqual(NumberFormat.shortest(-.infinity), "-inf")
    }

    func testNumberStyleOnCells() {
        XCTAssertEqual(NumberStyle.count.format(TableCell.integer(1234)), "1,234")
        XCTAssertEqual(NumberStyle.count.format(TableCell.number(1234.6)), "1,235")
        XCTAssertEqual(NumberStyle.count.format(TableCell.number(.nan)), "nan")
        XCTAssertEqual(NumberStyle.percent(decimals: 1).format(TableCell.number(0.5)), "50.0%")
        XCTAssertEqual(NumberStyle.general(significant: 3).format(TableCell.integer(123456789)), "123456789")
        XCTAssertEqual(NumberStyle.degrees(decimals: 1).format(TableCell.text("n/a")), "n/a")
        XCTAssertEqual(NumberStyle.fixed(decimals: 2).format(TableCell.empty), "")
    }
}

import Foundation
import XCTest

final class FormatsCLITests: XCTestCase {
    func testFormatsTableAndJSON() throws {
        let table = try CLIRunner.run(["formats"])
        XCTAssertEqual(table.status, 0, table.stderr)
        for name in ["fp32", "tf32", "bf16", "fp16", "e5m2", "e4m3fn", "e4m3fnuz", "e5m2fnuz",
                     "e2m3fn", "e3m2fn", "e2m1fn", "e8m0fnu"] {
            XCTAssertTrue(table.stdout.contains(name), name)
        }
        XCTAssertTrue(table.stdout.contains("65504"))
        let json = try CLIRunner.run(["formats", "--json", "--dtype", "F8_E4M3", "--dtype", "e5m10"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(parsed.count, 2)
        XCTAssertEqual(parsed[0]["name"] as? String, "e4m3fn")
        XCTAssertEqual(parsed[0]["max_finite"] as? Double, 448)
        XCTAssertEqual(parsed[1]["name"] as? String, "fp16")
        XCTAssertEqual(try CLIRunner.run(["formats", "--dtype", "fp7"]).status, 2)
    }

    func testRoundShowsBitsFieldsAndErrors() throws {
        let result = try CLIRunner.run(["round", "1.00390625", "1.01171875", "-0.0", "nan", "bits:0x7F800001",
                                        "0x1.8p-3", "-inf", "--dtype", "bfloat16"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("1.00390625  ->  0x3F80  [0 01111111 0000000]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("0x3F82"))
        XCTAssertTrue(result.stdout.contains("error -0.5 ulp"))
        XCTAssertTrue(result.stdout.contains("-0.0  ->  0x8000"))
        XCTAssertTrue(result.stdout.contains("bits:0x7F800001  ->  0x7FC0"))
        XCTAssertTrue(result.stdout.contains("-inf  ->  0xFF80"))

        let json = try CLIRunner.run(["round", "464", "500", "--dtype", "e4m3fn", "--json", "--saturate"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(rows.map { $0["bits"] as? String }, ["0x7E", "0x7E"])
        XCTAssertEqual(rows[0]["decoded"] as? Double, 448)
        XCTAssertEqual(rows[0]["error_ulps"] as? Double, -0.5)
        XCTAssertEqual(rows[0]["half_ulp"] as? Double, 16)

        let overflow = try CLIRunner.run(["round", "500", "--dtype", "e4m3fn", "--json"])
        let overflowRows = try JSONSerialization.jsonObject(with: Data(overflow.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(overflowRows[0]["bits"] as? String, "0x7F")
        XCTAssertEqual(overflowRows[0]["is_nan"] as? Bool, true)
    }

    func testRoundStochasticIsSeeded() throws {
        let arguments = ["round", "1.001", "1.001", "1.001", "1.001", "--dtype", "bf16", "--rounding", "sr", "--seed", "9", "--json"]
        let first = try CLIRunner.run(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, try CLIRunner.run(arguments).stdout)
    }

    func testRoundUsageErrors() throws {
        XCTAssertEqual(try CLIRunner.run(["round", "1"]).status, 2)                       // no --dtype
        XCTAssertEqual(try CLIRunner.run(["round", "--dtype", "bf16"]).status, 2)         // no value
        XCTAssertEqual(try CLIRunner.run(["round", "abc", "--dtype", "bf16"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["round", "bits:0xZZ", "--dtype", "bf16"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["round", "1", "--dtype", "bf16", "--rounding", "sideways"]).status, 2)
        XCTAssertEqual(try CLIRunner.run(["round", "1", "--dtype", "e9m2"]).status, 2)
        let negative = try CLIRunner.run(["round", "-1.5", "--dtype", "e2m1fn"])
        XCTAssertEqual(negative.status, 0, negative.stderr)
        XCTAssertTrue(negative.stdout.contains("-1.5  ->  0x0B  [1 01 1]"), negative.stdout)
    }
}

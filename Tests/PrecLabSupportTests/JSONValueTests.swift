import XCTest
@testable import PrecLabSupport

final class JSONValueTests: XCTestCase {
    func testObjectsKeepInsertionOrderAndSerialiseCompactly() {
        var object = JSONObject()
        object["zeta"] = 1
        object["alpha"] = .array([1, 2.5, "x"])
        object["mid"] = .object(JSONObject([("k", nil)]))
        XCTAssertEqual(object.keys, ["zeta", "alpha", "mid"])
        XCTAssertEqual(JSONValue.object(object).serialized(indent: 0),
                       #"{"zeta":1,"alpha":[1,2.5,"x"],"mid":{"k":null}}"#)
        object["zeta"] = nil
        XCTAssertEqual(object.keys, ["alpha", "mid"])
    }

    func testNumbersStringsAndNonFiniteValues() {
        XCTAssertEqual(JSONValue.finite(.nan).serialized(), "null")
        XCTAssertEqual(JSONValue.finite(-.infinity).serialized(), "null")
        XCTAssertEqual(JSONValue.number(-0.0).serialized(), "-0.0")
        XCTAssertEqual(JSONValue.number(3).serialized(), "3")
        XCTAssertEqual(JSONValue.number(0.1).serialized(), "0.1")
        XCTAssertEqual(JSONValue.number(1e300).serialized(), "1e+300")
        XCTAssertEqual(JSONValue.string("a\"b\\c\n\u{01}é").serialized(), #""a\"b\\c\n\u0001é""#)
    }

    func testIndentedOutputKeepsScalarArraysOnOneLine() {
        let value: JSONValue = .object(JSONObject([("shape", [384, 384]), ("rows", [[1], [2]])]))
        XCTAssertEqual(value.serialized(indent: 2), """
        {
          "shape": [384, 384],
          "rows": [
            [1],
            [2]
          ]
        }
        """)
    }
}

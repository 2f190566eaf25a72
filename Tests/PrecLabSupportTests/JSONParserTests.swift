import XCTest
@testable import PrecLabSupport

final class JSONParserTests: XCTestCase {
    func testScalarsAndContainers() throws {
        XCTAssertEqual(try JSONParser.parse("null"), .null)
        XCTAssertEqual(try JSONParser.parse(" true "), .bool(true))
        XCTAssertEqual(try JSONParser.parse("false"), .bool(false))
        XCTAssertEqual(try JSONParser.parse("0"), .integer(0))
        // serde_json (the safetensors reference) reads -0 as a float, so it is no integer.
        XCTAssertEqual(try JSONParser.parse("-0").doubleValue?.sign, .minus)
        XCTAssertNil(try JSONParser.parse("-0").integerValue)
        XCTAssertEqual(try JSONParser.parse("9223372036854775807"), .integer(Int64.max))
        XCTAssertEqual(try JSONParser.parse("-9223372036854775808"), .integer(Int64.min))
        // One past Int64.max no longer fits: it becomes a Double (2^63 exactly).
        XCTAssertEqual(try JSONParser.parse("9223372036854775808"), .number(9223372036854775808.0))
        XCTAssertEqual(try JSONParser.parse("1.5"), .number(1.5))
        XCTAssertEqual(try JSONParser.parse("-2.5e-3"), .number(-0.0025))
        XCTAssertEqual(try JSONParser.parse("1E2"), .number(100))
        XCTAssertEqual(try JSONParser.parse("[1, [2], {}]"), .array([.integer(1), .array([.integer(2)]), .object(JSONObject())]))
        let object = try JSONParser.parse(#"{"b": 1, "a": "x"}"#).objectValue!
        XCTAssertEqual(object.keys, ["b", "a"])
        XCTAssertEqual(object["a"], .string("x"))
    }

    func testStringsAndEscapes() throws {
        XCTAssertEqual(try JSONParser.parse(#""a\"b\\c\/d\b\f\n\r\t""#), .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        XCTAssertEqual(try JSONParser.parse(#""\u00e9\u4e2d""#), .string("é中"))
        // U+1F600 as a surrogate pair and as raw UTF-8 (F0 9F 98 80).
        XCTAssertEqual(try JSONParser.parse(#""\ud83d\ude00""#), .string("\u{1F600}"))
        XCTAssertEqual(try JSONParser.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]), .string("\u{1F600}"))
        XCTAssertEqual(try JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]), .string("é"))
    }

    func testErrorsCarryOffsets() {
        let cases: [(String, Int, String)] = [
            (#"{"a": 1, "a": 2}"#, 9, "duplicate key"),
            ("[1, 2,]", 6, "expected a value"),
            ("{\"a\" 1}", 5, "expected ':'"),
            ("01", 0, "leading zero"),
            ("1.", 2, "after '.'"),
            ("1e", 2, "exponent"),
            ("-", 1, "expected a digit"),
            ("NaN", 0, "expected a value"),
            ("Infinity", 0, "expected a value"),
            ("tru", 0, "expected 'true'"),
            ("[1] x", 4, "after the JSON value"),
            ("\"abc", 0, "unterminated string"),
            ("\"a\u{01}\"", 2, "control character"),
            (#""\x""#, 1, "invalid escape"),
            (#""\ud800""#, 1, "unpaired surrogate"),
            (#""\udc00""#, 1, "unpaired surrogate"),
            (#""\u12g4""#, 1, "invalid hex digit"),
            ("", 0, "unexpected end of input"),
            ("{", 1, "unexpected end"),
            ("1e999", 0, "out of range"),
        ]
        for (text, offset, fragment) in cases {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                guard let error = error as? JSONParseError else { return XCTFail("\(text): \(error)") }
                XCTAssertEqual(error.offset, offset, "\(text): \(error)")
                XCTAssertTrue(error.message.contains(fragment), "\(text): \(error)")
            }
        }
    }

    func testInvalidUTF8IsRejected() {
        let cases: [[UInt8]] = [
            [0x22, 0xC0, 0x80, 0x22],        // overlong NUL
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // beyond U+10FFFF
            [0x22, 0x80, 0x22],              // lone continuation byte
            [0x22, 0xC3, 0x22],              // truncated two-byte sequence
            [0x22, 0xFF, 0x22],
        ]
        for bytes in cases {
            XCTAssertThrowsError(try JSONParser.parse(bytes), "\(bytes)") { error in
                XCTAssertEqual((error as? JSONParseError)?.offset, 1, "\(bytes): \(error)")
            }
        }
    }

    func testDepthLimit() throws {
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        XCTAssertThrowsError(try JSONParser.parse(deep)) { error in
            XCTAssertTrue("\(error)".contains("nesting deeper than 128"), "\(error)")
        }
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        XCTAssertNoThrow(try JSONParser.parse(ok))
        // Far beyond the limit must still fail cleanly, not overflow the stack.
        let hostile = String(repeating: "{\"a\":", count: 100_000)
        XCTAssertThrowsError(try JSONParser.parse(hostile))
    }

    func testRoundTripThroughSerializer() throws {
        let value: JSONValue = .object(JSONObject([
            ("name", "layers.0 \"q\"\n"), ("shape", [896, 4864]), ("x", .number(0.1)), ("ok", true), ("n", nil),
        ]))
        XCTAssertEqual(try JSONParser.parse(value.serialized(indent: 0)), value)
        XCTAssertEqual(try JSONParser.parse(value.serialized(indent: 2)), value)
    }
}

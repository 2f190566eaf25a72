import Foundation
import PrecLabSupport
import XCTest
@testable import PrecLabReports

/// A small RFC 4180 reader written for the tests (independent of the writer's code).
func parseCSV(_ text: String) -> [[String]] {
    var records: [[String]] = []
    var record: [String] = []
    var field = ""
    var inQuotes = false
    var characters = Array(text.unicodeScalars)[...]
    while let character = characters.popFirst() {
        if inQuotes {
            if character == "\"" {
                if characters.first == "\"" { field.unicodeScalars.append("\""); characters.removeFirst() } else { inQuotes = false }
            } else {
                field.unicodeScalars.append(character)
            }
        } else if character == "\"" {
            inQuotes = true
        } else if character == "," {
            record.append(field); field = ""
        } else if character == "\n" {
            record.append(field); field = ""
            records.append(record); record = []
        } else {
            field.unicodeScalars.append(character)
        }
    }
    if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
    return records
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "preclab-reports-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

final class CSVTests: XCTestCase {
    func testQuotingFollowsRFC4180() {
        XCTAssertEqual(CSVFormat.quote("plain"), "plain")
        XCTAssertEqual(CSVFormat.quote(""), "")
        XCTAssertEqual(CSVFormat.quote("a,b"), "\"a,b\"")
        XCTAssertEqual(CSVFormat.quote("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSVFormat.quote("line\nbreak"), "\"line\nbreak\"")
        XCTAssertEqual(CSVFormat.quote("cr\r"), "\"cr\r\"")
        XCTAssertEqual(CSVFormat.quote(" spaces kept "), " spaces kept ")
        XCTAssertEqual(CSVFormat.line(["a", 1, 0.5, .empty, "x,y"]), "a,1,0.5,,\"x,y\"\n")
    }

    func testTableRendersAndParsesBack() {
        var csv = CSVTable(header: ["tensor", "note", "count", "fraction"])
        csv.addRow([.text("model.layers.0.q_proj.weight"), .text("has, comma"), .integer(-42), .number(0.1)])
        csv.addRow([.text("quote\"d"), .text("multi\nline"), .integer(Int.max), .number(.nan)])
        let text = csv.rendered()
        XCTAssertEqual(text, """
            tensor,note,count,fraction
            model.layers.0.q_proj.weight,"has, comma",-42,0.1
            "quote""d","multi
            line",9223372036854775807,nan

            """)
        XCTAssertEqual(parseCSV(text), [
            ["tensor", "note", "count", "fraction"],
            ["model.layers.0.q_proj.weight", "has, comma", "-42", "0.1"],
            ["quote\"d", "multi\nline", "9223372036854775807", "nan"],
        ])
    }

    func testDoublesRoundTripBitForBit() {
        var values: [Double] = [
            0, -0.0, 0.1, -0.1, 1, 1.0 / 3, 2.0 / 3, 1e-5, 1.3e-5, 123456789.125, 1e15, 1e16, 1e22, 1e23,
            .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
            .leastNormalMagnitude.nextDown, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .pi, Double(Float.pi), 0.5.nextUp, 1.0.nextDown, .infinity, -.infinity,
        ]
        // Random bit patterns (SplitMix64), keeping the finite ones.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let value = Double(bitPattern: z)
            if value.isFinite { values.append(value) }
        }
        var csv = CSVTable(header: ["value"])
        for value in values { csv.addRow([.number(value)]) }
        let parsed = parseCSV(csv.rendered()).dropFirst().map { $0[0] }
        XCTAssertEqual(parsed.count, values.count)
        for (text, value) in zip(parsed, values) {
            guard let back = Double(text) else { XCTFail("\(text) does not parse"); continue }
            XCTAssertEqual(back.bitPattern, value.bitPattern, "\(value) written as \(text)")
        }
        // NaN is spelled "nan" and reads back as NaN.
        XCTAssertEqual(CSVFormat.text(.number(.nan)), "nan")
        XCTAssertEqual(CSVFormat.text(.number(-.nan)), "nan")
        XCTAssertTrue(Double("nan")!.isNaN)
        XCTAssertEqual(CSVFormat.text(.number(.infinity)), "inf")
        XCTAssertEqual(CSVFormat.text(.number(-.infinity)), "-inf")
    }

    func testTextTableExportKeepsFullPrecision() {
        var table = TextTable(columns: [.text("name"), .number("fraction", style: .percent(decimals: 1))])
        table.addRow([.text("a"), .number(0.123456789)])
        table.addTotalRow([.text("total"), .number(0.5)])
        XCTAssertTrue(table.render().contains("12.3%"))
        XCTAssertEqual(CSVTable(table).rendered(), "name,fraction\na,0.123456789\ntotal,0.5\n")
    }

    func testWritesAtomicallyAndRespectsForceAndInputs() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.csv"
        var csv = CSVTable(header: ["a"])
        csv.addRow([1])
        try csv.write(to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n1\n")
        csv.addRow([2])
        XCTAssertThrowsError(try csv.write(to: path)) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, false)
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n1\n")
        try csv.write(to: path, force: true)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n1\n2\n")
        XCTAssertThrowsError(try csv.write(to: path, force: true, inputs: [path]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.csv"])
    }

    func testStreamingWriterShowsNothingUntilCommit() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/rows.csv"
        let writer = try CSVWriter(path: path, header: ["step", "value"])
        try writer.writeRow([0, 0.25])
        try writer.writeRow([1, .number(-.infinity)])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        try writer.commit()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "step,value\n0,0.25\n1,-inf\n")

        let aborted = try CSVWriter(path: directory + "/aborted.csv", header: ["x"])
        try aborted.writeRow([1])
        aborted.abort()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["rows.csv"])
        XCTAssertThrowsError(try CSVWriter(path: path, header: ["x"]))
    }
}

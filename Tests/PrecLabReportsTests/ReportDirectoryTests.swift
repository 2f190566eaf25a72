import Foundation
import PrecLabSupport
import XCTest
@testable import PrecLabReports

final class ReportDirectoryTests: XCTestCase {
    func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    func testCreatesNestedDirectoryAndWritesFiles() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let report = try ReportDirectory(path: root + "/a/b/report/")
        var csv = CSVTable(header: ["x"])
        csv.addRow([1.5])
        let json: JSONValue = .object(JSONObject([("k", 1)]))
        let paths = try report.write([("table.csv", csv), ("summary.json", json), ("README.txt", "hello\n")])
        XCTAssertEqual(paths, [root + "/a/b/report/table.csv", root + "/a/b/report/summary.json",
                               root + "/a/b/report/README.txt"])
        XCTAssertEqual(read(paths[0]), "x\n1.5\n")
        XCTAssertEqual(read(paths[1]), "{\n  \"k\": 1\n}\n")
        XCTAssertEqual(read(paths[2]), "hello\n")
        // Opening an existing directory is fine.
        XCTAssertNoThrow(try ReportDirectory(path: root + "/a/b/report"))
    }

    func testRefusesOverwriteBeforeWritingAnything() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let report = try ReportDirectory(path: root)
        try report.write("old\n", named: "b.txt")
        XCTAssertThrowsError(try report.write([("a.txt", "new a\n"), ("b.txt", "new b\n")])) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, false)
        }
        // a.txt was not written because b.txt was refused first.
        XCTAssertNil(read(root + "/a.txt"))
        XCTAssertEqual(read(root + "/b.txt"), "old\n")

        let forced = try ReportDirectory(path: root, force: true)
        try forced.write([("a.txt", "new a\n"), ("b.txt", "new b\n")])
        XCTAssertEqual(read(root + "/b.txt"), "new b\n")

        let guarded = try ReportDirectory(path: root, force: true, inputs: [root + "/a.txt"])
        XCTAssertThrowsError(try guarded.write("x", named: "a.txt"))
        XCTAssertEqual(read(root + "/a.txt"), "new a\n")
    }

    func testRejectsBadNamesAndNonDirectories() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let report = try ReportDirectory(path: root)
        XCTAssertThrowsError(try report.write("x", named: "../escape.txt"))
        XCTAssertThrowsError(try report.write("x", named: ""))
        XCTAssertThrowsError(try report.write([("same.txt", "1"), ("same.txt", "2")]))
        XCTAssertNil(read(root + "/same.txt"))
        try report.write("file", named: "plain")
        XCTAssertThrowsError(try ReportDirectory(path: root + "/plain")) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, false)
        }
        XCTAssertThrowsError(try ReportDirectory(path: root + "/plain/below"))
    }

    func testPlotsAndTablesWriteThroughTheSameProtocol() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var table = TextTable(columns: [.text("name")])
        table.addRow(["a"])
        let report = try ReportDirectory(path: root)
        try report.write([("plot.svg", PlotExamples.bars()), ("table.txt", table), ("map.svg", PlotExamples.smallHeatMap())])
        XCTAssertEqual(read(root + "/table.txt"), "name\n----\na\n")
        XCTAssertEqual(read(root + "/plot.svg"), PlotExamples.bars().svg())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(), ["map.svg", "plot.svg", "table.txt"])
    }
}

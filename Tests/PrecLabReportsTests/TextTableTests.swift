import PrecLabSupport
import XCTest
@testable import PrecLabReports

final class TextTableTests: XCTestCase {
    func sampleTable() -> TextTable {
        var table = TextTable(title: "Sparsity", columns: [
            .text("tensor"), .number("params", style: .count), .number("unchanged", style: .percent(decimals: 1)),
        ])
        table.addRow([.text("a.weight"), .integer(1234), .number(0.5)])
        table.addRow([.text("bb"), .integer(5), .number(0.12345)])
        table.addTotalRow([.text("total"), .integer(1239), .number(0.49)])
        table.addFootnote("note: 1 tensor skipped")
        return table
    }

    func testAlignmentSeparatorsAndFootnotes() {
        // Widths by hand: tensor 8 ("a.weight"), params 6 (header), unchanged 9 (header).
        let expected = [
            "Sparsity",
            "tensor    params  unchanged",
            "--------  ------  ---------",
            "a.weight   1,234      50.0%",
            "bb             5      12.3%",
            "--------  ------  ---------",
            "total      1,239      49.0%",
            "note: 1 tensor skipped",
        ].joined(separator: "\n") + "\n"
        XCTAssertEqual(sampleTable().render(), expected)
    }

    func testDeterministic() {
        XCTAssertEqual(Array(sampleTable().render().utf8), Array(sampleTable().render().utf8))
    }

    func testLongNamesAreAbbreviatedInTheMiddleToFitWidth() {
        var table = TextTable(columns: [.text("tensor"), .number("sparsity", style: .fixed(decimals: 2))])
        table.addRow([.text("model.layers.13.self_attn.q_proj.weight"), .number(0.5)])
        table.addRow([.text("short"), .number(0.25)])
        let lines = table.render(width: 30).split(separator: "\n").map(String.init)
        // 30 = 20 (name) + 2 (gap) + 8 ("sparsity"); 19 kept characters: 9 head, 10 tail.
        XCTAssertEqual(lines, [
            "tensor                sparsity",
            "--------------------  --------",
            "model.lay…roj.weight      0.50",
            "short                     0.25",
        ])
        XCTAssertTrue(lines.allSatisfy { $0.count <= 30 })
        // Wide enough: nothing is abbreviated.
        XCTAssertTrue(table.render().contains("model.layers.13.self_attn.q_proj.weight      0.50"))
    }

    func testTooNarrowOverflowsRatherThanWraps() {
        var table = TextTable(columns: [.text("name"), .number("count", style: .count)])
        table.addRow([.text("abcdefghijklmnop"), .integer(1_000_000)])
        let lines = table.render(width: 5).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)  // header, rule, one row: never wrapped
        // The name column stops at the minimum width of 8 (3 head + "…" + 4 tail).
        XCTAssertEqual(lines[2], "abc…mnop  1,000,000")
    }

    func testNumberColumnsAreNotAbbreviated() {
        var table = TextTable(columns: [.number("x", style: .shortest)])
        table.addRow([.number(0.1234567890123)])
        XCTAssertEqual(table.render(width: 4).split(separator: "\n").last, "0.1234567890123")
    }

    func testAbbreviateMiddleEdges() {
        XCTAssertEqual(TextTable.abbreviateMiddle("abcdefghij", to: 5), "ab…ij")
        XCTAssertEqual(TextTable.abbreviateMiddle("abcdefghij", to: 4), "a…ij")
        XCTAssertEqual(TextTable.abbreviateMiddle("abcdefghij", to: 10), "abcdefghij")
        XCTAssertEqual(TextTable.abbreviateMiddle("abcdefghij", to: 1), "a")
        XCTAssertEqual(TextTable.abbreviateMiddle("abcdefghij", to: 0), "")
        XCTAssertEqual(TextTable.abbreviateMiddle("", to: 3), "")
    }

    func testFootnotesWrapAndCellsStayOnOneLine() {
        var table = TextTable(columns: [.text("name")])
        table.addRow([.text("two\nlines\tand tab")])
        table.addFootnote("aaaa bbbb cccc dddd eeee")
        let lines = table.render(width: 20).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, ["name", "-----------------", "two lines and tab", "aaaa bbbb cccc dddd", "  eeee"])
    }

    func testMissingCellsEmptyTableAndNonFinite() {
        var table = TextTable(columns: [.text("a"), .number("b"), .number("c", style: .percent(decimals: 0))])
        XCTAssertEqual(table.render(), "a  b  c\n-  -  -\n")
        table.addRow([.text("x")])
        table.addRow([.text("y"), .number(.nan), .number(-.infinity)])
        XCTAssertEqual(table.render(), "a    b     c\n-  ---  ----\nx\ny  nan  -inf\n")
        XCTAssertEqual(table.dataRows.count, 2)
    }

    func testJSONRowsKeepNumbersAndNullNonFinite() {
        var table = TextTable(columns: [.text("name"), .number("n", style: .count), .number("f", style: .percent(decimals: 1))])
        table.addRow([.text("a"), .integer(3), .number(0.125)])
        table.addSeparator()
        table.addRow([.text("b"), .empty, .number(.nan)])
        XCTAssertEqual(table.jsonRows().serialized(indent: 0),
                       "[{\"name\":\"a\",\"n\":3,\"f\":0.125},{\"name\":\"b\",\"n\":null,\"f\":null}]")
    }

    func testTerminalColumnsFallsBackWhenNotATerminal() {
        // Under `swift test` stdout is normally not a terminal; the result is then
        // $COLUMNS or the fallback, and always a usable width.
        XCTAssertGreaterThanOrEqual(TextTable.terminalColumns(fallback: 77), 20)
    }
}

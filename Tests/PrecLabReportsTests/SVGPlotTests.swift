import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import PrecLabReports

/// Parses SVG text with Foundation's XML parser and records element names, text and
/// attributes, so tests can check well-formedness and content.
final class SVGInspector: NSObject, XMLParserDelegate {
    private(set) var elements: [(name: String, attributes: [String: String])] = []
    private(set) var text = ""
    private(set) var error: Error?

    init(_ svg: String) {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        if !parser.parse() { error = parser.parserError ?? NSError(domain: "xml", code: 1) }
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:])
    {
        elements.append((elementName, attributeDict))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        error = parseError
    }

    func count(_ name: String) -> Int { elements.filter { $0.name == name }.count }
}

final class SVGPlotTests: XCTestCase {
    func assertWellFormed(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> SVGInspector {
        let inspector = SVGInspector(svg)
        XCTAssertNil(inspector.error, "SVG does not parse: \(String(describing: inspector.error))", file: file, line: line)
        XCTAssertEqual(inspector.elements.first?.name, "svg", file: file, line: line)
        XCTAssertFalse(svg.contains("nan"), "a NaN leaked into the SVG", file: file, line: line)
        XCTAssertFalse(svg.contains("inf\""), "an infinity leaked into the SVG", file: file, line: line)
        return inspector
    }

    func testExamplesAreWellFormedAndDeterministic() throws {
        let first = PlotExamples.all()
        let second = PlotExamples.all()
        for ((name, svg), (_, again)) in zip(first, second) {
            _ = assertWellFormed(svg)
            XCTAssertEqual(Array(svg.utf8), Array(again.utf8), "\(name) differs between two renders")
        }
        if let directory = ProcessInfo.processInfo.environment["PRECLAB_PLOT_EXAMPLES"] {
            let report = try ReportDirectory(path: directory, force: true)
            try report.write(first.map { ($0.name, $0.svg as any ReportFile) })
        }
    }

    func testEscapesTextAndKeepsSeriesNames() {
        let plot = PlotExamples.lineLogLog()
        let inspector = assertWellFormed(plot.svg())
        XCTAssertTrue(inspector.text.contains("fp8 <e4m3> \"sat\" & co"))
        XCTAssertTrue(inspector.text.contains("Hidden updates vs learning rate"))
        // The fp16 series has a zero on the log y axis and the fp8 one a NaN: both noted.
        XCTAssertTrue(inspector.text.contains("1 point(s) with y <= 0 not shown on the log y axis"), inspector.text)
        XCTAssertTrue(inspector.text.contains("1 non-finite point(s)"), inspector.text)
    }

    func testEmptyPlotsRender() {
        let empty = LinePlot(title: "nothing")
        XCTAssertTrue(assertWellFormed(empty.svg()).text.contains("no data to plot"))
        var emptySeries = LinePlot(title: "empty series")
        emptySeries.addSeries("a", x: [], y: [])
        emptySeries.addSeries("b", y: [])
        XCTAssertTrue(assertWellFormed(emptySeries.svg()).text.contains("no data to plot"))
        let noBars = BarPlot(title: "no categories", categories: [])
        XCTAssertTrue(assertWellFormed(noBars.svg()).text.contains("no data to plot"))
        let emptyMap = HeatMap(title: "empty", rows: 0, columns: 0, values: [])
        XCTAssertTrue(assertWellFormed(emptyMap.svg()).text.contains("no data to plot"))
    }

    func testSinglePointsAndAllNaN() {
        var single = LinePlot(title: "one point")
        single.addSeries("only", x: [3], y: [0.5])
        let inspector = assertWellFormed(single.svg())
        // A lone point on a line plot still gets a marker.
        XCTAssertEqual(inspector.count("circle"), 1)
        XCTAssertEqual(inspector.count("polyline"), 0)

        var zero = LinePlot(title: "zero")
        zero.addSeries("z", x: [0], y: [0])
        _ = assertWellFormed(zero.svg())

        var nans = LinePlot(title: "all NaN", style: .linesAndMarkers)
        nans.addSeries("n", x: [1, 2, .nan], y: [.nan, .infinity, 1])
        let nanText = assertWellFormed(nans.svg()).text
        XCTAssertTrue(nanText.contains("3 non-finite point(s)"))
        XCTAssertTrue(nanText.contains("no data to plot"))

        var bars = BarPlot(categories: ["a", "b"])
        bars.addSeries("s", values: [.nan, 2])
        _ = assertWellFormed(bars.svg())

        let oneCell = HeatMap(rows: 1, columns: 1, values: [.nan])
        XCTAssertTrue(assertWellFormed(oneCell.svg()).text.contains("1 cell(s) are NaN"))
    }

    func testLogAxesSkipNonPositiveValues() {
        var plot = LinePlot(title: "log", style: .linesAndMarkers)
        plot.xScale = .log10
        plot.yScale = .log10
        plot.addSeries("s", x: [-1, 0, 1, 10, 100], y: [1, 1, 0, 1e-3, 1e-5])
        plot.referenceLines = [ReferenceLine(y: -2, label: "negative")]
        let inspector = assertWellFormed(plot.svg())
        XCTAssertTrue(inspector.text.contains("2 point(s) with x <= 0 not shown on the log x axis"))
        XCTAssertTrue(inspector.text.contains("1 point(s) with y <= 0 not shown on the log y axis"))
        XCTAssertTrue(inspector.text.contains("1 reference line(s)"))
        XCTAssertFalse(inspector.text.contains("negative"))
        // The two shown points are joined: (10, 1e-3) and (100, 1e-5); two markers.
        XCTAssertEqual(inspector.count("polyline"), 1)
        XCTAssertEqual(inspector.count("circle"), 2)
        // Decade labels: y from 10^-5 to 10^-3, x from 10^1 to 10^2.
        XCTAssertTrue(inspector.text.contains("10−5"), inspector.text)
        XCTAssertTrue(inspector.text.contains("10−3"))
        XCTAssertTrue(inspector.text.contains("101"))

        var allNegative = LinePlot(title: "nothing positive")
        allNegative.yScale = .log10
        allNegative.addSeries("s", x: [1, 2], y: [-1, 0])
        XCTAssertTrue(assertWellFormed(allNegative.svg()).text.contains("no data to plot"))

        var bars = BarPlot(categories: ["a", "b", "c"])
        bars.yScale = .log10
        bars.addSeries("s", values: [0, -3, 100])
        let barText = assertWellFormed(bars.svg()).text
        XCTAssertTrue(barText.contains("2 value(s) <= 0 have no bar on the log y axis"))
    }

    func testNaNBreaksLine() {
        var plot = LinePlot(title: "gap")
        plot.addSeries("s", x: [0, 1, 2, 3, 4, 5], y: [0, 1, .nan, 3, 4, 5])
        let inspector = assertWellFormed(plot.svg())
        XCTAssertEqual(inspector.count("polyline"), 2)
    }

    func testFixedRangeAndExtremeValues() {
        var plot = LinePlot(title: "extremes")
        plot.yRange = 0...1
        plot.addSeries("s", x: [0, 1, 2], y: [-5, 0.5, 7])
        _ = assertWellFormed(plot.svg())
        var huge = LinePlot(title: "huge")
        huge.addSeries("s", x: [-1.7e308, 1.7e308], y: [.leastNonzeroMagnitude, -.leastNonzeroMagnitude])
        let hugeInspector = assertWellFormed(huge.svg())
        // The two points span the whole plot: from the left edge to the right edge.
        let line = hugeInspector.elements.first { $0.name == "polyline" }?.attributes["points"] ?? ""
        let xs = line.split(separator: " ").compactMap { Double($0.split(separator: ",")[0]) }
        XCTAssertEqual(xs.count, 2)
        XCTAssertGreaterThan(xs[1] - xs[0], 300)
        var badRange = LinePlot(title: "bad fixed range")
        badRange.yScale = .log10
        badRange.yRange = -1...1
        badRange.addSeries("s", x: [1, 2], y: [0.1, 10])
        _ = assertWellFormed(badRange.svg())
        var inside = LinePlot(title: "inside one decade")
        inside.yScale = .log10
        inside.yRange = 2...8
        inside.addSeries("s", x: [1, 2], y: [3, 4])
        let text = assertWellFormed(inside.svg()).text
        XCTAssertTrue(text.contains("2.00") && text.contains("8.00"))
    }

    func testCategoryLabelsWithExponentsAndManyBins() {
        var plot = BarPlot(title: "bins", categories: (-40...10).map(BarPlot.log2BinLabel))
        plot.addSeries("a", values: (-40...10).map { Double($0 + 41) })
        plot.addSeries("b", values: (-40...10).map { Double(51 - ($0 + 40)) })
        let inspector = assertWellFormed(plot.svg())
        XCTAssertEqual(inspector.count("rect") - 2 /* background, frame */ - 2 /* legend */ - 1 /* clip */, 2 * 51)
        XCTAssertGreaterThan(inspector.count("tspan"), 0)
    }

    func testManySeriesCycleColorsAndDashes() {
        var plot = LinePlot(title: "many")
        for index in 0..<30 { plot.addSeries("series \(index)", y: [Double(index), Double(index + 1)]) }
        let svg = plot.svg()
        let inspector = assertWellFormed(svg)
        XCTAssertEqual(inspector.count("polyline"), 30)
        XCTAssertTrue(svg.contains("stroke-dasharray=\"7 3\""))
        XCTAssertTrue(inspector.text.contains("more"))  // the legend cannot hold 30 rows at 450 px
    }

    func testControlCharactersAreDroppedFromText() {
        var plot = LinePlot(title: "bell\u{7} and nul\u{0}")
        plot.addSeries("tab\tname", y: [1, 2])
        let inspector = assertWellFormed(plot.svg())
        XCTAssertTrue(inspector.text.contains("bell and nul"))
    }

    func testLargeHeatMapUsesOneImage() {
        let map = PlotExamples.largeHeatMap()
        let svg = map.svg()
        let inspector = assertWellFormed(svg)
        XCTAssertEqual(inspector.count("image"), 1)
        XCTAssertTrue(inspector.text.contains("downsampled from 1024 x 1536 to 512 x 512 by averaging blocks of 2 x 3"))
        XCTAssertLessThan(svg.utf8.count, 400_000)
        let small = PlotExamples.smallHeatMap()
        let smallInspector = assertWellFormed(small.svg())
        XCTAssertEqual(smallInspector.count("image"), 0)
        // 24 x 40 cells plus background, frame and color bar.
        XCTAssertEqual(smallInspector.count("rect"), 24 * 40 + 3)
    }
}

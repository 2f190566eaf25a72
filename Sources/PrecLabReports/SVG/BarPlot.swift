/// Grouped bars: one bar per series in each labelled category, written as a standalone
/// SVG file. Serves as a histogram when the categories are bins.
///
/// - Linear y axes always include zero (bars grow from it, down for negative values);
///   log10 y axes start at the decade below the smallest positive value, and zero or
///   negative values get no bar (a note says how many).
/// - Category labels of the form "2^-3" are drawn with a raised exponent; crowded
///   labels are turned 45 degrees, and when even that is too tight only every k-th
///   label is printed.
///
///     var plot = BarPlot(title: "Update visibility", xLabel: "|Δw| / ulp(w)",
///                        yLabel: "entries", categories: (-8...4).map(BarPlot.log2BinLabel))
///     plot.yScale = .log10
///     plot.addSeries("bf16", values: counts)
public struct BarPlot: Sendable, ReportFile {
    public struct Series: Sendable, Equatable {
        public var name: String
        public var values: [Double]

        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var categories: [String]
    public var series: [Series] = []
    public var yScale: AxisScale = .linear
    /// A fixed y range; nil fits the data.
    public var yRange: ClosedRange<Double>?
    public var referenceLines: [ReferenceLine] = []
    public var notes: [String] = []
    public var width: Double = 720
    public var height: Double = 450

    public init(title: String = "", xLabel: String = "", yLabel: String = "", categories: [String]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.categories = categories
    }

    /// Adds a series with one value per category.
    public mutating func addSeries(_ name: String, values: [Double]) {
        precondition(values.count == categories.count,
                     "BarPlot series '\(name)': \(values.count) values for \(categories.count) categories")
        series.append(Series(name: name, values: values))
    }

    /// The label of a power-of-two bin, "2^-3", drawn as 2 with a raised -3.
    public static func log2BinLabel(_ exponent: Int) -> String {
        "2^\(exponent)"
    }

    public func fileText() -> String { svg() }

    /// The plot as an SVG document.
    public func svg() -> String {
        var notFinite = 0
        var notPositive = 0
        var shownValues: [Double] = []
        for entry in series {
            for value in entry.values {
                if !value.isFinite { notFinite += 1 } else if yScale == .log10, value <= 0 { notPositive += 1 } else {
                    shownValues.append(value)
                }
            }
        }
        let shownReferences = referenceLines.filter { PlotAxis.coordinate($0.y, scale: yScale) != nil }
        var allNotes: [String] = []
        if notFinite > 0 { allNotes.append("\(NumberFormat.count(notFinite)) non-finite value(s) (NaN or inf) not shown") }
        if notPositive > 0 {
            allNotes.append("\(NumberFormat.count(notPositive)) value(s) <= 0 have no bar on the log y axis")
        }
        allNotes += notes

        let legend = series.count < 2 ? [] : series.indices.map {
            LegendEntry(name: series[$0].name, color: PlotPalette.color($0), swatch: .bar)
        }
        let chrome = PlotChrome(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                                legend: legend, notes: allNotes)

        // Category label layout: horizontal if they fit their slots, else rotated.
        let labelSize = 11.0
        let longestLabel = categories.map { SVGWriter.textWidth(TextTable.abbreviateMiddle($0, to: 20), size: labelSize) }.max() ?? 0
        let roughArea = chrome.plotArea(yTickLabelWidth: 40, xTickLabelHeight: 14)
        let slot = roughArea.width / Double(max(1, categories.count))
        let rotated = longestLabel + 6 > slot
        let labelEvery = rotated ? max(1, Int((16 / slot).rounded(.up))) : 1
        let xTickLabelHeight = rotated ? min(longestLabel * 0.72 + 10, height * 0.3) : 14

        var axisValues = shownValues + shownReferences.map(\.y)
        if yScale == .linear { axisValues.append(0) }
        let yAxis = PlotAxis(scale: yScale, values: axisValues, fixed: yRange,
                             targetTicks: max(2, Int(roughArea.height / 55)))
        let area = chrome.plotArea(yTickLabelWidth: PlotChrome.tickLabelWidth(yAxis), xTickLabelHeight: xTickLabelHeight)

        var svg = SVGWriter(width: width, height: height)
        svg.define("<clipPath id=\"plot-area\"><rect x=\"\(svgNumber(area.x))\" y=\"\(svgNumber(area.y))\" width=\"\(svgNumber(area.width))\" height=\"\(svgNumber(area.height))\"/></clipPath>")
        PlotChrome.drawYAxis(yAxis, on: &svg, area: area)

        func pixelY(_ value: Double) -> Double {
            let fraction = min(max(yAxis.fraction(value) ?? 0, -0.01), 1.01)
            return area.maxY - fraction * area.height
        }
        // Bars start at zero on a linear axis and at the bottom of a log axis.
        let baseline = yScale == .linear ? pixelY(0) : area.maxY
        let slotWidth = area.width / Double(max(1, categories.count))
        let groupWidth = slotWidth * 0.8
        let barWidth = groupWidth / Double(max(1, series.count))

        svg.open("g", [("clip-path", "url(#plot-area)")])
        for (seriesIndex, entry) in series.enumerated() {
            svg.open("g", [("fill", PlotPalette.color(seriesIndex))])
            for (category, value) in entry.values.enumerated() {
                guard value.isFinite, yScale == .linear || value > 0 else { continue }
                let x = area.x + Double(category) * slotWidth + (slotWidth - groupWidth) / 2 + Double(seriesIndex) * barWidth
                let top = pixelY(value)
                svg.rect(x: x, y: min(top, baseline), width: max(barWidth - (series.count > 1 ? 1 : 0.5), 0.5),
                         height: abs(baseline - top), [])
            }
            svg.close("g")
        }
        svg.close("g")
        if yScale == .linear, let zero = yAxis.fraction(0), zero > 0, zero < 1 {
            svg.line(x1: area.x, y1: baseline, x2: area.maxX, y2: baseline, [("stroke", PlotChrome.frameColor)])
        }
        PlotChrome.drawFrame(on: &svg, area: area)
        PlotChrome.drawReferenceLines(shownReferences, yAxis: yAxis, on: &svg, area: area)

        for (index, label) in categories.enumerated() where index % labelEvery == 0 {
            let x = area.x + (Double(index) + 0.5) * slotWidth
            svg.line(x1: x, y1: area.maxY, x2: x, y2: area.maxY + 4, [("stroke", PlotChrome.frameColor)])
            let shown = TextTable.abbreviateMiddle(label, to: 20)
            if rotated {
                svg.text(shown, x: x + 3, y: area.maxY + 12, size: labelSize, anchor: "end", rotate: -45,
                         [("fill", PlotChrome.mutedText)])
            } else {
                svg.text(shown, x: x, y: area.maxY + 17, size: labelSize, anchor: "middle",
                         [("fill", PlotChrome.mutedText)])
            }
        }
        if shownValues.isEmpty { PlotChrome.drawNoData(on: &svg, area: area) }
        chrome.draw(on: &svg, area: area, xTickLabelHeight: xTickLabelHeight)
        return svg.document()
    }
}

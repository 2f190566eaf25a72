/// A line (or scatter) plot of named series of (x, y) points, written as a standalone
/// SVG file.
///
/// - Each axis is linear or log10 independently. Points a log axis cannot show
///   (zero or negative) and non-finite points are left out, and a note under the plot
///   says how many; a line is broken where a point is left out rather than bridged.
/// - Axes cover the data (and the reference lines) and are rounded out to "nice"
///   1-2-5 ticks, or use a fixed range when one is given (data outside it is clipped).
/// - Series get Okabe-Ito colors and marker shapes in order; a legend lists them when
///   there are two or more.
///
///     var plot = LinePlot(title: "Visible updates per step", xLabel: "step",
///                         yLabel: "fraction visible")
///     plot.yScale = .log10
///     plot.addSeries("bf16", x: steps, y: fractions)
///     plot.referenceLines = [ReferenceLine(y: 0.01, label: "1%")]
///     try plot.write(to: "visible.svg", force: force)
public struct LinePlot: Sendable, ReportFile {
    public enum Style: Sendable, Equatable {
        /// Lines only (isolated points still get a marker so they stay visible).
        case lines
        case linesAndMarkers
        /// Markers only: a scatter plot.
        case markers
    }

    public struct Series: Sendable, Equatable {
        public var name: String
        public var x: [Double]
        public var y: [Double]

        /// `x` and `y` must have the same length.
        public init(name: String, x: [Double], y: [Double]) {
            precondition(x.count == y.count, "LinePlot series '\(name)': \(x.count) x values for \(y.count) y values")
            self.name = name
            self.x = x
            self.y = y
        }

        /// A series with y values at x = 0, 1, 2, ...
        public init(name: String, y: [Double]) {
            self.init(name: name, x: y.indices.map(Double.init), y: y)
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xScale: AxisScale = .linear
    public var yScale: AxisScale = .linear
    /// Fixed axis ranges; nil fits the data. A range a log axis cannot show is ignored.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var style: Style
    public var series: [Series] = []
    public var referenceLines: [ReferenceLine] = []
    /// Extra lines printed under the plot (parameters used, caveats).
    public var notes: [String] = []
    public var width: Double = 720
    public var height: Double = 450

    public init(title: String = "", xLabel: String = "", yLabel: String = "", style: Style = .lines) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.style = style
    }

    /// A scatter plot: markers, no lines.
    public static func scatter(title: String = "", xLabel: String = "", yLabel: String = "") -> LinePlot {
        LinePlot(title: title, xLabel: xLabel, yLabel: yLabel, style: .markers)
    }

    public mutating func addSeries(_ name: String, x: [Double], y: [Double]) {
        series.append(Series(name: name, x: x, y: y))
    }

    public mutating func addSeries(_ name: String, y: [Double]) {
        series.append(Series(name: name, y: y))
    }

    public func fileText() -> String { svg() }

    /// The plot as an SVG document.
    public func svg() -> String {
        // Every point in data units, nil where an axis cannot show it.
        var coordinates: [[(x: Double, y: Double)?]] = []
        var notFinite = 0
        var notPositiveX = 0
        var notPositiveY = 0
        for entry in series {
            coordinates.append(zip(entry.x, entry.y).map { x, y in
                guard x.isFinite, y.isFinite else { notFinite += 1; return nil }
                let showsX = PlotAxis.coordinate(x, scale: xScale) != nil
                let showsY = PlotAxis.coordinate(y, scale: yScale) != nil
                if !showsX { notPositiveX += 1 }
                if !showsY { notPositiveY += 1 }
                return showsX && showsY ? (x, y) : nil
            })
        }
        let shown = coordinates.flatMap { $0.compactMap { $0 } }
        let shownReferences = referenceLines.filter { PlotAxis.coordinate($0.y, scale: yScale) != nil }

        var allNotes: [String] = []
        if notFinite > 0 { allNotes.append("\(NumberFormat.count(notFinite)) non-finite point(s) (NaN or inf) not shown") }
        if notPositiveX > 0 {
            allNotes.append("\(NumberFormat.count(notPositiveX)) point(s) with x <= 0 not shown on the log x axis")
        }
        if notPositiveY > 0 {
            allNotes.append("\(NumberFormat.count(notPositiveY)) point(s) with y <= 0 not shown on the log y axis")
        }
        if shownReferences.count < referenceLines.count {
            allNotes.append("\(referenceLines.count - shownReferences.count) reference line(s) at y <= 0 or non-finite not shown")
        }
        allNotes += notes

        let legend: [LegendEntry] = series.count < 2 ? [] : series.indices.map { index in
            let marker = MarkerShape.forSeries(index)
            let swatch: LegendEntry.Swatch
            switch style {
            case .lines: swatch = .line(dash: PlotPalette.dash(index), marker: nil)
            case .linesAndMarkers: swatch = .line(dash: PlotPalette.dash(index), marker: marker)
            case .markers: swatch = .marker(marker)
            }
            return LegendEntry(name: series[index].name, color: PlotPalette.color(index), swatch: swatch)
        }
        let chrome = PlotChrome(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                                legend: legend, notes: allNotes)

        // Axes: the y axis first (its labels set the left margin), then x.
        let roughArea = chrome.plotArea(yTickLabelWidth: 40, xTickLabelHeight: 14)
        let yAxis = PlotAxis(scale: yScale, values: shown.map(\.y) + shownReferences.map(\.y),
                             fixed: yRange, targetTicks: max(2, Int(roughArea.height / 55)))
        let xAxis = PlotAxis(scale: xScale, values: shown.map(\.x),
                             fixed: xRange, targetTicks: max(2, Int(roughArea.width / 90)))
        let area = chrome.plotArea(yTickLabelWidth: PlotChrome.tickLabelWidth(yAxis), xTickLabelHeight: 14)

        var svg = SVGWriter(width: width, height: height)
        svg.define("<clipPath id=\"plot-area\"><rect x=\"\(svgNumber(area.x))\" y=\"\(svgNumber(area.y))\" width=\"\(svgNumber(area.width))\" height=\"\(svgNumber(area.height))\"/></clipPath>")
        PlotChrome.drawYAxis(yAxis, on: &svg, area: area)
        PlotChrome.drawXAxis(xAxis, on: &svg, area: area)
        PlotChrome.drawFrame(on: &svg, area: area)
        PlotChrome.drawReferenceLines(shownReferences, yAxis: yAxis, on: &svg, area: area)

        func pixel(_ point: (x: Double, y: Double)) -> (x: Double, y: Double) {
            (area.x + xAxis.fraction(point.x)! * area.width, area.maxY - yAxis.fraction(point.y)! * area.height)
        }

        svg.open("g", [("clip-path", "url(#plot-area)")])
        for (index, points) in coordinates.enumerated() {
            let color = PlotPalette.color(index)
            let marker = MarkerShape.forSeries(index)
            // Runs of consecutive shown points; a left-out point breaks the line.
            var runs: [[(x: Double, y: Double)]] = [[]]
            for point in points {
                if let point { runs[runs.count - 1].append(pixel(point)) } else if !runs.last!.isEmpty { runs.append([]) }
            }
            runs.removeAll { $0.isEmpty }
            var markerPoints: [(x: Double, y: Double)] = []
            if style != .markers {
                var attributes = [("fill", "none"), ("stroke", color), ("stroke-width", "1.8"),
                                  ("stroke-linejoin", "round"), ("stroke-linecap", "round")]
                if let dash = PlotPalette.dash(index) { attributes.append(("stroke-dasharray", dash)) }
                for run in runs where run.count > 1 {
                    let list = run.map { svgNumber($0.x) + "," + svgNumber($0.y) }.joined(separator: " ")
                    svg.element("polyline", [("points", list)] + attributes)
                }
                markerPoints = style == .linesAndMarkers ? runs.flatMap { $0 } : runs.filter { $0.count == 1 }.flatMap { $0 }
            } else {
                markerPoints = runs.flatMap { $0 }
            }
            if !markerPoints.isEmpty {
                let radius = style == .markers ? 3.5 : 3
                var group = "<g fill=\"\(color)\""
                if style == .markers { group += " fill-opacity=\"0.8\"" }
                svg.raw(group + ">")
                for point in markerPoints { svg.raw(marker.element(x: point.x, y: point.y, r: radius)) }
                svg.close("g")
            }
        }
        svg.close("g")
        if shown.isEmpty { PlotChrome.drawNoData(on: &svg, area: area) }
        chrome.draw(on: &svg, area: area, xTickLabelHeight: 14)
        return svg.document()
    }
}

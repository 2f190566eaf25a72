/// A rectangle in SVG pixels.
struct PlotRect {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var maxX: Double { x + width }
    var maxY: Double { y + height }
    var midX: Double { x + width / 2 }
    var midY: Double { y + height / 2 }
}

/// One legend line: a color swatch (a line, a marker or a bar) and a name.
struct LegendEntry {
    enum Swatch { case line(dash: String?, marker: MarkerShape?), marker(MarkerShape), bar }
    let name: String
    let color: String
    let swatch: Swatch
}

/// Everything around the data area that the plot kinds share: title, axis titles,
/// legend to the right, notes at the bottom, and the layout that leaves room for them.
struct PlotChrome {
    let width: Double
    let height: Double
    let title: String
    let xLabel: String
    let yLabel: String
    let legend: [LegendEntry]
    let notes: [String]

    static let textColor = "#222222"
    static let mutedText = "#555555"
    static let gridColor = "#E4E4E4"
    static let minorGridColor = "#F2F2F2"
    static let frameColor = "#9A9A9A"
    static let legendNameLimit = 32
    static let noteSize = 11.0

    var legendWidth: Double {
        guard !legend.isEmpty else { return 0 }
        let longest = legend.map {
            SVGWriter.textWidth(TextTable.abbreviateMiddle($0.name, to: PlotChrome.legendNameLimit), size: 11)
        }.max() ?? 0
        return 16 + 26 + longest + 6
    }

    /// The data area, given how wide the y tick labels are and how tall the x tick
    /// labels are (rotated category labels are taller).
    func plotArea(yTickLabelWidth: Double, xTickLabelHeight: Double) -> PlotRect {
        let top = 14 + (title.isEmpty ? 0 : 26.0)
        let left = 12 + (yLabel.isEmpty ? 0 : 20) + yTickLabelWidth + 8
        let right = 18 + legendWidth
        let notesHeight = notes.isEmpty ? 0 : Double(notes.count) * 15 + 6
        let bottom = 8 + xTickLabelHeight + (xLabel.isEmpty ? 0 : 22) + notesHeight + 8
        return PlotRect(x: left, y: top, width: max(40, width - left - right),
                        height: max(40, height - top - bottom))
    }

    /// Title, axis titles, legend and notes.
    func draw(on svg: inout SVGWriter, area: PlotRect, xTickLabelHeight: Double) {
        if !title.isEmpty {
            let fitting = max(10, Int((width - 20) / (15 * 0.6)))
            svg.text(TextTable.abbreviateMiddle(title, to: fitting), x: width / 2, y: 30, size: 15, anchor: "middle",
                     [("font-weight", "bold"), ("fill", PlotChrome.textColor)])
        }
        if !xLabel.isEmpty {
            svg.text(xLabel, x: area.midX, y: area.maxY + 8 + xTickLabelHeight + 16, size: 13,
                     anchor: "middle", [("fill", PlotChrome.textColor)])
        }
        if !yLabel.isEmpty {
            svg.text(yLabel, x: 24, y: area.midY, size: 13, anchor: "middle", rotate: -90,
                     [("fill", PlotChrome.textColor)])
        }
        drawLegend(on: &svg, area: area)
        let maxNoteCharacters = max(20, Int((width - 20) / (PlotChrome.noteSize * 0.58)))
        for (index, note) in notes.enumerated() {
            let y = height - 10 - Double(notes.count - 1 - index) * 15
            svg.text(TextTable.abbreviateMiddle(note, to: maxNoteCharacters), x: 12, y: y,
                     size: PlotChrome.noteSize, [("fill", PlotChrome.mutedText)])
        }
    }

    private func drawLegend(on svg: inout SVGWriter, area: PlotRect) {
        guard !legend.isEmpty else { return }
        let x = area.maxX + 16
        let rowHeight = 18.0
        let fitting = max(1, Int((height - area.y - 10) / rowHeight))
        let shown = legend.count <= fitting ? legend.count : fitting - 1
        for (index, entry) in legend.prefix(shown).enumerated() {
            let y = area.y + 8 + Double(index) * rowHeight
            switch entry.swatch {
            case .line(let dash, let marker):
                var attributes = [("stroke", entry.color), ("stroke-width", "2")]
                if let dash { attributes.append(("stroke-dasharray", dash)) }
                svg.line(x1: x, y1: y, x2: x + 22, y2: y, attributes)
                if let marker {
                    svg.raw("<g fill=\"\(entry.color)\">" + marker.element(x: x + 11, y: y, r: 3) + "</g>")
                }
            case .marker(let marker):
                svg.raw("<g fill=\"\(entry.color)\">" + marker.element(x: x + 11, y: y, r: 3.5) + "</g>")
            case .bar:
                svg.rect(x: x + 4, y: y - 6, width: 14, height: 12, [("fill", entry.color)])
            }
            svg.text(TextTable.abbreviateMiddle(entry.name, to: PlotChrome.legendNameLimit),
                     x: x + 28, y: y + 4, size: 11, [("fill", PlotChrome.textColor)])
        }
        if shown < legend.count {
            svg.text("+\(legend.count - shown) more", x: x + 28, y: area.y + 8 + Double(shown) * rowHeight + 4,
                     size: 11, [("fill", PlotChrome.mutedText)])
        }
    }

    /// Horizontal grid lines and labels of a numeric y axis.
    static func drawYAxis(_ axis: PlotAxis, on svg: inout SVGWriter, area: PlotRect) {
        func pixel(_ coordinate: Double) -> Double {
            area.maxY - axis.coordinateFraction(coordinate) * area.height
        }
        for coordinate in axis.minorTicks {
            svg.line(x1: area.x, y1: pixel(coordinate), x2: area.maxX, y2: pixel(coordinate),
                     [("stroke", minorGridColor)])
        }
        for tick in axis.ticks {
            let y = pixel(tick.coordinate)
            svg.line(x1: area.x, y1: y, x2: area.maxX, y2: y, [("stroke", gridColor)])
            svg.line(x1: area.x - 4, y1: y, x2: area.x, y2: y, [("stroke", frameColor)])
            svg.text(tick.label, x: area.x - 7, y: y + 4, size: 11, anchor: "end", [("fill", mutedText)])
        }
    }

    /// Vertical grid lines and labels of a numeric x axis.
    static func drawXAxis(_ axis: PlotAxis, on svg: inout SVGWriter, area: PlotRect) {
        func pixel(_ coordinate: Double) -> Double {
            area.x + axis.coordinateFraction(coordinate) * area.width
        }
        for coordinate in axis.minorTicks {
            svg.line(x1: pixel(coordinate), y1: area.y, x2: pixel(coordinate), y2: area.maxY,
                     [("stroke", minorGridColor)])
        }
        for tick in axis.ticks {
            let x = pixel(tick.coordinate)
            svg.line(x1: x, y1: area.y, x2: x, y2: area.maxY, [("stroke", gridColor)])
            svg.line(x1: x, y1: area.maxY, x2: x, y2: area.maxY + 4, [("stroke", frameColor)])
            svg.text(tick.label, x: x, y: area.maxY + 17, size: 11, anchor: "middle", [("fill", mutedText)])
        }
    }

    /// The widest y tick label, for the left margin.
    static func tickLabelWidth(_ axis: PlotAxis) -> Double {
        axis.ticks.map { SVGWriter.textWidth($0.label, size: 11) }.max() ?? 0
    }

    static func drawFrame(on svg: inout SVGWriter, area: PlotRect) {
        svg.rect(x: area.x, y: area.y, width: area.width, height: area.height,
                 [("fill", "none"), ("stroke", frameColor)])
    }

    static func drawNoData(on svg: inout SVGWriter, area: PlotRect) {
        svg.text("no data to plot", x: area.midX, y: area.midY, size: 14, anchor: "middle",
                 [("fill", mutedText)])
    }
}

/// A horizontal reference line across a plot (a baseline, a threshold), labelled at
/// its right end.
public struct ReferenceLine: Sendable, Equatable {
    public var y: Double
    public var label: String

    public init(y: Double, label: String = "") {
        self.y = y
        self.label = label
    }
}

extension PlotChrome {
    /// Dashed reference lines with labels above their right ends.
    static func drawReferenceLines(_ lines: [ReferenceLine], yAxis: PlotAxis, on svg: inout SVGWriter,
                                   area: PlotRect)
    {
        for line in lines {
            guard let fraction = yAxis.fraction(line.y), fraction >= -1e-9, fraction <= 1 + 1e-9 else { continue }
            let y = area.maxY - fraction * area.height
            svg.line(x1: area.x, y1: y, x2: area.maxX, y2: y,
                     [("stroke", "#444444"), ("stroke-width", "1.2"), ("stroke-dasharray", "5 4")])
            if !line.label.isEmpty {
                // A white halo keeps the label readable over bars and lines.
                svg.text(line.label, x: area.maxX - 4, y: y - 4, size: 11, anchor: "end",
                         [("fill", "#333333"), ("stroke", "#FFFFFF"), ("stroke-width", "3"),
                          ("stroke-linejoin", "round"), ("paint-order", "stroke")])
            }
        }
    }
}

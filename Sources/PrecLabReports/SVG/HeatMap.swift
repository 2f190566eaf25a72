import Foundation

/// A matrix of values drawn as colored cells on a viridis-like ramp, with a color bar,
/// written as a standalone SVG file. Row 0 is at the top, as in a printed matrix.
///
/// - Matrices larger than `maxCells` in either dimension are reduced by averaging
///   blocks of cells (see `blockAverage`), and a note says so: a 4096 x 11008 weight
///   matrix becomes at most 512 x 512 cells.
/// - Values outside the color range get the end colors; NaN cells are gray.
/// - Small maps are drawn as rectangles; large ones as one embedded PNG image (palette
///   colors, scaled without smoothing), which keeps files small.
///
///     var map = HeatMap(title: "Update mask density", rows: r, columns: c, values: density)
///     map.colorLabel = "fraction updated"
///     try map.write(to: "mask.svg")
public struct HeatMap: Sendable, ReportFile {
    public enum ColorRange: Sendable, Equatable {
        /// Colors span [lower, upper].
        case fixed(lower: Double, upper: Double)
        /// Colors span the finite minimum and maximum of the (downsampled) values.
        case data
    }

    /// The result of `blockAverage`.
    public struct Downsampled: Sendable, Equatable {
        /// Row-major averages, `rows * columns` of them.
        public var values: [Double]
        public var rows: Int
        public var columns: Int
        /// How many source rows and columns each cell averages (the last block in each
        /// direction may hold fewer).
        public var rowBlock: Int
        public var columnBlock: Int

        public static func == (lhs: Downsampled, rhs: Downsampled) -> Bool {
            lhs.rows == rhs.rows && lhs.columns == rhs.columns && lhs.rowBlock == rhs.rowBlock
                && lhs.columnBlock == rhs.columnBlock
                && lhs.values.map(\.bitPattern) == rhs.values.map(\.bitPattern)
        }
    }

    public var title: String
    /// Title of the horizontal (column) axis.
    public var xLabel: String = "column"
    /// Title of the vertical (row) axis.
    public var yLabel: String = "row"
    /// Title of the color bar (what the values are).
    public var colorLabel: String = ""
    public let rows: Int
    public let columns: Int
    /// Row-major values, `rows * columns` of them.
    public let values: [Double]
    public var colorRange: ColorRange = .fixed(lower: 0, upper: 1)
    /// The most cells drawn along each dimension.
    public var maxCells: Int = 512
    public var notes: [String] = []
    public var width: Double = 640
    public var height: Double = 560

    /// Maps with at most this many cells are drawn as rectangles.
    static let rectangleLimit = 4096
    /// Ramp colors available to cells (the palette's last entry is the NaN gray).
    static let rampLevels = 255

    public init(title: String = "", rows: Int, columns: Int, values: [Double]) {
        precondition(rows >= 0 && columns >= 0 && values.count == rows * columns,
                     "HeatMap: \(values.count) values for \(rows) x \(columns)")
        self.title = title
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// Reduces a row-major matrix so that it has at most `maxRows` x `maxColumns`
    /// cells: each output cell is the mean of a block of `rowBlock` x `columnBlock`
    /// input cells, with the block sizes the smallest integers that fit
    /// (ceil(rows / maxRows)). Blocks at the bottom and right edges may be smaller and
    /// average what they hold. NaN entries are left out of the mean (a block of only
    /// NaN is NaN); infinities propagate.
    public static func blockAverage(_ values: [Double], rows: Int, columns: Int,
                                    maxRows: Int, maxColumns: Int) -> Downsampled
    {
        precondition(values.count == rows * columns && maxRows > 0 && maxColumns > 0)
        let rowBlock = max(1, (rows + maxRows - 1) / maxRows)
        let columnBlock = max(1, (columns + maxColumns - 1) / maxColumns)
        if rowBlock == 1, columnBlock == 1 {
            return Downsampled(values: values, rows: rows, columns: columns, rowBlock: 1, columnBlock: 1)
        }
        let outRows = (rows + rowBlock - 1) / rowBlock
        let outColumns = (columns + columnBlock - 1) / columnBlock
        var sums = [Double](repeating: 0, count: outRows * outColumns)
        var counts = [Int](repeating: 0, count: outRows * outColumns)
        for row in 0..<rows {
            let outBase = (row / rowBlock) * outColumns
            let inBase = row * columns
            for column in 0..<columns {
                let value = values[inBase + column]
                if value.isNaN { continue }
                sums[outBase + column / columnBlock] += value
                counts[outBase + column / columnBlock] += 1
            }
        }
        let averages = zip(sums, counts).map { sum, count in count == 0 ? Double.nan : sum / Double(count) }
        return Downsampled(values: averages, rows: outRows, columns: outColumns,
                           rowBlock: rowBlock, columnBlock: columnBlock)
    }

    public func fileText() -> String { svg() }

    /// The map as an SVG document.
    public func svg() -> String {
        let cells = HeatMap.blockAverage(values, rows: rows, columns: columns,
                                         maxRows: max(1, maxCells), maxColumns: max(1, maxCells))
        let finite = cells.values.filter(\.isFinite)
        var (lower, upper): (Double, Double)
        switch colorRange {
        case .fixed(let a, let b): (lower, upper) = (a, b)
        case .data: (lower, upper) = (finite.min() ?? 0, finite.max() ?? 1)
        }
        if !(lower.isFinite && upper.isFinite && lower < upper) {
            if lower.isFinite, lower == upper { (lower, upper) = (lower - 0.5, upper + 0.5) } else { (lower, upper) = (0, 1) }
        }

        var allNotes: [String] = []
        if cells.rowBlock > 1 || cells.columnBlock > 1 {
            allNotes.append("downsampled from \(rows) x \(columns) to \(cells.rows) x \(cells.columns) "
                + "by averaging blocks of \(cells.rowBlock) x \(cells.columnBlock)")
        }
        let missing = cells.values.count { $0.isNaN }
        if missing > 0 { allNotes.append("\(NumberFormat.count(missing)) cell(s) are NaN (gray)") }
        let outside = cells.values.count { !$0.isNaN && ($0 < lower || $0 > upper) }
        if outside > 0 {
            allNotes.append("\(NumberFormat.count(outside)) cell(s) outside the color range "
                + "[\(NumberFormat.shortest(lower)), \(NumberFormat.shortest(upper))] shown at its ends")
        }
        allNotes += notes

        // Layout: the map keeps square cells unless that would squash it more than 4:1.
        let colorTicks = AxisTicks.linearInside(lower: lower, upper: upper, targetCount: 5)
        let colorLabels = colorTicks.ticks.map { AxisTicks.label($0, step: colorTicks.step) }
        let colorBarWidth = 16 + 14 + 6 + (colorLabels.map { SVGWriter.textWidth($0, size: 11) }.max() ?? 0)
            + (colorLabel.isEmpty ? 0 : 24)
        // Row labels set the left margin; the full height gives at least as many ticks
        // as the map will have, so the margin is wide enough.
        let rowLabelWidth = HeatMap.indexTicks(count: rows, length: height).map { SVGWriter.textWidth(NumberFormat.count($0), size: 11) }.max() ?? 0
        let top = 14 + (title.isEmpty ? 0 : 26.0)
        let left = 12 + (yLabel.isEmpty ? 0 : 20) + rowLabelWidth + 8
        let notesHeight = allNotes.isEmpty ? 0 : Double(allNotes.count) * 15 + 6
        let bottom = 8 + 14 + (xLabel.isEmpty ? 0 : 22) + notesHeight + 8
        let availableWidth = max(40, width - left - colorBarWidth - 24)
        let availableHeight = max(40, height - top - bottom)
        // The map keeps the matrix's shape (square cells) unless that is more elongated
        // than 3:1, in which case it is stretched to 3:1 so a 4096 x 8 matrix stays visible.
        let aspect = min(max(Double(max(1, columns)) / Double(max(1, rows)), 1.0 / 3), 3)
        let mapWidth = min(availableWidth, availableHeight * aspect)
        let area = PlotRect(x: left, y: top, width: mapWidth, height: mapWidth / aspect)

        let bar = PlotRect(x: area.maxX + 18, y: area.y, width: 16, height: max(area.height, 120))
        // `width` and `height` are the most the map may take: the document is cropped to
        // what it uses, so a wide map leaves no empty band below it.
        let textWidth = max(SVGWriter.textWidth(title, size: 15) + 30,
                            (allNotes.map { SVGWriter.textWidth($0, size: PlotChrome.noteSize) }.max() ?? 0) + 24)
        let usedWidth = min(width, max(bar.x + colorBarWidth + 12, textWidth))
        let usedHeight = min(height, max(area.maxY, bar.maxY) + bottom)
        var svg = SVGWriter(width: usedWidth, height: usedHeight)
        if cells.values.isEmpty {
            PlotChrome.drawNoData(on: &svg, area: area)
        } else {
            let indices = cells.values.map { HeatMap.paletteIndex($0, lower: lower, upper: upper) }
            let palette = HeatMap.palette
            if cells.values.count <= HeatMap.rectangleLimit {
                // Cell edges in pixels; the last block may cover fewer source cells.
                func edge(_ index: Int, block: Int, count: Int, start: Double, length: Double) -> Double {
                    start + Double(min(index * block, count)) / Double(count) * length
                }
                svg.open("g", [("shape-rendering", "crispEdges")])
                for row in 0..<cells.rows {
                    let y0 = edge(row, block: cells.rowBlock, count: rows, start: area.y, length: area.height)
                    let y1 = edge(row + 1, block: cells.rowBlock, count: rows, start: area.y, length: area.height)
                    for column in 0..<cells.columns {
                        let x0 = edge(column, block: cells.columnBlock, count: columns, start: area.x, length: area.width)
                        let x1 = edge(column + 1, block: cells.columnBlock, count: columns, start: area.x, length: area.width)
                        // Cells overlap by a fraction of a pixel so no seams show between them.
                        svg.rect(x: x0, y: y0, width: x1 - x0 + 0.3, height: y1 - y0 + 0.3,
                                 [("fill", PlotPalette.hex(palette[Int(indices[row * cells.columns + column])]))])
                    }
                }
                svg.close("g")
            } else {
                let png = PalettePNG.encode(width: cells.columns, height: cells.rows, indices: indices, palette: palette)
                svg.element("image", [
                    ("x", svgNumber(area.x)), ("y", svgNumber(area.y)),
                    ("width", svgNumber(area.width)), ("height", svgNumber(area.height)),
                    ("preserveAspectRatio", "none"), ("style", "image-rendering:pixelated"),
                    ("href", "data:image/png;base64," + Data(png).base64EncodedString()),
                ])
            }
        }
        PlotChrome.drawFrame(on: &svg, area: area)

        // Index ticks in source-matrix coordinates: a tick at k marks the edge of row / column k.
        for tick in HeatMap.indexTicks(count: columns, length: area.width) {
            let x = area.x + Double(tick) / Double(max(1, columns)) * area.width
            svg.line(x1: x, y1: area.maxY, x2: x, y2: area.maxY + 4, [("stroke", PlotChrome.frameColor)])
            svg.text(NumberFormat.count(tick), x: x, y: area.maxY + 17, size: 11, anchor: "middle",
                     [("fill", PlotChrome.mutedText)])
        }
        for tick in HeatMap.indexTicks(count: rows, length: area.height) {
            let y = area.y + Double(tick) / Double(max(1, rows)) * area.height
            svg.line(x1: area.x - 4, y1: y, x2: area.x, y2: y, [("stroke", PlotChrome.frameColor)])
            svg.text(NumberFormat.count(tick), x: area.x - 7, y: y + 4, size: 11, anchor: "end",
                     [("fill", PlotChrome.mutedText)])
        }

        // Color bar: the ramp from `lower` (bottom) to `upper` (top).
        var stops = ""
        for (index, _) in PlotPalette.ramp.enumerated() {
            let t = Double(index) / Double(PlotPalette.ramp.count - 1)
            stops += "<stop offset=\"\(svgNumber(t * 100))%\" stop-color=\"\(PlotPalette.hex(PlotPalette.rampColor(t)))\"/>"
        }
        svg.define("<linearGradient id=\"color-ramp\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">" + stops + "</linearGradient>")
        svg.rect(x: bar.x, y: bar.y, width: bar.width, height: bar.height,
                 [("fill", "url(#color-ramp)"), ("stroke", PlotChrome.frameColor)])
        for (tick, label) in zip(colorTicks.ticks, colorLabels) {
            let y = bar.maxY - (tick - lower) / (upper - lower) * bar.height
            svg.line(x1: bar.maxX, y1: y, x2: bar.maxX + 4, y2: y, [("stroke", PlotChrome.frameColor)])
            svg.text(label, x: bar.maxX + 7, y: y + 4, size: 11, [("fill", PlotChrome.mutedText)])
        }
        if !colorLabel.isEmpty {
            svg.text(colorLabel, x: bar.x + colorBarWidth - 10, y: bar.midY, size: 12, anchor: "middle", rotate: 90,
                     [("fill", PlotChrome.textColor)])
        }

        let chrome = PlotChrome(width: usedWidth, height: usedHeight, title: title, xLabel: xLabel, yLabel: yLabel,
                                legend: [], notes: allNotes)
        chrome.draw(on: &svg, area: area, xTickLabelHeight: 14)
        return svg.document()
    }

    /// Ramp colors, then the NaN gray as the last entry.
    static let palette: [(red: UInt8, green: UInt8, blue: UInt8)] =
        (0..<rampLevels).map { PlotPalette.rampColor(Double($0) / Double(rampLevels - 1)) } + [PlotPalette.missing]

    static func paletteIndex(_ value: Double, lower: Double, upper: Double) -> UInt8 {
        if value.isNaN { return UInt8(rampLevels) }
        let t = min(max((value - lower) / (upper - lower), 0), 1)
        return UInt8((t * Double(rampLevels - 1)).rounded())
    }

    /// Nice integer tick positions from 0 to `count` (inclusive) for matrix indices,
    /// about one per 70 pixels of `length`.
    static func indexTicks(count: Int, length: Double) -> [Int] {
        guard count > 0 else { return [0] }
        let target = min(8, max(1, Int(length / 70)))
        let ticks = AxisTicks.linearInside(lower: 0, upper: Double(count), targetCount: target)
        let step = max(1, ticks.step)
        return ticks.ticks.filter { $0.truncatingRemainder(dividingBy: step) == 0 && $0 == $0.rounded() }.map { Int($0) }
    }
}

/// A plain-text table for the terminal: a title line, a header, rows, optional
/// separator and total rows, and footnotes (warnings such as "3 tensors skipped").
///
/// Rendering never wraps a row. When the table is wider than the requested width,
/// abbreviating columns (text columns by default) are shortened in the middle, so that
/// both the start and the end of a tensor name stay readable:
/// "model.layers.1…q_proj.weight". Output is deterministic and has no trailing spaces.
///
///     var table = TextTable(title: "bf16 sparsity", columns: [
///         .text("tensor"), .number("params", style: .compactCount),
///         .number("unchanged", style: .percent(decimals: 1)),
///     ])
///     table.addRow([.text(name), .integer(count), .number(fraction)])
///     print(table.render())
public struct TextTable: Sendable {
    public enum Alignment: Sendable, Equatable {
        case left, right
    }

    public struct Column: Sendable, Equatable {
        public var header: String
        public var alignment: Alignment
        /// How numeric cells of this column are spelled.
        public var style: NumberStyle
        /// Whether this column may be shortened (in the middle) to fit the width.
        public var abbreviates: Bool

        public init(_ header: String, alignment: Alignment = .left,
                    style: NumberStyle = .general(significant: 3), abbreviates: Bool? = nil)
        {
            self.header = header
            self.alignment = alignment
            self.style = style
            self.abbreviates = abbreviates ?? (alignment == .left)
        }

        /// A left-aligned text column (names), abbreviated in the middle when too wide.
        public static func text(_ header: String) -> Column {
            Column(header, alignment: .left)
        }

        /// A right-aligned number column spelled with `style`.
        public static func number(_ header: String, style: NumberStyle = .general(significant: 3)) -> Column {
            Column(header, alignment: .right, style: style)
        }
    }

    public enum Row: Sendable, Equatable {
        case cells([TableCell])
        /// A horizontal rule.
        case separator
    }

    public var title: String?
    public var columns: [Column]
    public private(set) var rows: [Row] = []
    /// Lines printed under the table (warnings, skipped items, parameters used).
    public var footnotes: [String] = []

    /// Columns are separated by this many spaces.
    public static let columnGap = 2
    /// Abbreviated columns never get narrower than this.
    public static let minimumAbbreviatedWidth = 8

    public init(title: String? = nil, columns: [Column]) {
        self.title = title
        self.columns = columns
    }

    /// Appends a row. Missing trailing cells are empty; more cells than columns is a
    /// programming error.
    public mutating func addRow(_ cells: [TableCell]) {
        precondition(cells.count <= columns.count,
                     "TextTable row has \(cells.count) cells for \(columns.count) columns")
        rows.append(.cells(cells + Array(repeating: .empty, count: columns.count - cells.count)))
    }

    /// Appends a horizontal rule.
    public mutating func addSeparator() {
        rows.append(.separator)
    }

    /// Appends a rule followed by a row (a total or summary line).
    public mutating func addTotalRow(_ cells: [TableCell]) {
        addSeparator()
        addRow(cells)
    }

    public mutating func addFootnote(_ text: String) {
        footnotes.append(text)
    }

    /// The data rows (separators left out), for exporting the same values elsewhere.
    public var dataRows: [[TableCell]] {
        rows.compactMap { if case .cells(let cells) = $0 { return cells } else { return nil } }
    }

    /// The table as text, fitted to `width` columns where abbreviation allows; ends
    /// with a newline.
    public func render(width: Int = 100) -> String {
        let texts: [[String]?] = rows.map { row in
            guard case .cells(let cells) = row else { return nil }
            return zip(columns, cells).map { column, cell in
                TextTable.singleLine(column.style.format(cell))
            }
        }
        let widths = fittedWidths(texts: texts, width: width)
        let gap = String(repeating: " ", count: TextTable.columnGap)

        func line(_ fields: [String]) -> String {
            var parts: [String] = []
            for (index, field) in fields.enumerated() {
                let columnWidth = widths[index]
                let shown = TextTable.abbreviateMiddle(field, to: columnWidth)
                let padding = String(repeating: " ", count: columnWidth - shown.count)
                parts.append(columns[index].alignment == .left ? shown + padding : padding + shown)
            }
            return TextTable.trimTrailingSpaces(parts.joined(separator: gap))
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: gap)

        var output: [String] = []
        if let title { output.append(TextTable.singleLine(title)) }
        output.append(line(columns.map { TextTable.singleLine($0.header) }))
        output.append(rule)
        for fields in texts {
            output.append(fields.map(line) ?? rule)
        }
        for note in footnotes {
            output.append(contentsOf: TextTable.wrap(note, width: max(width, 20)))
        }
        return output.joined(separator: "\n") + "\n"
    }

    /// Natural column widths, then the abbreviating columns shrunk one character at a
    /// time (always the widest first) until the table fits or they reach their minimum.
    private func fittedWidths(texts: [[String]?], width: Int) -> [Int] {
        var widths = columns.map { $0.header.count }
        for fields in texts.compactMap({ $0 }) {
            for (index, field) in fields.enumerated() { widths[index] = max(widths[index], field.count) }
        }
        let gaps = TextTable.columnGap * max(0, columns.count - 1)
        var excess = widths.reduce(0, +) + gaps - width
        while excess > 0 {
            var widest: Int?
            for index in columns.indices where columns[index].abbreviates
                && widths[index] > TextTable.minimumAbbreviatedWidth
            {
                if widest == nil || widths[index] > widths[widest!] { widest = index }
            }
            guard let shrink = widest else { break }
            widths[shrink] -= 1
            excess -= 1
        }
        return widths
    }

    /// Shortens `text` to `width` characters by replacing its middle with "…", keeping
    /// one more character of the end than of the start (the end of a tensor name, such
    /// as "q_proj.weight", usually tells more).
    public static func abbreviateMiddle(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        guard width > 1 else { return String(text.prefix(width)) }
        let kept = width - 1
        let head = kept / 2
        let tail = kept - head
        return String(text.prefix(head)) + "…" + String(text.suffix(tail))
    }

    /// Word-wraps a footnote to `width`, indenting continuation lines by two spaces.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var current = ""
            for word in paragraph.split(separator: " ") {
                if current.isEmpty {
                    current = String(word)
                } else if current.count + 1 + word.count <= width {
                    current += " " + word
                } else {
                    lines.append(current)
                    current = "  " + word
                }
            }
            lines.append(current)
        }
        return lines.map(trimTrailingSpaces)
    }

    /// Cells are single lines: control characters (newline, tab) become spaces.
    static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map {
            $0.value < 0x20 || $0.value == 0x7F ? " " : $0
        }))
    }

    static func trimTrailingSpaces(_ text: String) -> String {
        var result = Substring(text)
        while result.last == " " { result = result.dropLast() }
        return String(result)
    }
}

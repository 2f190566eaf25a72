import PrecLabSupport

/// CSV spelling shared by `CSVTable` and `CSVWriter`.
///
/// - Fields are quoted as RFC 4180 asks: a field containing a comma, a double quote,
///   CR or LF is enclosed in double quotes, with inner quotes doubled.
/// - Lines end with LF (what pandas, numpy and spreadsheet imports all accept).
/// - Numbers are written so that they read back bit for bit: the shortest text that
///   parses to the same Double ("0.1", "1e-05", "-0.0"); NaN is "nan" and infinities
///   "inf" / "-inf" (pandas and numpy read both). Integers are written in full.
/// - An empty cell is an empty field.
public enum CSVFormat {
    /// Quotes a field when RFC 4180 requires it.
    public static func quote(_ field: String) -> String {
        let needsQuotes = field.unicodeScalars.contains {
            $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r"
        }
        guard needsQuotes else { return field }
        var quoted = "\""
        for character in field {
            if character == "\"" { quoted += "\"\"" } else { quoted.append(character) }
        }
        return quoted + "\""
    }

    /// A cell as its (unquoted) CSV text.
    public static func text(_ cell: TableCell) -> String {
        switch cell {
        case .text(let text): return text
        case .integer(let value): return String(value)
        case .number(let value): return NumberFormat.shortest(value)
        case .empty: return ""
        }
    }

    /// One CSV line, with its line ending.
    public static func line(_ cells: [TableCell]) -> String {
        cells.map { quote(text($0)) }.joined(separator: ",") + "\n"
    }

    /// A header line from column names.
    public static func headerLine(_ names: [String]) -> String {
        line(names.map { .text($0) })
    }
}

/// A CSV file held in memory: a header row and data rows of `TableCell`s.
///
///     var csv = CSVTable(header: ["tensor", "params", "unchanged_fraction"])
///     csv.addRow([.text(name), .integer(count), .number(fraction)])
///     try csv.write(to: path, force: force, inputs: inputs)
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public private(set) var rows: [[TableCell]] = []

    public init(header: [String]) {
        self.header = header
    }

    /// The data of a `TextTable` at full precision: its column headers as the header and
    /// its rows (separators dropped). Rows added with `addTotalRow` are ordinary rows to
    /// the table and are kept; leave totals out of the `TextTable` first if the CSV
    /// should hold only per-item rows.
    public init(_ table: TextTable) {
        header = table.columns.map(\.header)
        rows = table.dataRows
    }

    /// Appends a row. It must have exactly as many cells as the header has names.
    public mutating func addRow(_ cells: [TableCell]) {
        precondition(cells.count == header.count,
                     "CSV row has \(cells.count) fields for \(header.count) columns")
        rows.append(cells)
    }

    /// The whole file as text.
    public func rendered() -> String {
        var output = CSVFormat.headerLine(header)
        for row in rows { output += CSVFormat.line(row) }
        return output
    }
}

/// Streams a CSV file row by row through an `AtomicFileWriter`, for outputs too large
/// to keep in memory (one row per tensor entry, per step, ...). Nothing is visible at
/// `path` until `commit()`; a writer dropped without committing leaves no file.
public final class CSVWriter {
    public let header: [String]
    private let file: AtomicFileWriter

    /// Checks the destination (see `AtomicFileWriter`) and writes the header line.
    public init(path: String, header: [String], force: Bool = false, inputs: [String] = []) throws {
        self.header = header
        file = try AtomicFileWriter(path: path, force: force, inputs: inputs)
        try file.write(CSVFormat.headerLine(header))
    }

    /// Appends a row. It must have exactly as many cells as the header has names.
    public func writeRow(_ cells: [TableCell]) throws {
        precondition(cells.count == header.count,
                     "CSV row has \(cells.count) fields for \(header.count) columns")
        try file.write(CSVFormat.line(cells))
    }

    /// Makes the file visible at its path.
    public func commit() throws {
        try file.commit()
    }

    /// Drops the file.
    public func abort() {
        file.abort()
    }
}

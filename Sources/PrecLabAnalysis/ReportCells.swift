import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// Pieces every per-tensor report shares.
enum ReportCells {
    /// A table cell for a metric that may be undefined (empty then).
    static func metric(_ value: Double?) -> TableCell { value.map { .number($0) } ?? .empty }

    /// A JSON number for a metric that may be undefined (null then).
    static func json(_ value: Double?) -> JSONValue { value.map { .finite($0) } ?? .null }

    /// The leading columns of a per-tensor table (without the shape where the table is
    /// wide already; the CSV and JSON reports have it).
    static func tensorColumns(shape: Bool = true) -> [TextTable.Column] {
        [.text("tensor")] + (shape ? [.text("shape")] : []) + [.number("params", style: .compactCount)]
    }

    /// The cells under `tensorColumns` (`shape` nil: no shape column).
    static func tensorCells(_ name: TensorName, shape: [Int]?, params: Int) -> [TableCell] {
        [.text(displayName(name.name))] + (shape.map { [.text($0.map(String.init).joined(separator: "x"))] } ?? [])
            + [.integer(params)]
    }

    /// Name, layer, type and shape: the first keys of a tensor's JSON object.
    static func tensorJSON(_ name: TensorName, shape: [Int]) -> JSONObject {
        JSONObject([("name", .string(name.name)), ("layer", name.layer.map { .int($0) } ?? .null),
                    ("type", .string(name.type.rawValue)), ("shape", .array(shape.map { .int($0) }))])
    }

    /// A row per matrix type and a total row: type, tensors, params, then `columns`
    /// filled by `cells` from each summary.
    static func byTypeTable<Metric>(title: String, columns: [TextTable.Column], types: [MatrixType],
                                    summary: (MatrixType) -> WeightedSummary<Metric>,
                                    total: WeightedSummary<Metric>,
                                    cells: (WeightedSummary<Metric>) -> [TableCell]) -> TextTable {
        var table = TextTable(title: title, columns: [
            .text("type"), .number("tensors", style: .count), .number("params", style: .compactCount),
        ] + columns)
        func row(_ label: String, _ s: WeightedSummary<Metric>) -> [TableCell] {
            [.text(label), .integer(s.tensors), .integer(s.parameters)] + cells(s)
        }
        for type in types { table.addRow(row(type.rawValue, summary(type))) }
        table.addTotalRow(row("total", total))
        return table
    }
}

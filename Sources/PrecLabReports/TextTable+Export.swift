#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

extension TextTable {
    /// The data rows as a JSON array of objects keyed by column header, numbers at full
    /// precision (non-finite numbers become null, as JSON has no spelling for them;
    /// empty cells are null too). Separators are dropped; total rows are kept.
    public func jsonRows() -> JSONValue {
        .array(dataRows.map { cells in
            var object = JSONObject()
            for (column, cell) in zip(columns, cells) {
                switch cell {
                case .text(let text): object[column.header] = .string(text)
                case .integer(let value): object[column.header] = .int(value)
                case .number(let value): object[column.header] = .finite(value)
                case .empty: object[column.header] = .null
                }
            }
            return .object(object)
        })
    }

    /// The width to render for standard output: the terminal's width when stdout is a
    /// terminal, else `$COLUMNS` when set, else `fallback`. Output piped to a file is
    /// thus the same on every machine.
    public static func terminalColumns(fallback: Int = 100) -> Int {
        #if canImport(Glibc) || canImport(Darwin)
        if isatty(1) != 0 {
            var size = winsize()
            if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 20 { return Int(size.ws_col) }
        }
        #endif
        if let text = getenv("COLUMNS"), let columns = Int(String(cString: text)), columns >= 20 {
            return columns
        }
        return fallback
    }
}

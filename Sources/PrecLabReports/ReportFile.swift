import PrecLabSupport

/// Anything that becomes one text file of a report: tables, CSV, plots, JSON.
public protocol ReportFile {
    /// The complete file contents. Same value, same bytes.
    func fileText() -> String
}

extension ReportFile {
    /// Writes the file atomically: nothing appears at `path` unless the whole file was
    /// written; an existing file is replaced only with `force`; an input is never
    /// overwritten (see `AtomicFileWriter`).
    public func write(to path: String, force: Bool = false, inputs: [String] = []) throws {
        try AtomicFileWriter.write(text: fileText(), to: path, force: force, inputs: inputs)
    }
}

extension CSVTable: ReportFile {
    public func fileText() -> String { rendered() }
}

extension TextTable: ReportFile {
    /// The table rendered at the default width of 100 columns.
    public func fileText() -> String { render() }
}

extension JSONValue: ReportFile {
    /// Two-space indented JSON with a final newline.
    public func fileText() -> String { serialized(indent: 2) + "\n" }
}

extension String: ReportFile {
    /// Text written as it is (a README, a log, an already rendered document).
    public func fileText() -> String { self }
}

import PrecLabReports
import PrecLabSupport

/// `--json FILE`, `--csv FILE`, `--plots DIR` and `--force`: a command's output set.
///
/// `preflight` runs before any work: every output path is checked against every other
/// and against the plot files inside `--plots`, and every destination against the
/// inputs (`inputPaths`: every file read, index and shards included) and existing
/// files. `write` then writes the whole set or none of it (`OutputSet`).
struct OutputOptions {
    var json: String?
    var csv: String?
    var plots: String?
    var force: Bool
    /// Every file the command reads; no output may replace one.
    var inputPaths: [String] = []

    static func specs(csv: Bool = true) -> [OptionSpec] {
        [.value("--json")] + (csv ? [.value("--csv")] : []) + [.value("--plots"), .flag("--force")]
    }

    init(_ arguments: ParsedArguments) {
        json = arguments.value("--json")
        csv = arguments.value("--csv")
        plots = arguments.value("--plots")
        force = arguments.flag("--force")
    }

    /// The path of a plot file inside `--plots`.
    func plotPath(_ name: String) -> String? {
        plots.map { $0.hasSuffix("/") ? $0 + name : $0 + "/" + name }
    }

    /// Refuses colliding, existing (without --force) or input-replacing outputs and a
    /// `--plots` that is not a directory. Writes nothing.
    func preflight(plotNames: [String]) throws {
        var named: [(option: String, path: String)] = []
        if let json { named.append(("--json", json)) }
        if let csv { named.append(("--csv", csv)) }
        // Standard output carries one document: `-` only where a run writes one output.
        if let dash = named.first(where: { $0.path == AtomicFileWriter.standardOutputPath }),
           named.count + (plots == nil ? 0 : 1) > 1 {
            throw UsageError("\(dash.option) '-' (standard output) is allowed only when it is the run's only output")
        }
        for (index, first) in named.enumerated() {
            for second in named[(index + 1)...]
            where OutputSet.canonicalPath(first.path) == OutputSet.canonicalPath(second.path) {
                throw UsageError("\(first.option) and \(second.option) name the same file '\(first.path)'")
            }
            for name in plotNames {
                guard let plotPath = plotPath(name),
                      OutputSet.canonicalPath(first.path) == OutputSet.canonicalPath(plotPath) else { continue }
                throw UsageError("\(first.option) '\(first.path)' is also the plot file \(name) of --plots '\(plots!)'")
            }
        }
        try outputSet.check(files: named.map(\.path) + plotNames.compactMap(plotPath),
                            directories: plots.map { [$0] } ?? [])
    }

    /// Writes the JSON, CSV and plot files given (each only when its option was given).
    func write(json document: JSONValue?, csv table: CSVTable? = nil,
               plots files: [(name: String, file: any ReportFile)] = []) throws {
        var set: [OutputSet.File] = []
        if let json, let document { set.append(OutputSet.File(path: json, content: document)) }
        if let csv, let table { set.append(OutputSet.File(path: csv, content: table)) }
        for file in files {
            if let path = plotPath(file.name) { set.append(OutputSet.File(path: path, content: file.file)) }
        }
        try outputSet.write(set, directories: plots.map { [$0] } ?? [])
    }

    private var outputSet: OutputSet { OutputSet(force: force, inputs: inputPaths) }
}

import PrecLabAnalysis
import PrecLabFiles
import PrecLabReports
import PrecLabSupport

/// `preclab merge OUT.json IN.json...`: joins the shard JSON files of one sharded
/// replay, compare or consistency run into the JSON the unsharded run writes (same
/// bytes), and regenerates the CSV, plots and tables from the merged result.
enum MergeCommand: Command {
    static let name = "merge"
    static let summary = "join the shard results of a --shard I/N run into the unsharded result"
    static let help = """
    usage: preclab merge OUT.json IN.json... [--csv FILE] [--plots DIR] [--heatmap TENSOR]
                         [--force] [--quiet]

    Each IN.json is the --json output of 'preclab replay', 'compare' or 'consistency'
    run with --shard I/N; together they must be shards 1..N of one run, each once. The
    typed per-tensor results they carry (the 'shard' block) are put back in the order
    of the unsharded run and reported by the same code, so OUT.json holds the same bytes
    as the JSON of one unsharded run: the same tensors, totals, means by matrix type,
    skipped lists and warnings, without the 'shard' block.

    Merge refuses (exit 1, naming the files and the reason): a file that is not a shard
    result, shards of different commands, inputs or options (the 'run' object differs:
    the key is named), shards of partitions with different N, a shard given twice or
    tensors in two shards (overlap), and missing shards or tensors.

    options:
      --csv FILE       write the CSV of the merged result (replay and compare, as their
                       --csv writes it)
      --plots DIR      write the SVG plots of the merged result
      --heatmap TENSOR consistency only: also draw the consensus of this 2-D tensor (needs
                       --plots)
      --force          replace existing output files
      --quiet          no tables on stdout

    Exit status: 0 success, 1 bad data (unreadable JSON, shards that do not make one
    run), 2 bad usage.
    """
    static let options: [OptionSpec] = [.value("--csv"), .value("--plots"), .value("--heatmap"), .flag("--force"),
                                        .flag("--quiet")]

    static func run(_ arguments: ParsedArguments) throws {
        let paths = try arguments.requireSomePositionals(names: "OUT.json and one IN.json or more")
        guard paths.count >= 2 else {
            throw UsageError("needs OUT.json and at least one IN.json (see 'preclab help merge')")
        }
        var outputs = OutputOptions(arguments)
        outputs.json = paths[0]
        let inputs = Array(paths.dropFirst())
        outputs.inputPaths = inputs
        let heatmap = arguments.value("--heatmap")
        if heatmap != nil && outputs.plots == nil {
            throw UsageError("--heatmap needs --plots DIR to write the SVG into")
        }
        let plotNames = ComparisonPlot.allCases.map(\.fileName) + ConsistencyPlot.allCases.map(\.fileName)
            + ReplayPlot.allCases.map(\.fileName)
        try outputs.preflight(plotNames: plotNames)

        var documents: [(path: String, document: JSONValue)] = []
        for path in inputs {
            let file = try MappedFile(path: path)
            do {
                documents.append((path, try JSONParser.parse(file.bytes, maxDepth: 1024)))
            } catch let error as JSONParseError {
                throw PrecLabError.badData(file: path, "not valid JSON: \(error)")
            }
        }
        let quiet = arguments.flag("--quiet")
        switch try ShardMerge.merge(documents) {
        case .comparison(let comparison):
            if heatmap != nil { throw UsageError("--heatmap applies to consistency results, these are compare shards") }
            try CompareCommand.emit(comparison, outputs: outputs, quiet: quiet)
        case .consistency(let consistency):
            if outputs.csv != nil { throw UsageError("consistency results have no CSV; leave out --csv") }
            if let heatmap, !consistency.tensors.contains(where: { $0.name.name == heatmap && $0.shape.count == 2 }) {
                throw UsageError("--heatmap '\(heatmap)' is not a 2-D tensor of the merged result")
            }
            try ConsistencyCommand.emit(consistency, outputs: outputs, heatmap: heatmap, quiet: quiet)
        case .replay(let result, let spectral, let source):
            if heatmap != nil { throw UsageError("--heatmap applies to consistency results, these are replay shards") }
            try ReplayCommand.emit(result, spectral: spectral, source: source, outputs: outputs, quiet: quiet)
        }
    }
}

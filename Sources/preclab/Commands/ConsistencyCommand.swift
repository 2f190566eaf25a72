import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// `preclab consistency --base BASE RUN...`: parses, calls `CheckpointConsistency`
/// (PrecLabAnalysis), renders. Do independent runs from one base update
/// the same coordinates? Pairwise Jaccard of the update masks against the independent
/// Bernoulli baseline, consensus over runs and the row/column structure of updates.
enum ConsistencyCommand: Command {
    static let name = "consistency"
    static let summary = "cross-run Jaccard of update masks vs the Bernoulli baseline, consensus"
    static let help = """
    usage: preclab consistency --base BASE RUN RUN... [--dtype bf16] [--tensors REGEX] [--quiet]
                               [--json FILE] [--plots DIR [--heatmap TENSOR]] [--force]
                               [--shard I/N]
                               [--signed-zero-changes]

    BASE and every RUN are safetensors files, sharded checkpoints or directories. For
    each run r the update mask M_r marks the elements whose --dtype codes differ from
    BASE (as in 'preclab compare'; +0 <-> -0 is no change unless
    --signed-zero-changes). Per tensor:
      Jaccard      |M_r & M_s| / |M_r | M_s| for every pair of runs, against the
                   baseline p q / (p + q - p q) of independent masks with the same
                   densities p, q, and the magnitude baseline
                   sum_s n_s p_s q_s / sum_s n_s (p_s + q_s - p_s q_s) with the runs'
                   densities in each binade s of the stored base (what precision
                   alone makes two runs share); the mean over pairs of each
      consensus    C_ij = mean over runs of M_r,ij; the share of elements every run
                   updated, and the histogram of how many runs updated each element
      row/column   row means rho_i and column means kappa_j of C (2-D tensors): their
                   coefficients of variation show stripes along rows or columns
    Means per matrix type (q, k, v, o, gate, up, down, others) and in total are weighted
    by parameter count. Tensors missing from a run or of another shape are listed as
    skipped with the reason.

    options:
      --base CHECKPOINT  the common starting point (required)
      --dtype FORMAT     storage format compared (default bf16)
      --tensors REGEX    only tensors whose names match
      --json FILE        write every number as JSON
      --plots DIR        write SVG plots: mean Jaccard vs both baselines by type, and
                         with --heatmap a heat map of the consensus of one tensor
      --heatmap TENSOR   the 2-D tensor whose consensus is drawn (needs --plots)
      --signed-zero-changes  count +0 <-> -0 as a change (bit inequality)
      --force            replace existing output files
      --progress MODE    auto, plain (a line per stage) or none (see 'preclab help compare')
      --quiet            no progress on stderr
    \(ShardOption.helpLine)
    Exit status: 0 success, 1 bad data (unreadable checkpoint, nothing comparable),
    2 bad usage (fewer than two runs, --heatmap without --plots or naming no 2-D tensor).
    """
    static let options: [OptionSpec] = [
        .value("--base"), .value("--dtype"), TensorSelectionOption.spec, .value("--heatmap"), .flag("--quiet"),
        ProgressReporter.spec, .flag("--signed-zero-changes"), ShardOption.spec,
    ] + OutputOptions.specs(csv: false)

    /// Everything the command line asks for, validated before any work.
    struct Request {
        var base: Checkpoint
        var runs: [Checkpoint]
        /// The paths as given (reports name the checkpoints so).
        var labels: (base: String, runs: [String])
        var options: ConsistencyOptions
        var heatmap: String?
        var outputs: OutputOptions
        var progress: ProgressReporter
        /// With --shard: the partition and this shard's part of it.
        var shardPlan: ShardPlan?

        init(_ arguments: ParsedArguments) throws {
            let shard = try ShardOption.parse(arguments)
            guard let basePath = arguments.value("--base") else {
                throw UsageError("--base BASE is required (see 'preclab help \(name)')")
            }
            let runPaths = try arguments.requireSomePositionals(names: "two or more RUN checkpoints")
            guard runPaths.count >= 2 else {
                throw UsageError("needs at least two runs to compare, got \(runPaths.count)")
            }
            options = ConsistencyOptions(format: try FloatFormat.named(arguments.value("--dtype") ?? "bf16"),
                                         selection: try TensorSelectionOption.parse(arguments),
                                         signedZeroChanges: arguments.flag("--signed-zero-changes"))
            progress = try ProgressReporter(command: name, arguments: arguments)
            outputs = OutputOptions(arguments)
            heatmap = arguments.value("--heatmap")
            if heatmap != nil && outputs.plots == nil {
                throw UsageError("--heatmap needs --plots DIR to write the SVG into")
            }
            labels = (basePath, runPaths)
            base = try Checkpoint.open(basePath)
            runs = try runPaths.map { try Checkpoint.open($0) }
            if let shard {
                let plan = CheckpointConsistency.shardPlan(base: base, selection: options.selection, shard: shard)
                try ShardOption.check(plan)
                options.selection = options.selection.restricted(to: plan.selected)
                shardPlan = plan
            }
            outputs.inputPaths = base.filePaths + runs.flatMap(\.filePaths)
            try outputs.preflight(plotNames: ConsistencyPlot.written(heatmap: heatmap != nil).map(\.fileName))
            if let heatmap {
                guard let tensor = base.tensor(named: heatmap), tensor.shape.count == 2,
                      options.selection.includes(heatmap) else {
                    throw UsageError("--heatmap '\(heatmap)' is not a 2-D tensor of \(basePath)"
                        + (options.selection.pattern != nil ? " selected by --tensors" : ""))
                }
            }
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        let request = try Request(arguments)
        let consistency = try CheckpointConsistency(base: request.base, runs: request.runs, options: request.options,
                                                    progress: request.progress, labels: request.labels)
        try emit(consistency, outputs: request.outputs, heatmap: request.heatmap,
                 shard: try request.shardPlan.map { try consistency.shardStamp(plan: $0) })
    }

    /// Writes the output files and prints the tables of a result (also of a merged one:
    /// `preclab merge` calls this). `shard`: the block a shard's JSON carries.
    static func emit(_ consistency: CheckpointConsistency, outputs: OutputOptions, heatmap: String?,
                     quiet: Bool = false,
                     shard: ShardStamp? = nil) throws {
        var document: JSONValue? = outputs.json == nil ? nil : consistency.json()
        if let shard, let json = document { document = shard.annotate(json) }
        try outputs.write(json: document,
                          plots: outputs.plots == nil ? [] : consistency.plots(heatmap: heatmap))
        if !quiet { Console.out(consistency.text(width: TextTable.terminalColumns())) }
    }
}

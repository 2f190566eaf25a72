import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// `preclab compare BASE TUNED`: parses the options, calls `CheckpointComparison`
/// (PrecLabAnalysis) and renders its tables and files. Per-tensor update sparsity in a storage format and the
/// spectral metrics of [P] (NSS, principal angles, principal/low-magnitude mask
/// overlaps, update energy, perturbation bounds), with totals and per-type summaries.
enum CompareCommand: Command {
    static let name = "compare"
    static let summary = "bf16 update sparsity and spectral metrics between two checkpoints"
    static let help = """
    usage: preclab compare BASE TUNED [--dtype bf16] [--k 64] [--rank 64] [--alpha 0.5]
                           [--tensors REGEX] [--svd exact|randomized|auto]
                           [--signed-zero-changes]
                           [--json FILE] [--csv FILE] [--plots DIR] [--force] [--quiet]
                           [--progress auto|plain|none] [--shard I/N]

    BASE and TUNED are safetensors files, sharded checkpoints (index JSON) or
    directories. Both are brought to --dtype (tensors stored in another float format are
    rounded to nearest-even; already in --dtype: compared as stored). For every tensor:
    sparsity = fraction of elements whose --dtype codes are bit-for-bit equal (a change
    between +0 and -0 is no change unless --signed-zero-changes). For 2-D
    tensors, in float64 on LAPACK (see docs/metrics.md):
      NSS          ||sigma(W1) - sigma(W0)|| / ||sigma(W0)||, full spectrum
      angles       principal angles between the top-k left (U) and right (V) singular
                   subspaces of W0 and W1, max and mean in degrees
      overlaps     |M & M_princ|/|M| (M_princ: top-alpha of |rank-r reconstruction of
                   W0|), |M & M_low|/|M| (bottom-alpha of |W0|), and their control
                   M_princ minus M_low; each beside its random baseline (alpha; the
                   control's density) and its magnitude baseline (the overlap expected
                   if updates depended only on the binade of the stored W0)
      energy       ||U_k U_k^T dW V_k V_k^T||_F^2 / ||dW||_F^2
      bounds       Weyl, Mirsky, Wedin (flagged vacuous when the gap is too small) and
                   Ky Fan beside the measured values
    When both checkpoints are wider than --dtype (e.g. fp32 tuned weights), also
    fp32_changed (source values differ), hidden_by_precision = fp32_changed - changed
    and the histogram of |W1 - W0| / half-ULP(stored W0) (octaves; CSV and SVG in
    --plots). Totals are weighted by parameter count, with a summary per matrix type (q, k, v, o,
    gate, up, down, others). Tensors that cannot be compared (missing on one side,
    shape mismatch, not floating point) and tensors with sparsity only (not 2-D,
    NaN/Inf) are listed with the reason.

    options:
      --dtype FORMAT   storage format compared (default bf16; any preclab format name)
      --k K            dimension of the compared top singular subspaces (default 64)
      --rank R         rank of the reconstruction behind the principal mask (default 64)
      --alpha A        fraction of entries in each mask, 0..1 (default 0.5)
      --tensors REGEX  only tensors whose names match
      --svd MODE       exact (default), randomized (reports an error bound per tensor
                       and refuses angles it cannot bound below 0.01 degrees) or auto
                       (randomized when 4*(max(k,rank)+10) <= min(m,n))
      --signed-zero-changes  count +0 <-> -0 as a change (bit inequality)
      --json FILE      write every metric as JSON
      --csv FILE       write the per-tensor table as CSV
      --plots DIR      write SVG plots (spectra, angles, NSS and max angle by layer,
                       overlaps by type beside their magnitude baselines) and, for
                       wide inputs, precision_hidden.csv and precision_hidden.svg
      --force          replace existing output files
      --progress MODE  auto (a line redrawn on a terminal, nothing otherwise), plain
                       (a line per stage) or none
      --quiet          no progress on stderr
    \(ShardOption.helpLine)
    Exit status: 0 success, 1 bad data (unreadable checkpoint, nothing comparable),
    2 bad usage.
    """
    static let options: [OptionSpec] = [.value("--dtype"), TensorSelectionOption.spec, .flag("--quiet"),
                                        ProgressReporter.spec, .flag("--signed-zero-changes"),
                                        ShardOption.spec]
        + SpectralOptionGroup.specs(svd: true) + OutputOptions.specs()

    /// Everything the command line asks for, validated before any work.
    struct Request {
        var base: Checkpoint
        var tuned: Checkpoint
        /// The paths as given (reports name the checkpoints so).
        var labels: (base: String, tuned: String)
        var options: CheckpointComparisonOptions
        var outputs: OutputOptions
        var progress: ProgressReporter
        /// With --shard: the partition and this shard's part of it.
        var shardPlan: ShardPlan?

        init(_ arguments: ParsedArguments) throws {
            let paths = try arguments.requirePositionals(2, names: "BASE and TUNED checkpoints")
            let shard = try ShardOption.parse(arguments)
            options = CheckpointComparisonOptions(format: try FloatFormat.named(arguments.value("--dtype") ?? "bf16"),
                                                  spectral: try SpectralOptionGroup.parse(arguments),
                                                  selection: try TensorSelectionOption.parse(arguments),
                                                  signedZeroChanges: arguments.flag("--signed-zero-changes"))
            progress = try ProgressReporter(command: name, arguments: arguments)
            labels = (paths[0], paths[1])
            base = try Checkpoint.open(paths[0])
            tuned = try Checkpoint.open(paths[1])
            if let shard {
                let plan = CheckpointComparison.shardPlan(base: base, tuned: tuned, selection: options.selection,
                                                          shard: shard)
                try ShardOption.check(plan)
                options.selection = options.selection.restricted(to: plan.selected)
                shardPlan = plan
            }
            outputs = OutputOptions(arguments)
            outputs.inputPaths = base.filePaths + tuned.filePaths
            // Refuse outputs before the long computation, not after it.
            try outputs.preflight(plotNames: ComparisonPlot.allCases.map(\.fileName))
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        let request = try Request(arguments)
        let comparison = try CheckpointComparison(base: request.base, tuned: request.tuned, options: request.options,
                                                  progress: request.progress, labels: request.labels)
        try emit(comparison, outputs: request.outputs,
                 shard: try request.shardPlan.map { try comparison.shardStamp(plan: $0) })
    }

    /// Writes the output files and prints the tables of a comparison (also of a merged
    /// one: `preclab merge` calls this). `shard`: the block a shard's JSON carries.
    static func emit(_ comparison: CheckpointComparison, outputs: OutputOptions, quiet: Bool = false,
                     shard: ShardStamp? = nil) throws {
        let plots = outputs.plots == nil ? [] : comparison.plots()
        if let plotsPath = outputs.plots, plots.isEmpty {
            Console.error("preclab \(name): no 2-D tensor was compared, so no plot was written to \(plotsPath)")
        }
        var document: JSONValue? = outputs.json == nil ? nil : comparison.json()
        if let shard, let json = document { document = shard.annotate(json) }
        try outputs.write(json: document,
                          csv: outputs.csv == nil ? nil : comparison.csv(), plots: plots)
        if !quiet { Console.out(comparison.text(width: TextTable.terminalColumns())) }
    }
}

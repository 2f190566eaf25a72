import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// `preclab replay STREAM`: replays recorded fp32 updates under a storage precision and
/// every storage policy, and reports which updates became visible.
enum ReplayCommand: Command {
    static let name = "replay"
    static let summary = "replay an update stream under a storage precision and policies"
    static let help = """
    usage: preclab replay STREAM [--dtype bf16] [--policy LIST] [options]

    Replays the fp32 updates recorded in STREAM (an update stream v1 file) under a
    storage format and storage policies, and reports per tensor how many stored
    weights changed (visible), how many truly changed but vanished (hidden), and how
    much of the true update was lost (relative error).

    policies (--policy, comma-separated, default all):
      fp32        fp32 weights: the truth (checked bit for bit against FINL)
      master      fp32 master weights, checkpoint exported to --dtype (nearest-even)
      pure        weights stored in --dtype; each step's fp32 sum rounded with --rounding
      stochastic  as pure, with stochastic rounding keyed by --seed
      kahan       as pure, plus a Kahan compensation buffer in --dtype

    options:
      --dtype FORMAT        storage format (default bf16; any of 'preclab formats')
      --rounding MODE       rounding of the pure policy (default nearest-even)
      --seed N              seed for stochastic rounding and the null model (default 0)
      --saturate            clamp overflow to the largest finite value
      --flush-subnormals    flush subnormal results to zero
      --policy LIST         policies to run (default all)
      --base CHECKPOINT     base weights from a safetensors file or directory
                            (required when the stream has no BASE record)
      --every N             per-step curve point every N steps (default: ~50 points)
      --null KIND           also replay the null model under every policy: the same
                            stream with each step's update permuted (one permutation)
                            over each tensor (permute), within each row (permute-rows)
                            or within each column (permute-cols)
      --signed-zero-changes count +0 <-> -0 as a change (default: no change, Def. 2.1)
      --spectral            spectral metrics of W0 -> W_T per 2-D tensor and policy
                            (NSS, principal angles, mask overlaps; see docs/metrics.md)
      --k N, --rank N       top-k subspace size and mask reconstruction rank (default 64)
      --alpha A             principal / low-magnitude mask fraction, 0..1 (default 0.5)
      --json FILE           write the full results as JSON
      --csv FILE            write a row per tensor and policy as CSV
      --plots DIR           write SVG plots (visible fraction per step, visibility histogram,
                            low-|W0| overlap per policy beside its magnitude baseline)
                            and the step-level views (CSV + SVG: values changed per
                            step, |u_t| / half-ULP of the pure policy's stored weight)
      --scale C             multiply every recorded update by C (in fp32) before applying
                            it: a first-order, open-loop learning-rate counterfactual
                            (the recorded updates stay those of the recorded run;
                            FINL is not compared)
      --strict              exit 1 when FINL differs from the fp32 replay (default:
                            report the differences as finl_mismatches and a warning)
      --allow-truncated     keep the complete steps of a stream cut off mid-record
      --no-verify           skip CRC-32 verification
      --threads N           worker threads (results never depend on it)
      --tensors REGEX       only tensors whose names match (the others are not replayed)
      --shard I/N           only shard I of N (1 <= I <= N) of the selected tensors,
                            balanced by element count; needs --json; join the N JSON
                            files with 'preclab merge' (see docs/scale.md)
      --progress MODE       auto, plain (a line per stage) or none
      --quiet               no progress line and no table
      --force               replace existing output files

    The stored base is W0 rounded to nearest-even; the master export and the Kahan
    buffers also round to nearest-even; --rounding applies to the pure policy.
    Exit status: 0 success, 1 bad data (corrupt stream; FINL mismatch with --strict),
    2 bad usage.
    """
    static let options: [OptionSpec] = [
        .value("--dtype"), .value("--rounding"), .value("--seed"), .flag("--saturate"),
        .flag("--flush-subnormals"), .value("--policy"), .value("--base"), .value("--every"),
        .value("--null"), .flag("--signed-zero-changes"), .flag("--spectral"), .flag("--allow-truncated"),
        .flag("--no-verify"), .value("--scale"), .flag("--strict"),
        .value("--threads"), .flag("--quiet"), ProgressReporter.spec, TensorSelectionOption.spec, ShardOption.spec,
    ] + SpectralOptionGroup.specs(svd: false) + OutputOptions.specs()

    /// Everything the command line asks for, validated before any work.
    struct Request {
        var stream: String
        /// How the JSON names the stream: its path, or for a recorder's shard file the
        /// name of the whole recording.
        var source: String
        var configuration: ReplayConfiguration
        var options: StreamReplayOptions
        var spectral: SpectralOptions?
        var quiet: Bool
        var outputs: OutputOptions
        var progress: ProgressReporter
        /// `--tensors`, as given.
        var selection: TensorSelection
        /// With --shard: the partition and this shard's part of it.
        var shardPlan: ShardPlan?

        init(_ arguments: ParsedArguments) throws {
            stream = try arguments.requirePositionals(1, names: "one update stream file")[0]
            let shard = try ShardOption.parse(arguments)
            selection = try TensorSelectionOption.parse(arguments)
            let format = try FloatFormat.named(arguments.value("--dtype") ?? "bf16")
            var rounding = RoundingOptions()
            if let mode = arguments.value("--rounding") { rounding.mode = try RoundingMode.named(mode) }
            rounding.saturate = arguments.flag("--saturate")
            rounding.flushSubnormals = arguments.flag("--flush-subnormals")
            let seed = try arguments.number("--seed", .seed, default: 0)
            let policies = try ReplayPolicy.parseList(arguments.value("--policy") ?? "all")
            let every = try arguments.number("--every", .positive)
            let threads = try arguments.number("--threads", .positive, default: ParallelChunks.threadCount)
            let scale = try arguments.number("--scale", .finiteFloat, default: 1)
            var nullModel: NullModelKind? = nil
            if let null = arguments.value("--null") {
                guard let kind = NullModelKind(rawValue: null) else {
                    throw UsageError("invalid value '\(null)' for --null (expected "
                                     + NullModelKind.names.joined(separator: ", ") + ")")
                }
                nullModel = kind
            }
            let spectralOptions = try SpectralOptionGroup.parse(arguments)
            spectral = arguments.flag("--spectral") ? spectralOptions : nil
            quiet = arguments.flag("--quiet")
            progress = try ProgressReporter(command: name, arguments: arguments)
            outputs = OutputOptions(arguments)
            configuration = ReplayConfiguration(format: format, rounding: rounding, seed: seed, policies: policies,
                                                nullModel: nullModel,
                                                signedZeroChanges: arguments.flag("--signed-zero-changes"),
                                                threads: threads, scale: scale,
                                                stepViews: outputs.json != nil || outputs.plots != nil)
            let base = arguments.value("--base")
            options = StreamReplayOptions(verifyCRC: !arguments.flag("--no-verify"),
                                          allowTruncated: arguments.flag("--allow-truncated"),
                                          curveEvery: every, baseCheckpoint: base,
                                          strictFinal: arguments.flag("--strict"))
            source = stream
            if let recorded = try RecordedShard.read(path: stream) {
                // A recorder's shard file: partition the model's tensors, not the file's.
                options.modelPositions = recorded.modelPositions
                if let shard {
                    source = recorded.source
                    guard shard == recorded.shard else {
                        throw UsageError("\(stream) was recorded as shard \(recorded.shard.description), "
                                         + "not \(shard.description)")
                    }
                    let plan = recorded.plan(selection: selection)
                    try ShardOption.check(plan)
                    let held = try ReplaySpectral.streamTensors(path: stream, selection: selection).map(\.name)
                    guard Set(held) == plan.selected else {
                        throw PrecLabError.badData(file: stream, "holds \(held.count) selected tensor(s) but shard "
                            + "\(shard.description) of the recorded model has \(plan.indices.count): the recorder and "
                            + "preclab partition differently or the file was cut")
                    }
                    // The whole file is the shard (no --tensors): replay it without copying slices.
                    let whole = try ReplaySpectral.streamTensors(path: stream, selection: .all).count == held.count
                    options.tensorNames = whole ? nil : plan.selected
                    shardPlan = plan
                }
            }
            if shardPlan == nil && (shard != nil || selection.pattern != nil) {
                let tensors = try ReplaySpectral.streamTensors(path: stream, selection: selection)
                guard !tensors.isEmpty else {
                    throw UsageError("--tensors '\(selection.pattern ?? "")' matches no tensor of \(stream)")
                }
                options.tensorNames = Set(tensors.map(\.name))
                if let shard {
                    let plan = ReplaySpectral.shardPlan(tensors: tensors, shard: shard)
                    try ShardOption.check(plan)
                    options.tensorNames = plan.selected
                    shardPlan = plan
                }
            }
            outputs.inputPaths = [stream] + (try base.map { try Checkpoint.open($0).filePaths } ?? [])
            // Refuse bad destinations before spending time on the replay.
            try outputs.preflight(plotNames: ReplayPlot.allCases.map(\.fileName))
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        let request = try Request(arguments)
        let (result, spectral): (ReplayResult, ReplaySpectral?)
        do {
            (result, spectral) = try ReplaySpectral.replay(path: request.stream, configuration: request.configuration,
                                                           options: request.options, spectral: request.spectral,
                                                           progress: request.progress)
        } catch PrecLabError.malformed(var fault) where fault.expected == StreamReplay.missingBaseExplanation {
            fault.expected += "; pass it with --base CHECKPOINT"
            throw PrecLabError.malformed(fault)
        }
        let shard = try request.shardPlan.map {
            try ReplaySpectral.shardStamp(plan: $0, source: request.source, result: result, spectral: spectral,
                                          spectralOptions: request.spectral, options: request.options,
                                          pattern: request.selection.pattern)
        }
        try emit(result, spectral: spectral, source: request.source, outputs: request.outputs, quiet: request.quiet,
                 shard: shard)
    }

    /// Prints the tables and writes the output files of a replay (also of a merged one:
    /// `preclab merge` calls this). `shard`: the block a shard's JSON carries.
    static func emit(_ result: ReplayResult, spectral: ReplaySpectral?, source: String, outputs: OutputOptions,
                     quiet: Bool, shard: ShardStamp? = nil) throws {
        if !quiet {
            Console.out(ReplayTables.perTensor(result).render())
            Console.out("")
            Console.out(ReplayTables.totals(result).render())
            Console.out("")
            Console.out(ReplayStepReports.hiddenSplit(result).render())
            if let spectral {
                Console.out("")
                Console.out(spectral.table().render())
            }
        }
        for warning in result.warnings { Console.error("preclab replay: warning: \(warning)") }
        var document: JSONValue? = nil
        if outputs.json != nil {
            document = result.json(source: source)
            if let spectral { document = spectral.merge(into: document!) }
            if let shard { document = shard.annotate(document!) }
        }
        var table: CSVTable? = nil
        if outputs.csv != nil {
            let (header, rows) = result.csvRows()
            table = CSVTable(header: header)
            for row in rows { table!.addRow(row.map { TableCell.text($0) }) }
        }
        try outputs.write(json: document, csv: table,
                          plots: outputs.plots == nil ? [] : ReplayPlots.files(result) + ReplayStepReports.files(result))
    }
}

/// The terminal tables of a replay.
enum ReplayTables {
    /// A row per tensor: params, true sparsity and each stored policy's sparsity.
    static func perTensor(_ result: ReplayResult) -> TextTable {
        let stored = result.configuration.policies.filter { $0 != .fp32 }
        var columns: [TextTable.Column] = [
            .text("tensor"), .number("params", style: .compactCount),
            .number("true chg", style: .percent(decimals: 2)),
        ]
        columns += stored.map { .number($0.rawValue, style: .percent(decimals: 2)) }
        var table = TextTable(
            title: "\(result.configuration.format.name) sparsity (% of weights whose stored bits are unchanged), "
                + "\(result.steps) steps",
            columns: columns)
        table.columns[2].header = "fp32"
        for tensor in result.tensors {
            var cells: [TableCell] = [.text(tensor.tensor.name), .integer(tensor.params), .number(tensor.trueSparsity)]
            cells += stored.map { .number(tensor.policies[$0]!.sparsity(params: tensor.params)) }
            table.addRow(cells)
        }
        var total: [TableCell] = [.text("total"), .integer(result.params),
                                  .number(result.params == 0 ? 1 : 1 - Double(result.trueChanged) / Double(result.params))]
        total += stored.map { .number(result.total($0).sparsity(params: result.params)) }
        table.addTotalRow(total)
        table.addFootnote("fp32 column: true sparsity (entries whose fp32 value did not change at all)")
        return table
    }

    /// A row per policy over all tensors (weighted by parameter count).
    static func totals(_ result: ReplayResult) -> TextTable {
        let alphaIndex = result.headlineAlphaIndex
        var columns: [TextTable.Column] = [
            .text("policy"), .number("visible", style: .count), .number("sparsity", style: .percent(decimals: 2)),
            .number("hidden", style: .count), .number("rel. error", style: .general(significant: 3)),
            .number("non-finite", style: .count),
        ]
        if alphaIndex != nil {
            columns.append(.number("low-|W0| overlap", style: .fixed(decimals: 3)))
            columns.append(.number("magnitude", style: .fixed(decimals: 3)))
        }
        var table = TextTable(title: "totals over \(NumberFormat.count(result.params)) weights "
                                  + "(\(result.trueChanged) truly changed)", columns: columns)
        /// One row: a policy's (or its null's) totals, with the headline overlap and its baseline.
        func row(_ label: String, _ metrics: PolicyMetrics) -> [TableCell] {
            var cells: [TableCell] = [.text(label), .integer(metrics.visibleChanged),
                                      .number(metrics.sparsity(params: result.params)), .integer(metrics.hidden),
                                      .number(metrics.relativeError), .integer(metrics.nonFiniteWeights)]
            if let alphaIndex {
                cells.append(.number(metrics.lowMagnitudeOverlap[alphaIndex]))
                cells.append(.number(metrics.lowMagnitudeOverlapMagnitude[alphaIndex]))
            }
            return cells
        }
        for policy in result.configuration.policies { table.addRow(row(policy.rawValue, result.total(policy))) }
        for policy in result.configuration.policies {
            if let null = result.totalNull(policy) { table.addRow(row("null: \(policy.rawValue)", null)) }
        }
        let configuration = result.configuration
        table.addFootnote("dtype \(configuration.format.name), rounding \(configuration.rounding.mode.rawValue) (pure), "
                          + "seed \(configuration.seed), steps \(result.steps)"
                          + (result.finalVerified ? ", fp32 replay matches FINL bit for bit" : ""))
        if alphaIndex != nil {
            table.addFootnote("low-|W0| overlap: share of visible changes among the 50% smallest |W0| (random: 0.5); "
                              + "magnitude: the overlap expected if visibility depended only on the binade of the stored "
                              + "base (overlap ≈ magnitude: precision explains it)")
        }
        if let kind = configuration.nullModel {
            table.addFootnote("null: --null \(kind.rawValue), the same stream with every step's update permuted "
                              + (kind == .permute ? "over each tensor" : kind == .permuteRows ? "within each row" : "within each column")
                              + " (one permutation, seed \(configuration.seed)), replayed under every policy")
        }
        for warning in result.warnings { table.addFootnote("warning: \(warning)") }
        return table
    }
}

/// The plot files of `--plots DIR`, named once (pre-flight check and writer).
enum ReplayPlot: String, CaseIterable {
    case visiblePerStep = "visible_per_step.svg"
    case visibilityHistogram = "visibility_histogram.svg"
    case visibleByRatio = "visible_by_ratio.svg"
    case lowOverlapByPolicy = "low_overlap_by_policy.svg"
    // The step-level views (ReplayStepReports), a CSV and an SVG each.
    case changedPerStepTable = "changed_per_step.csv"
    case changedPerStep = "changed_per_step.svg"
    case pureUpdateRatioTable = "pure_update_ratio.csv"
    case pureUpdateRatio = "pure_update_ratio.svg"

    var fileName: String { rawValue }
}

/// The SVG plots of `--plots DIR`.
enum ReplayPlots {
    static func files(_ result: ReplayResult) -> [(name: String, file: any ReportFile)] {
        let params = Double(max(result.params, 1))
        let dtype = result.configuration.format.name
        var perStep = LinePlot(title: "Visible changes per step (\(dtype))", xLabel: "step",
                               yLabel: "fraction of weights changed", style: .linesAndMarkers)
        let steps = result.curve.map { Double($0.step) }
        perStep.addSeries("fp32 truth", x: steps, y: result.curve.map { Double($0.totalTrueChanged) / params })
        for policy in result.configuration.policies where policy != .fp32 {
            perStep.addSeries(policy.rawValue, x: steps, y: result.curve.map { Double($0.totalVisible(policy)) / params })
        }
        perStep.notes = result.warnings

        let labels = VisibilityHistogram.labels
        var histogram = BarPlot(title: "|ΔW true| / half-ULP of the stored base (\(dtype))",
                                xLabel: "ratio (log2 bins)", yLabel: "weights", categories: labels)
        histogram.addSeries("weights", values: result.totalHistogram.map(Double.init))
        histogram.yScale = .log10
        histogram.notes = result.warnings

        var byRatio = LinePlot(title: "Share of weights visible by |ΔW true| / half-ULP (\(dtype))",
                               xLabel: "log2 of the ratio (bin start)", yLabel: "fraction visible",
                               style: .linesAndMarkers)
        let totals = result.totalHistogram
        let binIndices = (2..<(labels.count - 1)).filter { totals[$0] > 0 }
        let exponents = binIndices.map { Double($0 - 2 + VisibilityHistogram.lowestExponent) }
        for policy in result.configuration.policies where policy != .fp32 {
            let visible = result.total(policy).visibleByBin
            byRatio.addSeries(policy.rawValue, x: exponents,
                              y: binIndices.map { Double(visible[$0]) / Double(totals[$0]) })
        }
        byRatio.referenceLines = [ReferenceLine(y: 0.5, label: "half visible")]
        byRatio.notes = result.warnings
        return [(ReplayPlot.visiblePerStep.fileName, perStep), (ReplayPlot.visibilityHistogram.fileName, histogram),
                (ReplayPlot.visibleByRatio.fileName, byRatio),
                (ReplayPlot.lowOverlapByPolicy.fileName, lowOverlapPlot(result))]
    }

    /// The headline low-|W0| overlap of every policy (and the null's) as bars beside its
    /// magnitude baseline, with the random baseline α as a line.
    static func lowOverlapPlot(_ result: ReplayResult) -> BarPlot {
        let configuration = result.configuration
        let index = result.headlineAlphaIndex ?? configuration.lowMagnitudeAlphas.count / 2
        let alpha = configuration.lowMagnitudeAlphas.isEmpty ? 0.5 : configuration.lowMagnitudeAlphas[index]
        var rows: [(String, PolicyMetrics)] = configuration.policies.map { ($0.rawValue, result.total($0)) }
        for policy in configuration.policies {
            if let null = result.totalNull(policy) { rows.append(("null: " + policy.rawValue, null)) }
        }
        var plot = BarPlot(title: "Visible changes among the \(compactDecimal(alpha)) smallest |W0| (\(configuration.format.name))",
                           xLabel: "policy", yLabel: "|visible ∩ bottom-α| / |visible|", categories: rows.map(\.0))
        plot.yRange = 0...1
        guard !configuration.lowMagnitudeAlphas.isEmpty else { return plot }
        plot.addSeries("observed", values: rows.map { $0.1.lowMagnitudeOverlap[index] })
        plot.addSeries("magnitude baseline", values: rows.map { $0.1.lowMagnitudeOverlapMagnitude[index] })
        plot.referenceLines = [ReferenceLine(y: alpha, label: "random (α)")]
        plot.notes = ["magnitude baseline: expected if visibility depended only on the binade of the stored base"]
        return plot
    }
}

import Foundation
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
      --null permute        add the permutation null model (master policy)
      --spectral            spectral metrics of W0 -> W_T per 2-D tensor and policy
                            (NSS, principal angles, mask overlaps; see docs/metrics.md)
      --k N, --rank N       top-k subspace size and mask reconstruction rank (default 64)
      --alpha A             principal / low-magnitude mask fraction, 0..1 (default 0.5)
      --json FILE           write the full results as JSON
      --csv FILE            write a row per tensor and policy as CSV
      --plots DIR           write SVG plots (visible fraction per step, visibility histogram)
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
        .value("--null"), .flag("--spectral"), .value("--k"), .value("--rank"), .value("--alpha"), .value("--json"), .value("--csv"), .value("--plots"),
        .flag("--allow-truncated"), .flag("--no-verify"), .value("--threads"), .flag("--quiet"),
        .flag("--force"), .value("--scale"), .flag("--strict"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let stream = try arguments.requirePositionals(1, names: "one update stream file")[0]
        let format = try FloatFormat.named(arguments.value("--dtype") ?? "bf16")
        var rounding = RoundingOptions()
        if let mode = arguments.value("--rounding") { rounding.mode = try RoundingMode.named(mode) }
        rounding.saturate = arguments.flag("--saturate")
        rounding.flushSubnormals = arguments.flag("--flush-subnormals")
        let seed = try arguments.value("--seed", default: UInt64(0)) { UInt64($0) }
        let policies = try ReplayPolicy.parseList(arguments.value("--policy") ?? "all")
        let every: Int? = arguments.value("--every") == nil ? nil
            : try arguments.value("--every", default: 1) { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        let threads = try arguments.value("--threads", default: ParallelChunks.threadCount) {
            Int($0).flatMap { $0 >= 1 ? $0 : nil }
        }
        var nullPermute = false
        if let null = arguments.value("--null") {
            guard null == "permute" else {
                throw PrecLabError.usage("--null takes 'permute' (got '\(null)')")
            }
            nullPermute = true
        }
        let k: Int = try arguments.value("--k", default: 64) { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        let rank: Int = try arguments.value("--rank", default: 64) { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        let alpha: Double = try arguments.value("--alpha", default: 0.5) { text -> Double? in
            guard let value = Double(text), value >= 0, value <= 1 else { return nil }  // as compare
            return value
        }
        let scale: Float = try arguments.value("--scale", default: 1) { text -> Float? in
            guard let value = Float(text), value.isFinite else { return nil }
            return value
        }
        let spectralOptions = SpectralOptions(k: k, rank: rank, alpha: alpha)
        let wantsSpectral = arguments.flag("--spectral")
        let quiet = arguments.flag("--quiet")
        let force = arguments.flag("--force")
        var inputs = [stream]
        if let base = arguments.value("--base") { inputs.append(base) }

        // Refuse bad destinations before spending time on the replay.
        let jsonPath = arguments.value("--json"), csvPath = arguments.value("--csv")
        for path in [jsonPath, csvPath].compactMap({ $0 }) {
            try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        }
        let plotsDirectory = arguments.value("--plots")
        if let plotsDirectory {
            for name in ReplayPlots.fileNames + ReplayStepReports.fileNames {
                try AtomicFileWriter.checkDestination(plotsDirectory + "/" + name, force: force, inputs: inputs)
            }
        }

        let configuration = ReplayConfiguration(format: format, rounding: rounding, seed: seed,
                                                policies: policies, nullPermute: nullPermute,
                                                threads: threads, scale: scale,
                                                stepViews: jsonPath != nil || plotsDirectory != nil)
        let options = StreamReplayOptions(verifyCRC: !arguments.flag("--no-verify"),
                                          allowTruncated: arguments.flag("--allow-truncated"),
                                          curveEvery: every, baseCheckpoint: arguments.value("--base"),
                                          strictFinal: arguments.flag("--strict"))
        let meter = ProgressMeter(label: "replay", enabled: !quiet)
        let (result, engine) = try StreamReplay.runKeepingState(
            path: stream, configuration: configuration, options: options
        ) { done, total in
            meter.update(done: done, total: total)
        }
        meter.finish()
        var spectral: ReplaySpectral? = nil
        if wantsSpectral {
            let spectralMeter = ProgressMeter(label: "replay --spectral", enabled: !quiet)
            spectral = try ReplaySpectral.compute(engine: engine, result: result, options: spectralOptions,
                                                  progress: spectralMeter)
            spectralMeter.finish()
        }

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
        if let jsonPath {
            var document = result.json(source: stream)
            if let spectral { document = spectral.merge(into: document) }
            try document.write(to: jsonPath, force: force, inputs: inputs)
        }
        if let csvPath {
            let (header, rows) = result.csvRows()
            var table = CSVTable(header: header)
            for row in rows { table.addRow(row.map { TableCell.text($0) }) }
            try table.write(to: csvPath, force: force, inputs: inputs)
        }
        if let plotsDirectory {
            let directory = try ReportDirectory(path: plotsDirectory, force: force, inputs: inputs)
            try directory.write(ReplayPlots.files(result) + ReplayStepReports.files(result))
        }
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
        if alphaIndex != nil { columns.append(.number("low-|W0| overlap", style: .fixed(decimals: 3))) }
        var table = TextTable(title: "totals over \(NumberFormat.count(result.params)) weights "
                                  + "(\(result.trueChanged) truly changed)", columns: columns)
        for policy in result.configuration.policies {
            let metrics = result.total(policy)
            var cells: [TableCell] = [.text(policy.rawValue), .integer(metrics.visibleChanged),
                                      .number(metrics.sparsity(params: result.params)), .integer(metrics.hidden),
                                      .number(metrics.relativeError), .integer(metrics.nonFiniteWeights)]
            if let alphaIndex { cells.append(.number(metrics.lowMagnitudeOverlap[alphaIndex])) }
            table.addRow(cells)
        }
        if let null = result.totalNullModel {
            var cells: [TableCell] = [.text("null (master, permuted)"), .integer(null.visibleChanged),
                                      .number(null.sparsity(params: result.params)), .empty, .empty, .empty]
            if let alphaIndex { cells.append(.number(null.lowMagnitudeOverlap[alphaIndex])) }
            table.addRow(cells)
        }
        let configuration = result.configuration
        table.addFootnote("dtype \(configuration.format.name), rounding \(configuration.rounding.mode.rawValue) (pure), "
                          + "seed \(configuration.seed), steps \(result.steps)"
                          + (result.finalVerified ? ", fp32 replay matches FINL bit for bit" : ""))
        if alphaIndex != nil {
            table.addFootnote("low-|W0| overlap: share of visible changes among the 50% smallest |W0| (random: 0.5)")
        }
        for warning in result.warnings { table.addFootnote("warning: \(warning)") }
        return table
    }
}

/// The SVG plots of `--plots DIR`.
enum ReplayPlots {
    static let fileNames = ["visible_per_step.svg", "visibility_histogram.svg", "visible_by_ratio.svg"]

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
        return [(fileNames[0], perStep), (fileNames[1], histogram), (fileNames[2], byRatio)]
    }
}

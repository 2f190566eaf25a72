import PrecLabFiles
import PrecLabFormats
import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// `preclab consistency --base BASE RUN...`: do independent runs from one base update
/// the same coordinates? Pairwise Jaccard of the update masks against the independent
/// Bernoulli baseline, consensus over runs and the row/column structure of updates.
enum ConsistencyCommand: Command {
    static let name = "consistency"
    static let summary = "cross-run Jaccard of update masks vs the Bernoulli baseline, consensus"
    static let help = """
    usage: preclab consistency --base BASE RUN RUN... [--dtype bf16] [--tensors REGEX] [--quiet]
                               [--json FILE] [--plots DIR [--heatmap TENSOR]] [--force]
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
      --quiet            no progress on stderr

    Exit status: 0 success, 1 bad data (unreadable checkpoint, nothing comparable),
    2 bad usage (fewer than two runs, --heatmap without --plots or naming no 2-D tensor).
    """
    static let options: [OptionSpec] = [
        .value("--base"), .value("--dtype"), .value("--tensors"), .value("--json"), .value("--plots"),
        .value("--heatmap"), .flag("--force"), .flag("--quiet"), .flag("--signed-zero-changes"),
    ]

    struct Row {
        let name: TensorName
        let shape: [Int]
        let params: Int
        let result: TensorConsistency
    }

    static func run(_ arguments: ParsedArguments) throws {
        guard let basePath = arguments.value("--base") else {
            throw PrecLabError.usage("preclab \(name): --base BASE is required (see 'preclab help \(name)')")
        }
        let runPaths = try arguments.requireSomePositionals(names: "two or more RUN checkpoints")
        guard runPaths.count >= 2 else {
            throw PrecLabError.usage("preclab \(name): needs at least two runs to compare, got \(runPaths.count)")
        }
        let format = try FloatFormat.named(arguments.value("--dtype") ?? "bf16")
        let zeroSign = TensorCodes.zeroSignBit(format: format, signedZeroChanges: arguments.flag("--signed-zero-changes"))
        let pattern = arguments.value("--tensors")
        let include = try tensorFilter(pattern, command: name)
        let force = arguments.flag("--force")
        let jsonPath = arguments.value("--json"), plotsPath = arguments.value("--plots")
        let heatmap = arguments.value("--heatmap")
        if heatmap != nil && plotsPath == nil {
            throw PrecLabError.usage("preclab \(name): --heatmap needs --plots DIR to write the SVG into")
        }

        let base = try Checkpoint.open(basePath)
        let runs = try runPaths.map { try Checkpoint.open($0) }
        var inputs = [basePath] + runPaths + base.shards.map(\.path)
        for run in runs { inputs += run.shards.map(\.path) + [run.indexPath].compactMap { $0 } }
        if let jsonPath { try AtomicFileWriter.checkDestination(jsonPath, force: force, inputs: inputs) }
        if let heatmap {
            guard let tensor = base.tensor(named: heatmap), tensor.shape.count == 2, include(heatmap) else {
                throw PrecLabError.usage("preclab \(name): --heatmap '\(heatmap)' is not a 2-D tensor of \(basePath)"
                    + (pattern != nil ? " selected by --tensors" : ""))
            }
        }

        // Plan: tensors of BASE present with the same shape and a float dtype in every run.
        var selected: [(CheckpointTensor, [CheckpointTensor])] = []
        var skipped: [(name: String, reason: String)] = []
        for tensor in base.tensors where include(tensor.name) {
            if let reason = TensorCodes.unsupportedReason(tensor.dtype) {
                skipped.append((tensor.name, reason))
                continue
            }
            var others: [CheckpointTensor] = []
            var problem: String? = nil
            for (index, run) in runs.enumerated() {
                guard let other = run.tensor(named: tensor.name) else {
                    problem = "missing in run \(index + 1) (\(runPaths[index]))"
                    break
                }
                if other.shape != tensor.shape {
                    problem = "shape \(CompareCommand.shapeText(other.shape)) in run \(index + 1) vs \(CompareCommand.shapeText(tensor.shape)) in BASE"
                    break
                }
                if let reason = TensorCodes.unsupportedReason(other.dtype) {
                    problem = "run \(index + 1): \(reason)"
                    break
                }
                others.append(other)
            }
            if let problem { skipped.append((tensor.name, problem)) } else { selected.append((tensor, others)) }
        }
        if selected.isEmpty {
            var message = "nothing to compare: no tensor of \(basePath)"
            message += pattern.map { " matching --tensors '\($0)'" } ?? ""
            message += " is present in every run"
            if !skipped.isEmpty {
                message += ": " + skipped.prefix(10).map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
            }
            throw PrecLabError.badData(message)
        }

        let meter = ProgressMeter(label: "preclab \(name)", work: selected.map { Double($0.0.info.elementCount * runs.count) },
                                  enabled: !arguments.flag("--quiet"))
        var rows: [Row] = []
        for (tensor, others) in selected {
            let baseCodes = try TensorCodes.load(base, tensor, as: format, threads: ParallelChunks.threadCount)
            var masks: [BitMask] = []
            for (index, other) in others.enumerated() {
                let codes = try TensorCodes.load(runs[index], other, as: format, threads: ParallelChunks.threadCount)
                masks.append(baseCodes.differingMask(codes, zeroSignBit: zeroSign, threads: ParallelChunks.threadCount))
            }
            let strata = baseCodes.strata(format: format, threads: ParallelChunks.threadCount)
            let shape = tensor.shape
            let (r, c) = shape.count == 2 ? (shape[0], shape[1]) : (1, tensor.info.elementCount)
            rows.append(Row(name: TensorName(tensor.name), shape: shape, params: tensor.info.elementCount,
                            result: TensorConsistency(masks: masks, rows: r, columns: c, strata: strata)))
            meter.finished(tensor.name, work: Double(tensor.info.elementCount * runs.count))
        }
        meter.finish()
        rows.sort { $0.name < $1.name }

        let report = Report(rows: rows, skipped: skipped, format: format, pattern: pattern, basePath: basePath,
                            runPaths: runPaths, signedZeroChanges: arguments.flag("--signed-zero-changes"))
        if let jsonPath { try report.json().write(to: jsonPath, force: force, inputs: inputs) }
        if let plotsPath {
            let directory = try ReportDirectory(path: plotsPath, force: force, inputs: inputs)
            var files = report.plots()
            if let heatmap, let row = rows.first(where: { $0.name.name == heatmap }) {
                let consensus = row.result.consensus
                var map = HeatMap(title: "Consensus of \(runPaths.count) runs: \(heatmap)", rows: consensus.rows,
                                  columns: consensus.columns, values: consensus.ratios)
                map.colorLabel = "fraction of runs that updated the element"
                map.colorRange = .fixed(lower: 0, upper: 1)
                map.notes = ["dtype \(format.name); unanimous \(NumberFormat.percent(consensus.unanimousFraction, decimals: 2)) of elements"]
                files.append(("consensus_heatmap.svg", map))
            }
            try directory.write(files)
        }
        Console.out(report.text(width: TextTable.terminalColumns()))
    }

    struct Report {
        let rows: [Row]
        let skipped: [(name: String, reason: String)]
        let format: FloatFormat
        let pattern: String?
        let basePath: String
        let runPaths: [String]
        var signedZeroChanges = false

        static func optional(_ value: Double?) -> JSONValue { value.map { .finite($0) } ?? .null }

        func summary(_ selected: [Row]) -> WeightedSummary {
            var summary = WeightedSummary()
            for row in selected {
                let r = row.result
                let changed = Int((r.densities.reduce(0, +) / Double(r.densities.count) * Double(row.params)).rounded())
                let is2D = row.shape.count == 2
                summary.add(parameters: row.params, changed: changed, metrics: [
                    ("density", r.densities.reduce(0, +) / Double(r.densities.count)),
                    ("jaccard", r.meanJaccard), ("baseline", r.meanBaseline),
                    ("jaccard_magnitude", r.meanJaccardMagnitude),
                    ("unanimous", r.consensus.unanimousFraction),
                    ("row_cv", is2D ? r.rowRatios.coefficientOfVariation : nil),
                    ("column_cv", is2D ? r.columnRatios.coefficientOfVariation : nil),
                ])
            }
            return summary
        }

        var types: [MatrixType] { MatrixType.allCases.filter { type in rows.contains { $0.name.type == type } } }

        func summaryJSON(_ s: WeightedSummary) -> JSONObject {
            var o = JSONObject([("tensors", .int(s.tensors)), ("params", .int(s.parameters))])
            for key in ["density", "jaccard", "baseline", "jaccard_magnitude", "unanimous", "row_cv", "column_cv"] {
                o[key] = Report.optional(s.mean(key))
            }
            if let j = s.mean("jaccard"), let b = s.mean("baseline"), b > 0 { o["jaccard_over_baseline"] = .finite(j / b) }
            if let j = s.mean("jaccard"), let m = s.mean("jaccard_magnitude"), m > 0 {
                o["jaccard_over_magnitude"] = .finite(j / m)
            }
            return o
        }

        func ratioJSON(_ r: RatioSummary) -> JSONObject {
            JSONObject([("mean", .finite(r.mean)), ("min", .finite(r.minimum)), ("max", .finite(r.maximum)),
                        ("std", .finite(r.standardDeviation)), ("cv", Report.optional(r.coefficientOfVariation))])
        }

        func json() -> JSONValue {
            var root = JSONObject()
            root["base"] = .string(basePath)
            root["runs"] = .array(runPaths.map { .string($0) })
            root["options"] = .object(JSONObject([("dtype", .string(format.name)),
                                                  ("tensors", pattern.map { .string($0) } ?? .null),
                                                  ("signed_zero_changes", .bool(signedZeroChanges))]))
            root["tensors"] = .array(rows.map { row in
                let r = row.result
                var o = JSONObject()
                o["name"] = .string(row.name.name)
                o["layer"] = row.name.layer.map { .int($0) } ?? .null
                o["type"] = .string(row.name.type.rawValue)
                o["shape"] = .array(row.shape.map { .int($0) })
                o["params"] = .int(row.params)
                o["densities"] = .array(r.densities.map { .finite($0) })
                o["mean_jaccard"] = Report.optional(r.meanJaccard)
                o["mean_baseline"] = Report.optional(r.meanBaseline)
                o["mean_jaccard_magnitude"] = Report.optional(r.meanJaccardMagnitude)
                o["jaccard"] = .array(r.jaccard.map { .array($0.map(Report.optional)) })
                o["baseline"] = .array(r.baseline.map { .array($0.map(Report.optional)) })
                o["jaccard_magnitude"] = .array(r.jaccardMagnitude.map { .array($0.map(Report.optional)) })
                o["consensus_histogram"] = .array(r.consensus.histogram.map { .int($0) })
                o["unanimous_fraction"] = .finite(r.consensus.unanimousFraction)
                if row.shape.count == 2 {
                    o["row_ratio"] = .object(ratioJSON(r.rowRatios))
                    o["column_ratio"] = .object(ratioJSON(r.columnRatios))
                }
                return .object(o)
            })
            var byType = JSONObject()
            for type in types { byType[type.rawValue] = .object(summaryJSON(summary(rows.filter { $0.name.type == type }))) }
            root["by_type"] = .object(byType)
            root["total"] = .object(summaryJSON(summary(rows)))
            root["skipped"] = .array(skipped.map {
                .object(JSONObject([("name", .string($0.name)), ("reason", .string($0.reason))]))
            })
            return .object(root)
        }

        func text(width: Int) -> String {
            func cell(_ value: Double?) -> TableCell { value.map { .number($0) } ?? .empty }
            var perTensor = TextTable(title: "preclab consistency: \(runPaths.count) runs from \(basePath) (\(format.name) codes)", columns: [
                .text("tensor"), .text("shape"), .number("params", style: .compactCount),
                .number("updated", style: .percent(decimals: 1)), .number("Jaccard", style: .fixed(decimals: 3)),
                .number("random", style: .fixed(decimals: 3)), .number("magnitude", style: .fixed(decimals: 3)),
                .number("all runs", style: .percent(decimals: 1)),
                .number("row cv", style: .fixed(decimals: 3)), .number("col cv", style: .fixed(decimals: 3)),
            ])
            for row in rows {
                let r = row.result
                let is2D = row.shape.count == 2
                perTensor.addRow([.text(CompareCommand.displayName(row.name.name)),
                                  .text(row.shape.map(String.init).joined(separator: "x")), .integer(row.params),
                                  .number(r.densities.reduce(0, +) / Double(r.densities.count)), cell(r.meanJaccard),
                                  cell(r.meanBaseline), cell(r.meanJaccardMagnitude), .number(r.consensus.unanimousFraction),
                                  cell(is2D ? r.rowRatios.coefficientOfVariation : nil),
                                  cell(is2D ? r.columnRatios.coefficientOfVariation : nil)])
            }
            var byType = TextTable(title: "by matrix type (parameter-weighted means)", columns: [
                .text("type"), .number("tensors", style: .count), .number("params", style: .compactCount),
                .number("updated", style: .percent(decimals: 1)), .number("Jaccard", style: .fixed(decimals: 3)),
                .number("random", style: .fixed(decimals: 3)), .number("magnitude", style: .fixed(decimals: 3)),
                .number("all runs", style: .percent(decimals: 1)),
                .number("row cv", style: .fixed(decimals: 3)), .number("col cv", style: .fixed(decimals: 3)),
            ])
            func summaryRow(_ label: String, _ s: WeightedSummary) -> [TableCell] {
                [.text(label), .integer(s.tensors), .integer(s.parameters), cell(s.mean("density")), cell(s.mean("jaccard")),
                 cell(s.mean("baseline")), cell(s.mean("jaccard_magnitude")), cell(s.mean("unanimous")), cell(s.mean("row_cv")), cell(s.mean("column_cv"))]
            }
            for type in types { byType.addRow(summaryRow(type.rawValue, summary(rows.filter { $0.name.type == type }))) }
            byType.addTotalRow(summaryRow("total", summary(rows)))
            byType.addFootnote("magnitude: the Jaccard of independent masks with the runs' densities in every binade of the stored base (Jaccard ≈ magnitude: precision explains the agreement; see docs/metrics.md)")
            byType.addFootnote("Jaccard: mean over pairs of runs; random: p q / (p + q - p q) for independent masks of the same densities; all runs: elements every run updated; cv: coefficient of variation of the consensus row/column means")
            byType.addFootnote("tensor names are shown without a leading 'model.' and a trailing '.weight'")
            for skip in skipped.prefix(10) { byType.addFootnote("skipped \(skip.name): \(skip.reason)") }
            if skipped.count > 10 { byType.addFootnote("skipped: \(skipped.count - 10) more (see --json)") }
            return perTensor.render(width: width) + "\n" + byType.render(width: width)
        }

        func plots() -> [(name: String, file: any ReportFile)] {
            let present = types
            var bars = BarPlot(title: "Cross-run Jaccard of update masks (\(runPaths.count) runs)", xLabel: "matrix type",
                               yLabel: "mean pairwise Jaccard", categories: present.map(\.rawValue))
            let summaries = present.map { type in summary(rows.filter { $0.name.type == type }) }
            bars.addSeries("runs", values: summaries.map { $0.mean("jaccard") ?? .nan })
            bars.addSeries("independent baseline", values: summaries.map { $0.mean("baseline") ?? .nan })
            bars.addSeries("magnitude baseline", values: summaries.map { $0.mean("jaccard_magnitude") ?? .nan })
            bars.notes = ["dtype \(format.name); parameter-weighted means over tensors"]
            return [("jaccard_by_type.svg", bars)]
        }
    }
}

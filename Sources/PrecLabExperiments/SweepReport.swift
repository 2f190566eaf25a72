import Foundation
import PrecLabReplay
import PrecLabReports
import PrecLabSupport

/// The files of a sweep report, named once.
public enum SweepFile: String, CaseIterable, Sendable {
    case summaryCSV = "summary.csv"
    case readme = "README.md"
    case sparsityPlot = "sparsity.svg"
    case curveCSV = "curve.csv"
    case curvePlot = "visible_vs_step.svg"
    case magnitudeCSV = "magnitude.csv"
    case magnitudePlot = "visible_by_magnitude.svg"
    case spectralCSV = "spectral.csv"
    case driftPlot = "spectral_drift.svg"
    case anglesPlot = "spectral_angles.svg"
    case overlapsPlot = "spectral_overlaps.svg"

    /// The files a run of `experiment` writes, in the order they are listed.
    public static func written(for experiment: Experiment) -> [SweepFile] {
        var files: [SweepFile] = [.summaryCSV, .readme, .sparsityPlot]
        for output in experiment.outputs {
            switch output {
            case .sparsity: break
            case .curve: files += [.curveCSV, .curvePlot]
            case .magnitude: files += [.magnitudeCSV, .magnitudePlot]
            case .spectral: files += [.spectralCSV, .driftPlot, .anglesPlot, .overlapsPlot]
            }
        }
        return files
    }
}

/// The files of a sweep: summary.csv, one CSV and plots per requested output, and a
/// README.md with the headline table. Same results, same bytes (no dates, no timings).
public struct SweepReport {
    let experiment: Experiment
    let results: [SweepPointResult]
    /// The experiment file and output directory as given on the command line (echoed in the README).
    let source: String
    let outputDirectory: String

    public init(experiment: Experiment, results: [SweepPointResult], source: String, outputDirectory: String) {
        self.experiment = experiment
        self.results = results
        self.source = source
        self.outputDirectory = outputDirectory
    }

    /// The file names a run will write, known before it starts (to refuse overwrites early).
    public static func fileNames(for experiment: Experiment) -> [String] {
        SweepFile.written(for: experiment).map(\.rawValue)
    }

    /// Every file of the report with its contents, named by `SweepFile` (the same list
    /// `fileNames(for:)` gives before the run).
    public func files() -> [(name: String, file: any ReportFile)] {
        SweepFile.written(for: experiment).map { ($0.rawValue, content($0)) }
    }

    private func content(_ file: SweepFile) -> any ReportFile {
        switch file {
        case .summaryCSV: return summaryCSV()
        case .readme: return readme()
        case .sparsityPlot: return sparsityPlot()
        case .curveCSV: return curveCSV()
        case .curvePlot: return curvePlot()
        case .magnitudeCSV: return magnitudeCSV()
        case .magnitudePlot: return magnitudePlot()
        case .spectralCSV: return spectralCSV()
        case .driftPlot: return driftPlot()
        case .anglesPlot: return anglesPlot()
        case .overlapsPlot: return overlapsPlot()
        }
    }

    // MARK: - CSV

    /// Columns every CSV starts with: the grid point and its stream and replay settings.
    static let pointColumns = ["point", "profile", "lr", "steps", "seed", "dtype"]

    static let summaryColumns = pointColumns + [
        "policy", "params", "true_changed", "visible_changed", "sparsity", "true_sparsity", "hidden",
        "relative_error", "low_overlap_0.5",
    ]

    private func pointCells(_ point: Experiment.GridPoint) -> [TableCell] {
        [.integer(point.index), .text(point.stream.profile.rawValue), .text(compactDecimal(point.stream.learningRate)),
         .integer(point.stream.steps), .text(String(point.stream.seed)), .text(point.format.name)]
    }

    /// A row per grid point and policy (totals over the tensors), plus a row "null"
    /// for the permuted null model when the experiment runs it.
    func summaryCSV() -> CSVTable {
        var table = CSVTable(header: SweepReport.summaryColumns)
        for result in results {
            let replay = result.replay
            let alpha = replay.headlineAlphaIndex
            for policy in replay.configuration.policies {
                let metrics = replay.total(policy)
                table.addRow(pointCells(result.point) + [
                    .text(policy.rawValue), .integer(replay.params), .integer(replay.trueChanged),
                    .integer(metrics.visibleChanged), number(metrics.sparsity(params: replay.params)),
                    number(1 - Double(replay.trueChanged) / Double(max(replay.params, 1))),
                    .integer(metrics.hidden), number(metrics.relativeError),
                    alpha.map { number(metrics.lowMagnitudeOverlap[$0]) } ?? .empty,
                ])
            }
            if let null = replay.totalNullModel {
                table.addRow(pointCells(result.point) + [
                    .text("null"), .integer(replay.params), .integer(replay.trueChanged),
                    .integer(null.visibleChanged), number(null.sparsity(params: replay.params)),
                    number(1 - Double(replay.trueChanged) / Double(max(replay.params, 1))),
                    .empty, .empty, alpha.map { number(null.lowMagnitudeOverlap[$0]) } ?? .empty,
                ])
            }
        }
        return table
    }

    /// A row per grid point, curve step and policy ("fp32" is the truth).
    func curveCSV() -> CSVTable {
        var table = CSVTable(header: SweepReport.pointColumns + ["step", "policy", "changed", "fraction_changed"])
        for result in results {
            let params = Double(max(result.replay.params, 1))
            for point in result.replay.curve {
                for policy in result.replay.configuration.policies {
                    let changed = policy == .fp32 ? point.totalTrueChanged : point.totalVisible(policy)
                    table.addRow(pointCells(result.point) + [.text(String(point.step)), .text(policy.rawValue),
                                                             .integer(changed), number(Double(changed) / params)])
                }
            }
        }
        return table
    }

    /// A row per grid point, |W0| octave (with weights) and policy, plus "null".
    func magnitudeCSV() -> CSVTable {
        var table = CSVTable(header: SweepReport.pointColumns + ["magnitude_bin", "weights", "policy", "visible",
                                                                 "fraction_visible"])
        let labels = MagnitudeBins.labels
        for result in results {
            let weights = result.replay.totalMagnitudeHistogram
            var series: [(String, [Int])] = result.replay.configuration.policies.filter { $0 != .fp32 }.map {
                ($0.rawValue, result.replay.total($0).visibleByMagnitude)
            }
            if let null = result.nullByMagnitude { series.append(("null", null)) }
            for bin in weights.indices where weights[bin] > 0 {
                for (name, visible) in series {
                    table.addRow(pointCells(result.point) + [.text(labels[bin]), .integer(weights[bin]), .text(name),
                                                             .integer(visible[bin]),
                                                             number(Double(visible[bin]) / Double(weights[bin]))])
                }
            }
        }
        return table
    }

    /// A row per grid point and tensor, then a pooled "TOTAL" row per point.
    func spectralCSV() -> CSVTable {
        var table = CSVTable(header: SweepReport.pointColumns + [
            "tensor", "shape", "k", "rank", "alpha", "changed", "nss", "angle_u_max_deg", "angle_v_max_deg",
            "angle_u_mean_deg", "angle_v_mean_deg", "principal_overlap", "low_overlap", "control_overlap",
            "energy_top_k", "delta_frobenius", "delta_spectral",
            "principal_overlap_magnitude", "low_overlap_magnitude", "control_overlap_magnitude", "control_overlap_random",
        ])
        for result in results {
            guard let tensors = result.spectral else { continue }
            for tensor in tensors {
                let c = tensor.comparison
                table.addRow(pointCells(result.point) + [
                    .text(tensor.name), .text("\(tensor.rows)x\(tensor.columns)"), .integer(c.k), .integer(c.rank),
                    number(c.alpha), .integer(c.changed), optional(c.nss), optional(c.angleUMaxDegrees),
                    optional(c.angleVMaxDegrees), optional(c.angleUMeanDegrees), optional(c.angleVMeanDegrees),
                    optional(c.principalOverlap), optional(c.lowOverlap), optional(c.controlOverlap),
                    optional(c.energyTopK), number(c.deltaFrobenius), number(c.deltaSpectral),
                    optional(c.principalOverlapMagnitude), optional(c.lowOverlapMagnitude),
                    optional(c.controlOverlapMagnitude), optional(c.controlOverlapRandom),
                ])
            }
            let pooled = PooledSpectral(tensors)
            table.addRow(pointCells(result.point) + [
                .text("TOTAL"), .empty, .empty, .empty, .empty, .integer(pooled.changed), optional(pooled.nss),
                number(pooled.angleUMax), number(pooled.angleVMax), .empty, .empty,
                optional(pooled.principalOverlap), optional(pooled.lowOverlap), .empty, optional(pooled.energyTopK),
                .empty, .empty, optional(pooled.principalOverlapMagnitude), optional(pooled.lowOverlapMagnitude),
                .empty, .empty,
            ])
        }
        return table
    }

    private func number(_ value: Double) -> TableCell { value.isNaN ? .empty : .number(value) }
    private func optional(_ value: Double?) -> TableCell { value.map(number) ?? .empty }

    // MARK: - Plots

    /// The grid axes with more than one value.
    private var varyingAxes: [Experiment.Axis] { experiment.grid.filter { $0.values.count > 1 }.map(\.axis) }

    /// The x label of bar plots: the varying axes.
    private var categoryLabel: String {
        varyingAxes.isEmpty ? "experiment" : varyingAxes.map(\.rawValue).joined(separator: ", ")
    }

    /// The label of a point without `axis` ("" when nothing else varies).
    private func label(_ point: Experiment.GridPoint, without axis: Experiment.Axis?) -> String {
        point.values.filter { $0.axis != axis && varyingAxes.contains($0.axis) }
            .map { "\($0.axis.rawValue)=\($0.value.text)" }.joined(separator: ", ")
    }

    private func shortLabel(_ point: Experiment.GridPoint) -> String {
        let text = label(point, without: nil)
        return text.isEmpty ? experiment.name : point.values.filter { varyingAxes.contains($0.axis) }
            .map(\.value.text).joined(separator: " ")
    }

    /// Names of the sparsity series: each stored policy, the truth, and the null model.
    private func sparsitySeries(_ result: SweepPointResult) -> [(name: String, value: Double)] {
        let replay = result.replay
        var series: [(String, Double)] = replay.configuration.policies.map { policy in
            (policy == .fp32 ? "fp32 truth" : policy.rawValue, replay.total(policy).sparsity(params: replay.params))
        }
        if let null = replay.totalNullModel { series.append(("null (permuted)", null.sparsity(params: replay.params))) }
        return series
    }

    func sparsityPlot() -> any ReportFile {
        let dtypes = Set(results.map { $0.point.format.name })
        let what = dtypes.count == 1 ? "\(dtypes.first!) sparsity" : "sparsity"
        let title = "\(experiment.name): \(what) per storage policy"
        if let axis = experiment.grid.first?.axis, axis.isNumeric, experiment.grid.first!.values.count > 1 {
            var plot = LinePlot(title: title, xLabel: axis == .lr ? "learning rate" : axis.rawValue,
                                yLabel: "fraction of weights with unchanged stored bits", style: .linesAndMarkers)
            if axis == .lr { plot.xScale = .log10 }
            plot.yRange = 0...1
            var groups: [String: [SweepPointResult]] = [:]
            var order: [String] = []
            for result in results {
                let key = label(result.point, without: axis)
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(result)
            }
            for key in order {
                let members = groups[key]!
                let x = members.map { $0.point.value(axis)?.number ?? 0 }
                let names = sparsitySeries(members[0]).map(\.name)
                for (index, name) in names.enumerated() {
                    plot.addSeries(key.isEmpty ? name : "\(name) · \(key)", x: x,
                                   y: members.map { sparsitySeries($0)[index].value })
                }
            }
            return plot
        }
        var plot = BarPlot(title: title, xLabel: categoryLabel, yLabel: "fraction of weights with unchanged stored bits",
                           categories: results.map { shortLabel($0.point) })
        plot.yRange = 0...1
        let names = results.first.map { sparsitySeries($0).map(\.name) } ?? []
        for (index, name) in names.enumerated() {
            plot.addSeries(name, values: results.map { sparsitySeries($0)[index].value })
        }
        return plot
    }

    func curvePlot() -> any ReportFile {
        var plot = LinePlot(title: "\(experiment.name): weights visibly changed against step",
                            xLabel: "step", yLabel: "fraction of weights changed", style: .linesAndMarkers)
        for result in results {
            let key = label(result.point, without: nil)
            let params = Double(max(result.replay.params, 1))
            let steps = result.replay.curve.map { Double($0.step) }
            for policy in result.replay.configuration.policies {
                let name = policy == .fp32 ? "fp32 truth" : policy.rawValue
                plot.addSeries(key.isEmpty ? name : "\(name) · \(key)", x: steps, y: result.replay.curve.map {
                    Double(policy == .fp32 ? $0.totalTrueChanged : $0.totalVisible(policy)) / params
                })
            }
        }
        return plot
    }

    func magnitudePlot() -> any ReportFile {
        var plot = LinePlot(title: "\(experiment.name): share of weights visibly changed by |W0| octave",
                            xLabel: "log2 |W0| (octave start)", yLabel: "fraction visible", style: .linesAndMarkers)
        plot.yRange = 0...1
        for result in results {
            let key = label(result.point, without: nil)
            let weights = result.replay.totalMagnitudeHistogram
            let bins = (2..<(weights.count - 1)).filter { weights[$0] > 0 }
            let x = bins.map { Double(MagnitudeBins.exponent(ofBin: $0)) }
            // With several points, only master against the null model keeps the plot readable
            // (every policy is in magnitude.csv).
            let stored = result.replay.configuration.policies.filter { $0 != .fp32 }
            let shown = results.count > 1 && stored.contains(.master) ? [.master] : stored
            var series: [(String, [Int])] = shown.map { ($0.rawValue, result.replay.total($0).visibleByMagnitude) }
            if let null = result.nullByMagnitude { series.append(("null (permuted)", null)) }
            for (name, visible) in series {
                plot.addSeries(key.isEmpty ? name : "\(name) · \(key)", x: x,
                               y: bins.map { Double(visible[$0]) / Double(weights[$0]) })
            }
        }
        return plot
    }

    private var spectralResults: [(SweepPointResult, PooledSpectral)] {
        results.compactMap { result in result.spectral.map { (result, PooledSpectral($0)) } }
    }

    func driftPlot() -> any ReportFile {
        let rows = spectralResults
        var plot = BarPlot(title: "\(experiment.name): normalised spectral shift NSS of W0 -> W_T (fp32 truth)",
                           xLabel: categoryLabel, yLabel: "NSS", categories: rows.map { shortLabel($0.0.point) })
        plot.yScale = .log10
        plot.addSeries("NSS (mean over matrices)", values: rows.map { $0.1.nss ?? .nan })
        return plot
    }

    func anglesPlot() -> any ReportFile {
        let rows = spectralResults
        let k = experiment.spectral?.k ?? 0
        var plot = BarPlot(title: "\(experiment.name): largest principal angle of the top-\(k) singular subspaces",
                           xLabel: categoryLabel, yLabel: "degrees", categories: rows.map { shortLabel($0.0.point) })
        plot.addSeries("left (U)", values: rows.map(\.1.angleUMax))
        plot.addSeries("right (V)", values: rows.map(\.1.angleVMax))
        return plot
    }

    func overlapsPlot() -> any ReportFile {
        let rows = spectralResults
        let alpha = experiment.spectral?.alpha ?? 0.5
        var plot = BarPlot(title: "\(experiment.name): where the visible changes are (overlap with masks of α = \(compactDecimal(alpha)))",
                           xLabel: categoryLabel, yLabel: "|mask ∩ M| / |M|", categories: rows.map { shortLabel($0.0.point) })
        plot.yRange = 0...1
        plot.addSeries("principal mask", values: rows.map { $0.1.principalOverlap ?? .nan })
        plot.addSeries("principal, magnitude baseline", values: rows.map { $0.1.principalOverlapMagnitude ?? .nan })
        plot.addSeries("low-|W0| mask", values: rows.map { $0.1.lowOverlap ?? .nan })
        plot.addSeries("low-|W0|, magnitude baseline", values: rows.map { $0.1.lowOverlapMagnitude ?? .nan })
        if alpha == 0.5, rows.contains(where: { $0.0.replay.totalNullModel != nil }) {
            plot.addSeries("low-|W0| mask, null (permuted)", values: rows.map { row in
                guard let null = row.0.replay.totalNullModel, let index = row.0.replay.headlineAlphaIndex else { return .nan }
                return null.lowMagnitudeOverlap[index]
            })
        }
        plot.referenceLines = [ReferenceLine(y: alpha, label: "random (α)")]
        return plot
    }

    // MARK: - README

    func readme() -> String {
        var lines: [String] = []
        lines.append("# Experiment `\(experiment.name)`")
        lines.append("")
        lines.append(experiment.question)
        lines.append("")
        let s = experiment.stream
        lines.append("Generated by `preclab sweep \(source) --out \(outputDirectory)` (preclab \(precLabVersion)); rerun with `make sweep-\(experiment.name)`.")
        lines.append("")
        lines.append("- stream (`preclab synth`): shapes \(s.shapeText), \(s.steps) steps, lr \(compactDecimal(s.learningRate)), profile \(s.profile.rawValue), seed \(s.seed)")
        lines.append("- grid: " + experiment.grid.map { "\($0.axis.rawValue) = " + $0.values.map(\.text).joined(separator: ", ") }
            .joined(separator: "; ") + " (\(results.count) points)")
        let r = experiment.replay
        lines.append("- replay: dtype \(r.format.name), policies \(r.policies.map(\.rawValue).joined(separator: ", "))"
                     + (r.nullPermute ? ", permuted null model" : "") + ", seed \(r.seed)")
        if let spectral = experiment.spectral, experiment.outputs.contains(.spectral) {
            lines.append("- spectral (fp32 truth W0 -> W_T, float64; M = entries whose stored codes changed): k \(spectral.k), rank \(spectral.rank), α \(compactDecimal(spectral.alpha))")
        }
        lines.append("")
        lines.append("## Headline numbers")
        lines.append("")
        lines.append("Sparsity: % of weights whose stored bits did not change after all steps (the fp32 column is the truth: % whose fp32 value did not change).")
        lines.append("")
        lines += headlineTable()
        lines.append("")
        lines.append("## Files")
        lines.append("")
        lines.append("- [summary.csv](summary.csv): a row per grid point and policy (totals over the matrices)")
        lines.append("- ![sparsity](sparsity.svg)")
        for output in experiment.outputs {
            switch output {
            case .sparsity: break
            case .curve:
                lines.append("- [curve.csv](curve.csv): visible changes every \(r.curveEvery.map(String.init) ?? "few") steps")
                lines.append("- ![visible against step](visible_vs_step.svg)")
            case .magnitude:
                lines.append("- [magnitude.csv](magnitude.csv): fraction visible per |W0| octave")
                lines.append("- ![visible by magnitude](visible_by_magnitude.svg)")
            case .spectral:
                lines.append("- [spectral.csv](spectral.csv): spectral metrics per matrix, and pooled (TOTAL)")
                lines.append("- ![NSS](spectral_drift.svg)")
                lines.append("- ![principal angles](spectral_angles.svg)")
                lines.append("- ![mask overlaps](spectral_overlaps.svg)")
            }
        }
        lines.append("")
        return lines.joined(separator: "\n")
    }

    /// Markdown rows: the varying axes, sparsity per policy (and null), then pooled spectral metrics.
    func headlineTable() -> [String] {
        let axes = varyingAxes.isEmpty ? [experiment.grid[0].axis] : varyingAxes
        let policies = experiment.replay.policies
        let hasNull = experiment.replay.nullPermute
        let hasSpectral = experiment.outputs.contains(.spectral)
        var header = axes.map(\.rawValue) + policies.map { $0 == .fp32 ? "fp32 (truth)" : $0.rawValue }
        if hasNull { header.append("null (permuted)") }
        if hasSpectral {
            header += ["NSS", "max angle (°)", "principal overlap", "principal magnitude baseline", "low-|W0| overlap",
                       "low-|W0| magnitude baseline", "null low-|W0| overlap", "energy top-k"]
        }
        // A "|" inside a cell would end it: escape it.
        func row(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        var lines = [row(header),
                     "|" + axes.map { _ in " :--- |" }.joined() + header.dropFirst(axes.count).map { _ in " ---: |" }.joined()]
        for result in results {
            let replay = result.replay
            var cells = axes.map { result.point.value($0)?.text ?? "" }
            cells += policies.map { NumberFormat.percent(replay.total($0).sparsity(params: replay.params), decimals: 1) }
            if hasNull { cells.append(replay.totalNullModel.map { NumberFormat.percent($0.sparsity(params: replay.params), decimals: 1) } ?? "") }
            if hasSpectral, let tensors = result.spectral {
                let pooled = PooledSpectral(tensors)
                let nullLow = replay.totalNullModel.flatMap { null in
                    replay.headlineAlphaIndex.map { null.lowMagnitudeOverlap[$0] }
                }
                cells += [pooled.nss.map { NumberFormat.scientific($0, digits: 2) } ?? "",
                          NumberFormat.fixed(max(pooled.angleUMax, pooled.angleVMax), decimals: 2),
                          pooled.principalOverlap.map { NumberFormat.fixed($0, decimals: 3) } ?? "",
                          pooled.principalOverlapMagnitude.map { NumberFormat.fixed($0, decimals: 3) } ?? "",
                          pooled.lowOverlap.map { NumberFormat.fixed($0, decimals: 3) } ?? "",
                          pooled.lowOverlapMagnitude.map { NumberFormat.fixed($0, decimals: 3) } ?? "",
                          nullLow.map { $0.isNaN ? "" : NumberFormat.fixed($0, decimals: 3) } ?? "",
                          pooled.energyTopK.map { NumberFormat.fixed($0, decimals: 3) } ?? ""]
            }
            lines.append(row(cells))
        }
        return lines
    }

    /// The headline table for the terminal.
    public func terminalTable() -> TextTable {
        let axes = varyingAxes.isEmpty ? [experiment.grid[0].axis] : varyingAxes
        let policies = experiment.replay.policies
        var columns: [TextTable.Column] = axes.map { .text($0.rawValue) }
        columns += policies.map { .number($0.rawValue, style: .percent(decimals: 1)) }
        if experiment.replay.nullPermute { columns.append(.number("null", style: .percent(decimals: 1))) }
        var table = TextTable(title: "\(experiment.name): sparsity (% of weights whose stored bits are unchanged)",
                              columns: columns)
        for result in results {
            let replay = result.replay
            var cells: [TableCell] = axes.map { .text(result.point.value($0)?.text ?? "") }
            cells += policies.map { .number(replay.total($0).sparsity(params: replay.params)) }
            if experiment.replay.nullPermute {
                cells.append(replay.totalNullModel.map { .number($0.sparsity(params: replay.params)) } ?? .empty)
            }
            table.addRow(cells)
        }
        return table
    }
}

/// Spectral metrics pooled over the matrices of a grid point: NSS averaged by
/// parameter count, the largest angle of any matrix, overlaps pooled over the
/// matrices' update masks (Σ|mask ∩ M| / Σ|M|), energy pooled by ||ΔW||_F².
struct PooledSpectral {
    var changed = 0
    var nss: Double?
    var angleUMax = 0.0
    var angleVMax = 0.0
    var principalOverlap: Double?
    var lowOverlap: Double?
    /// The magnitude-stratified baselines, pooled the same way (expected hits / Σ|M|).
    var principalOverlapMagnitude: Double?
    var lowOverlapMagnitude: Double?
    var energyTopK: Double?

    init(_ tensors: [TensorSpectralResult]) {
        var params = 0.0, nssSum = 0.0, nssCount = 0
        var principalHits = 0.0, lowHits = 0.0, principalExpected = 0.0, lowExpected = 0.0
        var energy = 0.0, energyWeight = 0.0
        for tensor in tensors {
            let c = tensor.comparison
            let size = Double(tensor.rows * tensor.columns)
            if let value = c.nss { nssSum += value * size; params += size; nssCount += 1 }
            if let value = c.angleUMaxDegrees { angleUMax = max(angleUMax, value) }
            if let value = c.angleVMaxDegrees { angleVMax = max(angleVMax, value) }
            changed += c.changed
            principalHits += (c.principalOverlap ?? 0) * Double(c.changed)
            lowHits += (c.lowOverlap ?? 0) * Double(c.changed)
            principalExpected += (c.principalOverlapMagnitude ?? 0) * Double(c.changed)
            lowExpected += (c.lowOverlapMagnitude ?? 0) * Double(c.changed)
            if let value = c.energyTopK {
                let weight = c.deltaFrobenius * c.deltaFrobenius
                energy += value * weight
                energyWeight += weight
            }
        }
        if nssCount > 0 { nss = nssSum / params }
        if changed > 0 {
            principalOverlap = principalHits / Double(changed)
            lowOverlap = lowHits / Double(changed)
            principalOverlapMagnitude = principalExpected / Double(changed)
            lowOverlapMagnitude = lowExpected / Double(changed)
        }
        if energyWeight > 0 { energyTopK = energy / energyWeight }
    }
}

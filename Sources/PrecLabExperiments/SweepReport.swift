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

    /// Columns every CSV starts with: the grid point and its stream (knobs resolved)
    /// and replay settings.
    static let pointColumns = ["point", "profile", "placement", "snr", "noise_rms", "rotation", "row_spread",
                               "col_spread", "base_tail", "k", "lr", "steps", "seed", "dtype"]

    static let summaryColumns = pointColumns + [
        "policy", "params", "true_changed", "visible_changed", "sparsity", "true_sparsity", "hidden",
        "relative_error", "low_overlap_0.5",
    ]

    private func pointCells(_ point: Experiment.GridPoint) -> [TableCell] {
        let s = point.stream, g = s.gradient
        let decimal: (Double) -> TableCell = { .text(compactDecimal($0)) }
        return [.integer(point.index), .text(s.profile?.rawValue ?? "none"), .text(g.placement.rawValue),
                decimal(g.snr), decimal(g.noiseRMS), decimal(g.rotation), decimal(g.rowSpread),
                decimal(g.columnSpread), decimal(s.spectrum.tail), .integer(s.k),
                decimal(s.learningRate), .integer(s.steps), .text(String(s.seed)), .text(point.format.name)]
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

    static let spectralColumns = [
        "tensor", "shape", "k", "rank", "alpha", "changed", "nss", "angle_u_max_deg", "angle_v_max_deg",
        "angle_u_mean_deg", "angle_v_mean_deg", "angle_u_max_deg_max", "angle_v_max_deg_max",
        "principal_overlap", "principal_overlap_random", "principal_overlap_magnitude",
        "low_overlap", "low_overlap_random", "low_overlap_magnitude",
        "control_overlap", "control_overlap_random", "control_overlap_magnitude",
        "energy_top_k", "delta_frobenius", "delta_spectral",
    ]

    /// A row per grid point and tensor, then a "TOTAL" row per point: parameter-weighted
    /// means over the matrices, with the largest angle of any matrix in the `_max` columns.
    func spectralCSV() -> CSVTable {
        var table = CSVTable(header: SweepReport.pointColumns + SweepReport.spectralColumns)
        for result in results {
            guard let tensors = result.spectral else { continue }
            for tensor in tensors {
                let c = tensor.comparison
                table.addRow(pointCells(result.point) + [
                    .text(tensor.name), .text("\(tensor.rows)x\(tensor.columns)"), .integer(c.k), .integer(c.rank),
                    number(c.alpha), .integer(c.changed), optional(c.nss), optional(c.angleUMaxDegrees),
                    optional(c.angleVMaxDegrees), optional(c.angleUMeanDegrees), optional(c.angleVMeanDegrees),
                    optional(c.angleUMaxDegrees), optional(c.angleVMaxDegrees),
                    optional(c.principalOverlap), optional(c.principalOverlap == nil ? nil : c.alpha),
                    optional(c.principalOverlapMagnitude),
                    optional(c.lowOverlap), optional(c.lowOverlap == nil ? nil : c.alpha), optional(c.lowOverlapMagnitude),
                    optional(c.controlOverlap), optional(c.controlOverlap == nil ? nil : c.controlDensity),
                    optional(c.controlOverlapMagnitude),
                    optional(c.energyTopK), number(c.deltaFrobenius), number(c.deltaSpectral),
                ])
            }
            let t = SpectralTotals(tensors)
            table.addRow(pointCells(result.point) + [
                .text("TOTAL"), .empty, .integer(result.point.stream.k), .empty, .empty, .integer(t.changed),
                optional(t.nss), optional(t.angleUMax), optional(t.angleVMax), optional(t.angleUMean),
                optional(t.angleVMean), optional(t.angleUMaxOfAll), optional(t.angleVMaxOfAll),
                optional(t.principalOverlap), optional(t.principalOverlapRandom), optional(t.principalOverlapMagnitude),
                optional(t.lowOverlap), optional(t.lowOverlapRandom), optional(t.lowOverlapMagnitude),
                optional(t.controlOverlap), optional(t.controlOverlapRandom), optional(t.controlOverlapMagnitude),
                optional(t.energyTopK), .empty, .empty,
            ])
        }
        return table
    }

    private func number(_ value: Double) -> TableCell { value.isNaN ? .empty : .number(value) }
    private func optional(_ value: Double?) -> TableCell { value.map(number) ?? .empty }

    // MARK: - Plots

    /// The grid axes with more than one value.
    var varyingAxes: [Experiment.Axis] { experiment.grid.filter { $0.values.count > 1 }.map(\.axis) }

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
            var plot = LinePlot(title: title, xLabel: axis == .knob(.lr) ? "learning rate" : axis.rawValue,
                                yLabel: "fraction of weights with unchanged stored bits", style: .linesAndMarkers)
            if axis == .knob(.lr) { plot.xScale = .log10 }
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
            // "null" alone when a point label follows, so the legend entry stays readable.
            if let null = result.nullByMagnitude { series.append((key.isEmpty ? "null (permuted)" : "null", null)) }
            for (name, visible) in series {
                plot.addSeries(key.isEmpty ? name : "\(name) · \(key)", x: x,
                               y: bins.map { Double(visible[$0]) / Double(weights[$0]) })
            }
        }
        return plot
    }

    var spectralResults: [(SweepPointResult, SpectralTotals)] {
        results.compactMap { result in result.spectral.map { (result, SpectralTotals($0)) } }
    }

    /// Whether any point has the magnitude-stratified baselines (issue 12).
    var hasMagnitudeBaselines: Bool {
        spectralResults.contains { $0.1.principalOverlapMagnitude != nil || $0.1.lowOverlapMagnitude != nil }
    }

    func driftPlot() -> any ReportFile {
        let rows = spectralResults
        var plot = BarPlot(title: "\(experiment.name): normalised spectral shift NSS of W0 -> W_T (fp32 truth)",
                           xLabel: categoryLabel, yLabel: "NSS", categories: rows.map { shortLabel($0.0.point) })
        plot.yScale = .log10
        plot.addSeries("NSS (weighted mean)", values: rows.map { $0.1.nss ?? .nan })
        return plot
    }

    func anglesPlot() -> any ReportFile {
        let rows = spectralResults
        let ks = Set(rows.map { $0.0.point.stream.k })
        let kText = ks.count == 1 ? "top-\(ks.first!)" : "top-k"
        var plot = BarPlot(title: "\(experiment.name): largest principal angle, \(kText) subspaces of W0 vs W_T",
                           xLabel: categoryLabel, yLabel: "degrees", categories: rows.map { shortLabel($0.0.point) })
        plot.addSeries("left (U), mean over matrices", values: rows.map { $0.1.angleUMax ?? .nan })
        plot.addSeries("right (V), mean over matrices", values: rows.map { $0.1.angleVMax ?? .nan })
        plot.addSeries("either side, largest matrix", values: rows.map { $0.1.angleMaxOfAll ?? .nan })
        return plot
    }

    func overlapsPlot() -> any ReportFile {
        let rows = spectralResults
        let alpha = experiment.spectral?.alpha ?? 0.5
        var plot = BarPlot(title: "\(experiment.name): overlap of the visible changes with the masks (α = \(compactDecimal(alpha)))",
                           xLabel: categoryLabel, yLabel: "|mask ∩ M| / |M|", categories: rows.map { shortLabel($0.0.point) })
        plot.yRange = 0...1
        plot.addSeries("principal mask", values: rows.map { $0.1.principalOverlap ?? .nan })
        if hasMagnitudeBaselines {
            plot.addSeries("principal, magnitude baseline", values: rows.map { $0.1.principalOverlapMagnitude ?? .nan })
        }
        plot.addSeries("low-|W0| mask", values: rows.map { $0.1.lowOverlap ?? .nan })
        if hasMagnitudeBaselines {
            plot.addSeries("low-|W0|, magnitude baseline", values: rows.map { $0.1.lowOverlapMagnitude ?? .nan })
        }
        if alpha == 0.5, rows.contains(where: { $0.0.replay.totalNullModel != nil }) {
            plot.addSeries("low-|W0| mask, null (permuted)", values: rows.map { row in
                guard let null = row.0.replay.totalNullModel, let index = row.0.replay.headlineAlphaIndex else { return .nan }
                return null.lowMagnitudeOverlap[index]
            })
        }
        plot.referenceLines = [ReferenceLine(y: alpha, label: "random (α)")]
        return plot
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

import PrecLabReports
import PrecLabSpectral
import PrecLabSupport

/// The plots of a consistency report, named once (pre-flight check and writer).
public enum ConsistencyPlot: String, CaseIterable, Sendable {
    case jaccardByType = "jaccard_by_type.svg"
    /// Only when a heat-map tensor is named.
    case consensusHeatmap = "consensus_heatmap.svg"

    public var fileName: String { rawValue }

    /// The plots written with or without a heat-map tensor.
    public static func written(heatmap: Bool) -> [ConsistencyPlot] {
        heatmap ? allCases : [.jaccardByType]
    }
}

/// The encodings of a consistency result: JSON, terminal tables and SVG plots.
extension CheckpointConsistency {
    func summaryJSON(_ s: WeightedSummary<ConsistencyMetric>) -> JSONObject {
        var o = JSONObject([("tensors", .int(s.tensors)), ("params", .int(s.parameters))])
        for metric in ConsistencyMetric.allCases { o[metric.rawValue] = ReportCells.json(s.mean(metric)) }
        if let j = s.mean(.jaccard), let b = s.mean(.baseline), b > 0 { o["jaccard_over_baseline"] = .finite(j / b) }
        if let j = s.mean(.jaccard), let m = s.mean(.jaccardMagnitude), m > 0 {
            o["jaccard_over_magnitude"] = .finite(j / m)
        }
        return o
    }

    func ratioJSON(_ r: RatioSummary) -> JSONObject {
        JSONObject([("mean", .finite(r.mean)), ("min", .finite(r.minimum)), ("max", .finite(r.maximum)),
                    ("std", .finite(r.standardDeviation)), ("cv", ReportCells.json(r.coefficientOfVariation))])
    }

    public func json() -> JSONValue {
        var root = JSONObject()
        root["base"] = .string(basePath)
        root["runs"] = .array(runPaths.map { .string($0) })
        root["options"] = .object(JSONObject([("dtype", .string(options.format.name)),
                                              ("tensors", options.selection.pattern.map { .string($0) } ?? .null),
                                              ("signed_zero_changes", .bool(options.signedZeroChanges))]))
        root["tensors"] = .array(tensors.map { row in
            let r = row.result
            var o = ReportCells.tensorJSON(row.name, shape: row.shape)
            o["params"] = .int(row.params)
            o["densities"] = .array(r.densities.map { .finite($0) })
            o["mean_jaccard"] = ReportCells.json(r.meanJaccard)
            o["mean_baseline"] = ReportCells.json(r.meanBaseline)
            o["mean_jaccard_magnitude"] = ReportCells.json(r.meanJaccardMagnitude)
            o["jaccard"] = .array(r.jaccard.map { .array($0.map(ReportCells.json)) })
            o["baseline"] = .array(r.baseline.map { .array($0.map(ReportCells.json)) })
            o["jaccard_magnitude"] = .array(r.jaccardMagnitude.map { .array($0.map(ReportCells.json)) })
            o["consensus_histogram"] = .array(r.consensus.histogram.map { .int($0) })
            o["unanimous_fraction"] = .finite(r.consensus.unanimousFraction)
            if row.shape.count == 2 {
                o["row_ratio"] = .object(ratioJSON(r.rowRatios))
                o["column_ratio"] = .object(ratioJSON(r.columnRatios))
            }
            return .object(o)
        })
        var byType = JSONObject()
        for type in types { byType[type.rawValue] = .object(summaryJSON(summary(of: type))) }
        root["by_type"] = .object(byType)
        root["total"] = .object(summaryJSON(total))
        root["skipped"] = .array(skipped.map {
            .object(JSONObject([("name", .string($0.name)), ("reason", .string($0.reason))]))
        })
        return .object(root)
    }

    public func text(width: Int) -> String {
        var perTensor = TextTable(title: "preclab consistency: \(runPaths.count) runs from \(basePath) (\(options.format.name) codes)",
                                  columns: ReportCells.tensorColumns() + [
            .number("updated", style: .percent(decimals: 1)), .number("Jaccard", style: .fixed(decimals: 3)),
            .number("random", style: .fixed(decimals: 3)), .number("magnitude", style: .fixed(decimals: 3)),
            .number("all runs", style: .percent(decimals: 1)),
            .number("row cv", style: .fixed(decimals: 3)), .number("col cv", style: .fixed(decimals: 3)),
        ])
        for row in tensors {
            let r = row.result
            let is2D = row.shape.count == 2
            perTensor.addRow(ReportCells.tensorCells(row.name, shape: row.shape, params: row.params) + [
                              .number(row.meanDensity), ReportCells.metric(r.meanJaccard),
                              ReportCells.metric(r.meanBaseline), ReportCells.metric(r.meanJaccardMagnitude),
                              .number(r.consensus.unanimousFraction),
                              ReportCells.metric(is2D ? r.rowRatios.coefficientOfVariation : nil),
                              ReportCells.metric(is2D ? r.columnRatios.coefficientOfVariation : nil)])
        }
        var byType = ReportCells.byTypeTable(
            title: "by matrix type (parameter-weighted means)",
            columns: [
                .number("updated", style: .percent(decimals: 1)), .number("Jaccard", style: .fixed(decimals: 3)),
                .number("random", style: .fixed(decimals: 3)), .number("magnitude", style: .fixed(decimals: 3)),
                .number("all runs", style: .percent(decimals: 1)),
                .number("row cv", style: .fixed(decimals: 3)), .number("col cv", style: .fixed(decimals: 3)),
            ],
            types: types, summary: summary(of:), total: total) { s in
                [s.mean(.density), s.mean(.jaccard), s.mean(.baseline), s.mean(.jaccardMagnitude), s.mean(.unanimous),
                 s.mean(.rowCV),
                 s.mean(.columnCV)].map(ReportCells.metric)
            }
        byType.addFootnote("magnitude: the Jaccard of independent masks with the runs' densities in every binade of the stored base (Jaccard ≈ magnitude: precision explains the agreement; see docs/metrics.md)")
        byType.addFootnote("Jaccard: mean over pairs of runs; random: p q / (p + q - p q) for independent masks of the same densities; all runs: elements every run updated; cv: coefficient of variation of the consensus row/column means")
        byType.addFootnote("tensor names are shown without a leading 'model.' and a trailing '.weight'")
        for skip in skipped.prefix(10) { byType.addFootnote("skipped \(skip.name): \(skip.reason)") }
        if skipped.count > 10 { byType.addFootnote("skipped: \(skipped.count - 10) more (see the JSON report)") }
        return perTensor.render(width: width) + "\n" + byType.render(width: width)
    }

    /// The plots: Jaccard by matrix type, and with `heatmap` the consensus of that 2-D
    /// tensor (nil when it is not among the measured tensors).
    public func plots(heatmap: String? = nil) -> [(name: String, file: any ReportFile)] {
        let present = types
        var bars = BarPlot(title: "Cross-run Jaccard of update masks (\(runPaths.count) runs)", xLabel: "matrix type",
                           yLabel: "mean pairwise Jaccard", categories: present.map(\.rawValue))
        let summaries = present.map { type in summary(of: type) }
        bars.addSeries("runs", values: summaries.map { $0.mean(.jaccard) ?? .nan })
        bars.addSeries("independent baseline", values: summaries.map { $0.mean(.baseline) ?? .nan })
        bars.addSeries("magnitude baseline", values: summaries.map { $0.mean(.jaccardMagnitude) ?? .nan })
        bars.notes = ["dtype \(options.format.name); parameter-weighted means over tensors"]
        var files: [(name: String, file: any ReportFile)] = [(ConsistencyPlot.jaccardByType.fileName, bars)]
        if let heatmap, let row = tensors.first(where: { $0.name.name == heatmap }) {
            let consensus = row.result.consensus
            var map = HeatMap(title: "Consensus of \(runPaths.count) runs: \(heatmap)", rows: consensus.rows,
                              columns: consensus.columns, values: consensus.ratios)
            map.colorLabel = "fraction of runs that updated the element"
            map.colorRange = .fixed(lower: 0, upper: 1)
            map.notes = ["dtype \(options.format.name); unanimous \(NumberFormat.percent(consensus.unanimousFraction, decimals: 2)) of elements"]
            files.append((ConsistencyPlot.consensusHeatmap.fileName, map))
        }
        return files
    }
}

import PrecLabReports
import PrecLabSpectral

/// What `compare` adds to tell precision from structure (issue 12): the overlaps beside
/// their magnitude baselines as a plot, and the changes a narrower --dtype hides.
extension CompareCommand.Report {
    /// Precision-hidden changes summed over the rows that have them (nil when none does).
    func precisionTotal(_ selected: [CompareCommand.Row]) -> PrecisionHiddenChanges? {
        let measured = selected.compactMap(\.precision)
        guard !measured.isEmpty else { return nil }
        var total = PrecisionHiddenChanges()
        for tally in measured { total.add(tally) }
        return total
    }

    /// Written into --plots only when both checkpoints are wider than --dtype.
    static let precisionFileNames = ["precision_hidden.csv", "precision_hidden.svg"]

    /// Observed overlaps per matrix type beside their magnitude baselines (bars) and
    /// the random baseline α (line).
    func overlapsPlot() -> BarPlot {
        let present = types
        let summaries = present.map { type in summary(rows.filter { $0.name.type == type }) }
        var plot = BarPlot(title: "Where the changes are: mask overlaps by matrix type", xLabel: "matrix type",
                           yLabel: "|mask ∩ M| / |M|", categories: present.map(\.rawValue))
        plot.yRange = 0...1
        plot.addSeries("principal", values: summaries.map { $0.mean("principal_overlap") ?? .nan })
        plot.addSeries("principal, magnitude baseline", values: summaries.map { $0.mean("principal_overlap_magnitude") ?? .nan })
        plot.addSeries("low-|W0|", values: summaries.map { $0.mean("low_overlap") ?? .nan })
        plot.addSeries("low-|W0|, magnitude baseline", values: summaries.map { $0.mean("low_overlap_magnitude") ?? .nan })
        plot.referenceLines = [ReferenceLine(y: settings.spectral.alpha, label: "random (α)")]
        plot.notes = ["dtype \(settings.format.name); magnitude baseline: expected overlap if changes depended only on the binade of W0"]
        return plot
    }

    /// The histogram of |W1 − W0| / half-ULP(stored W0) over tensors with wide inputs.
    func precisionFiles() -> [(name: String, file: any ReportFile)] {
        guard let total = precisionTotal(rows) else { return [] }
        let labels = PrecisionHiddenChanges.labels
        var csv = CSVTable(header: ["bin", "weights", "visible", "hidden"])
        for bin in labels.indices {
            csv.addRow([.text(labels[bin]), .integer(total.histogram[bin]), .integer(total.visibleByBin[bin]),
                        .integer(total.histogram[bin] - total.visibleByBin[bin])])
        }
        var plot = BarPlot(title: "|W1 − W0| / half-ULP of the stored W0 (\(settings.format.name))",
                           xLabel: "ratio (log2 bins)", yLabel: "weights", categories: labels)
        plot.addSeries("visible in \(settings.format.name)", values: total.visibleByBin.map(Double.init))
        plot.addSeries("hidden by precision", values: zip(total.histogram, total.visibleByBin).map { Double($0 - $1) })
        plot.yScale = .log10
        plot.notes = ["\(total.sourceChanged) values changed in the inputs, \(total.hiddenByPrecision) of them hidden by \(settings.format.name)"]
        return [(CompareCommand.Report.precisionFileNames[0], csv), (CompareCommand.Report.precisionFileNames[1], plot)]
    }
}
